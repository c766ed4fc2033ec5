"""cgroup v2 backend against a fake cgroupfs: exactly what it writes and how it reads."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from leeward_daemon.ops import doctor
from leeward_daemon.config import Config
from leeward_daemon.limits import JobLimits, LimitsError, LimitsUnavailable, Usage, base
from leeward_daemon.limits.cgroup2 import Cgroup2Backend, delegated_root, is_ours

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
    assert box.peak_resets is True


def test_start_job_with_the_same_limits_only_resets_the_accounting(fake_v2):
    # A session's every cell: the limits in force stay, the peak is the cell's.
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    fake_v2.set("leeward", "b1", "memory.peak", "12345")
    before = len(fake_v2.writes_under("leeward/b1"))
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert fake_v2.writes_under("leeward/b1")[before:] == []
    assert fake_v2.read("leeward", "b1", "memory.peak") == "reset"
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=8))
    assert fake_v2.writes_under("leeward/b1")[before:] == [
        ("memory.max", str(256 * MiB)), ("memory.swap.max", "0"), ("pids.max", "8"), ("cpu.max", "max 100000")]


def test_limits_prepared_ahead_leave_start_job_only_the_accounting(fake_v2):
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    box.prepare(JobLimits(memory_limit=256 * MiB, pids_max=16))
    before = len(fake_v2.writes_under("leeward/b1"))
    assert before > 0
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    assert fake_v2.writes_under("leeward/b1")[before:] == []


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
    assert box.peak_resets is False


def test_peak_falls_back_to_read_only_when_root_opens_the_0444_file_before_6_12(fake_v2, monkeypatch):
    # Root's open(O_RDWR) succeeds (CAP_DAC_OVERRIDE); kernfs refuses the write: EINVAL.
    box = Cgroup2Backend(fake_v2.root).create_box("b1")
    real_write = os.write
    peak_fds = set()
    real_open = os.open

    def open_recording(path, flags, *args):
        fd = real_open(path, flags, *args)
        if str(path).endswith("memory.peak") and flags & os.O_RDWR:
            peak_fds.add(fd)
        return fd

    def old_kernel_write(fd, data):
        if fd in peak_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", open_recording)
    monkeypatch.setattr(os, "write", old_kernel_write)
    fake_v2.set("leeward", "b1", "memory.peak", "8192")
    box.start_job(JobLimits(memory_limit=MiB, pids_max=1))
    assert box.usage().memory_peak == 8192
    assert box.peak_resets is False


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


# ------------------------------------------------- delegation: the daemon moves into a leaf

@pytest.fixture
def moves(fake_v2):
    """The kernel's side of a write to cgroup.procs: the process leaves the cgroup it
    was in. `on_move` runs after each move (to fork a process into root meanwhile)."""
    plain_write = fake_v2._real_write
    hooks = []

    def write(path, value):
        if os.path.basename(path) == "cgroup.procs":
            for directory, _, files in os.walk(fake_v2.root):
                if "cgroup.procs" in files:
                    member = os.path.join(directory, "cgroup.procs")
                    with open(member) as f:
                        pids = f.read().split()
                    plain_write(member, "\n".join(p for p in pids if p != value))
            with open(path) as f:
                value = (f.read() + "\n" + value).strip()
        plain_write(path, value)
        for hook in hooks:
            hook()

    fake_v2._real_write = write
    return hooks


@pytest.fixture
def child():
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def _members(fake, *parts):
    return sorted(int(pid) for pid in fake.read(*parts, "cgroup.procs").split())


def test_daemon_in_root_moves_into_leaf_before_enabling_controllers(fake_v2, moves):
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n")
    backend = Cgroup2Backend(fake_v2.root)
    assert backend.leaf == os.path.join(fake_v2.root, "daemon")
    assert fake_v2.writes[:2] == [("daemon/cgroup.procs", str(os.getpid())), ("cgroup.subtree_control", "+memory")]
    assert _members(fake_v2) == [] and _members(fake_v2, "daemon") == [os.getpid()]
    # The boxes go beside the leaf, which is no box: the leaf gets no limits.
    assert backend.box_ids() == []
    assert not [w for w in fake_v2.writes if w[0].startswith("daemon/") and w[0] != "daemon/cgroup.procs"]


def test_the_zygote_and_every_descendant_move_along(fake_v2, moves, child):
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n{child}\n")
    Cgroup2Backend(fake_v2.root)
    assert _members(fake_v2, "daemon") == sorted([os.getpid(), child])


def test_a_process_forked_during_the_move_is_moved_too(fake_v2, moves, child):
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n")
    forked = []

    def fork_into_root():
        if not forked:
            forked.append(child)
            fake_v2.set("cgroup.procs", f"{child}\n")

    moves.append(fork_into_root)
    Cgroup2Backend(fake_v2.root)
    assert _members(fake_v2) == [] and _members(fake_v2, "daemon") == sorted([os.getpid(), child])


def test_a_process_that_is_not_ours_is_never_moved_and_says_so(fake_v2, moves):
    stranger = os.getppid()  # our parent: in the cgroup, but not the daemon's to move
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n{stranger}\n")
    with pytest.raises(LimitsUnavailable) as info:
        Cgroup2Backend(fake_v2.root)
    assert f"not this daemon's (pids {stranger})" in info.value.reason
    assert "Delegate=yes" in info.value.reason
    assert fake_v2.writes == []
    assert not os.path.exists(os.path.join(fake_v2.root, "daemon"))


def test_members_that_never_leave_make_the_backend_unavailable(fake_v2):
    # The plain fake does not move processes out of root, like a kernel refusing to.
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n")
    with pytest.raises(LimitsUnavailable, match="still has member processes after 5 moves"):
        Cgroup2Backend(fake_v2.root)


def test_a_refused_move_is_unavailable_with_the_reason(fake_v2):
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n")
    fake_v2.fail["daemon/cgroup.procs"] = errno.EACCES
    with pytest.raises(LimitsUnavailable) as info:
        Cgroup2Backend(fake_v2.root)
    assert info.value.reason.startswith(f"cgroup2: cannot move the daemon into {fake_v2.root}/daemon: write")
    assert "Permission denied" in info.value.reason


def test_empty_root_needs_no_leaf(fake_v2):
    assert Cgroup2Backend(fake_v2.root).leaf is None
    assert not os.path.exists(os.path.join(fake_v2.root, "daemon"))


def test_is_ours_is_this_process_and_its_descendants(child):
    assert is_ours(os.getpid()) and is_ours(child)
    assert not is_ours(os.getppid()) and not is_ours(1)


def test_delegated_root_is_the_parent_of_the_leaf():
    assert delegated_root("/sys/fs/cgroup/system.slice/leeward.service/daemon") == \
        "/sys/fs/cgroup/system.slice/leeward.service"
    assert delegated_root("/sys/fs/cgroup/system.slice/leeward.service") == \
        "/sys/fs/cgroup/system.slice/leeward.service"


def test_doctor_reports_the_delegation(fake_v2, moves):
    fake_v2.set("cgroup.procs", f"{os.getpid()}\n")
    check = doctor.check_limits_backend(Config(limits_backend="cgroup2", cgroup_root=fake_v2.root))
    leaf = os.path.join(fake_v2.root, "daemon")
    assert check.status == doctor.OK
    assert check.data == {"backend": "cgroup2", "root": fake_v2.root, "leaf": leaf,
                          "boxes": os.path.join(fake_v2.root, "leeward")}
    assert f"held the daemon: moved into the leaf {leaf}" in check.detail
