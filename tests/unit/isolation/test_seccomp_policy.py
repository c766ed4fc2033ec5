"""The seccomp policy against the real kernel: every check runs in a forked child."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import importlib.util
import mmap
import multiprocessing
import os
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import threading

import prctl
import pytest

from leeward_daemon import linux
from tests.host import cached_file, resident_pages
from leeward_daemon.isolation import seccomp_policy as sp

SIGCHLD = 17
TIOCSTI, TIOCLINUX, FIONREAD = 0x5412, 0x541C, 0x541B
AT_FDCWD = -100
SYS_FCNTL, SYS_FADVISE64, SYS_FLOCK = 72, 221, 73
F_OFD_SETLK, F_OFD_SETLKW, F_OFD_GETLK = 37, 38, 36
JUNK = 0xDEAD << 32  # in the upper half of an int argument, which the kernel ignores


@pytest.fixture(scope="module")
def policy() -> bytes:
    return sp.compile_policy(notify=True)


def _confine(ctx, bpf: bytes) -> None:
    """The job's last steps: no_new_privs, filter, listener to the supervisor."""
    prctl.set_no_new_privs(1)
    fd = sp.install(bpf, notify=True)
    assert isinstance(fd, int) and fd > 2
    ctx.hand_over(fd)


def _errno_of(call, *args) -> int:
    try:
        call(*args)
    except OSError as exc:
        return exc.errno
    return 0


def _raw(nr: int, *args) -> int:
    """errno of a raw syscall with 64-bit args, bytes as char * (0 when it succeeded)."""
    return _errno_of(linux.raw_syscall, nr, *(ctypes.c_ulong(a) if isinstance(a, int) else a for a in args))


def _square(x: int) -> int:
    return x * x


# --- building -------------------------------------------------------------------------------

def test_compile_returns_sock_filter_array(policy):
    assert isinstance(policy, bytes) and policy
    assert len(policy) % 8 == 0
    assert len(policy) // 8 <= 4096
    assert sp.compile_policy(notify=True) is policy  # built once, then reused
    assert sp.compile_policy(notify=False) != policy


def test_kernel_notification_struct_sizes_match():
    assert sp.notif_sizes() == (80, 24, 64)


def test_syscall_name():
    assert sp.syscall_name(41) == "socket"
    assert sp.syscall_name(435) == "clone3"
    assert sp.syscall_name(462) == "mseal"
    assert sp.syscall_name(100_000) == "syscall_100000"


def test_install_rejects_garbage():
    with pytest.raises(sp.SeccompError):
        sp.install(b"\x00" * 7, notify=False)


def test_install_without_no_new_privs_fails(run_in_child, policy):
    def child():
        linux.capset(0, 0, 0)  # without CAP_SYS_ADMIN the kernel demands no_new_privs
        try:
            sp.install(policy, notify=False)
        except sp.SeccompError as exc:
            return str(exc)
        return None

    message = run_in_child(child).unwrap()
    assert message is not None and "seccomp(" in message


# --- what is refused ------------------------------------------------------------------------

def test_af_inet_socket_is_refused_and_reported(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        return _errno_of(socket.socket, socket.AF_INET, socket.SOCK_STREAM)

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == errno.EPERM
    assert result.denied == ["socket"]


def test_without_notify_refusals_are_plain_eperm(run_in_child):
    bpf = sp.compile_policy(notify=False)

    def child():
        prctl.set_no_new_privs(1)
        assert sp.install(bpf, notify=False) is None
        return (_errno_of(socket.socket, socket.AF_INET6, socket.SOCK_DGRAM),
                _raw(linux.SYS_SECCOMP, 0, 0, 0),
                _raw(linux.SYS_CLONE3, 0, 0))

    assert run_in_child(child).unwrap() == (errno.EPERM, errno.EPERM, errno.ENOSYS)


def test_allow_network_permits_inet_but_not_exotic_families(run_in_child):
    bpf = sp.compile_policy(allow_network=True, notify=False)

    def child():
        prctl.set_no_new_privs(1)
        sp.install(bpf, notify=False)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM):
            pass
        return (_errno_of(socket.socket, socket.AF_NETLINK, socket.SOCK_RAW),
                _errno_of(socket.socket, socket.AF_PACKET, socket.SOCK_RAW))

    assert run_in_child(child).unwrap() == (errno.EPERM, errno.EPERM)


def test_clone3_is_enosys_and_not_reported(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        return _raw(linux.SYS_CLONE3, 0, 0)

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == errno.ENOSYS
    assert result.denied == []


def test_threads_start_after_install(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        out = []
        threads = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(out)

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == [0, 1, 2, 3]
    assert result.denied == []


def test_unshare_mount_ptrace_are_refused(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        return {
            "unshare": _errno_of(linux.unshare, linux.CLONE_NEWUSER),
            "mount": _errno_of(linux.mount, "none", "/tmp", "tmpfs"),
            "ptrace": _raw(101, 0, 0, 0, 0),  # PTRACE_TRACEME
        }

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == {"unshare": errno.EPERM, "mount": errno.EPERM, "ptrace": errno.EPERM}
    assert result.denied == ["unshare", "mount", "ptrace"]


def test_every_dangerous_syscall_is_refused_and_reported(run_in_child, policy):
    names = list(sp._DANGEROUS)

    def child(ctx):
        # A fresh user namespace first: should the filter ever let one of these zero-arg
        # calls through, it lands without host privileges.
        linux.unshare(linux.CLONE_NEWUSER)
        _confine(ctx, policy)
        return {name: _raw(sp._nr(name), 0, 0, 0, 0, 0, 0) for name in names}

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == {name: errno.EPERM for name in names}
    assert result.denied == names


def test_clone_with_namespace_flags_is_refused(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        me, found = os.getpid(), {}
        for flag in ("CLONE_NEWUSER", "CLONE_NEWNS", "CLONE_NEWNET", "CLONE_NEWPID"):
            found[flag] = _errno_of(linux.raw_syscall, 56, ctypes.c_ulong(getattr(linux, flag) | SIGCHLD),
                                    None, None, None, ctypes.c_ulong(0))
            if os.getpid() != me:  # had it succeeded as a fork, the copy leaves at once
                os._exit(0)
        pid = os.fork()  # plain clone still works
        if pid == 0:
            os._exit(3)
        found["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        return found

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == {"CLONE_NEWUSER": errno.EPERM, "CLONE_NEWNS": errno.EPERM,
                               "CLONE_NEWNET": errno.EPERM, "CLONE_NEWPID": errno.EPERM, "fork": 3}
    assert result.denied == ["clone"]


def test_tiocsti_and_tioclinux_are_refused_on_the_low_32_bits(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        r, w = os.pipe()
        os.write(w, b"abc")
        ch = ctypes.c_char(b"x")
        count = ctypes.c_int(0)
        return {
            "TIOCSTI": _errno_of(linux.ioctl, r, TIOCSTI, ch),
            "TIOCSTI|junk<<32": _errno_of(linux.ioctl, r, (0xDEAD << 32) | TIOCSTI, ch),
            "TIOCLINUX": _errno_of(linux.ioctl, r, TIOCLINUX, ch),
            "FIONREAD": _errno_of(linux.ioctl, r, FIONREAD, count),
            "pending": count.value,
        }

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == {"TIOCSTI": errno.EPERM, "TIOCSTI|junk<<32": errno.EPERM,
                               "TIOCLINUX": errno.EPERM, "FIONREAD": 0, "pending": 3}
    assert result.denied == ["ioctl"]


def test_personality_query_only(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        return (_raw(135, 0xFFFFFFFF), _raw(135, 0), _raw(135, 0x0040000))  # ADDR_NO_RANDOMIZE

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (0, 0, errno.EPERM)
    assert result.denied == ["personality"]


def test_prctl_is_limited_to_safe_options(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        prctl.set_name("job")
        return (prctl.get_name(), linux.prctl(21),  # PR_GET_SECCOMP: 2 = filter mode
                _raw(157, 22, 2, 0),  # PR_SET_SECCOMP
                _raw(157, 4, 1),  # PR_SET_DUMPABLE
                _raw(157, 35, 1))  # PR_SET_MM

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == ("job", 2, errno.EINVAL, errno.EINVAL, errno.EINVAL)
    assert result.denied == []


def test_a_process_may_make_itself_non_dumpable_but_never_dumpable_again(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        return (_raw(157, 4, JUNK | 1),  # PR_SET_DUMPABLE 1, junk in the upper half
                _raw(157, 4, 0), linux.prctl(3),  # PR_GET_DUMPABLE
                _raw(157, 4, 1), linux.prctl(3))

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (errno.EINVAL, 0, 0, errno.EINVAL, 0)
    assert result.denied == []


def test_sandbox_cannot_install_its_own_listener(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        try:
            sp.install(policy, notify=True)
        except sp.SeccompError as exc:
            return exc.__cause__.errno
        return 0

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == errno.EPERM
    assert result.denied == ["seccomp"]


def test_unknown_syscalls_are_enosys_and_not_reported(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        return (_raw(154, 0, 0, 0),  # modify_ldt: not on the allowlist
                _raw(437, AT_FDCWD, 0, 0, 0),  # openat2: its mode is out of seccomp's sight
                _raw(100_000))

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (errno.ENOSYS, errno.ENOSYS, errno.ENOSYS)
    assert result.denied == []


# --- what crosses the boundary through a shared inode ---------------------------------------

def _locks_on(path) -> list[str]:
    """The lines of /proc/locks (every lock on the machine) that name `path`'s inode."""
    st = os.stat(path)
    inode = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    with open("/proc/locks") as fh:
        return [line for line in fh if inode in line]


def _flock_struct(l_type: int) -> bytes:
    return struct.pack("hhqqi4x", l_type, os.SEEK_SET, 0, 0, 0)  # struct flock, whole file


def test_lock_requests_answer_zero_and_take_no_lock(run_in_child, policy, tmp_path):
    path = tmp_path / "locked"
    path.write_text("x")

    def child(ctx):
        _confine(ctx, policy)
        fd = os.open(path, os.O_RDWR)
        attempts = {
            "flock": lambda: _errno_of(fcntl.flock, fd, fcntl.LOCK_EX),
            "flock_nb_bad_fd": lambda: _raw(SYS_FLOCK, 999, fcntl.LOCK_EX | fcntl.LOCK_NB),
            "F_SETLKW": lambda: _errno_of(fcntl.lockf, fd, fcntl.LOCK_EX),
            "F_SETLK": lambda: _errno_of(fcntl.lockf, fd, fcntl.LOCK_SH | fcntl.LOCK_NB),
            "F_OFD_SETLK": lambda: _errno_of(fcntl.fcntl, fd, F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK)),
            "F_OFD_SETLKW": lambda: _errno_of(fcntl.fcntl, fd, F_OFD_SETLKW, _flock_struct(fcntl.F_RDLCK)),
            "F_SETLK|junk": lambda: _raw(SYS_FCNTL, fd, JUNK | fcntl.F_SETLK, 0),
        }
        out = {name: (attempt(), _locks_on(path)) for name, attempt in attempts.items()}
        # The queries run: nobody holds a lock, so they say F_UNLCK (what sqlite needs).
        out["F_GETLK"] = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, _flock_struct(fcntl.F_WRLCK)))[0]
        out["F_OFD_GETLK"] = struct.unpack("hhqqi4x", fcntl.fcntl(fd, F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK)))[0]
        return out

    result = run_in_child(child, supervise=True)
    no_lock = (0, [])
    assert result.unwrap() == {"flock": no_lock, "flock_nb_bad_fd": no_lock, "F_SETLKW": no_lock, "F_SETLK": no_lock,
                               "F_OFD_SETLK": no_lock, "F_OFD_SETLKW": no_lock, "F_SETLK|junk": no_lock,
                               "F_GETLK": fcntl.F_UNLCK, "F_OFD_GETLK": fcntl.F_UNLCK}
    assert result.denied == []


def test_locks_are_taken_without_the_filter(run_in_child, tmp_path):
    """The control for the test above: the same calls unconfined do show in /proc/locks."""
    path = tmp_path / "locked"
    path.write_text("x")

    def child():
        fd = os.open(path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.lockf(fd, fcntl.LOCK_SH)  # read locks both, so that the OFD lock does not conflict
        fcntl.fcntl(os.open(path, os.O_RDONLY), F_OFD_SETLK, _flock_struct(fcntl.F_RDLCK))
        return sorted(line.split()[1] for line in _locks_on(path))

    assert run_in_child(child).unwrap() == ["FLOCK", "OFDLCK", "POSIX"]


def test_fcntl_is_gated_on_its_command(run_in_child, policy, tmp_path):
    def child(ctx):
        _confine(ctx, policy)
        d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
        memfd = os.memfd_create("sealed", os.MFD_ALLOW_SEALING)
        return {
            # fd-local commands run
            "F_SETFD": fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC),
            "F_GETFD": fcntl.fcntl(fd, fcntl.F_GETFD),
            "F_DUPFD_CLOEXEC": fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) >= 100,
            "F_SETSIG": fcntl.fcntl(d, fcntl.F_SETSIG, signal.SIGRTMIN),
            "F_GETLEASE": fcntl.fcntl(fd, fcntl.F_GETLEASE),
            "F_ADD_SEALS": fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW),
            "F_GETPIPE_SZ": fcntl.fcntl(os.pipe()[0], fcntl.F_GETPIPE_SZ) > 0,
            # dnotify and leases: refused and reported, whatever the upper half says
            "F_NOTIFY": _errno_of(fcntl.fcntl, d, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT),
            "F_NOTIFY|junk": _raw(SYS_FCNTL, d, JUNK | fcntl.F_NOTIFY, fcntl.DN_ACCESS),
            "F_SETLEASE": _errno_of(fcntl.fcntl, fd, fcntl.F_SETLEASE, fcntl.F_RDLCK),
            # commands the policy does not know: what an older kernel says, unreported
            "F_CANCELLK": _raw(SYS_FCNTL, fd, 1029, 0),
            "9999": _raw(SYS_FCNTL, fd, 9999, 0),
        }

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == {
        "F_SETFD": 0, "F_GETFD": fcntl.FD_CLOEXEC, "F_DUPFD_CLOEXEC": True, "F_SETSIG": 0,
        "F_GETLEASE": fcntl.F_UNLCK, "F_ADD_SEALS": 0, "F_GETPIPE_SZ": True,
        "F_NOTIFY": errno.EPERM, "F_NOTIFY|junk": errno.EPERM, "F_SETLEASE": errno.EPERM,
        "F_CANCELLK": errno.EINVAL, "9999": errno.EINVAL}
    assert result.denied == ["fcntl"]


def test_file_watching_and_cachestat_are_refused_and_reported(run_in_child, policy):
    stdlib = os.path.dirname(os.__file__).encode()

    def child(ctx):
        _confine(ctx, policy)
        return {
            "inotify_init1": _raw(294, 0),
            "inotify_init": _raw(253),
            "inotify_add_watch": _raw(254, 0, stdlib, 1),  # IN_ACCESS
            "fanotify_init": _raw(300, 0x200, os.O_RDONLY),  # FAN_CLASS_NOTIF | FAN_REPORT_FID
            "fanotify_mark": _raw(301, 0, 1, 1, AT_FDCWD, stdlib),  # FAN_MARK_ADD, FAN_ACCESS
            "cachestat": _raw(451, 0, 0, 0, 0),
        }

    result = run_in_child(child, supervise=True)
    names = ["inotify_init1", "inotify_init", "inotify_add_watch", "fanotify_init", "fanotify_mark", "cachestat"]
    assert result.unwrap() == dict.fromkeys(names, errno.EPERM)
    assert result.denied == names


def test_fadvise_dontneed_evicts_nothing(run_in_child, policy, tmp_path):
    path = tmp_path / "cached"
    assert cached_file(path, 256) == 256

    def child(ctx):
        _confine(ctx, policy)
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        after_dontneed = resident_pages(path)
        junk = _raw(SYS_FADVISE64, fd, 0, 0, JUNK | os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # other advice runs
        return after_dontneed, junk, resident_pages(path), _errno_of(os.posix_fadvise, fd, 0, 0, 99)

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (256, 0, 256, errno.EINVAL)  # 99: the kernel's own answer
    assert result.denied == []
    # The control: the same call unconfined does evict (else the check above proves nothing).
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    assert resident_pages(path) < 256


def test_set_id_modes_are_refused_and_reported(run_in_child, policy, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")

    def child(ctx):
        _confine(ctx, policy)
        d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open(plain, os.O_RDWR)
        p = lambda name: bytes(tmp_path / name)  # noqa: E731
        return {
            "chmod 4755": _raw(90, p("plain"), 0o4755),
            "fchmod 2755": _raw(91, fd, 0o2755),
            "fchmodat 6755": _raw(268, d, b"plain", 0o6755),
            "fchmodat2 4700": _raw(452, d, b"plain", 0o4700, 0),
            "chmod junk|4755": _raw(90, p("plain"), JUNK | 0o4755),
            "open 4755": _raw(2, p("open"), os.O_CREAT | os.O_WRONLY, 0o4755),
            "openat 2755": _raw(257, d, b"openat", os.O_CREAT | os.O_WRONLY, 0o2755),
            "creat 4700": _raw(85, p("creat"), 0o4700),
            "mknod 4755": _raw(133, p("mknod"), stat.S_IFREG | 0o4755, 0),
            "mknodat 2755": _raw(259, d, b"mknodat", stat.S_IFREG | 0o2755, 0),
            "os.chmod 4755": _errno_of(os.chmod, plain, 0o4755),
            # what stays: plain modes, the sticky bit, junk above a plain mode, FIFOs
            "chmod 1777": _raw(90, p("plain"), 0o1777),
            "chmod junk|755": _raw(90, p("plain"), JUNK | 0o755),
            "fchmod 640": _raw(91, fd, 0o640),
            "openat 600": _raw(257, d, b"made", os.O_CREAT | os.O_WRONLY, 0o600),
            "mkfifo": _errno_of(os.mkfifo, tmp_path / "fifo"),
        }

    result = run_in_child(child, supervise=True)
    refused = ["chmod 4755", "fchmod 2755", "fchmodat 6755", "fchmodat2 4700", "chmod junk|4755", "open 4755",
               "openat 2755", "creat 4700", "mknod 4755", "mknodat 2755", "os.chmod 4755"]
    kept = ["chmod 1777", "chmod junk|755", "fchmod 640", "openat 600", "mkfifo"]
    assert result.unwrap() == {**dict.fromkeys(refused, errno.EPERM), **dict.fromkeys(kept, 0)}
    assert result.denied == ["chmod", "fchmod", "fchmodat", "fchmodat2", "open", "openat", "creat", "mknod", "mknodat"]
    assert sorted(os.listdir(tmp_path)) == ["fifo", "made", "plain"]
    assert stat.S_IMODE(os.stat(plain).st_mode) == 0o640


# --- architecture checks ----------------------------------------------------------------------

_I386_GETPID = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax, 20; int 0x80; ret


def _int80_getpid() -> int:
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_I386_GETPID)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return ctypes.CFUNCTYPE(ctypes.c_int)(addr)()


def test_i386_int80_kills_the_process(run_in_child):
    unconfined = run_in_child(_int80_getpid)
    if unconfined.signal is not None:
        pytest.skip(f"int 0x80 unusable here without seccomp (signal {unconfined.signal}): no IA32 emulation")
    assert unconfined.value > 0

    bpf = sp.compile_policy(notify=False)

    def child():
        prctl.set_no_new_privs(1)
        sp.install(bpf, notify=False)
        return _int80_getpid()

    assert run_in_child(child).signal == signal.SIGSYS


def test_x32_syscall_numbers_kill_the_process(run_in_child):
    x32_getpid = 0x40000000 | 39
    assert run_in_child(_raw, x32_getpid).unwrap() in (errno.ENOSYS, 0)
    bpf = sp.compile_policy(notify=False)

    def child():
        prctl.set_no_new_privs(1)
        sp.install(bpf, notify=False)
        return _raw(x32_getpid)

    assert run_in_child(child).signal == signal.SIGSYS


# --- what keeps working ------------------------------------------------------------------------

def test_af_unix_sockets_work(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        a, b = socket.socketpair()
        a.sendall(b"ping")
        got = b.recv(4)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM):
            pass
        return got, _errno_of(socket.socketpair, socket.AF_INET)

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (b"ping", errno.EPERM)
    assert result.denied == ["socketpair"]


def test_normal_workload_has_zero_denials(run_in_child, policy, tmp_path):
    def child(ctx):
        _confine(ctx, policy)
        out = {}
        path = tmp_path / "data.txt"
        path.write_text("hello")
        out["file"] = path.read_text()
        os.rename(path, tmp_path / "moved.txt")
        out["listdir"] = sorted(os.listdir(tmp_path))
        out["true"] = subprocess.run(["/bin/true"]).returncode
        out["python"] = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv))"],
                                       capture_output=True, text=True).stdout.strip()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        box = []
        t = threading.Thread(target=lambda: box.append(sum(range(1000))))
        t.start()
        t.join()
        out["thread"] = box
        with multiprocessing.get_context("fork").Pool(2) as pool:
            out["pool"] = pool.map(_square, range(8))
        lock = multiprocessing.get_context("fork").Lock()  # POSIX semaphore in /dev/shm
        with lock:
            pass
        db = sqlite3.connect(tmp_path / "db.sqlite")
        db.execute("create table t (x)")
        db.executemany("insert into t values (?)", [(i,) for i in range(10)])
        out["sqlite"] = db.execute("select sum(x) from t").fetchone()[0]
        db.close()
        out["urandom"] = len(os.urandom(16))
        out["affinity"] = bool(os.sched_getaffinity(0))
        fd = os.memfd_create("x")
        os.write(fd, b"mem")
        out["memfd"] = os.pread(fd, 3, 0)
        os.close(fd)
        efd = os.eventfd(0)
        os.eventfd_write(efd, 2)
        out["eventfd"] = os.eventfd_read(efd)
        return out

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == {
        "file": "hello",
        "listdir": ["moved.txt"],
        "true": 0,
        "python": '["-c"]',
        "fork": 7,
        "thread": [499500],
        "pool": [0, 1, 4, 9, 16, 25, 36, 49],
        "sqlite": 45,
        "urandom": 16,
        "affinity": True,
        "memfd": b"mem",
        "eventfd": 2,
    }
    assert result.denied == []
    assert result.hung_up  # the reporter saw the sandbox go away and did not block


def _skip_unless_installed(*modules: str) -> None:
    # find_spec, not importorskip: the child must do the first import under the filter,
    # the way a job's lazy imports happen.
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed in this environment: {', '.join(missing)}")


def test_numpy_workload_has_zero_denials(run_in_child, policy):
    _skip_unless_installed("numpy")

    def child(ctx):
        _confine(ctx, policy)
        import numpy as np  # OpenBLAS starts its threads and mbind()s its buffers here

        a = np.random.default_rng(0).random((300, 300))
        return bool(np.isfinite((a @ a.T).trace())), len(np.linalg.svd(a)[1])

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (True, 300)
    assert result.denied == []


def test_pandas_matplotlib_workload_has_zero_denials(run_in_child, policy, tmp_path):
    _skip_unless_installed("numpy", "pandas", "matplotlib")

    def child(ctx):
        _confine(ctx, policy)
        os.environ["MPLCONFIGDIR"] = str(tmp_path)
        import matplotlib
        import pandas as pd

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        df = pd.DataFrame({"x": range(100), "y": [i % 7 for i in range(100)]})
        df.to_csv(tmp_path / "a.csv", index=False)
        back = pd.read_csv(tmp_path / "a.csv")
        with sqlite3.connect(tmp_path / "db.sqlite") as db:
            back.to_sql("t", db)
            rows = db.execute("select count(*) from t").fetchone()[0]
        fig, ax = plt.subplots()
        ax.plot(back.x, back.y)
        fig.savefig(tmp_path / "plot.png")
        return int(back.groupby("y").x.sum()[0]), rows, (tmp_path / "plot.png").stat().st_size > 0

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (sum(range(0, 100, 7)), 100, True)
    assert result.denied == []


def test_mbind_only_in_openblas_prefer_local_form(run_in_child, policy):
    def child(ctx):
        _confine(ctx, policy)
        size = mmap.PAGESIZE * 4
        buf = mmap.mmap(-1, size)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        node0 = ctypes.c_ulong(1)
        MPOL_PREFERRED, MPOL_BIND = 1, 2
        got = (_raw(237, addr, size, MPOL_PREFERRED, 0, 0, 0),
               _errno_of(linux.raw_syscall, 237, ctypes.c_ulong(addr), ctypes.c_ulong(size),
                         ctypes.c_ulong(MPOL_BIND), ctypes.byref(node0), ctypes.c_ulong(64), ctypes.c_ulong(0)))
        return got

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (0, errno.EPERM)
    assert result.denied == ["mbind"]


def test_reporter_survives_a_target_killed_while_waiting(run_in_child, policy):
    """A notification whose task died before it was received must neither block nor raise."""
    def child(ctx):
        _confine(ctx, policy)
        pid = os.fork()
        if pid == 0:
            try:
                socket.socket(socket.AF_INET)  # blocks in the kernel until answered
            finally:
                os._exit(0)  # answered or not, never back into the harness
        # Nothing orders this kill against the parent's answer, and both outcomes are
        # fine: what is under test is that the reporter neither blocks nor raises.
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return _errno_of(socket.socket, socket.AF_INET)

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == errno.EPERM
    assert result.denied == ["socket"]


def test_user_notification_is_offered_by_this_kernel():
    # The machine contract guarantees seccomp user notification (Linux >= 5.0).
    assert sp.notify_available() is True
