"""Escape probes: resource exhaustion. A job can exhaust only its own box (pids,
memory, fds, tmpfs, output), never the daemon or a job beside it."""
from __future__ import annotations

import os

import pytest

from ._probe import ATTEMPT_PRELUDE, filled_until_full, lines, outcomes, probe

pytestmark = pytest.mark.integration

MiB = 1 << 20
PIDS_MAX = 64        # the daemon's default pids_max
OUTPUT_CAP = 1 * MiB  # stdout_max and stderr_max defaults
SHM_CAP_MIB = 256    # tmp_size, which also caps /dev/shm


def _bomb(daemon, make_one: str) -> tuple[int, str]:
    """Runs `make_one` (one line: a thread or a process that holds a pid) up to 10000
    times; returns how many were made before the refusal and the refusal (an OSError's
    errno name, or another exception's text). `stop` is an Event the bomb sets at the end."""
    code = ("import errno, os, threading\n"
            "stop = threading.Event()\n"
            "count = 0\n"
            "try:\n"
            "    while count < 10000:\n"
            f"        {make_one}\n"
            "        count += 1\n"
            "except (OSError, RuntimeError) as e:\n"
            "    print('stopped', count, errno.errorcode[e.errno] if isinstance(e, OSError) else e)\n"
            "stop.set()\n")
    (out,) = lines(probe(daemon, code, timeout_secs=30))
    stopped, count, refusal = out.split(" ", 2)
    assert stopped == "stopped", out
    return int(count), refusal


def test_thread_bomb_stops_at_the_pids_limit(daemon):
    count, refusal = _bomb(daemon, "threading.Thread(target=stop.wait, daemon=True).start()")
    assert refusal == "can't start new thread"
    assert 0 < count < PIDS_MAX, count


def test_zombie_and_process_bomb_stops_at_the_pids_limit(daemon):
    """Children that exit at once but are never reaped still hold a pid each."""
    count, refusal = _bomb(daemon, "if os.fork() == 0: os._exit(0)")
    assert refusal == "EAGAIN"
    assert 0 < count < PIDS_MAX, count


def test_memory_bomb_is_stopped_at_its_limit(daemon):
    code = ("import sys\n"
            "hoard = []\n"
            "try:\n"
            "    while len(hoard) < 256:\n"
            "        hoard.append(b'x' * (16 << 20)); print(len(hoard) * 16, flush=True)\n"
            "except MemoryError:\n"
            "    hoard.clear(); print('MemoryError'); sys.exit(3)\n")
    result = probe(daemon, code, memory_limit=256 * MiB, timeout_secs=60)
    mib = [int(line) for line in result.stdout.decode().splitlines() if line.isdigit()]
    assert max(mib, default=0) <= 256, result
    if result.oom_killed:
        assert (result.exit_code, result.timed_out) == (-9, False), result
    else:  # the allocator was refused first: a clean MemoryError, and no OOM kill
        assert (result.exit_code, result.stdout.splitlines()[-1]) == (3, b"MemoryError"), result


def test_dev_shm_fill_stops_at_its_cap_and_stays_in_the_sandbox(daemon):
    name = f"leeward-fill-{os.urandom(4).hex()}"
    err, mib = filled_until_full(daemon, f"/dev/shm/{name}")
    assert err == "ENOSPC" and SHM_CAP_MIB - 8 <= mib <= SHM_CAP_MIB, (err, mib)
    assert not os.path.exists(f"/dev/shm/{name}")


def test_fd_exhaustion_stays_inside_the_job(daemon):
    code = ("import os, errno, resource\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "fds = []\n"
            "try:\n"
            "    while len(fds) < 1 << 21: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno], len(fds) <= hard)\n"
            "try:\n"
            "    resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1, hard + 1)); print('raised')\n"
            "except (ValueError, OSError) as e:\n"
            "    print('not raised')\n")
    assert lines(probe(daemon, code, timeout_secs=60)) == ["EMFILE True", "not raised"]


def test_flooding_stdout_and_stderr_is_cut_at_the_caps(daemon):
    code = ("import os, sys\n"
            "chunk = b'o' * (1 << 20)\n"
            "try:\n"
            "    for _ in range(50):\n"
            "        os.write(1, chunk); os.write(2, chunk.replace(b'o', b'e'))\n"
            "except OSError:\n"
            "    pass\n")
    result = probe(daemon, code, timeout_secs=60)
    assert (result.stdout_truncated, result.stderr_truncated) == (True, True)
    assert result.stdout == b"o" * OUTPUT_CAP and result.stderr == b"e" * OUTPUT_CAP
    assert result.timed_out is False


def test_a_job_cannot_raise_its_priority_or_shield_itself_from_the_oom_killer(daemon):
    code = ATTEMPT_PRELUDE + (
        "import os\n"
        "def oom_adj():\n"
        "    with open('/proc/self/oom_score_adj', 'w') as fh: fh.write('-1000')\n"
        "attempt('oom_score_adj', oom_adj)\n"
        "attempt('nice', os.setpriority, os.PRIO_PROCESS, 0, -20)\n"
        "attempt('fifo', os.sched_setscheduler, 0, os.SCHED_FIFO, os.sched_param(50))\n"
        "attempt('rr', os.sched_setscheduler, 0, os.SCHED_RR, os.sched_param(1))\n"
        "attempt('mlockall', lambda: __import__('ctypes').CDLL(None, use_errno=True).mlockall(3) == 0\n"
        "        or (_ for _ in ()).throw(OSError(__import__('ctypes').get_errno(), 'mlockall')))\n"
    )
    result = probe(daemon, code)
    seen = outcomes(result)
    assert set(seen) == {"oom_score_adj", "nice", "fifo", "rr", "mlockall"}
    assert set(seen.values()) <= {"EACCES", "EPERM", "ENOMEM"}, seen


def test_hard_rlimits_cannot_be_raised(daemon):
    """RLIMIT_CORE 0 and RLIMIT_FSIZE are the daemon's: the job may lower them, never
    raise them (cores could spill memory; a big file could fill a rw mount's disk)."""
    code = ("import resource\n"
            "for name in ('RLIMIT_CORE', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE', 'RLIMIT_MEMLOCK'):\n"
            "    which = getattr(resource, name)\n"
            "    soft, hard = resource.getrlimit(which)\n"
            "    try:\n"
            "        resource.setrlimit(which, (resource.RLIM_INFINITY,) * 2); print(name, 'raised')\n"
            "    except (ValueError, OSError):\n"
            "        print(name, 'kept', resource.getrlimit(which) == (soft, hard), hard != resource.RLIM_INFINITY)\n"
            "print('core', resource.getrlimit(resource.RLIMIT_CORE))\n")
    assert lines(probe(daemon, code)) == [
        "RLIMIT_CORE kept True True", "RLIMIT_FSIZE kept True True", "RLIMIT_NOFILE kept True True",
        "RLIMIT_MEMLOCK kept True True", "core (0, 0)"]


def test_a_storm_of_denied_syscalls_does_not_starve_other_jobs(daemon):
    """Every denied syscall is a round trip through the daemon's seccomp listener: eight
    threads hammering them until the timeout must not stop the canary or the daemon."""
    code = ("import socket, threading\n"
            "def storm():\n"
            "    while True:\n"
            "        try: socket.socket(socket.AF_INET)\n"
            "        except OSError: pass\n"
            "for _ in range(8):\n"
            "    threading.Thread(target=storm, daemon=True).start()\n"
            "print('storming', flush=True)\n"
            "storm()\n")
    result = probe(daemon, code, timeout_secs=3)
    assert (result.timed_out, result.exit_code, result.stdout) == (True, -9, b"storming\n"), result
    assert result.denied_syscalls == ["socket"]


def test_an_inode_flood_in_tmp_is_charged_to_the_job(daemon):
    """Empty files cost no tmpfs blocks but kernel memory (inodes, dentries): that must
    count against the job's memory limit, not escape it."""
    code = ("import os, errno\n"
            "os.mkdir('/tmp/d')\n"
            "n = 0\n"
            "try:\n"
            "    while n < 2_000_000:\n"
            "        os.close(os.open(f'/tmp/d/{n}', os.O_CREAT | os.O_WRONLY, 0o600)); n += 1\n"
            "    print('created', n)\n"
            "except OSError as e:\n"
            "    print('stopped', errno.errorcode[e.errno])\n")
    result = probe(daemon, code, memory_limit=64 * MiB, timeout_secs=120)
    if result.oom_killed:
        assert (result.exit_code, result.timed_out, result.stdout) == (-9, False, b""), result
    else:
        assert lines(result) in (["stopped ENOSPC"], ["stopped ENOMEM"]), result
