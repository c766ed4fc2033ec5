"""The rlimit backend's pure parts, the shared types, and the /proc parsing the daemon
measures with. setrlimit itself is only called in child processes, and the meter runs
on real jobs, in tests/integration/limits."""
from __future__ import annotations

import math
import os
import resource

import pytest

from leeward_daemon import procfs
from leeward_daemon.limits import (
    JobLimits, LimitsError, LimitsUnavailable, Usage, apply_in_sandbox, blas_thread_env, core_and_fsize_limits,
    select_backend, with_reaped,
)
from leeward_daemon.limits.cgroup1 import Cgroup1Box
from leeward_daemon.limits.cgroup2 import Cgroup2Box
from leeward_daemon.limits.inside import AS_HEADROOM, address_space_limit
from leeward_daemon.limits.rlimit import RlimitBox

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


def test_rlimit_box_has_no_usage_before_a_job():
    # Formerly the sandbox's own report was recorded here; now nothing but the daemon's
    # measurement exists, and before a job there is none.
    with pytest.raises(LimitsError, match="before start_job"):
        select_backend(prefer="rlimit").create_box("b1").usage()


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


def test_stat_fields_survive_a_hostile_command_name():
    # comm is the job's to choose (prctl PR_SET_NAME): spaces and parentheses in it
    # must not shift the fields the meter and the exit status are read from.
    fields = " ".join(str(n) for n in range(4, 53))  # field n holds n
    stat = procfs.parse_stat(f"123 (a) b ) 1 2 3 (x) R {fields}\n")
    assert (stat.ppid, stat.flags, stat.cpu_ticks, stat.threads, stat.vsize, stat.exit_code) == \
        (4, 9, 14 + 15 + 16 + 17, 20, 23, 52)
    assert stat.state == "R" and stat.rss == 24 * procfs.PAGE_SIZE


def test_own_stat_and_a_gone_process():
    stat = procfs.read_stat(os.getpid())
    assert stat.ppid == os.getppid() and stat.rss > 0 and stat.vsize > 0 and not stat.flags & procfs.PF_EXITING
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    process = procfs.open_process(pid)
    os.waitpid(pid, 0)
    assert procfs.read_stat(pid) is None
    assert procfs.exit_status_if_exiting(process) is None  # reaped: the fd reaches nothing
    os.close(process)


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


@pytest.mark.parametrize("sampled, max_rss, oom_killed, expected", [
    (150, 210, False, 210),   # the peak fell between two samples: the kernel's mark counts
    (300, 210, False, 300),   # several processes together: the sampled sum stands
    (150, 900, False, 256),   # shared pages counted in full: never past the limit...
    (270, 900, True, 900),    # ...unless the job was killed for its memory
])
def test_a_sampled_peak_takes_the_kernels_mark_from_the_reaping(sampled, max_rss, oom_killed, expected):
    usage = Usage(memory_peak=sampled, cpu_time_us=7, oom_killed=oom_killed)
    assert with_reaped(usage, max_rss, 0, 0, memory_limit=256) == Usage(expected, 7, oom_killed)


@pytest.mark.parametrize("sampled_us, reaped_us, before_us, expected_us", [
    (490_000, 1_020_000, 20_000, 1_000_000),  # the last samples missed the end: the kernel's counts
    (700_000, 650_000, 20_000, 700_000),      # a waited-for child's time already sampled stands
    (0, 10_000, 20_000, 0),                    # within a tick of the start: never negative
])
def test_a_sampled_cpu_time_takes_the_kernels_from_the_reaping(sampled_us, reaped_us, before_us, expected_us):
    usage = Usage(memory_peak=1, cpu_time_us=sampled_us, oom_killed=False)
    assert with_reaped(usage, 1, reaped_us, before_us, memory_limit=256).cpu_time_us == expected_us


def test_only_the_rlimit_box_samples_its_usage():
    assert RlimitBox.usage_from_samples and not Cgroup1Box.usage_from_samples and not Cgroup2Box.usage_from_samples
    assert Cgroup1Box.cpu_before_job_us == Cgroup2Box.cpu_before_job_us == 0
