"""Escape probes: what crosses the boundary through an inode the host and every sandbox
share (the read-only binds of the system, of Python, of a job's ro mounts) or through a
rw mount the host reads later. File watching (inotify, dnotify, fanotify) and leases are
refused and reported; lock requests answer 0 and take no lock, so a job's lock never
reaches a host process or another sandbox; fadvise DONTNEED evicts nothing and cachestat
is refused; a set-id mode is refused, so no setuid file is left in a rw mount."""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.host import cached_file, resident_pages

from ._probe import ATTEMPT_PRELUDE, SYSCALL_PRELUDE, WAIT_SECS, beside_canary, lines, outcomes, probe

pytestmark = pytest.mark.integration

# Sandbox-side: the stdlib directory, and `stdlib_file`, a file every sandbox shares.
STDLIB = "import os\nstdlib = os.path.dirname(os.__file__)\nstdlib_file = os.__file__\n"

# Sandbox-side: `hold()` tells the host (through the rw mount /sync) that the job now
# holds what it took, then waits until the host has looked (bounded: never a hang).
HOLD = (
    "import os, time\n"
    "def hold():\n"
    "    open('/sync/held', 'w').close()\n"
    "    deadline = time.monotonic() + 60\n"
    "    while not os.path.exists('/sync/checked') and time.monotonic() < deadline:\n"
    "        time.sleep(0.02)\n"
)
HOLD_BOUND_SECS = 60.0  # bound on waiting for the holder, not a speed assertion


def _shared_dir(probe_dir: str, name: str) -> str:
    path = os.path.join(probe_dir, name)
    os.mkdir(path)
    os.chmod(path, 0o777)  # the sandbox's outside uid writes /sync
    return path


def _while_a_job_holds(daemon, probe_dir: str, code: str, mounts: list[dict], look):
    """Runs `code` (which calls hold()) with /sync mounted rw beside a canary; once the
    job holds, calls `look()` on the host; returns (job result, what look returned)."""
    sync = _shared_dir(probe_dir, "sync")
    mounts = [*mounts, {"host": sync, "sandbox": "/sync", "ro": False}]
    with beside_canary(daemon), ThreadPoolExecutor(1) as pool:
        holder = pool.submit(daemon.execute, HOLD + code, timeout_secs=90, mounts=mounts)
        try:
            deadline = time.monotonic() + HOLD_BOUND_SECS
            while not os.path.exists(os.path.join(sync, "held")) and not holder.done() \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            assert os.path.exists(os.path.join(sync, "held")), \
                f"the job never got to hold: {holder.result() if holder.done() else 'still running'}"
            seen = look()
        finally:
            open(os.path.join(sync, "checked"), "w").close()
            result = holder.result(timeout=WAIT_SECS)
    print(repr(result)[:4000])
    return result, seen


def _while_a_job_locks_a_ro_file(daemon, probe_dir: str, lock: str, host_lock) -> tuple:
    """The job opens /data/app.db, a file of a ro mount, read-only as `fd`, runs `lock`
    (fcntl and struct imported), says "locked" and holds; meanwhile a host process tries
    `host_lock(fh)` on the same file. Returns (job result, "OK" or the host's errno name)."""
    shared = _shared_dir(probe_dir, "shared")
    path = os.path.join(shared, "app.db")
    with open(path, "wb") as fh:
        fh.write(b"host data")
    code = ("import fcntl, struct\n"
            "fd = os.open('/data/app.db', os.O_RDONLY)\n"
            + lock +
            "print('locked')\n"
            "hold()\n")
    return _while_a_job_holds(daemon, probe_dir, code, [{"host": shared, "sandbox": "/data", "ro": True}],
                              lambda: _host_tries(path, host_lock))


def _host_tries(path: str, lock) -> str:
    """What a host process gets from `lock(fh)` on `path` (released at once when the file
    closes): "OK" or the errno's name."""
    with open(path, "r+b") as fh:
        try:
            lock(fh)
        except OSError as exc:
            return errno.errorcode[exc.errno]
        return "OK"


def _host_flock(fh) -> None:
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _host_write_lock(fh) -> None:
    """A POSIX write lock (lockf) on all of the file."""
    fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


# --- file watching -----------------------------------------------------------------------------

def test_inotify_on_a_stdlib_directory_is_refused_and_reported(daemon):
    """A watch on the shared stdlib would show which modules other sandboxes and host
    processes open (IN_ACCESS/IN_OPEN)."""
    code = SYSCALL_PRELUDE + STDLIB + (
        "fd, err = syscall(294, 0)\n"  # inotify_init1: what libc's inotify_init1() issues
        "print('inotify_init1', err)\n"
        "print('inotify_init', syscall(253)[1])\n"
        "print('inotify_add_watch', syscall(254, max(fd, 0), stdlib.encode(), 0x1 | 0x20)[1])\n"  # IN_ACCESS|IN_OPEN
    )
    result = probe(daemon, code)
    assert lines(result) == ["inotify_init1 EPERM", "inotify_init EPERM", "inotify_add_watch EPERM"]
    assert result.denied_syscalls == ["inotify_init1", "inotify_init", "inotify_add_watch"]


def test_dnotify_and_leases_are_refused_and_reported_as_fcntl(daemon, probe_dir):
    """dnotify needs no inotify call: F_SETSIG + F_NOTIFY(DN_ACCESS|DN_MULTISHOT) on a
    stdlib directory saw another job read colorsys.py. A lease on a file of a rw mount
    would hold up a host process that opens it for writing (lease-break-time)."""
    code = ATTEMPT_PRELUDE + STDLIB + (
        "import fcntl, signal\n"
        "d = os.open(stdlib, os.O_RDONLY | os.O_DIRECTORY)\n"
        "attempt('F_SETSIG', fcntl.fcntl, d, fcntl.F_SETSIG, signal.SIGRTMIN)\n"
        "attempt('F_NOTIFY', fcntl.fcntl, d, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)\n"
        "own = os.open('/out/leased', os.O_RDONLY | os.O_CREAT, 0o644)\n"
        "attempt('F_SETLEASE', fcntl.fcntl, own, fcntl.F_SETLEASE, fcntl.F_RDLCK)\n"
        "print('F_GETLEASE', fcntl.fcntl(own, fcntl.F_GETLEASE) == fcntl.F_UNLCK)\n"
    )
    result = probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}])
    assert outcomes(result) == {"F_SETSIG": "OK", "F_NOTIFY": "EPERM", "F_SETLEASE": "EPERM", "F_GETLEASE": "True"}
    assert result.denied_syscalls == ["fcntl"]


def test_fanotify_is_refused_and_reported(daemon):
    """Unprivileged fanotify (FAN_REPORT_FID, inode marks; Linux >= 5.13) sees opens and
    reads of a shared inode by anyone."""
    code = SYSCALL_PRELUDE + STDLIB + (
        "fd, err = syscall(300, 0x200, os.O_RDONLY)\n"  # FAN_CLASS_NOTIF | FAN_REPORT_FID
        "print('fanotify_init', err)\n"
        "print('fanotify_mark', syscall(301, max(fd, 0), 0x1, 0x1 | 0x20, -100, stdlib.encode())[1])\n"
    )  # FAN_MARK_ADD, FAN_ACCESS | FAN_OPEN, AT_FDCWD
    result = probe(daemon, code)
    assert lines(result) == ["fanotify_init EPERM", "fanotify_mark EPERM"]
    assert result.denied_syscalls == ["fanotify_init", "fanotify_mark"]


# --- locks -------------------------------------------------------------------------------------

def test_a_jobs_flock_on_a_read_only_bind_never_reaches_the_host(daemon, probe_dir):
    """A job opens a file of a ro mount read-only and flock(LOCK_EX)s it: it believes it
    holds the lock (filelock-style code keeps working), the host's flock still succeeds."""
    result, host = _while_a_job_locks_a_ro_file(daemon, probe_dir, "fcntl.flock(fd, fcntl.LOCK_EX)\n", _host_flock)
    assert lines(result) == ["locked"]
    assert host == "OK"
    assert result.denied_syscalls == []


def test_a_jobs_posix_and_ofd_read_locks_never_reach_the_host(daemon, probe_dir):
    """POSIX (lockf) and OFD read locks on a read-only fd of a ro mount: a SQLite writer
    on the host would see BUSY. The host's write lock still succeeds."""
    posix_and_ofd_read_locks = (
        "fcntl.lockf(fd, fcntl.LOCK_SH)\n"  # F_SETLKW, F_RDLCK
        "whole_file = struct.pack('hhqqi4x', fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)\n"
        "fcntl.fcntl(os.open('/data/app.db', os.O_RDONLY), 37, whole_file)\n"  # F_OFD_SETLK
    )
    result, host = _while_a_job_locks_a_ro_file(daemon, probe_dir, posix_and_ofd_read_locks, _host_write_lock)
    assert lines(result) == ["locked"]
    assert host == "OK"
    assert result.denied_syscalls == []


def test_two_jobs_cannot_signal_each_other_through_locks_on_the_stdlib(daemon, probe_dir):
    """Job A takes flock(LOCK_EX) and a POSIX read lock on os.py, which every sandbox
    shares; job B, running at the same time, sees neither (one bit per poll otherwise)."""
    holder = STDLIB + (
        "import fcntl\n"
        "fd = os.open(stdlib_file, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "fcntl.lockf(fd, fcntl.LOCK_SH)\n"
        "print('holding')\n"
        "hold()\n"
    )
    watcher = ATTEMPT_PRELUDE + STDLIB + (
        "import fcntl, struct\n"
        "fd = os.open(stdlib_file, os.O_RDONLY)\n"
        "attempt('flock', fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "query = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)\n"
        "l_type = struct.unpack('hhqqi4x', fcntl.fcntl(fd, fcntl.F_GETLK, query))[0]\n"
        "print('F_GETLK', {fcntl.F_UNLCK: 'F_UNLCK', fcntl.F_RDLCK: 'F_RDLCK', fcntl.F_WRLCK: 'F_WRLCK'}[l_type])\n"
    )

    def look():
        result = daemon.execute(watcher, timeout_secs=90)
        print(repr(result)[:4000])
        return result

    result, watched = _while_a_job_holds(daemon, probe_dir, holder, [], look)
    assert lines(result) == ["holding"]
    assert outcomes(watched) == {"flock": "OK", "F_GETLK": "F_UNLCK"}
    assert (result.denied_syscalls, watched.denied_syscalls) == ([], [])


# --- page cache ----------------------------------------------------------------------------------

def test_fadvise_dontneed_leaves_a_shared_file_in_the_host_page_cache(daemon, probe_dir):
    """posix_fadvise(DONTNEED) on a shared read-only file evicted the host's cached pages
    (measured: 1024/1024 resident -> 0). Now the job is told 0 and nothing is evicted."""
    shared = _shared_dir(probe_dir, "shared")
    path, control = os.path.join(shared, "hot.bin"), os.path.join(shared, "control.bin")
    # The control: on this filesystem the host's own DONTNEED does evict (else the probe
    # could not fail: tmpfs pages, for one, are never evicted by fadvise).
    assert cached_file(control, 1024) == 1024
    fd = os.open(control, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    if resident_pages(control) == 1024:
        pytest.skip(f"fadvise DONTNEED evicts nothing on {shared}'s filesystem: the probe would prove nothing")
    assert cached_file(path, 1024) == 1024
    code = (
        "import os\n"
        "fd = os.open('/data/hot.bin', os.O_RDONLY)\n"
        "os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\n"
        "os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)\n"  # other advice runs

        "print('advised')\n"
    )
    result = probe(daemon, code, mounts=[{"host": shared, "sandbox": "/data", "ro": True}])
    assert lines(result) == ["advised"]
    assert result.denied_syscalls == []
    assert resident_pages(path) == 1024


def test_cachestat_is_refused_and_reported(daemon):
    """cachestat(2) tells how much of a shared file is cached: on some kernels a side
    channel on what others read."""
    code = SYSCALL_PRELUDE + STDLIB + (
        "fd = os.open(stdlib_file, os.O_RDONLY)\n"
        "where, stats = ctypes.create_string_buffer(16), ctypes.create_string_buffer(40)\n"  # offset+len, 5 u64
        "print('cachestat', syscall(451, fd, where, stats, 0)[1])\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["cachestat EPERM"]
    assert result.denied_syscalls == ["cachestat"]


# --- set-id files in rw mounts --------------------------------------------------------------------

def test_no_setuid_or_setgid_file_can_be_left_in_a_rw_mount(daemon, probe_dir):
    """The job's binds are nosuid, the host's view of the same directory need not be:
    a setuid file left there is for host code to trip over. Every way to make one
    (chmod family, a creating open, mknod of a regular file) is refused and reported."""
    code = ATTEMPT_PRELUDE + SYSCALL_PRELUDE + (
        "import stat\n"
        "open('/out/tool', 'w').close()\n"
        "attempt('chmod_4755', os.chmod, '/out/tool', 0o4755)\n"
        "attempt('chmod_2755', os.chmod, '/out/tool', 0o2755)\n"
        "fd = os.open('/out/tool', os.O_RDONLY)\n"
        "attempt('fchmod_6755', os.fchmod, fd, 0o6755)\n"
        "d = os.open('/out', os.O_RDONLY | os.O_DIRECTORY)\n"
        "print('fchmodat2_4755', syscall(452, d, b'tool', 0o4755, 0)[1])\n"
        "attempt('open_4755', os.open, '/out/created', os.O_CREAT | os.O_WRONLY, 0o4755)\n"
        "attempt('mknod_2755', os.mknod, '/out/node', stat.S_IFREG | 0o2755)\n"
        # what seccomp lets through: plain modes; device nodes (the kernel or Landlock refuse them)
        "attempt('chmod_755', os.chmod, '/out/tool', 0o755)\n"
        "attempt('mknod_char_device', os.mknod, '/out/null', stat.S_IFCHR | 0o666, os.makedev(1, 3))\n"
    )
    result = probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}])
    seen = outcomes(result)
    # A device node: the kernel's EPERM (no CAP_MKNOD in the initial user namespace), or
    # Landlock's EACCES first where it grants no device rights; either way, not made.
    assert seen.pop("mknod_char_device") in ("EPERM", "EACCES")
    assert seen == {"chmod_4755": "EPERM", "chmod_2755": "EPERM", "fchmod_6755": "EPERM",
                    "fchmodat2_4755": "EPERM", "open_4755": "EPERM", "mknod_2755": "EPERM", "chmod_755": "OK"}
    assert set(result.denied_syscalls) == {"chmod", "fchmod", "fchmodat2", "openat", "mknodat"}
    assert os.listdir(probe_dir) == ["tool"]
    assert stat.S_IMODE(os.stat(os.path.join(probe_dir, "tool")).st_mode) == 0o755
