"""Every raw Linux syscall leeward makes, through ctypes, in one place.

Each wrapper raises `SyscallError`, which names the syscall and its arguments, so a
failure deep in sandbox setup reads like strace output rather than a bare errno.
"""
from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 syscall numbers (leeward is x86_64-only; the seccomp filter enforces it too).
SYS_PIVOT_ROOT = 155
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
SYS_SECCOMP = 317
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2

# New mount API (Linux 5.2 / 5.12): mounts as fds, so a target is never looked up by name.
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8


class SyscallError(OSError):
    def __init__(self, err: int, call: str):
        super().__init__(err, f"{call}: {os.strerror(err)}")
        self.call = call


def _check(result: int, call: str) -> int:
    if result < 0:
        raise SyscallError(ctypes.get_errno(), call)
    return result


def raw_syscall(nr: int, *args, name: str | None = None) -> int:
    return _check(_libc.syscall(ctypes.c_long(nr), *args), name or f"syscall({nr})")


MADV_COLLAPSE = 25  # linux 6.1: collapse a range into transparent huge pages, synchronously
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def madvise(start: int, length: int, advice: int) -> None:
    _check(_libc.madvise(start, length, advice), f"madvise({start:#x}, {length}, {advice})")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns({fd}, {nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(
        _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})",
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount2({target!r}, {flags:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    raw_syscall(SYS_PIVOT_ROOT, new_root.encode(), put_old.encode(), name=f"pivot_root({new_root!r}, {put_old!r})")


def open_tree(fd: int, flags: int = 0) -> int:
    """A detached copy (OPEN_TREE_CLONE) of the mount at `fd` (AT_EMPTY_PATH), close-on-exec."""
    flags |= OPEN_TREE_CLONE | AT_EMPTY_PATH | os.O_CLOEXEC
    return raw_syscall(SYS_OPEN_TREE, ctypes.c_long(fd), b"", ctypes.c_ulong(flags),
                       name=f"open_tree({fd}, \"\", {flags:#x})")


def move_mount(tree_fd: int, target_fd: int) -> None:
    """Attach the detached mount `tree_fd` on the file or directory `target_fd` is open on."""
    flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
    raw_syscall(SYS_MOVE_MOUNT, ctypes.c_long(tree_fd), b"", ctypes.c_long(target_fd), b"", ctypes.c_ulong(flags),
                name=f"move_mount({tree_fd}, \"\", {target_fd}, \"\", {flags:#x})")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(path: str | None, attr_set: int, *, fd: int = -100, recursive: bool = False) -> None:
    """Set mount flags on `path` (or on the mount `fd` is open on, path None), and with
    `recursive` on every mount below it: MS_REMOUNT only ever changes the top one."""
    flags = (AT_RECURSIVE if recursive else 0) | (AT_EMPTY_PATH if path is None else 0)
    attr = _MountAttr(attr_set=attr_set)
    raw_syscall(SYS_MOUNT_SETATTR, ctypes.c_long(fd), (path or "").encode(), ctypes.c_ulong(flags),
                ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                name=f"mount_setattr({fd}, {path!r}, {flags:#x}, {{attr_set={attr_set:#x}}})")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, ctypes.c_size_t(len(data))), f"sethostname({name!r})")


def write_file(path: str, data: str) -> None:
    """One write(2) on an existing file: /proc and cgroupfs files need exactly that."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    except OSError as exc:
        raise SyscallError(exc.errno or errno.EIO, f"write({path!r}, {data!r})") from None
    finally:
        os.close(fd)


# --- isolation layers: Landlock, seccomp(2), capabilities, prctl, ioctl -------------------
# Appended for leeward_daemon.isolation.{landlock,seccomp_policy,capabilities}. Every int is
# passed as a 64-bit C long: libc's syscall() is variadic, and a bare Python int would go in
# as a 32-bit int whose upper register half the kernel may read for size_t/pointer args.

SYS_CAPGET = 125
SYS_CAPSET = 126
SYS_CLONE3 = 435

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc.prctl.restype = ctypes.c_int
_libc.ioctl.restype = ctypes.c_int


def _ptr(obj) -> ctypes.c_void_p | None:
    return None if obj is None else ctypes.cast(ctypes.pointer(obj), ctypes.c_void_p)


def _describe(obj) -> str:
    """A ctypes struct as "{field=0x.., ...}", so errors read like strace."""
    if obj is None:
        return "NULL"
    if isinstance(obj, ctypes.Structure):
        parts = []
        for field, *_ in obj._fields_:
            value = getattr(obj, field)
            parts.append(f"{field}={value:#x}" if isinstance(value, int) else f"{field}=...")
        return "{" + ", ".join(parts) + "}"
    return repr(obj)


def landlock_create_ruleset(attr: ctypes.Structure | None, size: int, flags: int = 0) -> int:
    """Returns a ruleset fd, or the ABI version with flags=LANDLOCK_CREATE_RULESET_VERSION."""
    return raw_syscall(
        SYS_LANDLOCK_CREATE_RULESET, _ptr(attr), ctypes.c_size_t(size), ctypes.c_ulong(flags),
        name=f"landlock_create_ruleset({_describe(attr)}, {size}, {flags:#x})",
    )


def landlock_add_rule(ruleset_fd: int, rule_type: int, attr: ctypes.Structure, flags: int = 0, *, what: str = "") -> None:
    raw_syscall(
        SYS_LANDLOCK_ADD_RULE, ctypes.c_long(ruleset_fd), ctypes.c_long(rule_type), _ptr(attr), ctypes.c_ulong(flags),
        name=f"landlock_add_rule({ruleset_fd}, {rule_type}, {what or _describe(attr)}, {flags:#x})",
    )


def landlock_restrict_self(ruleset_fd: int, flags: int = 0) -> None:
    raw_syscall(
        SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_long(ruleset_fd), ctypes.c_ulong(flags),
        name=f"landlock_restrict_self({ruleset_fd}, {flags:#x})",
    )


def seccomp(op: int, flags: int, arg: ctypes.Structure | None, *, what: str = "") -> int:
    return raw_syscall(
        SYS_SECCOMP, ctypes.c_ulong(op), ctypes.c_ulong(flags), _ptr(arg),
        name=f"seccomp({op}, {flags:#x}, {what or _describe(arg)})",
    )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) as 64-bit masks, _LINUX_CAPABILITY_VERSION_3."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    raw_syscall(SYS_CAPGET, ctypes.byref(header), ctypes.byref(data), name=f"capget(v3, pid={pid})")
    join = lambda field: getattr(data[0], field) | getattr(data[1], field) << 32  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = effective >> shift & 0xFFFFFFFF
        data[i].permitted = permitted >> shift & 0xFFFFFFFF
        data[i].inheritable = inheritable >> shift & 0xFFFFFFFF
    raw_syscall(
        SYS_CAPSET, ctypes.byref(header), ctypes.byref(data),
        name=f"capset(v3, eff={effective:#x}, prm={permitted:#x}, inh={inheritable:#x})",
    )


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0, *, name: str | None = None) -> int:
    """Raw prctl(2), for options python-prctl does not know (it rejects e.g. PR_CAP_AMBIENT)."""
    args = (option, arg2, arg3, arg4, arg5)
    return _check(
        _libc.prctl(*(ctypes.c_ulong(a) for a in args)),
        name or "prctl({})".format(", ".join(f"{a:#x}" for a in args)),
    )


def ioctl(fd: int, request: int, arg: ctypes.Structure | None, *, name: str | None = None) -> int:
    return _check(
        _libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), _ptr(arg)),
        name or f"ioctl({fd}, {request:#x}, {_describe(arg)})",
    )


FD_CEILING = 1 << 20  # above any RLIMIT_NOFILE a process can have (fs.nr_open's default)


def close_fds_except(keep: set[int]) -> None:
    """Close every fd of this process but `keep`, without needing /proc."""
    # os.closerange is close_range(2) on Linux; an empty range must not reach it:
    # closerange(0, 0) becomes close_range(0, ~0U), which closes everything.
    low = 0
    for fd in sorted(keep) + [FD_CEILING]:
        if low < fd:
            os.closerange(low, fd)
        low = fd + 1
