"""Escape probes: a job that forges messages on its result channel (the socket its
worker keeps open to report the exception) gets nothing for it. The exit status is the
kernel's, the duration the daemon's clock, CPU and memory the cgroup's or, under
rlimits, the daemon's reading of the job's processes; a message out of place after the
code started ends the job as its own failure, never as E3002 "sandbox setup failed",
and keeps its output; the metrics only ever see finite numbers.

Each probe runs on a daemon with the host's cgroup backend and on one forced to
rlimits, both serving /metrics.
"""
from __future__ import annotations

import math
import os
import socket
import urllib.request

import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_daemon

from ._probe import FIND_CHANNEL, probe

pytestmark = pytest.mark.integration
MiB = 1 << 20
TIMEOUT_SECS = 60
VIOLATION = "ResultChannelViolation"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=["host", "rlimit"])
def daemon(request, tmp_path_factory):
    """Replaces the session daemon for this module: one per backend, with metrics."""
    directory = tmp_path_factory.mktemp(f"forged-{request.param}")
    port = _free_port()
    args = ["--metrics-port", str(port)]
    if request.param == "rlimit":
        (directory / "config.toml").write_text('limits_backend = "rlimit"\n')
        args += ["--config", str(directory / "config.toml")]
    running = start_daemon(str(directory), *args)
    running.extra["port"] = port
    yield running
    running.stop()


def forging(*messages: dict, before: str = "print('before', flush=True)\n",
            after: str = "import time\ntime.sleep(30)\nprint('after')\n") -> str:
    """Job code: `before`, then each message framed as the worker frames its own
    (daemon/leeward_daemon/ipc/channel.py: 4-byte big-endian length, msgpack map), then `after`."""
    frames = b"".join(len(body).to_bytes(4, "big") + body for body in map(msgpack.packb, messages))
    return FIND_CHANNEL + before + f"os.write(channel, {frames!r})\n" + after


def old_style_result(**fields) -> dict:
    """The result message as the worker used to send it, with the job's own figures."""
    return {"op": "result", "exit_code": 0, "duration_ms": 1.0, "cpu_time_us": 1, "memory_peak": 1,
            "error": None, **fields}


def assert_killed_for_a_violation(result, stdout=b"before\n"):
    assert result.error is not None and result.error["name"] == VIOLATION, result
    assert result.stdout == stdout  # the job's output is kept
    assert result.exit_code == -9 and not result.timed_out  # killed by the daemon, as the kernel saw it
    assert_measured(result)


def assert_measured(result):
    assert math.isfinite(result.duration_ms) and 0 <= result.duration_ms <= TIMEOUT_SECS * 1000, result
    assert 0 <= result.cpu_time_us <= TIMEOUT_SECS * 2 * 10**6, result  # two cores at most
    assert 0 < result.memory_peak < 4 << 30, result


def metric_samples(daemon) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.extra['port']}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("duration", [math.nan, math.inf, 1e300, -5.0])
def test_a_forged_duration_never_reaches_the_reply_or_the_metrics(daemon, duration):
    result = probe(daemon, forging(old_style_result(duration_ms=duration)), timeout_secs=TIMEOUT_SECS)
    assert_killed_for_a_violation(result)
    samples = metric_samples(daemon)
    assert all(math.isfinite(v) for v in samples.values()), {k: v for k, v in samples.items() if not math.isfinite(v)}
    assert samples[("leeward_execution_duration_seconds_sum", ())] < TIMEOUT_SECS * samples[
        ("leeward_execution_duration_seconds_count", ())]


@pytest.mark.parametrize("forged", [
    {"cpu_time_us": math.inf, "memory_peak": 2**64 - 1},
    {"cpu_time_us": -1, "memory_peak": -1},
    {"cpu_time_us": 2**64 - 1, "memory_peak": 0.5},
], ids=["inf-and-2^64", "negative", "huge-and-fraction"])
def test_forged_usage_is_never_believed(daemon, forged):
    result = probe(daemon, forging(old_style_result(**forged)), timeout_secs=TIMEOUT_SECS)
    assert_killed_for_a_violation(result)


def test_a_forged_exit_code_zero_is_not_the_reply_when_the_job_exits_3(daemon):
    code = forging(old_style_result(exit_code=0), after="os._exit(3)\n")
    result = probe(daemon, code, timeout_secs=TIMEOUT_SECS)
    # The forgery is a violation; whether the kill or the job's own exit came first,
    # the status is the kernel's: never the 0 it claimed.
    assert result.exit_code in (3, -9), result
    assert result.error is not None and result.error["name"] == VIOLATION, result
    assert result.stdout == b"before\n"
    assert_measured(result)


def test_a_well_formed_result_is_no_end_and_carries_no_status(daemon):
    # The one message a job may send. It says nothing of the status, and the job's
    # duration runs on to its real end.
    code = forging({"op": "result", "error": None},
                   after="import time\ntime.sleep(0.5)\nprint('after', flush=True)\nos._exit(3)\n")
    result = probe(daemon, code, timeout_secs=TIMEOUT_SECS)
    assert (result.exit_code, result.stdout, result.error) == (3, b"before\nafter\n", None), result
    assert result.duration_ms >= 500
    assert_measured(result)


def test_a_forged_failed_after_the_code_started_is_the_jobs_own_failure(daemon):
    # It used to become E3002 "sandbox setup failed: <the job's text>", output discarded.
    code = forging({"op": "failed", "error": "PermissionError: forged by the job"})
    result = probe(daemon, code, timeout_secs=TIMEOUT_SECS)
    assert_killed_for_a_violation(result)
    assert "forged by the job" not in repr(result.error)  # its text is not repeated as the daemon's


@pytest.mark.parametrize("message", [
    {"op": "started"},
    {"op": "noise"},
    {"op": "result", "error": {"name": "E", "value": "v", "traceback": "t"}, "oom_killed": True},
    {"op": "result", "error": ["not", "a", "report"]},
], ids=["second-started", "unknown-op", "result-with-junk", "result-with-bad-error"])
def test_any_out_of_place_message_ends_the_job(daemon, message):
    result = probe(daemon, forging(message), timeout_secs=TIMEOUT_SECS)
    assert_killed_for_a_violation(result)
    assert result.oom_killed is False


def test_memory_is_measured_not_reported(daemon):
    # A job that really holds 200 MiB and claims 1 byte.
    code = forging(old_style_result(memory_peak=1),
                   before="x = bytearray(200 << 20)\nx[::4096] = b'x' * len(x[::4096])\n"
                          "import time\ntime.sleep(0.3)\nprint('before', flush=True)\n")
    result = probe(daemon, code, timeout_secs=TIMEOUT_SECS, memory_limit=1 << 30)
    assert_killed_for_a_violation(result)
    assert result.memory_peak >= 200 * MiB, result


def test_the_daemon_serves_on_with_finite_metrics(daemon):
    for code in (forging(old_style_result(duration_ms=math.nan, cpu_time_us=math.inf)),
                 forging({"op": "failed", "error": "x"})):
        probe(daemon, code, timeout_secs=TIMEOUT_SECS)
    canary = daemon.execute("print(6 * 7)")
    assert (canary.exit_code, canary.stdout, canary.error) == (0, b"42\n", None)
    samples = metric_samples(daemon)
    assert all(math.isfinite(v) for v in samples.values())
    assert samples[("leeward_executions_total", ())] >= 3
