"""Escape probes: processes. Signals, tracing and namespaces stop at the sandbox; nothing
a job starts outlives it."""
from __future__ import annotations

import os

import pytest

from ._probe import SYSCALL_PRELUDE, lines, probe, wait_until_no_host_pids

pytestmark = pytest.mark.integration

# Sandbox-side: the job's outside uid, printed first so the host can look for survivors.
PRINT_OUTSIDE_UID = "print('uid', open('/proc/self/uid_map').read().split()[1], flush=True)\n"


def _outside_uid(result) -> int:
    first = result.stdout.decode().splitlines()[0].split()
    assert first[0] == "uid", result
    return int(first[1])


def test_kill_minus_one_hits_only_the_sandbox(daemon, host_sentinel):
    code = ("import os, signal, subprocess\n"
            "child = subprocess.Popen(['sleep', '60'])\n"
            "os.kill(-1, signal.SIGKILL)\n"
            "print('child', child.wait())\n")
    assert lines(probe(daemon, code)) == ["child -9"]
    assert host_sentinel.poll() is None and daemon.process.poll() is None


def test_host_processes_cannot_be_signalled_by_pid_group_or_pidfd(daemon, host_sentinel):
    pid = host_sentinel.pid  # also its process group and session id
    assert pid > 64  # outside the range of pids a sandbox can have (pids limit 64)
    code = SYSCALL_PRELUDE + (
        "import signal\n"
        f"pid = {pid}\n"
        "def call(name, fn, *args):\n"
        "    try: fn(*args); print(name, 'OK')\n"
        "    except OSError as e: print(name, errno.errorcode[e.errno])\n"
        "call('kill', os.kill, pid, signal.SIGKILL)\n"
        "call('killpg', os.killpg, pid, signal.SIGKILL)\n"
        "call('kill_neg', os.kill, -pid, signal.SIGKILL)\n"
        "call('pidfd_open', os.pidfd_open, pid)\n"
        "call('getsid', os.getsid, pid)\n"
        "call('setpgid', os.setpgid, 0, pid)\n"
        "call('setpriority', os.setpriority, os.PRIO_PROCESS, pid, 19)\n"
        "print('tgkill', syscall(234, pid, pid, 9)[1])\n"
        "import struct\n"
        "info = ctypes.create_string_buffer(struct.pack('<3i', 9, 0, -1), 128)\n"
        "print('rt_sigqueueinfo', syscall(129, pid, 9, info)[1])\n"  # si_code SI_QUEUE, as sigqueue(3) sends
        f"print('daemon', syscall(62, {daemon.process.pid}, 0)[1], syscall(62, -{os.getpgid(0)}, 0)[1])\n"
        f"print('pytest', syscall(62, {os.getpid()}, 0)[1])\n"
    )
    assert lines(probe(daemon, code)) == [
        "kill ESRCH", "killpg ESRCH", "kill_neg ESRCH", "pidfd_open ESRCH", "getsid ESRCH",
        "setpgid EPERM", "setpriority ESRCH", "tgkill ESRCH", "rt_sigqueueinfo ESRCH",
        "daemon ESRCH ESRCH", "pytest ESRCH",
    ]
    assert host_sentinel.poll() is None


def test_a_pid_scan_finds_only_the_sandbox(daemon):
    code = ("import os, subprocess\n"
            "child = subprocess.Popen(['sleep', '60'])\n"
            "alive = []\n"
            "for pid in range(1, 1 << 16):\n"
            "    try: os.kill(pid, 0); alive.append(pid)\n"
            "    except ProcessLookupError: pass\n"
            "listed = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
            "print(alive == [1, child.pid], len(alive), listed == ['1', str(child.pid)])\n"
            "child.kill()\n")
    assert lines(probe(daemon, code)) == ["True 2 True"]


def test_ptrace_and_cross_process_memory_access_are_refused_and_reported(daemon):
    code = SYSCALL_PRELUDE + (
        "import subprocess\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print('traceme', *syscall(101, 0, 0, 0, 0))\n"              # PTRACE_TRACEME
        "print('attach', *syscall(101, 16, child.pid, 0, 0))\n"      # PTRACE_ATTACH
        "print('seize', *syscall(101, 0x4206, child.pid, 0, 0))\n"   # PTRACE_SEIZE
        "buf = ctypes.create_string_buffer(64)\n"
        "iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 64)\n"
        "print('vm_readv', *syscall(310, child.pid, iov, 1, iov, 1, 0))\n"
        "print('vm_writev', *syscall(311, child.pid, iov, 1, iov, 1, 0))\n"
        "print('kcmp', *syscall(312, os.getpid(), child.pid, 0, 0, 0))\n"  # KCMP_FILE
        "pidfd = os.pidfd_open(child.pid)\n"
        "print('pidfd_getfd', *syscall(438, pidfd, 0, 0))\n"
        "child.kill()\n"
    )
    result = probe(daemon, code)
    assert lines(result) == [f"{name} -1 EPERM" for name in
                             ("traceme", "attach", "seize", "vm_readv", "vm_writev", "kcmp", "pidfd_getfd")]
    assert result.denied_syscalls == ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"]


NAMESPACE_FLAGS = {"user": 0x10000000, "mount": 0x20000, "net": 0x40000000, "pid": 0x20000000,
                   "uts": 0x4000000, "ipc": 0x8000000, "cgroup": 0x2000000, "time": 0x80}


def test_no_new_namespace_can_be_made_or_joined(daemon):
    code = SYSCALL_PRELUDE + (
        f"for name, flag in {NAMESPACE_FLAGS!r}.items():\n"
        "    print('unshare', name, *syscall(272, flag))\n"
        "for name in ('user', 'mnt', 'net', 'pid'):\n"
        "    fd = os.open(f'/proc/self/ns/{name}', os.O_RDONLY)\n"
        "    print('setns', name, *syscall(308, fd, 0))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ([f"unshare {name} -1 EPERM" for name in NAMESPACE_FLAGS]
                             + [f"setns {name} -1 EPERM" for name in ("user", "mnt", "net", "pid")])
    assert result.denied_syscalls == ["unshare", "setns"]


def test_a_daemonized_grandchild_does_not_outlive_its_job(daemon):
    marker = f"1000.{int.from_bytes(os.urandom(6), 'big')}"
    code = PRINT_OUTSIDE_UID + (
        "import os, time, signal\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
        "            signal.signal(sig, signal.SIG_IGN)\n"
        f"        os.execv('/bin/sleep', ['sleep', {marker!r}])\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "deadline = time.monotonic() + 30\n"
        "while time.monotonic() < deadline:\n"
        "    found = [p for p in os.listdir('/proc') if p.isdigit()\n"
        f"             and {marker!r}.encode() in open(f'/proc/{{p}}/cmdline', 'rb').read()]\n"
        "    if found: break\n"
        "    time.sleep(0.01)\n"
        "print('daemonized', len(found))\n"
    )
    result = probe(daemon, code)
    assert lines(result)[1:] == ["daemonized 1"]
    assert wait_until_no_host_pids(marker=marker) == []
    assert wait_until_no_host_pids(uid=_outside_uid(result)) == []


def _killed_at_its_timeout(daemon, code: str, timeout_secs: int, said: str) -> None:
    """Runs `code`, which outlives `timeout_secs`: the job is killed at its timeout after
    saying `said`, and no process of its outside uid is left on the host."""
    result = probe(daemon, PRINT_OUTSIDE_UID + code, timeout_secs=timeout_secs)
    assert (result.timed_out, result.exit_code) == (True, -9)
    assert result.stdout.decode().splitlines()[1:] == [said]
    assert wait_until_no_host_pids(uid=_outside_uid(result)) == []


def test_a_job_ignoring_every_signal_is_killed_at_its_timeout(daemon):
    marker = f"1000.{int.from_bytes(os.urandom(6), 'big')}"
    code = (
        "import os, signal, subprocess\n"
        "for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        f"subprocess.Popen(['sleep', {marker!r}], start_new_session=True)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())\n"
        "print('spinning', flush=True)\n"
        "while True: pass\n"
    )
    _killed_at_its_timeout(daemon, code, 1, said="spinning")
    assert wait_until_no_host_pids(marker=marker) == []


def test_fork_bomb_is_contained(daemon):
    code = (
        "import os, time\n"
        "print('bomb', flush=True)\n"
        "while True:\n"
        "    try: os.fork()\n"
        "    except OSError: time.sleep(0.01)\n"
    )
    _killed_at_its_timeout(daemon, code, 3, said="bomb")
