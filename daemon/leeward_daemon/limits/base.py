"""Types shared by every limits backend: what a job may use, what it used, the errors."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import LimitsError, LimitsUnavailable  # noqa: F401  (the backends import both from here)

KILL_TIMEOUT_SECS = 5.0


@dataclass(frozen=True)
class JobLimits:
    memory_limit: int
    pids_max: int
    cpu_quota: float | None = None  # cores; None = unlimited

    def __post_init__(self) -> None:
        # 0 written to most limit files means "nothing allowed" to the kernel but
        # "unlimited" to a careless reader; neither may slip through.
        for name in ("memory_limit", "pids_max"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise LimitsError(f"{name} must be a positive int, got {value!r}")
        if self.cpu_quota is not None and not (
            type(self.cpu_quota) in (int, float) and math.isfinite(self.cpu_quota) and self.cpu_quota > 0
        ):
            raise LimitsError(f"cpu_quota must be a positive finite number of cores or None, got {self.cpu_quota!r}")


@dataclass(frozen=True)
class Usage:
    memory_peak: int
    cpu_time_us: int
    oom_killed: bool


class Box(Protocol):
    # usage() is a meter's sampling (rlimit), not the kernel's own counters (a
    # cgroup's): with_reaped completes it from pid 1's reaping. cpu_before_job_us is
    # what the sampled processes had used when the job started (0 for a cgroup box).
    usage_from_samples: bool
    cpu_before_job_us: int

    def attach(self, pid: int) -> None: ...
    # Off the request path, before any job: the limits most jobs ask for (the config's
    # defaults) are in force already, and start_job only resets the accounting.
    def prepare(self, limits: JobLimits) -> None: ...
    def start_job(self, limits: JobLimits) -> None: ...
    def usage(self) -> Usage: ...
    def kill(self) -> None: ...
    def destroy(self) -> None: ...


def with_reaped(usage: Usage, max_rss: int, cpu_time_us: int, cpu_before_job_us: int,
                memory_limit: int) -> Usage:
    """A sampled usage completed by the kernel's account of the job's processes as pid 1
    was reaped (wait4's rusage of pid 1 and every descendant waited for): a job whose
    peak or CPU fell between two samples, or after the last, has it counted.

    Memory: a single process's mark, so a lower bound of the job's peak; it counts shared
    pages in full, so it is cut to the limit unless the job was killed for its memory (the
    peak passes the limit only then, as the meter's own figure does). CPU: pid 1's whole
    life, less what it had used when the job started (read by the meter in clock ticks,
    so within a tick of the job's own)."""
    kernel_peak = max_rss if usage.oom_killed else min(max_rss, memory_limit)
    kernel_cpu = max(0, cpu_time_us - cpu_before_job_us)
    return Usage(memory_peak=max(usage.memory_peak, kernel_peak),
                 cpu_time_us=max(usage.cpu_time_us, kernel_cpu), oom_killed=usage.oom_killed)


class Backend(Protocol):
    name: str

    def create_box(self, box_id: str) -> Box: ...


def check_box_id(box_id: str) -> str:
    """A box id becomes a directory name: refuse anything that could walk elsewhere."""
    if not box_id or box_id in (".", "..") or "/" in box_id or "\0" in box_id or box_id.startswith("."):
        raise LimitsError(f"invalid box id {box_id!r}")
    return box_id


def wait_until(done: Callable[[], bool], timeout: float | None = None) -> bool:
    """Poll `done` with a growing sleep, for up to `timeout` (default KILL_TIMEOUT_SECS):
    a SIGKILLed task leaves its cgroup, or makes its pidfd readable, only once it has
    finished exiting, a moment after the signal."""
    deadline = time.monotonic() + (KILL_TIMEOUT_SECS if timeout is None else timeout)
    delay = 0.0005
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True
