"""The workloads both limit backends are measured with, and the checks on their
measurement: the same child must read the same from a cgroup and from the rlimit
meter. Imported as tests.integration.limits.workloads (this folder has no
__init__.py, so its test modules' bare names stay as they were).

The bodies run in conftest.Child, which gives them emit, spin, cpu_since and T0."""
from __future__ import annotations

import errno
import textwrap

MB = 1000 * 1000
# A child keeps what it measured this long before it says so: a hundred of the rlimit
# meter's samples (it measures from outside, and only a live process).
HOLD_SECS = 0.5

TOUCH_200_MIB = f"""
    import time
    x = bytearray(200 * 1024 * 1024)
    for i in range(0, len(x), 4096):
        x[i] = 1
    time.sleep({HOLD_SECS})
    emit(done=True)
"""

ONE_CPU_SECOND = f"""
    import time
    spin(1.0)
    cpu = cpu_since(T0)
    time.sleep({HOLD_SECS})
    emit(cpu=cpu)
"""

TWO_CHILDREN_BUSY_FOR_0_6_SECONDS = f"""
    import time
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            spin(0.6)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    cpu = cpu_since(T0)
    time.sleep({HOLD_SECS})
    emit(cpu=cpu)
"""

# Forks until refused (bounded even if the limit did nothing); each child waits for EOF
# on a pipe only the parent writes to. Emits how many it forked and the refusal's errno;
# what follows the emit decides how long the children live.
FORK_LOOP = textwrap.dedent("""
    r, w = os.pipe()
    forked, err = 0, None
    for _ in range(64):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno
            break
        if pid == 0:
            os.close(w)
            os.read(r, 1)
            os._exit(0)
        forked += 1
    emit(forked=forked, errno=err)
""")


def around_fork_loop(before: str, after: str) -> str:
    """A child body: `before`, FORK_LOOP, then `after` (each indented as it likes)."""
    return textwrap.dedent(before) + FORK_LOOP + textwrap.dedent(after)


def assert_200_mb_peak(usage, backend: str) -> None:
    print(f"{backend}: memory_peak {usage.memory_peak} bytes for 200 MiB touched")
    assert 200 * MB <= usage.memory_peak <= 300 * MB
    assert usage.oom_killed is False


def assert_cpu_time_is_the_childs(usage, own: float, backend: str) -> float:
    """The measured CPU time agrees with the child's own os.times; returns it in seconds."""
    measured = usage.cpu_time_us / 1e6
    print(f"{backend}: cpu_time {measured:.3f} s, the child's own os.times {own:.3f} s")
    assert abs(measured - own) <= 0.2 * own
    return measured


def assert_fork_loop_stopped_under_16(result: dict) -> None:
    """FORK_LOOP's report under a limit of 16 processes (its own parent included)."""
    assert result["errno"] == errno.EAGAIN
    assert 1 <= result["forked"] <= 15
