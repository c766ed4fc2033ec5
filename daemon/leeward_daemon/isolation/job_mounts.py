"""The job's own bind mounts, in two steps around the detaching of the host tree.

1. `clone_sources`, while the old root is still reachable: each host path (already
   resolved by the daemon: realpath, allowed_paths) is opened again one component at a
   time with O_NOFOLLOW, so a symlink swapped in since then fails instead of redirecting
   the mount (the classic TOCTOU of bind mounts), and cloned into a detached mount
   (open_tree) with its flags already set. Nothing is looked up in the sandbox yet.
2. `attach`, after the host tree is gone: each mount point is found or made one
   component at a time from the sandbox's root with O_NOFOLLOW, and the clone is moved
   onto the fd (move_mount), never onto a name. A job that planted symlinks in a rw
   mount (`/data/link -> /oldroot/etc`) cannot make the slot create a mount point
   through them: a link is refused wherever it appears, and even a followed one could
   no longer reach the host.

Parents are attached before their children, so a request may nest a read-only input
inside a rw workspace in any order. A read-only parent is never written to, not even
to make a mount point: its nested targets must exist.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .. import linux
from ..errors import MountError
from ..linux import MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY
from .rootfs import OLD_ROOT
from ..model import JobMount


@dataclass
class ClonedMount:
    sandbox: str
    tree_fd: int  # detached mount, flags set
    is_dir: bool


def clone_sources(mounts: list[JobMount]) -> list[ClonedMount]:
    """Step 1 (host tree attached). The caller must `attach` or `close` the result."""
    clones: list[ClonedMount] = []
    try:
        for mount in sorted(mounts, key=lambda m: _depth(m.sandbox)):
            fd = open_without_symlinks(OLD_ROOT, mount.host)
            try:
                is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
                tree = linux.open_tree(fd)
            finally:
                os.close(fd)
            clones.append(ClonedMount(mount.sandbox, tree, is_dir))
            # Always nosuid and nodev: a rw host dir may hold setuid files or device nodes
            # planted by host users or an earlier job. Flags the kernel locked on the
            # source (atime, noexec) are left alone, as a user namespace must.
            linux.mount_setattr(None, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (MOUNT_ATTR_RDONLY if mount.ro else 0),
                                fd=tree)
    except BaseException:
        close(clones)
        raise
    return clones


def attach(clones: list[ClonedMount]) -> None:
    """Step 2 (host tree detached): put each clone on its mount point, parents first."""
    try:
        for clone in clones:
            target = _mount_point(clone.sandbox, clone.is_dir)
            try:
                linux.move_mount(clone.tree_fd, target)
            finally:
                os.close(target)
    finally:
        close(clones)


def close(clones: list[ClonedMount]) -> None:
    for clone in clones:
        if clone.tree_fd >= 0:
            os.close(clone.tree_fd)
            clone.tree_fd = -1


def open_without_symlinks(root: str, path: str) -> int:
    """O_PATH fd of `root`/`path`, refusing a symlink at any component."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in _parts(path):
            try:
                nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                raise MountError(f"cannot open {path!r} at {part!r}: {exc.strerror}") from None
            os.close(fd)
            fd = nxt
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise MountError(f"mount path {path!r} goes through a symlink at {part!r}")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _mount_point(target: str, is_dir: bool) -> int:
    """O_PATH fd of the mount point `target` in the sandbox's root, made if missing
    (directories 0755, files empty 0644); every component must be a real directory."""
    *dirs, leaf = _parts(target)
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in dirs:
            nxt = _open_or_make(fd, part, target, directory=True)
            os.close(fd)
            fd = nxt
        return _open_or_make(fd, leaf, target, directory=is_dir)
    finally:
        os.close(fd)


def _open_or_make(dir_fd: int, name: str, target: str, *, directory: bool) -> int:
    try:
        if directory:
            os.mkdir(name, 0o755, dir_fd=dir_fd)  # never follows a link at `name`
        else:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=dir_fd))
    except FileExistsError:
        pass
    except OSError as exc:
        raise MountError(f"cannot make the mount point {target!r} at {name!r}: {exc.strerror}") from None
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise MountError(f"mount point {target!r} goes through a symlink or a non-directory at {name!r}") from None
        raise MountError(f"cannot open the mount point {target!r} at {name!r}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode) or (not directory and not stat.S_ISREG(mode)):
        os.close(fd)
        raise MountError(f"mount point {target!r} is a symlink or of another kind than its source at {name!r}")
    return fd


def _parts(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    if ".." in parts:
        raise MountError(f"'..' in mount path {path!r}")
    return parts


def _depth(path: str) -> int:
    return len(_parts(path))
