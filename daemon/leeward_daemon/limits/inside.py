"""rlimit fallback, for hosts where leeward gets no cgroup: the sandbox sets rlimits on
itself (`apply_in_sandbox`), and the daemon-side box measures the job from outside and
enforces its memory limit for the job as a whole (`JobMeter`): nothing the sandbox says
about its own use is believed.

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
import select
import signal
import threading
import time

from .. import procfs
from .base import JobLimits, LimitsError, LimitsUnavailable, Usage, check_box_id, wait_until

AS_HEADROOM = 512 << 20
SAMPLE_INTERVAL_SECS = 0.005
FIRST_READING_WAIT_SECS = 0.1  # a bound, not an expectation: one reading takes well under 1 ms
PSS_COST_FACTOR = 4  # proportional set sizes take at most ~1/4 of the meter's time
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


class RlimitBackend:
    name = "rlimit"

    def create_box(self, box_id: str) -> RlimitBox:
        return RlimitBox(check_box_id(box_id))


class RlimitBox:
    """Daemon side of an rlimit sandbox. `kill()` signals the attached pids through
    pidfds (no pid-reuse race); the slot is its pid namespace's init, so the kernel
    kills the rest of the namespace with it. From `start_job()` on, a JobMeter measures
    the job and kills it past its memory limit; `usage()` is what it measured."""

    def __init__(self, box_id: str):
        self.box_id = box_id
        self._processes: list[tuple[int, int]] = []  # (pid, pidfd) of each attached process
        self._meter: JobMeter | None = None

    def attach(self, pid: int) -> None:
        try:
            self._processes.append((pid, os.pidfd_open(pid)))
        except OSError as e:
            raise LimitsError(f"pidfd_open({pid}): {e.strerror}", errno=e.errno) from e

    def start_job(self, limits: JobLimits) -> None:
        _refuse_quota(limits)
        self._stop_meter()
        self._meter = JobMeter(self._processes, limits.memory_limit)

    def usage(self) -> Usage:
        """What the meter measured, up to now or to the job's end."""
        if self._meter is None:
            raise LimitsError(f"usage() of rlimit box {self.box_id} before start_job()")
        return self._meter.stop()

    def kill(self) -> None:
        self._stop_meter()
        for _, fd in self._processes:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not wait_until(self._all_exited):
            raise LimitsError(f"box {self.box_id}: attached processes still alive after SIGKILL")

    def _all_exited(self) -> bool:
        return all(_exited(fd) for _, fd in self._processes)

    def _stop_meter(self) -> None:
        if self._meter is not None:
            self._meter.stop()

    def destroy(self) -> None:
        self.kill()
        for _, fd in self._processes:
            os.close(fd)
        self._processes.clear()


class JobMeter:
    """Measures a job under rlimits from outside its sandbox, on a thread of the daemon,
    every SAMPLE_INTERVAL_SECS: the memory of all the job's processes together, and
    their CPU time. Past the job's memory limit it kills the sandbox (pidfd SIGKILL)
    and reports oom_killed; RLIMIT_AS stays in force as a per-process backstop.

    Which processes: all of a sandbox's processes descend from its pid 1 (orphans are
    reparented to it, or to a subreaper below it, never out of its pid namespace), so
    they are the tree under /proc/<pid>/task/*/children from the attached pids. That
    costs reads in proportion to the job's own processes; the alternative, matching
    readlink(/proc/N/ns/pid) against the sandbox's for every process of the host, a
    read per host process per sample for every running job.

    Memory: the sum of the processes' resident sets is cheap (one stat read each) but
    counts a page shared by n of them n times, and every process of a sandbox shares
    the zygote's image (~50 MB resident): six forked workers would add up to 350 MB
    before doing anything. So while that sum is within the limit it is the figure (an
    upper bound of the job's use); past it the figure is the sum of proportional set
    sizes (smaps_rollup: shared pages divided among their sharers), which is what kills.
    Reading those walks every page table of the job, so it is rationed: the next
    reading waits PSS_COST_FACTOR times as long as the last one took. memory_peak is
    the highest figure read, so it exceeds the limit only for a job killed for it.

    CPU: utime + stime + cutime + cstime summed over the tree, less pid 1's at the
    start: a process counts itself and the children it waited for. In clock ticks
    (USER_HZ, 10 ms), the highest sum seen.

    What sampling cannot see: a process that lives less than a sample, memory touched
    and freed between two samples (RLIMIT_AS still bounds each process), CPU time
    spent after the last sample, and children nobody waited for that exited between
    two samples (their CPU time in the last sample before is counted).
    """

    def __init__(self, processes: list[tuple[int, int]], memory_limit: int):
        self._processes = list(processes)  # (pid, pidfd), pidfds owned by the box
        self._limit = memory_limit
        self._cpu_ticks_at_start = _cpu_ticks(self._tree())
        self._cpu_ticks = 0
        self._memory_peak = 0
        self._oom_killed = False
        self._pss_due_at = 0.0
        self._stopping = threading.Event()
        self._first_reading = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leeward-rlimit-meter", daemon=True)
        self._thread.start()
        # The job is handed over only after one reading: a job shorter than a sample
        # would otherwise report no memory at all.
        self._first_reading.wait(FIRST_READING_WAIT_SECS)

    def stop(self) -> Usage:
        """Idempotent: stops sampling and returns the job's usage."""
        self._stopping.set()
        self._thread.join()
        return Usage(memory_peak=self._memory_peak,
                     cpu_time_us=self._cpu_ticks * 1_000_000 // procfs.CLOCK_TICKS,
                     oom_killed=self._oom_killed)

    def _run(self) -> None:
        try:
            going = self._sample()
        finally:
            self._first_reading.set()
        while going and not self._stopping.wait(SAMPLE_INTERVAL_SECS):
            going = self._sample()

    def _sample(self) -> bool:
        """One reading; False once the job is over (or killed by this reading)."""
        tree = self._tree()
        # Checked after reading: a pid 1 still alive then was the one read, not a
        # process that got its pid after it was reaped.
        if any(_exited(fd) for _, fd in self._processes):
            return False
        self._cpu_ticks = max(self._cpu_ticks, _cpu_ticks(tree) - self._cpu_ticks_at_start)
        memory = self._memory(tree)
        if memory is None:
            return True
        self._memory_peak = max(self._memory_peak, memory)
        if memory <= self._limit:
            return True
        self._oom_killed = True
        for _, fd in self._processes:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return False

    def _memory(self, tree: dict[int, procfs.Stat]) -> int | None:
        """The job's memory now, or None when only an overcount is at hand and the
        precise reading is not due yet."""
        resident = sum(stat.rss for stat in tree.values())
        if resident <= self._limit:
            return resident
        started = time.monotonic()
        if started < self._pss_due_at:
            return None
        proportional = sum(procfs.proportional_set_size(pid) for pid in tree)
        finished = time.monotonic()
        self._pss_due_at = finished + PSS_COST_FACTOR * (finished - started)
        return proportional

    def _tree(self) -> dict[int, procfs.Stat]:
        """Every live process under the attached ones, by pid. A pid read from a
        children file whose process no longer has that parent was reused (or its
        process reparented, and it is found under its new parent next time)."""
        tree: dict[int, procfs.Stat] = {}
        for pid, _ in self._processes:
            stat = procfs.read_stat(pid)
            if stat is not None:
                tree[pid] = stat
        parents = list(tree)
        while parents:
            parent = parents.pop()
            for child in procfs.children(parent):
                stat = procfs.read_stat(child) if child not in tree else None
                if stat is not None and stat.ppid == parent:
                    tree[child] = stat
                    parents.append(child)
        return tree


def _cpu_ticks(tree: dict[int, procfs.Stat]) -> int:
    return sum(stat.cpu_ticks for stat in tree.values())


def _exited(pidfd: int) -> bool:
    """A pidfd polls readable once its process has exited."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


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
    _refuse_quota(limits)
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


def _refuse_quota(limits: JobLimits) -> None:
    if limits.cpu_quota is not None:
        raise LimitsUnavailable("rlimit: a CPU quota needs a cgroup cpu controller")


def _setrlimit(name: str, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    try:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    except (OSError, ValueError) as e:
        raise LimitsError(f"setrlimit({name}, soft={soft}, hard={hard}): {e}") from e
