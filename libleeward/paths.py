"""Where the daemon's socket lives by default, and which directory may hold it; shared
by the daemon, the CLI's autostart and every client.

A socket in a directory another user controls is that user's socket: they can swap it
for their own and receive every job sent to it. So a socket directory that anyone
could have created first (the per-user one under /tmp, anything in a world-writable
parent) is used only if it is really ours: created by us with an exclusive mkdir, or
found as a real directory (not a symlink) owned by us with no group/other bits.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat

SOCKET_ENV = "LEEWARD_SOCKET"
PRIVATE_MODE = 0o700
_AT_SECURE = 23  # <elf.h>: non-zero when the process gained privileges at exec


class UnsafeSocketDirectory(Exception):
    """A socket directory another user could control; the message names it and why."""


@functools.cache
def _elevated() -> bool:
    """AT_SECURE from the auxiliary vector, as glibc's secure_getenv(3) reads it: set for
    setuid/setgid binaries and file capabilities. Never changes during a process's life."""
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):  # a libc without getauxval: judge by the ids
        return os.getuid() != os.geteuid() or os.getgid() != os.getegid()
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return getauxval(_AT_SECURE) != 0


def secure_getenv(name: str) -> str | None:
    """`os.environ[name]`, or None in an elevated process (AT_SECURE): there the
    environment belongs to a less privileged caller, who must not choose which socket
    (and so which daemon) the process talks to. Every variable libleeward reads goes
    through here; the C side uses secure_getenv(3) itself."""
    if _elevated():
        return None
    return os.environ.get(name)


def default_socket_path() -> str:
    """`$LEEWARD_SOCKET`, else /run/leeward/leeward.sock for root, else
    `$XDG_RUNTIME_DIR/leeward.sock`, else a private per-user dir under /tmp."""
    explicit = secure_getenv(SOCKET_ENV)
    if explicit:
        return explicit
    if os.geteuid() == 0:
        return "/run/leeward/leeward.sock"
    runtime = secure_getenv("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "leeward.sock")
    return os.path.join(per_user_directory(), "leeward.sock")


def per_user_directory() -> str:
    """The fallback socket directory when there is no $XDG_RUNTIME_DIR; in /tmp, so any
    local user could create it before us."""
    return f"/tmp/leeward-{os.geteuid()}"


def must_be_private(directory: str) -> bool:
    """Whether `directory` sits where another user could have created it first: it is
    the per-user fallback, or its parent is writable by group or others (like /tmp)."""
    directory = os.path.abspath(directory)
    if directory == per_user_directory():
        return True
    try:
        parent_mode = os.stat(os.path.dirname(directory)).st_mode
    except OSError:
        return False  # no parent yet: makedirs creates it with our umask
    return bool(parent_mode & (stat.S_IWGRP | stat.S_IWOTH))


def prepare_socket_directory(socket_path: str) -> str:
    """Creates or checks the directory that will hold the daemon's socket (the daemon's
    side, and the CLI's before it starts one); returns it. Raises UnsafeSocketDirectory.

    A directory that must be private is created with an exclusive mkdir, or else must
    already be ours (check_directory). Elsewhere, a missing directory is created as
    before (0755 for root, whose clients are other users, 0700 otherwise) and checked
    to be ours; an existing one there is the operator's choice."""
    directory = os.path.dirname(os.path.abspath(socket_path))
    private = must_be_private(directory)
    if not private:
        os.makedirs(os.path.dirname(directory), exist_ok=True)
    try:
        os.mkdir(directory, PRIVATE_MODE if private or os.geteuid() != 0 else 0o755)
    except FileExistsError:
        if not private:
            return directory
    check_directory(directory, owners={os.geteuid()}, private=private)
    return directory


def check_client_directory(socket_path: str) -> None:
    """The client's side of the same rule, before it connects: a private-by-location
    directory that exists must belong to us or root, with no group/other bits. A missing
    one is left to connect() (nothing listens: E1006, and the CLI may start a daemon)."""
    directory = os.path.dirname(os.path.abspath(socket_path))
    if not must_be_private(directory) or not os.path.lexists(directory):
        return
    check_directory(directory, owners={os.geteuid(), 0}, private=True)


def check_directory(directory: str, *, owners: set[int], private: bool) -> None:
    """Refuses `directory` unless it is a real directory owned by one of `owners` and,
    when `private`, without group/other permission bits.

    Checked on an fd opened with O_NOFOLLOW|O_DIRECTORY, not by path: a path checked
    and then used again could be a different directory by then, or a symlink."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafeSocketDirectory(f"socket directory {directory}: {_open_failure(directory, exc)}; "
                                    f"refusing to use it") from None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in owners:
        whose = " or ".join(f"uid {uid}" for uid in sorted(owners))
        raise UnsafeSocketDirectory(
            f"socket directory {directory} is owned by uid {info.st_uid}, not {whose}: another user "
            f"could swap the socket in it; refusing to use it (remove it, or set XDG_RUNTIME_DIR "
            f"or another socket path)")
    if private and mode & 0o077:
        raise UnsafeSocketDirectory(
            f"socket directory {directory} has mode {mode:04o}, not {PRIVATE_MODE:04o}: other users "
            f"could reach or swap the socket in it; refusing to use it (chmod 700 {directory}, "
            f"or remove it)")


def _open_failure(directory: str, exc: OSError) -> str:
    # O_DIRECTORY|O_NOFOLLOW fails on a symlink with ENOTDIR (or ELOOP): lstat only
    # tells the two apart for the message, the refusal does not depend on it.
    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
        try:
            return "it is a symlink" if stat.S_ISLNK(os.lstat(directory).st_mode) else "it is not a directory"
        except OSError:
            pass
    return exc.strerror or str(exc)
