"""cgroup v1 backend against a fake cgroupfs: both cpu/cpuacct layouts, write order,
usage arithmetic. Killing is only tested on the real kernel (it signals real pids)."""
from __future__ import annotations

import os

import pytest

from leeward_daemon.limits import JobLimits, LimitsError, LimitsUnavailable, Usage
from leeward_daemon.limits.cgroup1 import Cgroup1Backend
from leeward_daemon.limits.detect import cgroup1_hierarchies

MiB = 1 << 20


def _backend(fake, group="leeward"):
    return Cgroup1Backend(cgroup1_hierarchies(fake.root), group)


def test_one_group_per_hierarchy(fake_v1):
    backend = _backend(fake_v1)
    assert backend.name == "cgroup1"
    assert [fake_v1.rel(d) for d in backend.group_dirs] == [
        "memory/leeward", "pids/leeward", "cpuacct/leeward", "cpu/leeward", "freezer/leeward",
    ]


def test_comounted_cpu_cpuacct_is_one_directory(tmp_path, make_fake):
    fake = make_fake("cgroup", 1, ("memory", "pids", "cpu,cpuacct"))
    root = tmp_path / "cgroup"
    # The usual distro layout: cpu and cpuacct are symlinks to the shared mount.
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    backend = _backend(fake)
    assert sorted(fake.rel(d) for d in backend.group_dirs) == ["cpu,cpuacct/leeward", "memory/leeward", "pids/leeward"]
    box = backend.create_box("b1")
    box.attach(77)
    assert sorted(p for p, v in fake.writes if v == "77") == [
        "cpu,cpuacct/leeward/b1/cgroup.procs", "memory/leeward/b1/cgroup.procs", "pids/leeward/b1/cgroup.procs",
    ]
    box.start_job(JobLimits(memory_limit=MiB, pids_max=4, cpu_quota=0.5))
    assert fake.read("cpu,cpuacct", "leeward", "b1", "cpu.cfs_quota_us") == "50000"


def test_missing_pids_hierarchy_is_unavailable(fake_v1):
    hierarchies = cgroup1_hierarchies(fake_v1.root)
    del hierarchies["pids"]
    with pytest.raises(LimitsUnavailable, match="no pids hierarchy"):
        Cgroup1Backend(hierarchies)


def test_a_directory_that_is_not_that_controller_is_unavailable(fake_v1):
    hierarchies = cgroup1_hierarchies(fake_v1.root)
    hierarchies["memory"] = hierarchies["pids"]
    with pytest.raises(LimitsUnavailable, match="is not a memory cgroup"):
        Cgroup1Backend(hierarchies)


def test_start_job_writes_limits_in_order(fake_v1):
    box = _backend(fake_v1).create_box("b1")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert fake_v1.writes == [
        ("memory/leeward/b1/memory.limit_in_bytes", str(256 * MiB)),
        ("memory/leeward/b1/memory.memsw.limit_in_bytes", str(256 * MiB)),
        ("pids/leeward/b1/pids.max", "16"),
        ("cpu/leeward/b1/cpu.cfs_quota_us", "-1"),
        ("memory/leeward/b1/memory.max_usage_in_bytes", "0"),
    ]


def test_start_job_with_the_same_limits_only_resets_the_accounting(fake_v1):
    # A session's every cell: the limits in force stay, the peak is the cell's.
    box = _backend(fake_v1).create_box("b1")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    fake_v1.writes.clear()
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert fake_v1.writes == [("memory/leeward/b1/memory.max_usage_in_bytes", "0")]
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=8))
    assert ("pids/leeward/b1/pids.max", "8") in fake_v1.writes


def test_limits_prepared_ahead_leave_start_job_only_the_accounting(fake_v1):
    # The pool prepares each new box with the config's defaults, off the request path.
    box = _backend(fake_v1).create_box("b1")
    box.prepare(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert ("pids/leeward/b1/pids.max", "16") in fake_v1.writes
    fake_v1.writes.clear()
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert fake_v1.writes == [("memory/leeward/b1/memory.max_usage_in_bytes", "0")]
    box.start_job(JobLimits(memory_limit=128 * MiB, pids_max=16))
    assert ("memory/leeward/b1/memory.limit_in_bytes", str(128 * MiB)) in fake_v1.writes


def test_raising_memory_limit_writes_memsw_first(fake_v1):
    box = _backend(fake_v1).create_box("b1")
    fake_v1.set("memory", "leeward", "b1", "memory.limit_in_bytes", str(64 * MiB))
    fake_v1.set("memory", "leeward", "b1", "memory.memsw.limit_in_bytes", str(64 * MiB))
    box.start_job(JobLimits(memory_limit=128 * MiB, pids_max=1))
    assert fake_v1.writes[:2] == [
        ("memory/leeward/b1/memory.memsw.limit_in_bytes", str(128 * MiB)),
        ("memory/leeward/b1/memory.limit_in_bytes", str(128 * MiB)),
    ]


def test_no_swap_accounting_writes_only_the_limit(fake_v1):
    fake_v1.skip_files.add("memory.memsw.limit_in_bytes")
    box = _backend(fake_v1).create_box("b1")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    assert [p for p, _ in fake_v1.writes if "memsw" in p] == []


def test_cpu_quota_uses_the_boxs_period(fake_v1):
    box = _backend(fake_v1).create_box("b1")
    fake_v1.set("cpu", "leeward", "b1", "cpu.cfs_period_us", "50000")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1, cpu_quota=1.5))
    assert ("cpu/leeward/b1/cpu.cfs_quota_us", "75000") in fake_v1.writes


def test_without_cpu_hierarchy_quota_is_refused(fake_v1):
    hierarchies = cgroup1_hierarchies(fake_v1.root)
    del hierarchies["cpu"]
    box = Cgroup1Backend(hierarchies).create_box("b1")
    with pytest.raises(LimitsUnavailable, match="cpu_quota"):
        box.start_job(JobLimits(memory_limit=MiB, pids_max=1, cpu_quota=1.0))


def test_usage_is_relative_to_start_job(fake_v1):
    box = _backend(fake_v1).create_box("b1")
    fake_v1.set("cpuacct", "leeward", "b1", "cpuacct.usage", "300000000")
    fake_v1.set("memory", "leeward", "b1", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    fake_v1.set("cpuacct", "leeward", "b1", "cpuacct.usage", "1300500999")
    fake_v1.set("memory", "leeward", "b1", "memory.max_usage_in_bytes", "210501632")
    assert box.usage() == Usage(memory_peak=210501632, cpu_time_us=1_000_500, oom_killed=False)
    fake_v1.set("memory", "leeward", "b1", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert box.usage().oom_killed is True


def test_destroy_closes_the_kept_accounting_files_and_usage_then_fails(fake_v1):
    before = set(os.listdir("/proc/self/fd"))
    box = _backend(fake_v1).create_box("b1")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    box.usage()
    assert set(os.listdir("/proc/self/fd")) != before  # kept open between readings
    box.destroy()
    assert set(os.listdir("/proc/self/fd")) == before
    with pytest.raises(LimitsError, match="destroyed"):
        box.usage()


def test_usage_before_start_job_is_an_error(fake_v1):
    with pytest.raises(LimitsError, match="before start_job"):
        _backend(fake_v1).create_box("b1").usage()


def test_create_box_rolls_back_on_failure(fake_v1):
    backend = _backend(fake_v1)
    os.mkdir(os.path.join(fake_v1.root, "cpuacct", "leeward", "b1"))  # a stale box in one hierarchy
    with pytest.raises(LimitsError, match="already exists"):
        backend.create_box("b1")
    assert not os.path.exists(os.path.join(fake_v1.root, "memory", "leeward", "b1"))
    assert not os.path.exists(os.path.join(fake_v1.root, "pids", "leeward", "b1"))


def test_destroy_of_an_empty_box_removes_every_directory_and_is_idempotent(fake_v1):
    box = _backend(fake_v1).create_box("b1")
    box.destroy()
    assert not any(os.path.exists(p) for p in box.paths)
    box.destroy()
