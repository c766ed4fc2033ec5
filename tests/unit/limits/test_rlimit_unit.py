"""The rlimit backend's pure parts and the shared types. setrlimit itself is only
called in child processes, in tests/integration/limits."""
from __future__ import annotations

import math
import os
import resource

import pytest

from leeward_daemon.limits import (
    JobLimits, LimitsError, LimitsUnavailable, Usage, apply_in_sandbox, blas_thread_env,
    core_and_fsize_limits, select_backend, usage_in_sandbox,
)
from leeward_daemon.limits.rlimit import AS_HEADROOM, address_space_limit

MiB = 1 << 20


@pytest.mark.parametrize("kwargs", [
    {"memory_limit": 0, "pids_max": 1},
    {"memory_limit": -1, "pids_max": 1},
    {"memory_limit": 1, "pids_max": 0},
    {"memory_limit": 1.5, "pids_max": 1},
    {"memory_limit": True, "pids_max": 1},
    {"memory_limit": 1, "pids_max": 1, "cpu_quota": 0},
    {"memory_limit": 1, "pids_max": 1, "cpu_quota": -2.0},
    {"memory_limit": 1, "pids_max": 1, "cpu_quota": math.nan},
    {"memory_limit": 1, "pids_max": 1, "cpu_quota": math.inf},
])
def test_job_limits_never_take_zero_or_nonsense(kwargs):
    with pytest.raises(LimitsError):
        JobLimits(**kwargs)


def test_rlimit_box_reports_what_the_sandbox_recorded():
    box = select_backend(prefer="rlimit").create_box("b1")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    assert box.usage() == Usage(memory_peak=0, cpu_time_us=0, oom_killed=False)
    box.record(Usage(memory_peak=5, cpu_time_us=6, oom_killed=False))
    assert box.usage() == Usage(memory_peak=5, cpu_time_us=6, oom_killed=False)
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    assert box.usage().memory_peak == 0


def test_rlimit_refuses_a_cpu_quota_before_touching_anything():
    limits = JobLimits(memory_limit=MiB, pids_max=1, cpu_quota=1.0)
    with pytest.raises(LimitsUnavailable, match="cgroup cpu controller"):
        select_backend(prefer="rlimit").create_box("b1").start_job(limits)
    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(LimitsUnavailable):
        apply_in_sandbox(limits, file_size_max=MiB)
    assert resource.getrlimit(resource.RLIMIT_AS) == before


@pytest.mark.parametrize("bad", [0, -1, 1.0, None])
def test_file_size_max_must_be_positive(bad):
    with pytest.raises(LimitsError, match="file_size_max"):
        core_and_fsize_limits(bad)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_cpu_time_limit_must_be_positive(bad):
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    with pytest.raises(LimitsError, match="cpu_time_limit"):
        apply_in_sandbox(JobLimits(memory_limit=MiB, pids_max=1), file_size_max=MiB, cpu_time_limit=bad)
    assert resource.getrlimit(resource.RLIMIT_FSIZE) == before


def test_address_space_limit_is_current_size_plus_limit_plus_headroom():
    with open("/proc/self/statm") as f:
        vm_size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = address_space_limit(256 * MiB)
    # VmSize moves a little between the two reads (allocations in between).
    assert abs(limit - (vm_size + 256 * MiB + AS_HEADROOM)) < 16 * MiB


def test_usage_in_sandbox_counts_from_start():
    start = resource.getrusage(resource.RUSAGE_SELF)
    usage = usage_in_sandbox(start)
    assert 0 <= usage.cpu_time_us < usage_in_sandbox(None).cpu_time_us
    assert usage.memory_peak >= start.ru_maxrss * 1024
    assert usage.oom_killed is False


@pytest.mark.parametrize("backend, pids_max, cpus, threads", [
    ("rlimit", 64, 64, 1),        # every thread's reservation counts against RLIMIT_AS
    ("cgroup1", 64, 2, 2),        # one per CPU on a small host
    ("cgroup2", 64, 64, 16),      # a quarter of the pids budget on a big one
    ("cgroup1", 3, 64, 1),        # never zero
])
def test_blas_pool_fits_the_backend_and_the_pids_budget(backend, pids_max, cpus, threads):
    env = blas_thread_env(backend, pids_max, cpus)
    assert env == {"OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
                   "MKL_NUM_THREADS": str(threads)}
