"""Shared machinery of the escape probes: run hostile code beside a canary job, and the
snippets of sandbox-side Python that several probe modules need.

Every probe runs while a canary job (another sandbox of the same daemon) is running; the
canary must come back byte-for-byte correct, the daemon must still answer a Ping, and a
fresh job afterwards must work and find a clean sandbox.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from libleeward.client import LeewardError
from libleeward.protocol import ExecutionResult
from tests.host import host_pids

# Sleeps first so that it is still running while the probe does its worst; then checks
# its own sandbox: arithmetic, its /tmp holds only its own file, its pid ns only itself.
# Sandbox-side: /tmp as jobs left it, without the empty skeleton directories of the
# read-only Python binds that live under /tmp on the host (a venv in a checkout under
# /tmp, as CI's fresh clones are): those are the same in every sandbox.
OWN_TMP = (
    "import os\n"
    "def own_tmp():\n"
    "    binds = {l.split()[4].split('/')[2] for l in open('/proc/self/mountinfo') if l.split()[4].startswith('/tmp/')}\n"
    "    return sorted(set(os.listdir('/tmp')) - binds)\n"
)
CANARY_CODE = OWN_TMP + (
    "import time\n"
    "time.sleep(0.3)\n"
    "open('/tmp/canary', 'w').write('c')\n"
    "print(sum(range(10**6)), own_tmp(), [p for p in os.listdir('/proc') if p.isdigit()])\n"
)
CANARY_STDOUT = b"499999500000 ['canary'] ['1']\n"
# After the probe: a fresh sandbox, with nothing left in /tmp or /dev/shm.
FRESH_CODE = OWN_TMP + "print(6 * 7, own_tmp(), os.listdir('/dev/shm'))"
FRESH_STDOUT = b"42 [] []\n"
WAIT_SECS = 240.0  # bound on waiting for the canary, not a speed assertion


@contextlib.contextmanager
def beside_canary(daemon):
    """Runs a canary job on another thread for the duration of the block, then checks
    the canary, the daemon, and a fresh job."""
    with ThreadPoolExecutor(1) as pool:
        canary = pool.submit(daemon.execute, CANARY_CODE, timeout_secs=120)
        try:
            yield
        finally:
            result = canary.result(timeout=WAIT_SECS)
    assert (result.exit_code, result.stdout, result.timed_out, result.error) == (0, CANARY_STDOUT, False, None), \
        f"canary disturbed by the probe: {result}"
    assert daemon.alive(), "daemon stopped answering after the probe"
    fresh = daemon.execute(FRESH_CODE, timeout_secs=120)
    assert (fresh.exit_code, fresh.stdout) == (0, FRESH_STDOUT), f"fresh job after the probe: {fresh}"


def probe(daemon, code: str, **options) -> ExecutionResult:
    """Runs hostile `code` beside a canary and returns its result (also printed: pytest
    shows it with a failure, or for every test with -rP)."""
    with beside_canary(daemon):
        result = daemon.execute(code, **options)
        print(repr(result)[:4000])
        return result


def probe_argv(daemon, argv: list[str], **fields) -> ExecutionResult:
    """probe() for a hostile program (an argv job) instead of hostile Python."""
    with beside_canary(daemon):
        result = daemon.run(argv, **fields)
        print(repr(result)[:4000])
        return result


def refused(daemon, code: str, **options) -> LeewardError:
    """Runs a request the daemon must refuse (beside a canary); returns the error."""
    with beside_canary(daemon):
        with pytest.raises(LeewardError) as info:
            daemon.execute(code, **options)
    return info.value


def probe_beside_job(daemon, probe_dir: str, job_code: str, code: str) -> tuple[ExecutionResult, ExecutionResult]:
    """Starts `job_code` as a job of its own, then probes with `code` while it runs; both
    see the host's `probe_dir` at /shared (where the job says it is ready; it must end
    once /shared/done exists, written after the probe). Returns (job's result, probe's)."""
    shared = [{"host": probe_dir, "sandbox": "/shared", "ro": False}]
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(result=daemon.execute(job_code, mounts=shared)))
    job.start()
    try:
        result = probe(daemon, code, mounts=shared)
    finally:
        open(os.path.join(probe_dir, "done"), "w").close()
        job.join(120)
    return outcome["result"], result


def filled_until_full(daemon, path: str) -> tuple[str, int]:
    """Runs a job that writes 1 MiB chunks to `path` (up to 2 GiB) beside a canary;
    returns the errno name that stopped it and the MiB written by then."""
    code = ("import errno\n"
            "written = 0\n"
            "try:\n"
            f"    with open({path!r}, 'wb', buffering=0) as fh:\n"
            "        while written < (1 << 31):\n"
            "            written += fh.write(b'x' * (1 << 20))\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno], written >> 20)\n")
    (out,) = lines(probe(daemon, code, timeout_secs=60))
    err, mib = out.split()
    return err, int(mib)


def lines(result: ExecutionResult) -> list[str]:
    """The job's stdout lines; fails with its stderr when the job itself crashed."""
    assert result.error is None and result.exit_code == 0, \
        f"probe job failed (exit {result.exit_code}): {result.stderr.decode(errors='replace')[-3000:]}"
    return result.stdout.decode().splitlines()


def wait_until_no_host_pids(bound_secs: float = 10.0, **match) -> list[int]:
    """Polls the host's /proc until no process matches (or the bound passes); returns
    the survivors."""
    deadline = time.monotonic() + bound_secs
    while True:
        survivors = host_pids(**match)
        if not survivors or time.monotonic() > deadline:
            return survivors
        time.sleep(0.1)


# Sandbox-side prelude: `syscall(nr, *args)` through libc, returning (value, errno name).
# ints become C longs (unsigned when >= 2**63), bytes become char *, anything else
# (ctypes objects, byref()) is passed as is.
SYSCALL_PRELUDE = '''
import ctypes, errno, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
def _c(a):
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    if isinstance(a, int):
        return ctypes.c_ulong(a) if a >= 1 << 63 else ctypes.c_long(a)
    return a
def syscall(nr, *args):
    ctypes.set_errno(0)
    value = _libc.syscall(ctypes.c_long(nr), *map(_c, args))
    err = ctypes.get_errno()
    return value, (errno.errorcode.get(err, str(err)) if value == -1 else "OK")
'''

# Sandbox-side: try a callable, print "name OK" or "name <ERRNO>" (used by probes that
# try many primitives and expect every one of them to fail).
ATTEMPT_PRELUDE = '''
import errno as _errno
def attempt(name, fn, *args):
    try:
        fn(*args)
        print(name, "OK")
    except OSError as exc:
        print(name, _errno.errorcode.get(exc.errno, str(exc.errno)))
'''

# Sandbox-side: `channel`, the one socket among the job's fds (the result channel).
FIND_CHANNEL = (
    "import os, stat\n"
    "def _is_socket(fd):\n"
    "    try: return stat.S_ISSOCK(os.fstat(fd).st_mode)\n"
    "    except OSError: return False\n"
    "(channel,) = [fd for fd in range(1024) if _is_socket(fd)]\n"
)


def outcomes(result: ExecutionResult) -> dict[str, str]:
    """{name: outcome} from a job that printed `attempt()` lines."""
    return dict(line.split(" ", 1) for line in lines(result))
