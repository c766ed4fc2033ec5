"""The rlimit backend on the real kernel: each child applies `apply_in_sandbox` to
itself, as a sandbox would, and reports `usage_in_sandbox`."""
from __future__ import annotations

import errno
import os
import signal
import textwrap

import pytest

from leeward_daemon.limits import JobLimits, Usage, select_backend

MiB = 1 << 20
MB = 1000 * 1000

SANDBOX = """
    import resource
    from leeward_daemon.limits import JobLimits, apply_in_sandbox, usage_in_sandbox
    apply_in_sandbox(JobLimits(memory_limit={memory_limit}, pids_max={pids_max}),
                     file_size_max={file_size_max}, cpu_time_limit={cpu_time_limit})
    START = resource.getrusage(resource.RUSAGE_SELF)
    def emit_usage(**kw):
        u = usage_in_sandbox(START)
        emit(memory_peak=u.memory_peak, cpu_time_us=u.cpu_time_us, oom_killed=u.oom_killed, **kw)
"""


def sandboxed(spawn, body: str, *, memory_limit=256 * MiB, pids_max=64, file_size_max=16 * MiB,
              cpu_time_limit=None):
    child = spawn(textwrap.dedent(SANDBOX.format(memory_limit=memory_limit, pids_max=pids_max,
                                                 file_size_max=file_size_max, cpu_time_limit=cpu_time_limit))
                  + textwrap.dedent(body))
    child.go()
    return child


def test_over_the_limit_is_a_memory_error_not_an_oom_kill(spawn):
    child = sandboxed(spawn, """
        try:
            x = bytearray(1 << 30)
            outcome = "allocated"
        except MemoryError:
            outcome = "MemoryError"
        emit_usage(outcome=outcome)
    """)
    result = child.result()
    assert child.wait() == 0
    assert result["outcome"] == "MemoryError"
    assert result["oom_killed"] is False


def test_memory_peak_of_200_mb_fits_a_256_mib_limit(spawn):
    child = sandboxed(spawn, """
        x = bytearray(200 * 1024 * 1024)
        for i in range(0, len(x), 4096):
            x[i] = 1
        emit_usage()
    """)
    result = child.result()
    assert child.wait() == 0
    print(f"rlimit: memory_peak {result['memory_peak']} bytes for 200 MiB touched")
    assert 200 * MB <= result["memory_peak"] <= 300 * MB


def test_cpu_time_of_one_second_busy_loop(spawn):
    child = sandboxed(spawn, """
        spin(1.0)
        emit_usage(cpu=cpu_since(T0))
    """)
    result = child.result()
    assert child.wait() == 0
    measured = result["cpu_time_us"] / 1e6
    print(f"rlimit: cpu_time {measured:.3f} s, child's own os.times {result['cpu']:.3f} s")
    assert 0.5 <= measured <= 2.0
    assert abs(measured - result["cpu"]) <= 0.2 * result["cpu"]


def test_cpu_time_counts_waited_children(spawn):
    child = sandboxed(spawn, """
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                spin(0.6)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
        emit_usage(cpu=cpu_since(T0))
    """)
    result = child.result()
    assert child.wait() == 0
    assert result["cpu"] >= 1.2
    assert abs(result["cpu_time_us"] / 1e6 - result["cpu"]) <= 0.2 * result["cpu"]


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
    child = sandboxed(spawn, f"""
        os.setgroups([])
        os.setresgid({uid}, {uid}, {uid})
        os.setresuid({uid}, {uid}, {uid})
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
                os.read(r, 1)  # EOF once the parent closes its end
                os._exit(0)
            forked += 1
        emit(forked=forked, errno=err)
        os.close(w)
        for _ in range(forked):
            os.wait()
    """, pids_max=16)
    result = child.result()
    assert child.wait() == 0
    assert result["errno"] == errno.EAGAIN
    assert 1 <= result["forked"] <= 15


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


def test_box_kills_the_attached_process_and_reports_recorded_usage(spawn):
    child = spawn("import time; time.sleep(3600)")
    box = select_backend(prefer="rlimit").create_box("b1")
    box.attach(child.pid)
    box.start_job(JobLimits(memory_limit=256 * MiB, pids_max=16))
    box.record(Usage(memory_peak=1, cpu_time_us=2, oom_killed=False))
    assert box.usage() == Usage(memory_peak=1, cpu_time_us=2, oom_killed=False)
    box.kill()
    assert child.wait() == -signal.SIGKILL
    box.destroy()
    box.destroy()
