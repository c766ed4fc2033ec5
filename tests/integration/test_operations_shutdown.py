"""SIGTERM drains: running jobs finish within shutdown_grace_secs or are killed, every
client gets an answer, the socket goes first, no sandbox survives. And what a SIGKILLed
daemon leaves (its socket, its cgroup boxes) does not stop, or outlive, the next one."""
import os
import signal
import subprocess
import threading
import time

import pytest

from leeward_daemon import limits
from libleeward.client import DaemonUnavailable, LeewardError
from tests.conftest import start_daemon
from tests.host import host_pids

pytestmark = pytest.mark.integration
WAIT_SECS = 120.0  # bounds on waiting for events, never speed assertions


def wait_for(condition, what: str, timeout: float = WAIT_SECS):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def unique_marker() -> str:
    # A sleep duration no other test uses: what /proc/*/cmdline is scanned for.
    return f"{3600 + os.getpid() % 1000}.{time.monotonic_ns() % 10**9}"


class Client(threading.Thread):
    """Runs one job on its own connection; `outcome` is its result or its error."""

    def __init__(self, daemon, code: str, **options):
        super().__init__(daemon=True)
        self.daemon_under_test, self.code, self.options = daemon, code, options
        self.outcome = None

    def run(self):
        try:
            self.outcome = self.daemon_under_test.execute(self.code, **self.options)
        except Exception as exc:  # the assertion is on what arrived, whatever it is
            self.outcome = exc

    def result(self):
        self.join(WAIT_SECS)
        assert not self.is_alive(), "the client got no answer"
        return self.outcome


def sleeper_job(marker: str) -> str:
    return ("import subprocess, time\n"
            f"subprocess.Popen(['sleep', {marker!r}])\n"
            "time.sleep(60)\n")


def own_boxes(pid: int) -> list[str]:
    try:
        backend = limits.select_backend()
    except limits.LimitsError:
        return []
    box_ids = getattr(backend, "box_ids", lambda: [])()
    return [b for b in box_ids if b.startswith(f"slot-{pid}-")]


def running_sleeper(directory, grace: int):
    """A daemon with that shutdown grace, running a job that sleeps past any test."""
    daemon = start_daemon(str(directory), "--set", f"shutdown_grace_secs={grace}", "--metrics-port", "0", workers=1)
    marker = unique_marker()
    client = Client(daemon, sleeper_job(marker), timeout_secs=120)
    client.start()
    wait_for(lambda: host_pids(marker=marker), "the job to start")
    return daemon, marker, client


def test_job_past_the_grace_is_killed_and_its_client_told(tmp_path):
    daemon, marker, client = running_sleeper(tmp_path, grace=1)
    daemon.process.send_signal(signal.SIGTERM)
    outcome = client.result()
    assert isinstance(outcome, LeewardError) and outcome.code == "E3003", outcome
    assert "shutdown grace" in outcome.message
    assert daemon.process.wait(WAIT_SECS) == 0
    assert not os.path.lexists(daemon.socket_path)
    wait_for(lambda: not host_pids(marker=marker), "the job's processes to be gone")
    assert own_boxes(daemon.process.pid) == []


def test_job_within_the_grace_finishes_and_gets_its_result(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o777)  # the sandbox runs as an unused uid under a root daemon
    daemon = start_daemon(str(tmp_path), "--allow-path", str(tmp_path), "--set", "shutdown_grace_secs=300",
                          "--metrics-port", "0", workers=1)
    code = ("import os, time\n"
            "open('/work/started', 'w').close()\n"
            "while not os.path.exists('/work/go'):\n"
            "    time.sleep(0.01)\n"
            "print('finished')\n")
    client = Client(daemon, code, mounts=[{"host": str(work), "sandbox": "/work", "ro": False}], timeout_secs=120)
    client.start()
    wait_for(lambda: (work / "started").exists(), "the job to start")
    daemon.process.send_signal(signal.SIGTERM)
    wait_for(lambda: not os.path.lexists(daemon.socket_path), "the socket to go")
    with pytest.raises(DaemonUnavailable):
        daemon.connect()
    (work / "go").touch()
    result = client.result()
    assert (result.exit_code, result.stdout) == (0, b"finished\n")
    assert daemon.process.wait(WAIT_SECS) == 0


def test_a_second_signal_kills_running_jobs_without_waiting_for_the_grace(tmp_path):
    daemon, marker, client = running_sleeper(tmp_path, grace=300)
    daemon.process.send_signal(signal.SIGTERM)
    wait_for(lambda: not os.path.lexists(daemon.socket_path), "the drain to begin")
    daemon.process.send_signal(signal.SIGTERM)
    outcome = client.result()  # without the second signal: the job's own result, after its 60 s sleep
    assert isinstance(outcome, LeewardError) and outcome.code == "E3003", outcome
    assert daemon.process.wait(WAIT_SECS) == 0
    wait_for(lambda: not host_pids(marker=marker), "the job's processes to be gone")


def test_an_idle_connection_is_closed_not_left_hanging(tmp_path):
    daemon = start_daemon(str(tmp_path), "--metrics-port", "0", workers=1)
    conn = daemon.connect(timeout=WAIT_SECS)
    try:
        conn.ping()
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(WAIT_SECS) == 0
        with pytest.raises(DaemonUnavailable):
            conn.ping()
    finally:
        conn.close()


def test_a_live_daemons_socket_is_not_taken_over(tmp_path):
    first = start_daemon(str(tmp_path), "--metrics-port", "0", workers=1)
    try:
        second = subprocess.run([*first.process.args[:3], "--socket", first.socket_path, "--metrics-port", "0"],
                                capture_output=True, text=True, timeout=WAIT_SECS, cwd="/")
        assert second.returncode == 2 and "already listening" in second.stderr
        # The zygote it started early went away quietly with it (no traceback).
        assert "Traceback" not in second.stderr
        assert first.alive()
    finally:
        first.stop()


def test_a_killed_daemons_socket_and_boxes_do_not_outlive_the_next_start(tmp_path):
    try:
        backend = limits.select_backend()
    except limits.LimitsError as exc:
        pytest.skip(f"no limits backend: {exc}")
    if backend.name == "rlimit":
        pytest.skip("rlimit boxes are pidfds: a killed daemon leaves none behind")
    crashed = start_daemon(str(tmp_path), "--metrics-port", "0", workers=1)
    boxes = wait_for(lambda: own_boxes(crashed.process.pid), "the first daemon's boxes")
    crashed.process.kill()
    crashed.process.wait()
    assert os.path.lexists(crashed.socket_path)  # a SIGKILLed daemon cannot clean up
    # A process in one of its boxes, as a sandbox that outlived its daemon would be.
    survivor = subprocess.Popen(["sleep", unique_marker()])
    try:
        backend.open_box(boxes[0]).attach(survivor.pid)
        following = start_daemon(str(tmp_path), "--metrics-port", "0", workers=1)  # same socket path
        try:
            assert following.execute("print('served')").stdout == b"served\n"
            assert own_boxes(crashed.process.pid) == []
            assert survivor.wait(WAIT_SECS) == -signal.SIGKILL
            assert "removed" in following.log() and boxes[0] in following.log()
        finally:
            following.stop()
    finally:
        if survivor.poll() is None:
            survivor.kill()
            survivor.wait()
