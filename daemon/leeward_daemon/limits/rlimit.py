"""rlimit fallback, for hosts where leeward gets no cgroup: the sandbox sets rlimits on
itself (limits/inside.py, which also explains the RLIMIT_AS sizing), and the daemon-side
box measures the job from outside and enforces its memory limit for the job as a whole
(`JobMeter`): nothing the sandbox says about its own use is believed.
"""
from __future__ import annotations

import os
import select
import signal
import threading
import time

from .. import procfs
from .base import JobLimits, LimitsError, Usage, check_box_id, wait_until
from .inside import refuse_quota

SAMPLE_INTERVAL_SECS = 0.005
PSS_COST_FACTOR = 4  # proportional set sizes take at most ~1/4 of the meter's time


class RlimitBackend:
    name = "rlimit"

    def create_box(self, box_id: str) -> RlimitBox:
        return RlimitBox(check_box_id(box_id))


class RlimitBox:
    """Daemon side of an rlimit sandbox. `kill()` signals the attached pids through
    pidfds (no pid-reuse race); the slot is its pid namespace's init, so the kernel
    kills the rest of the namespace with it. From `start_job()` on, a JobMeter measures
    the job and kills it past its memory limit; `usage()` is what it measured. Its
    memory_peak is sampled: the kernel's own figure comes with pid 1's reaping
    (with_reaped)."""

    usage_from_samples = True

    def __init__(self, box_id: str):
        self.box_id = box_id
        self._processes: list[tuple[int, int]] = []  # (pid, pidfd) of each attached process
        self._meter: JobMeter | None = None

    def attach(self, pid: int) -> None:
        try:
            self._processes.append((pid, os.pidfd_open(pid)))
        except OSError as e:
            raise LimitsError(f"pidfd_open({pid}): {e.strerror}", errno=e.errno) from e

    def prepare(self, limits: JobLimits) -> None:
        """Nothing to write ahead: the limits are the sandbox's own rlimits (set by the
        slot when its job arrives) and the meter's, started with the job."""

    def start_job(self, limits: JobLimits) -> None:
        refuse_quota(limits)
        self._stop_meter()
        self._meter = JobMeter(self._processes, limits.memory_limit)

    @property
    def cpu_before_job_us(self) -> int:
        """What the attached processes had used when the job started (clock ticks)."""
        return self._meter.cpu_before_job_us if self._meter is not None else 0

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
    two samples (their CPU time in the last sample before is counted). The memory
    peak of any single process, and of pid 1 with every descendant it waited for, is
    the kernel's from pid 1's reaping, and so is the CPU time of pid 1 and every
    descendant (limits.with_reaped, in the supervisor).
    """

    def __init__(self, processes: list[tuple[int, int]], memory_limit: int):
        self._processes = list(processes)  # (pid, pidfd), pidfds owned by the box
        self._limit = memory_limit
        self._cpu_ticks_at_start = _cpu_ticks(self._tree())
        self.cpu_before_job_us = self._cpu_ticks_at_start * 1_000_000 // procfs.CLOCK_TICKS
        self._cpu_ticks = 0
        self._memory_peak = 0
        self._oom_killed = False
        self._pss_due_at = 0.0
        self._stopping = threading.Event()
        # One reading before the job is handed over: a job shorter than a sample would
        # otherwise report no memory at all.
        going = self._sample()
        self._thread = threading.Thread(target=self._run, args=(going,), name="leeward-rlimit-meter", daemon=True)
        self._thread.start()

    def stop(self) -> Usage:
        """Idempotent: stops sampling and returns the job's usage."""
        self._stopping.set()
        self._thread.join()
        return Usage(memory_peak=self._memory_peak,
                     cpu_time_us=self._cpu_ticks * 1_000_000 // procfs.CLOCK_TICKS,
                     oom_killed=self._oom_killed)

    def _run(self, going: bool) -> None:
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
