"""Per-job memory, pids and CPU limits and their accounting: cgroup v2, cgroup v1 or
rlimits, whichever the host gives (`select_backend`). The daemon owns the boxes and
does all the accounting; the sandbox side is inside.py: `core_and_fsize_limits` always,
plus `apply_in_sandbox` under the rlimit backend.

Used by both sides (pool/ for boxes, isolation/ and the zygote for inside.py): imports
only the top-level modules (errors, procfs); never frontdoor/, pool/, ops/ or sandbox/."""
from .base import Backend, Box, JobLimits, LimitsError, LimitsUnavailable, Usage, with_reaped
from .detect import select_backend
from .inside import apply_in_sandbox, blas_thread_env, core_and_fsize_limits

__all__ = [
    "Backend",
    "Box",
    "JobLimits",
    "LimitsError",
    "LimitsUnavailable",
    "Usage",
    "apply_in_sandbox",
    "blas_thread_env",
    "core_and_fsize_limits",
    "select_backend",
    "with_reaped",
]
