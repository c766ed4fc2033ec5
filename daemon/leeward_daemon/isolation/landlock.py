"""Landlock: the job may touch only the paths it was given, and (ABI >= 4) no TCP.

Before the job (in the slot, off the request path): a `Ruleset` with the static paths.
In the job: add the job's mount paths, `enforce()` after the mounts are final and before
seccomp. A Landlock domain is inherited by every child and can never be
lifted, only stacked; it also forbids the restricted task any further mount changes.

`Ruleset.enforce()` sets no_new_privs itself (it is idempotent and the job sets it anyway):
landlock_restrict_self(2) demands it unless the caller holds CAP_SYS_ADMIN, and making
the layer independent of whether capabilities are dropped before or after it keeps the
order-owning function free to choose.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Sequence

import prctl

from .. import linux
from ..errors import LandlockError

# include/uapi/linux/landlock.h
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2

# ABI 1 filesystem rights
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

# Highest ABI whose rights this module knows. ABI 7 (Linux 6.15) added only audit-log
# flags for restrict_self, no access right, so its rule set equals ABI 6's.
KNOWN_ABI = 7

_FS_BY_ABI = {
    1: (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR | FS_REMOVE_DIR | FS_REMOVE_FILE
        | FS_MAKE_CHAR | FS_MAKE_DIR | FS_MAKE_REG | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_BLOCK
        | FS_MAKE_SYM),
    2: FS_REFER,
    3: FS_TRUNCATE,
    5: FS_IOCTL_DEV,
}
# Rights that mean something on a non-directory; the kernel rejects a file rule carrying
# any other right with EINVAL.
_FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
_FS_READ_EXEC = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
# Never granted: a user namespace may still create whiteouts (char 0:0), and no job needs
# a device node anywhere.
_FS_DEVICES = FS_MAKE_CHAR | FS_MAKE_BLOCK
# Not granted in directories shared with the host (rw job mounts): a FIFO or a socket
# left there is a trap for host code that opens what it finds (a FIFO blocks its open).
_FS_SPECIAL = FS_MAKE_FIFO | FS_MAKE_SOCK


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),  # ABI 4
        ("scoped", ctypes.c_uint64),  # ABI 6
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the uapi header: 12 bytes, not 16
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """Landlock ABI of the running kernel; 0 when unsupported or disabled at boot."""
    try:
        return linux.landlock_create_ruleset(None, 0, _CREATE_RULESET_VERSION)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
            return 0
        raise LandlockError(str(exc)) from exc


def handled_fs_access(abi: int) -> int:
    return sum(bits for level, bits in _FS_BY_ABI.items() if level <= abi)


class Ruleset:
    """A Landlock ruleset being built: create it ahead of demand with the static paths,
    add the job's own paths when the job arrives, then `enforce()` (which closes it).

    read_only paths get read + execute (the interpreter and subprocesses exec from them);
    read_write paths get every right the ABI knows but making device nodes (see allow()). Missing paths are skipped. Without
    allow_tcp, TCP bind and connect are denied outright (ABI >= 4). With ABI >= 6 the
    domain is also scoped: no connecting to abstract Unix sockets and no signals to
    processes outside it. Rules pin inodes, not names: a path's rule follows what was
    mounted there when it was added.
    """

    def __init__(self, *, allow_tcp: bool = False, kernel_abi: int | None = None):
        kernel_abi = abi_version() if kernel_abi is None else kernel_abi
        if kernel_abi < 1:
            raise LandlockError("Landlock is not available on this kernel (ABI 0)")
        self.abi = min(kernel_abi, KNOWN_ABI)
        self._fs_all = handled_fs_access(self.abi)
        attr = _RulesetAttr(handled_access_fs=self._fs_all)
        size = 8
        if self.abi >= 4:
            size = 16
            if not allow_tcp:
                # Handled with no port rule: every bind/connect is refused with EACCES.
                attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        if self.abi >= 6:
            size = 24
            attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        try:
            self._fd = linux.landlock_create_ruleset(attr, size, 0)
        except OSError as exc:
            raise LandlockError(f"creating the ruleset failed: {exc}") from exc

    def allow(self, read_only: Sequence[str], read_write: Sequence[str], shared: Sequence[str] = ()) -> None:
        """`read_write` are the sandbox's own scratch dirs; `shared` are writable dirs the
        host sees too (rw job mounts): no FIFOs or sockets may be made there. Rights add
        up along a path, so a shared dir placed under a scratch dir gets the scratch
        dir's rights as well."""
        for path in read_only:
            _allow_path(self._fd, path, _FS_READ_EXEC & self._fs_all)
        for path in read_write:
            _allow_path(self._fd, path, self._fs_all & ~_FS_DEVICES)
        for path in shared:
            _allow_path(self._fd, path, self._fs_all & ~_FS_DEVICES & ~_FS_SPECIAL)

    def enforce(self) -> int:
        """Confine the calling (single-threaded) process; returns the ABI whose rights were used."""
        try:
            if not prctl.get_no_new_privs():
                prctl.set_no_new_privs(1)
            linux.landlock_restrict_self(self._fd, 0)
        except OSError as exc:
            raise LandlockError(f"enforcing the ruleset failed: {exc}") from exc
        finally:
            self.close()
        return self.abi

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _allow_path(ruleset_fd: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LandlockError(f"opening {path!r} for a Landlock rule failed: {exc}") from exc
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FS_FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        linux.landlock_add_rule(ruleset_fd, _RULE_PATH_BENEATH, rule, what=f"{{{path!r}, access={access:#x}}}")
    except OSError as exc:
        raise LandlockError(f"allowing {path!r}: {exc}") from exc
    finally:
        os.close(fd)
