"""cgroup backends on the real kernel, with real child processes. Each test runs for
cgroup2 and cgroup1; the one this machine lacks is skipped with its reason (on the
dev VM: cgroup2 has no memory controller)."""
from __future__ import annotations

import os
import signal

from leeward_daemon.limits import JobLimits, cgroupfs
from tests.integration.limits.workloads import (
    MB, ONE_CPU_SECOND, TOUCH_200_MIB, TWO_CHILDREN_BUSY_FOR_0_6_SECONDS,
    assert_200_mb_peak, assert_cpu_time_is_the_childs, assert_fork_loop_stopped_under_16, around_fork_loop,
)

MiB = 1 << 20


def _members(box) -> set[int]:
    return {pid for path in box.paths for pid in cgroupfs.procs(path)}


def _start_in_box(box, child, memory_limit: int = 256 * MiB) -> None:
    """Puts the waiting child in the box, starts a job with these limits, lets it run."""
    box.attach(child.pid)
    box.start_job(JobLimits(memory_limit=memory_limit, pids_max=16))
    child.go()


def test_over_the_limit_is_oom_killed_or_memory_error_and_usage_says_which(box, spawn):
    child = spawn("""
        try:
            x = bytearray(1 << 30)
            for i in range(0, len(x), 4096):
                x[i] = 1
            emit(outcome="allocated")
        except MemoryError:
            emit(outcome="MemoryError")
    """)
    _start_in_box(box, child)
    line = child.readline()
    status = child.wait()
    usage = box.usage()
    print(f"{box.paths[0]}: exit status {status}, {line.strip() or 'no output'}, {usage}")
    assert '"allocated"' not in line
    if status == -signal.SIGKILL:
        assert usage.oom_killed is True
    else:
        assert '"MemoryError"' in line and status == 0
        assert usage.oom_killed is False
    assert usage.memory_peak <= 256 * MiB


def test_memory_peak_of_200_mb(box, spawn):
    child = spawn(TOUCH_200_MIB)
    _start_in_box(box, child, memory_limit=512 * MiB)
    assert child.result() == {"done": True}
    assert child.wait() == 0
    assert_200_mb_peak(box.usage(), box.paths[0])


def _touch_in_box(box, spawn, mib: int):
    helper = spawn(f"""
        x = bytearray({mib} * 1024 * 1024)
        for i in range(0, len(x), 4096):
            x[i] = 1
        del x
        emit(done=True)
    """)
    box.attach(helper.pid)
    helper.go()
    assert helper.result() == {"done": True}
    return helper


def test_peak_is_the_jobs_not_the_slots(box, spawn):
    # The "slot" touches 150 MiB and frees it before the job; the job touches 20.
    child = spawn("""
        x = bytearray(20 * 1024 * 1024)
        for i in range(0, len(x), 4096):
            x[i] = 1
        emit(done=True)
    """)
    box.attach(child.pid)
    slot = _touch_in_box(box, spawn, 150)
    box.start_job(JobLimits(memory_limit=512 * MiB, pids_max=16))
    child.go()
    assert child.result() == {"done": True}
    child.wait()
    assert slot.wait() == 0
    if getattr(box, "peak_resets", True):
        assert box.usage().memory_peak < 100 * MB
    else:  # cgroup v2 before Linux 6.12: memory.peak cannot be reset, and says so
        assert box.usage().memory_peak > 150 * MiB


def test_cpu_time_of_one_second_busy_loop(box, spawn):
    child = spawn(ONE_CPU_SECOND)
    _start_in_box(box, child)
    own = child.result()["cpu"]
    assert child.wait() == 0
    assert 0.5 <= assert_cpu_time_is_the_childs(box.usage(), own, box.paths[0]) <= 2.0


def test_cpu_time_counts_children(box, spawn):
    child = spawn(TWO_CHILDREN_BUSY_FOR_0_6_SECONDS)
    _start_in_box(box, child)
    own = child.result()["cpu"]
    assert child.wait() == 0
    assert own >= 1.2
    assert_cpu_time_is_the_childs(box.usage(), own, box.paths[0])


def test_pids_max_stops_a_fork_loop_and_the_box_still_dies(box, spawn):
    child = spawn(around_fork_loop("", """
        sys.stdin.readline()
    """))
    _start_in_box(box, child)
    result = child.result()
    assert_fork_loop_stopped_under_16(result)
    assert len(_members(box)) == result["forked"] + 1
    box.kill()
    assert _members(box) == set()
    assert child.wait() == -signal.SIGKILL
    box.destroy()
    assert not any(os.path.exists(p) for p in box.paths)


def test_kill_leaves_no_process_and_destroy_removes_the_box(box, spawn):
    child = spawn("""
        if os.fork() == 0:
            os.setsid()  # escaping the session does not escape the cgroup
        import time
        emit(pid=os.getpid())
        time.sleep(3600)
    """)
    _start_in_box(box, child)
    pids = {child.result()["pid"], child.result()["pid"]}
    assert pids <= _members(box) and len(pids) == 2
    box.kill()
    assert _members(box) == set()
    assert child.wait() == -signal.SIGKILL
    box.destroy()
    assert not any(os.path.exists(p) for p in box.paths)
    box.destroy()  # idempotent on a box that is already gone
