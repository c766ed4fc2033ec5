"""Limits and accounting through the real daemon, on each backend this machine has
(cgroup v1 as root here, rlimits always; cgroup v2 skips with its reason)."""
import os

import pytest

from leeward_daemon import limits
from tests.conftest import start_daemon

pytestmark = pytest.mark.integration
MiB = 1 << 20


def _backend_available(name: str) -> str | None:
    try:
        limits.select_backend(prefer=name)
    except limits.LimitsError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module", params=["cgroup2", "cgroup1", "rlimit"])
def limited(request, tmp_path_factory):
    reason = _backend_available(request.param)
    if reason:
        pytest.skip(f"{request.param} unavailable here: {reason}")
    directory = tmp_path_factory.mktemp(f"limits-{request.param}")
    config = directory / "config.toml"
    config.write_text(f'limits_backend = "{request.param}"\n')
    daemon = start_daemon(str(directory), "--config", str(config))
    daemon.extra["backend"] = request.param
    yield daemon
    daemon.stop()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return int(next(line for line in fh if line.startswith("VmRSS:")).split()[1]) * 1024


def test_result_says_which_backend(limited):
    assert limited.execute("pass").limits == limited.extra["backend"]


def test_memory_bomb_fails_truthfully_and_the_daemon_is_unaffected(limited):
    before = _rss(limited.process.pid)
    result = limited.execute("x = bytearray(8 << 30)\nx[::4096] = b'x' * len(x[::4096])", memory_limit=256 * MiB)
    assert result.exit_code != 0
    if result.oom_killed:
        assert result.exit_code == -9  # the kernel's OOM killer, reported as such
    else:
        assert result.error is not None and result.error["name"] == "MemoryError"
    assert _rss(limited.process.pid) - before < 64 * MiB
    assert limited.execute("print('next')").stdout == b"next\n"


def test_oom_killed_only_when_the_kernel_killed(limited):
    assert limited.execute("raise MemoryError()").oom_killed is False


def test_fork_bomb_ends_at_the_pids_limit(limited):
    code = ("import os, time\n"
            "n = 0\n"
            "for _ in range(500):\n"
            "    try:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(60); os._exit(0)\n"
            "        n += 1\n"
            "    except OSError:\n"
            "        break\n"
            "print(n)")
    result = limited.execute(code, timeout_secs=30)
    assert result.exit_code == 0, result.stderr
    assert 0 < int(result.stdout) < 64
    assert limited.execute("print('next')").stdout == b"next\n"


def test_memory_peak_of_a_200mb_job(limited):
    result = limited.execute("data = b'x' * (200 * 1024 * 1024)\nprint(len(data))")
    assert result.exit_code == 0, result.stderr
    assert 200_000_000 <= result.memory_peak <= 300_000_000, result.memory_peak


def test_cpu_time_of_a_one_second_loop(limited):
    code = ("import time\n"
            "while time.process_time() < 1.0: pass\n"
            "import os; t = os.times(); print(t.user + t.system + t.children_user + t.children_system)")
    result = limited.execute(code)
    own = float(result.stdout)
    assert own >= 0.95  # os.times() ticks in 10 ms steps
    assert 0.8 * own <= result.cpu_time_us / 1e6 <= 1.25 * own + 0.1


def test_cpu_time_counts_every_thread(limited):
    # hashlib releases the GIL on large inputs: four threads really run in parallel.
    code = ("import hashlib, os, threading, time\n"
            "data = b'x' * (1 << 22)\n"
            "def spin():\n"
            "    for _ in range(120): hashlib.sha256(data).digest()\n"
            "threads = [threading.Thread(target=spin) for _ in range(4)]\n"
            "start = time.perf_counter()\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "wall = time.perf_counter() - start\n"
            "t = os.times(); print(t.user + t.system, wall)")
    result = limited.execute(code)
    own_cpu, _wall = map(float, result.stdout.split())
    # Every thread's CPU is in the figure (how far it exceeds wall time depends on how
    # busy the host's cores are, so that is measured in bench/, not asserted here).
    # The work is sized to take about a second of CPU, so the bound has headroom.
    assert own_cpu >= 0.5
    assert 0.8 * own_cpu <= result.cpu_time_us / 1e6 <= 1.25 * own_cpu + 0.1


def test_huge_stdout_is_cut_at_exactly_the_cap(limited):
    result = limited.execute("print('x' * 10**8)")
    assert result.stdout_truncated is True
    assert result.stdout == b"x" * (1 << 20)
    assert result.stderr_truncated is False


def test_printing_forever_is_cut_and_returns(limited):
    result = limited.execute("while True: print('spam' * 1000)", timeout_secs=120)
    assert result.stdout_truncated and not result.timed_out
    assert len(result.stdout) == 1 << 20


def test_no_core_files_and_a_file_size_cap(limited):
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_CORE), resource.getrlimit(resource.RLIMIT_FSIZE)[0])"
    result = limited.execute(code)
    core, fsize = result.stdout.decode().rsplit(" ", 1)
    assert core == "(0, 0)" and int(fsize) == 1 << 30


def test_tmp_is_size_capped(limited):
    code = ("import os\n"
            "try:\n"
            "    with open('/tmp/fill', 'wb') as f:\n"
            "        for _ in range(1024): f.write(b'x' * (1 << 20))\n"
            "    print('filled')\n"
            "except OSError as e: print('full', e.errno)")
    assert limited.execute(code).stdout == b"full 28\n"


def test_numpy_matmul_under_default_limits(limited):
    pytest.importorskip("numpy")
    result = limited.execute("import numpy\nm = numpy.ones((1000, 1000)) @ numpy.ones((1000, 1000))\nprint(m[0, 0])")
    assert result.stdout == b"1000.0\n", result.stderr



def _slot_boxes(daemon_pid: int) -> set[str]:
    """This daemon's boxes only (named slot-<daemon pid>-<slot pid>): other daemons of
    a concurrent test run come and go meanwhile."""
    group = "/sys/fs/cgroup/memory/leeward"
    prefix = f"slot-{daemon_pid}-"
    return {d for d in os.listdir(group) if d.startswith(prefix)} if os.path.isdir(group) else set()


def test_a_stopped_daemon_leaves_no_limits_boxes(tmp_path):
    reason = _backend_available("cgroup1")
    if reason:
        pytest.skip(f"cgroup1 unavailable here: {reason}")
    config = tmp_path / "config.toml"
    config.write_text('limits_backend = "cgroup1"\n')
    daemon = start_daemon(str(tmp_path), "--config", str(config))
    assert daemon.execute("print(1)").stdout == b"1\n"
    assert _slot_boxes(daemon.process.pid)  # its idle slots are boxed while it runs
    daemon.stop()
    assert _slot_boxes(daemon.process.pid) == set()
