"""The job's own bind mounts, made in the slot while the old root is still reachable.

The daemon already resolved each host path (realpath, allowed_paths); here the path is
opened again one component at a time with O_NOFOLLOW, so a symlink swapped in since
then fails instead of redirecting the mount (the classic TOCTOU of bind mounts).
"""
from __future__ import annotations

import os
import stat

from .rootfs import OLD_ROOT, bind
from .spec import JobMount


class MountError(Exception):
    """A job mount could not be made; the message names the path."""


def apply(mounts: list[JobMount]) -> None:
    for mount in mounts:
        fd = open_without_symlinks(OLD_ROOT, mount.host)
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            _make_mount_point(mount.sandbox, is_dir)
            bind(f"/proc/self/fd/{fd}", mount.sandbox, read_only=mount.ro)
        finally:
            os.close(fd)


def open_without_symlinks(root: str, path: str) -> int:
    """O_PATH fd of `root`/`path`, refusing a symlink at any component."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [p for p in path.split("/") if p]:
            if part == "..":
                raise MountError(f"'..' in mount path {path!r}")
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


def _make_mount_point(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        with open(target, "w"):
            pass
