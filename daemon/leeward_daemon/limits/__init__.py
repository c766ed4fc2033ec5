"""Per-job memory, pids and CPU limits and their accounting: cgroup v2, cgroup v1 or
rlimits, whichever the host gives (`select_backend`). The daemon owns the boxes; the
sandbox side is `core_and_fsize_limits` always, plus `apply_in_sandbox` and
`usage_in_sandbox` under the rlimit backend."""
from .base import Backend, Box, JobLimits, LimitsError, LimitsUnavailable, Usage
from .detect import select_backend
from .rlimit import BLAS_THREAD_ENV, apply_in_sandbox, core_and_fsize_limits, usage_in_sandbox

__all__ = [
    "BLAS_THREAD_ENV",
    "Backend",
    "Box",
    "JobLimits",
    "LimitsError",
    "LimitsUnavailable",
    "Usage",
    "apply_in_sandbox",
    "core_and_fsize_limits",
    "select_backend",
    "usage_in_sandbox",
]
