"""The rlimit backend on the real kernel: each child applies `apply_in_sandbox` to
itself, as a sandbox would, and an RlimitBox attached to it measures it from outside
(the daemon's JobMeter); the job-wide memory limit also through a real rlimit daemon."""
from __future__ import annotations

import errno
import os
import signal
import textwrap

import pytest

from leeward_daemon.limits import JobLimits, select_backend
from tests.conftest import start_daemon
from tests.integration.limits.workloads import (
    HOLD_SECS, MB, ONE_CPU_SECOND, TOUCH_200_MIB, TWO_CHILDREN_BUSY_FOR_0_6_SECONDS,
    assert_200_mb_peak, assert_cpu_time_is_the_childs, assert_fork_loop_stopped_under_16, around_fork_loop,
)

MiB = 1 << 20

SANDBOX = """
    import resource
    from leeward_daemon.limits import JobLimits, apply_in_sandbox
    apply_in_sandbox(JobLimits(memory_limit={memory_limit}, pids_max={pids_max}),
                     file_size_max={file_size_max}, cpu_time_limit={cpu_time_limit})
"""


def sandbox_program(body: str, *, memory_limit=256 * MiB, pids_max=64, file_size_max=16 * MiB,
                    cpu_time_limit=None) -> str:
    """The child's body, run after it limited itself as a sandbox does."""
    return textwrap.dedent(SANDBOX.format(memory_limit=memory_limit, pids_max=pids_max,
                                          file_size_max=file_size_max, cpu_time_limit=cpu_time_limit)) \
        + textwrap.dedent(body)


def sandboxed(spawn, body: str, **limits):
    child = spawn(sandbox_program(body, **limits))
    child.go()
    return child


@pytest.fixture
def metered(spawn):
    """Starts a sandboxed child inside an RlimitBox (attached and started before the
    child runs its body); yields (child, box). The box is destroyed afterwards."""
    boxes = []

    def start(body: str, memory_limit=256 * MiB):
        child = spawn(sandbox_program(body, memory_limit=memory_limit))
        box = select_backend(prefer="rlimit").create_box(f"b{len(boxes)}")
        boxes.append(box)
        box.attach(child.pid)
        box.start_job(JobLimits(memory_limit=memory_limit, pids_max=64))
        child.go()
        return child, box

    yield start
    for box in boxes:
        box.destroy()


def test_over_the_limit_is_a_memory_error_not_an_oom_kill(metered):
    child, box = metered("""
        try:
            x = bytearray(1 << 30)
            outcome = "allocated"
        except MemoryError:
            outcome = "MemoryError"
        emit(outcome=outcome)
    """)
    assert child.result()["outcome"] == "MemoryError"  # RLIMIT_AS, the per-process backstop
    assert child.wait() == 0
    assert box.usage().oom_killed is False


def test_memory_peak_of_200_mb_fits_a_256_mib_limit(metered):
    child, box = metered(TOUCH_200_MIB)
    assert child.result() == {"done": True}
    assert child.wait() == 0
    assert_200_mb_peak(box.usage(), "rlimit")


def test_cpu_time_of_one_second_busy_loop(metered):
    child, box = metered(ONE_CPU_SECOND)
    own = child.result()["cpu"]
    assert child.wait() == 0
    # Against the child's own count, not a fixed second: spin() stops on the tick
    # counter, which overshoots by whole ticks (2.18 s for spin(1.0) in a TCG guest).
    assert own >= 1.0
    assert_cpu_time_is_the_childs(box.usage(), own, "rlimit")


def test_cpu_time_counts_waited_children(metered):
    child, box = metered(TWO_CHILDREN_BUSY_FOR_0_6_SECONDS)
    own = child.result()["cpu"]
    assert child.wait() == 0
    assert own >= 1.2
    assert_cpu_time_is_the_childs(box.usage(), own, "rlimit")


# The review's probe: six forked children each touching ~170 MiB under a 128 MiB limit
# held 1 GiB when the limit was per process (RLIMIT_AS alone). Each child waits for its
# parent to die (EOF on a pipe only the parent holds), as a sandbox's would with pid 1.
SIX_CHILDREN = """
    import time
    r, w = os.pipe()
    for _ in range(6):
        if os.fork() == 0:
            os.close(w)
            x = bytearray(170 * 1024 * 1024)
            for i in range(0, len(x), 4096):
                x[i] = 1
            os.read(r, 1)
            os._exit(0)
    os.close(r)
    time.sleep(60)
    emit(survived=True)
"""


def test_memory_of_all_the_processes_together_is_limited(metered):
    child, box = metered(SIX_CHILDREN, memory_limit=128 * MiB)
    assert child.readline() == ""  # killed before it could say it survived
    assert child.wait() == -signal.SIGKILL
    usage = box.usage()
    print(f"rlimit: six children touching 170 MiB each under 128 MiB: memory_peak {usage.memory_peak / MB:.0f} MB")
    assert usage.oom_killed is True
    assert 128 * MiB < usage.memory_peak < 6 * 170 * MiB


def test_pages_shared_between_processes_count_once(metered):
    # Seven processes sharing one 60 MiB buffer (and the interpreter) resident-sum to
    # far more than 128 MiB; their proportional set sizes do not.
    child, box = metered(f"""
        import time
        x = bytearray(60 * 1024 * 1024)
        x[::4096] = b"x" * len(x[::4096])
        kids = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:
                time.sleep({HOLD_SECS})
                os._exit(x[0] != ord("x"))
            kids.append(pid)
        emit(statuses=[os.waitpid(pid, 0)[1] for pid in kids])
    """, memory_limit=128 * MiB)
    assert child.result() == {"statuses": [0] * 6}
    assert child.wait() == 0
    usage = box.usage()
    print(f"rlimit: seven processes sharing 60 MiB: memory_peak {usage.memory_peak / MB:.0f} MB")
    assert usage.oom_killed is False
    assert 60 * MiB < usage.memory_peak <= 128 * MiB


def _unused_uid() -> int:
    used = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                used.update(int(x) for line in f if line.startswith("Uid:") for x in line.split()[1:])
        except OSError:
            pass
    return next(uid for uid in range(2_000_000_000, 2_000_001_000) if uid not in used)


@pytest.mark.skipif(os.geteuid() != 0, reason="RLIMIT_NPROC counts every process of the uid; "
                    "only root can run the fork loop under a uid of its own")
def test_nproc_stops_a_fork_loop(spawn):
    uid = _unused_uid()
    # RLIMIT_NPROC does not bind host uid 0, so the child becomes an unused uid first,
    # as the sandbox does.
    child = sandboxed(spawn, around_fork_loop(f"""
        os.setgroups([])
        os.setresgid({uid}, {uid}, {uid})
        os.setresuid({uid}, {uid}, {uid})
    """, """
        os.close(w)  # the children's EOF
        for _ in range(forked):
            os.wait()
    """), pids_max=16)
    result = child.result()
    assert child.wait() == 0
    assert_fork_loop_stopped_under_16(result)


def test_file_size_and_core_limits(spawn, tmp_path):
    target = tmp_path / "big"
    child = sandboxed(spawn, f"""
        with open({str(target)!r}, "wb", buffering=0) as f:
            f.write(b"x" * 8192)
            try:
                f.write(b"x")
                err = None
            except OSError as e:
                err = e.errno
        emit(errno=err, core=resource.getrlimit(resource.RLIMIT_CORE),
             fsize=resource.getrlimit(resource.RLIMIT_FSIZE),
             blas=[os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")])
    """, file_size_max=8192)
    result = child.result()
    assert child.wait() == 0
    assert result["errno"] == errno.EFBIG  # not SIGXFSZ: CPython ignores it
    assert target.stat().st_size == 8192
    assert result["core"] == [0, 0]
    assert result["fsize"] == [8192, 8192]
    assert result["blas"] == ["1", "1", "1"]


def test_cpu_time_limit_kills_a_busy_loop(spawn):
    child = sandboxed(spawn, """
        spin(30)
        emit(survived=True)
    """, cpu_time_limit=1)
    assert child.readline() == ""
    assert child.wait() == -signal.SIGXCPU


def test_numpy_imports_and_multiplies_under_the_address_space_limit(spawn):
    pytest.importorskip("numpy", reason="numpy is not installed in this environment")
    child = sandboxed(spawn, """
        import numpy
        a = numpy.random.rand(500, 500)
        emit(trace=float((a @ a).trace()) > 0)
    """)
    assert child.result() == {"trace": True}
    assert child.wait() == 0


def test_box_kills_the_attached_process_and_keeps_its_measurement(spawn):
    child = spawn("import time; time.sleep(3600)")
    box = select_backend(prefer="rlimit").create_box("b1")
    box.attach(child.pid)
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    box.kill()
    assert child.wait() == -signal.SIGKILL
    usage = box.usage()
    assert usage.memory_peak > 0 and usage.oom_killed is False  # an idle interpreter, measured
    box.destroy()
    box.destroy()


@pytest.fixture(scope="module")
def rlimit_daemon(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rlimit-daemon")
    config = directory / "config.toml"
    config.write_text('limits_backend = "rlimit"\n')
    daemon = start_daemon(str(directory), "--config", str(config))
    yield daemon
    daemon.stop()


def test_a_job_is_killed_when_its_processes_together_pass_the_limit(rlimit_daemon):
    code = textwrap.dedent(SIX_CHILDREN.replace("emit(survived=True)", "print('survived')"))
    result = rlimit_daemon.execute("import os\n" + code, memory_limit=128 * MiB, timeout_secs=120)
    print(result)
    assert result.limits == "rlimit"
    assert (result.exit_code, result.oom_killed, result.timed_out, result.stdout) == (-9, True, False, b"")
    assert 128 * MiB < result.memory_peak < 6 * 170 * MiB
    assert rlimit_daemon.execute("print('next')").stdout == b"next\n"


def test_a_job_is_measured_by_the_daemon(rlimit_daemon):
    result = rlimit_daemon.execute("import time\ns = time.process_time()\nwhile time.process_time() - s < 0.5: pass\n"
                                   "x = bytearray(100 << 20)\nx[::4096] = b'x' * len(x[::4096])\n"
                                   f"time.sleep({HOLD_SECS})", memory_limit=512 * MiB)
    assert (result.exit_code, result.oom_killed) == (0, False), result
    assert 100 * MiB < result.memory_peak < 512 * MiB
    assert 0.4 <= result.cpu_time_us / 1e6 <= 2.0
