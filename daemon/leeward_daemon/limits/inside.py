"""The part of the limits that runs inside the sandbox, in the job's process before its
code: no core files and a file-size cap under every backend (`core_and_fsize_limits`),
and under the rlimit backend the job's own rlimits (`apply_in_sandbox`); the BLAS
thread count the zygote and every job use. The daemon side (boxes, accounting) is the
rest of this package.

RLIMIT_AS sizing rule. RLIMIT_AS caps address space, not memory, and CPython with
numpy reserves far more address space than it touches. Measured on the dev VM (Python
3.11, numpy 2.4 with OpenBLAS): `import numpy` maps 85 MiB with one BLAS thread and
41 MiB more per extra BLAS thread (8 MiB stack + 32 MiB OpenBLAS buffer); a first
matmul 46 MiB more; every Python thread 72 MiB (8 MiB stack + a 64 MiB glibc malloc
arena reservation). Hence

    RLIMIT_AS = VmSize when applied + memory_limit + AS_HEADROOM (512 MiB)

with OpenBLAS/OpenMP/MKL pinned to one thread. VmSize covers whatever the zygote
preloaded, mapped or not; the headroom covers importing numpy lazily, its buffers and
about four Python threads (checked: under a 64 MiB memory_limit a sandbox imports
numpy, multiplies 500x500 matrices, fills 24 MiB and runs four threads). A job that
starts many more threads gets "can't start new thread": cgroup backends, which count
memory and not address space, do not have that problem.
"""
from __future__ import annotations

import math
import os
import resource

from .base import JobLimits, LimitsError, LimitsUnavailable

AS_HEADROOM = 512 << 20
# OpenBLAS reads these once, when it is loaded: a zygote that preloads numpy must
# have them in its environment before the import for them to matter there.
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_thread_env(backend: str, pids_max: int, cpus: int | None = None) -> dict[str, str]:
    """Thread-pool size for BLAS in every job. Under rlimits one thread: each extra
    thread's stack reservation counts against RLIMIT_AS. Otherwise one per CPU, but at
    most a quarter of the job's pids budget: OpenBLAS starts its whole pool at the first
    call, and on a 64-core host that alone would hit pids_max = 64 and fail."""
    cpus = cpus or os.cpu_count() or 1
    threads = 1 if backend == "rlimit" else max(1, min(cpus, pids_max // 4))
    return {name: str(threads) for name in _BLAS_THREAD_VARIABLES}


def core_and_fsize_limits(file_size_max: int) -> None:
    """Called in every backend's sandbox: no core files anywhere, and a cap on the size
    of any file written. CPython ignores SIGXFSZ, so an oversized write fails with
    EFBIG (an OSError) instead of killing the process."""
    if type(file_size_max) is not int or file_size_max <= 0:
        raise LimitsError(f"file_size_max must be a positive int, got {file_size_max!r}")
    _setrlimit("RLIMIT_CORE", 0)
    _setrlimit("RLIMIT_FSIZE", file_size_max)


def apply_in_sandbox(limits: JobLimits, *, file_size_max: int, cpu_time_limit: float | None = None) -> None:
    """Called in the job process right before untrusted code runs (before seccomp,
    which may deny prlimit64). `cpu_time_limit` is in seconds: SIGXCPU at its ceiling,
    SIGKILL one second later."""
    refuse_quota(limits)
    if cpu_time_limit is not None and not (math.isfinite(cpu_time_limit) and cpu_time_limit > 0):
        raise LimitsError(f"cpu_time_limit must be a positive finite number of seconds, got {cpu_time_limit!r}")
    os.environ.update(blas_thread_env("rlimit", limits.pids_max))
    core_and_fsize_limits(file_size_max)
    _setrlimit("RLIMIT_AS", address_space_limit(limits.memory_limit))
    # Counts every task (threads too) of the real uid in the caller's user namespace,
    # and the kernel exempts host uid 0 and holders of CAP_SYS_ADMIN/CAP_SYS_RESOURCE:
    # it binds once the sandbox runs as its unprivileged uid without capabilities.
    _setrlimit("RLIMIT_NPROC", limits.pids_max)
    if cpu_time_limit is not None:
        seconds = math.ceil(cpu_time_limit)
        _setrlimit("RLIMIT_CPU", seconds, seconds + 1)


def address_space_limit(memory_limit: int) -> int:
    """RLIMIT_AS for a job allowed `memory_limit` bytes (see the module docstring)."""
    try:
        with open("/proc/self/statm") as f:
            vm_size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError) as e:
        raise LimitsError(f"read /proc/self/statm to size RLIMIT_AS: {e}") from e
    return vm_size + memory_limit + AS_HEADROOM


def refuse_quota(limits: JobLimits) -> None:
    if limits.cpu_quota is not None:
        raise LimitsUnavailable("rlimit: a CPU quota needs a cgroup cpu controller")


def _setrlimit(name: str, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    try:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    except (OSError, ValueError) as e:
        raise LimitsError(f"setrlimit({name}, soft={soft}, hard={hard}): {e}") from e
