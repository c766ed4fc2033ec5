"""cgroup v2 backend against a fake cgroupfs: exactly what it writes and how it reads."""
from __future__ import annotations

import errno
import os

import pytest

from leeward_daemon.limits import JobLimits, LimitsError, LimitsUnavailable, Usage, base
from leeward_daemon.limits.cgroup2 import Cgroup2Backend

MiB = 1 << 20


def test_backend_enables_controllers_in_root_and_group(fake_v2):
    backend = Cgroup2Backend(fake_v2.root)
    assert backend.name == "cgroup2"
    assert backend.path == os.path.join(fake_v2.root, "leeward")
    assert fake_v2.writes == [
        ("cgroup.subtree_control", "+memory"),
        ("cgroup.subtree_control", "+pids"),
        ("leeward/cgroup.subtree_control", "+memory"),
        ("leeward/cgroup.subtree_control", "+pids"),
        ("cgroup.subtree_control", "+cpu"),
        ("leeward/cgroup.subtree_control", "+cpu"),
    ]
    assert fake_v2.read("cgroup.subtree_control").split() == ["cpu", "memory", "pids"]


def test_backend_leaves_enabled_controllers_alone(fake_v2):
    fake_v2.set("cgroup.subtree_control", "cpu memory pids")
    Cgroup2Backend(fake_v2.root, group="lw")
    assert ("cgroup.subtree_control", "+memory") not in fake_v2.writes
    assert ("lw/cgroup.subtree_control", "+memory") in fake_v2.writes


def test_missing_memory_controller_is_unavailable(fake_v2):
    fake_v2.set("cgroup.controllers", "cpu pids hugetlb")
    with pytest.raises(LimitsUnavailable) as info:
        Cgroup2Backend(fake_v2.root)
    assert "memory not in" in info.value.reason
    assert "cgroup.controllers" in info.value.reason
    assert fake_v2.writes == []


def test_not_a_cgroup_dir_is_unavailable(tmp_path):
    with pytest.raises(LimitsUnavailable, match="not a usable cgroup2 directory"):
        Cgroup2Backend(str(tmp_path))


def test_root_with_member_processes_is_unavailable_with_the_reason(fake_v2):
    fake_v2.fail["cgroup.subtree_control"] = errno.EBUSY
    with pytest.raises(LimitsUnavailable) as info:
        Cgroup2Backend(fake_v2.root)
    assert "write '+memory' to" in info.value.reason
    assert "member processes" in info.value.reason


def test_kernel_without_cgroup_kill_is_unavailable(fake_v2):
    fake_v2.skip_files.add("cgroup.kill")
    with pytest.raises(LimitsUnavailable, match=r"cgroup.kill \(needs Linux >= 5.14\)"):
        Cgroup2Backend(fake_v2.root)


def test_without_cpu_controller_quota_is_refused_and_cpu_max_untouched(fake_v2):
    fake_v2.set("cgroup.controllers", "memory pids")
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    with pytest.raises(LimitsUnavailable, match="cpu_quota"):
        box.start_job(JobLimits(memory_limit=64 * MiB, pids_max=8, cpu_quota=1.0))
    box.start_job(JobLimits(memory_limit=64 * MiB, pids_max=8))
    assert "cpu.max" not in dict(fake_v2.writes_under("leeward/b1"))


def test_attach_writes_the_pid(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.attach(4242)
    assert fake_v2.writes_under("leeward/b1") == [("cgroup.procs", "4242")]


def test_start_job_writes_every_limit(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert fake_v2.writes_under("leeward/b1") == [
        ("memory.max", str(256 * MiB)),
        ("memory.swap.max", "0"),
        ("pids.max", "16"),
        ("cpu.max", "max 100000"),
    ]
    # The peak is reset through the fd the box keeps (Linux >= 6.12 semantics).
    assert fake_v2.read("leeward", "b1", "memory.peak") == "reset"


@pytest.mark.parametrize(("cores", "written"), [(1.5, "150000 100000"), (0.25, "25000 100000"), (2, "200000 100000")])
def test_cpu_quota(fake_v2, cores, written):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1, cpu_quota=cores))
    assert dict(fake_v2.writes_under("leeward/b1"))["cpu.max"] == written


def test_no_swap_accounting_skips_swap_max(fake_v2):
    fake_v2.skip_files.add("memory.swap.max")
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    assert "memory.swap.max" not in dict(fake_v2.writes_under("leeward/b1"))


def test_usage_is_the_jobs_share(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    # What the slot did before the job: earlier CPU, an earlier OOM kill.
    fake_v2.set("leeward", "b1", "cpu.stat", "usage_usec 700000\nuser_usec 600000\nsystem_usec 100000\n")
    fake_v2.set("leeward", "b1", "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    fake_v2.set("leeward", "b1", "memory.peak", "209715200\n")
    fake_v2.set("leeward", "b1", "cpu.stat", "usage_usec 1950000\nuser_usec 1800000\nsystem_usec 150000\n")
    assert box.usage() == Usage(memory_peak=209715200, cpu_time_us=1_250_000, oom_killed=False)
    fake_v2.set("leeward", "b1", "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n")
    assert box.usage().oom_killed is True


def test_peak_falls_back_to_read_only_before_linux_6_12(fake_v2, monkeypatch):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    real_open = os.open

    def old_kernel_open(path, flags, *args):
        if str(path).endswith("memory.peak") and flags & os.O_RDWR:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", old_kernel_open)
    fake_v2.set("leeward", "b1", "memory.peak", "4096")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    assert fake_v2.read("leeward", "b1", "memory.peak") == "4096"
    assert box.usage().memory_peak == 4096


def test_usage_before_start_job_is_an_error(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    with pytest.raises(LimitsError, match="before start_job"):
        box.usage()


def test_write_errors_name_file_and_value(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    fake_v2.fail["leeward/b1/pids.max"] = errno.EINVAL
    with pytest.raises(LimitsError) as info:
        box.start_job(JobLimits(memory_limit=MiB, pids_max=16))
    assert str(info.value) == f"write '16' to {fake_v2.root}/leeward/b1/pids.max: Invalid argument"
    assert info.value.errno == errno.EINVAL


def test_kill_writes_cgroup_kill_and_waits_until_unpopulated(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.kill()
    assert fake_v2.writes_under("leeward/b1") == [("cgroup.kill", "1")]


def test_kill_that_leaves_processes_is_an_error(fake_v2, monkeypatch):
    monkeypatch.setattr(base, "KILL_TIMEOUT_SECS", 0.01)
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    fake_v2.set("leeward", "b1", "cgroup.events", "populated 1\nfrozen 0\n")
    with pytest.raises(LimitsError, match="still populated"):
        box.kill()


def test_destroy_removes_the_box_and_is_idempotent(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    box.destroy()
    assert not os.path.exists(box.path)
    box.destroy()
    assert fake_v2.writes_under("leeward/b1")[-1] == ("cgroup.kill", "1")


def test_create_box_refuses_an_existing_box_and_path_tricks(fake_v2):
    backend = Cgroup2Backend(fake_v2.root)
    backend.create_box("b1")
    with pytest.raises(LimitsError, match="already exists"):
        backend.create_box("b1")
    for bad in ("", ".", "..", "../escape", "a/b", ".hidden"):
        with pytest.raises(LimitsError, match="invalid box id"):
            backend.create_box(bad)
