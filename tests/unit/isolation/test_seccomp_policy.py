"""The seccomp policy against the real kernel: every check runs in a forked child."""
from __future__ import annotations

import ctypes
import errno
import importlib.util
import mmap
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading

import prctl
import pytest

from leeward_daemon import linux
from leeward_daemon.isolation import seccomp_policy as sp

SIGCHLD = 17
TIOCSTI, TIOCLINUX, FIONREAD = 0x5412, 0x541C, 0x541B


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
    """errno of a raw syscall with 64-bit args (0 when it succeeded)."""
    return _errno_of(linux.raw_syscall, nr, *(ctypes.c_ulong(a) for a in args))


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
                _raw(300, 0, 0),  # fanotify_init
                _raw(100_000))

    result = run_in_child(child, supervise=True)
    assert result.unwrap() == (errno.ENOSYS, errno.ENOSYS, errno.ENOSYS)
    assert result.denied == []


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
