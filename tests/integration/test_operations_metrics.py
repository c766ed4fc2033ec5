"""Prometheus metrics of a real daemon after real executions, fetched over HTTP."""
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from libleeward.client import LeewardError
from tests.conftest import start_daemon

pytestmark = pytest.mark.integration
MiB = 1 << 20
SETTLE_SECS = 30.0  # bound on waiting for the daemon to notice closed connections


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def settled(port: int) -> dict:
    """Metrics once every client connection is closed and no job runs."""
    deadline = time.monotonic() + SETTLE_SECS
    while True:
        samples = scrape(port)
        quiet = (samples[("leeward_connections_active", ())] == 0
                 and samples[("leeward_workers_total", (("state", "busy"),))] == 0)
        if quiet or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    port = free_port()
    daemon = start_daemon(str(tmp_path_factory.mktemp("metrics")), "--metrics-port", str(port))
    daemon.extra["port"] = port
    yield daemon
    daemon.stop()


def test_counters_after_successes_failures_a_timeout_and_an_oom(metered):
    # Settled: a request is counted just after its reply is sent, so the start-up Ping's
    # count is certain only once its connection is closed.
    pings_before = settled(metered.extra["port"])[("leeward_requests_total", (("outcome", "ok"), ("type", "Ping")))]
    results = [
        metered.execute("print('ok')"),
        metered.execute("print('ok again')"),
        metered.execute("raise SystemExit(3)"),
        metered.execute("1 / 0"),
        metered.execute("while True: pass", timeout_secs=1),
        metered.execute("x = bytearray(1 << 31)", memory_limit=128 * MiB),
    ]
    assert [r.exit_code for r in results[:4]] == [0, 0, 3, 1]
    assert results[4].timed_out and not results[4].oom_killed
    if results[5].limits == "rlimit":
        pytest.skip("no cgroup memory controller here: the kernel's OOM killer never acts under rlimits")
    assert results[5].oom_killed and not results[5].timed_out
    with metered.connect() as conn:
        with pytest.raises(LeewardError) as refused:
            conn.request({"type": "Execute", "code": "print(1)", "timeout_secs": "soon"})
        assert refused.value.code == "E2002"
        conn.ping()

    samples = settled(metered.extra["port"])

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("leeward_executions_total") == 6
    assert value("leeward_executions_failed_total", reason="timeout") == 1
    assert value("leeward_executions_failed_total", reason="oom") == 1
    assert value("leeward_executions_failed_total", reason="error") == 2
    assert value("leeward_requests_total", type="Execute", outcome="ok") == 6
    assert value("leeward_requests_total", type="Execute", outcome="E2002") == 1
    assert value("leeward_requests_total", type="Ping", outcome="ok") == pings_before + 1  # start_daemon pings too
    assert value("leeward_worker_recycles_total") == 6  # single use: one sandbox per job
    assert value("leeward_execution_duration_seconds_count") == 6
    assert value("leeward_execution_duration_seconds_sum") == pytest.approx(sum(r.duration_ms for r in results) / 1000)
    assert value("leeward_memory_usage_bytes_count") == 6
    assert value("leeward_memory_usage_bytes_sum") == sum(r.memory_peak for r in results)
    assert value("leeward_cpu_time_seconds_total") == pytest.approx(sum(r.cpu_time_us for r in results) / 1e6)
    assert value("leeward_connections_active") == 0
    assert value("leeward_workers_total", state="busy") == 0
    assert value("leeward_workers_total", state="idle") + value("leeward_workers_total", state="starting") == 2

    with metered.connect() as conn:
        status = conn.status()
    assert status["executions"] == 6
    assert status["failed"] == {"timeout": 1, "oom": 1, "error": 2}
    assert status["metrics"] == f"http://127.0.0.1:{metered.extra['port']}/metrics"


def test_a_chosen_metrics_port_that_is_taken_stops_the_daemon(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "leeward_daemon", "--socket", str(tmp_path / "s.sock"),
                               "--metrics-port", str(port)], capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 2
    assert f"metrics_port/metrics_address: cannot serve metrics on 127.0.0.1:{port}" in proc.stderr
    assert not (tmp_path / "s.sock").exists()


def test_metrics_port_0_serves_no_endpoint(tmp_path):
    daemon = start_daemon(str(tmp_path), "--metrics-port", "0", workers=1)
    try:
        with daemon.connect() as conn:
            status = conn.status()
        assert (status["metrics"], status["metrics_error"]) == (None, None)
    finally:
        daemon.stop()
