"""Metrics derived from execution results, the live pool gauges, and the HTTP endpoint."""
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leeward_daemon.ops.metrics import Metrics, PoolState, failure_reason
from libleeward.protocol import ExecutionResult


@pytest.mark.parametrize("result, reason", [
    (ExecutionResult(exit_code=0), None),
    (ExecutionResult(exit_code=1), "error"),
    (ExecutionResult(exit_code=-11), "error"),  # died by a signal of its own
    (ExecutionResult(exit_code=-9, timed_out=True), "timeout"),
    (ExecutionResult(exit_code=-9, oom_killed=True), "oom"),
    (ExecutionResult(exit_code=-9, timed_out=True, oom_killed=True), "oom"),
])
def test_one_failure_reason_per_execution(result, reason):
    assert failure_reason(result) == reason


def _metrics(state=PoolState(1, 2, 3, 4), connections=5) -> Metrics:
    return Metrics(lambda: state, lambda: connections)


def test_executions_are_counted_by_outcome():
    metrics = _metrics()
    for result in [ExecutionResult(exit_code=0, duration_ms=1.5, memory_peak=1 << 20, cpu_time_us=250_000),
                   ExecutionResult(exit_code=2, duration_ms=2.5, memory_peak=3 << 20, cpu_time_us=500_000),
                   ExecutionResult(exit_code=-9, timed_out=True, duration_ms=1000.0)]:
        metrics.observe_execution(result)
    value = metrics.registry.get_sample_value
    assert value("leeward_executions_total") == 3
    assert [value("leeward_executions_failed_total", {"reason": r}) for r in ("timeout", "oom", "error")] == [1, 0, 1]
    assert value("leeward_execution_duration_seconds_count") == 3
    assert value("leeward_execution_duration_seconds_sum") == pytest.approx(1.004)
    assert value("leeward_memory_usage_bytes_sum") == 4 << 20
    assert value("leeward_memory_usage_bytes_bucket", {"le": "1.048576e+06"}) == 2  # 1 MiB and 0 (timed out)
    assert value("leeward_cpu_time_seconds_total") == pytest.approx(0.75)


def test_requests_by_type_and_outcome():
    metrics = _metrics()
    metrics.observe_request("Execute", "ok")
    metrics.observe_request("Execute", "E2002")
    metrics.observe_request("Execute", "ok")
    value = metrics.registry.get_sample_value
    assert value("leeward_requests_total", {"type": "Execute", "outcome": "ok"}) == 2
    assert value("leeward_requests_total", {"type": "Execute", "outcome": "E2002"}) == 1


def test_pool_and_connections_are_read_when_scraped():
    state = {"now": PoolState(idle=1, busy=2, starting=3, recycled=4)}
    metrics = Metrics(lambda: state["now"], lambda: 5)
    value = metrics.registry.get_sample_value
    assert [value("leeward_workers_total", {"state": s}) for s in ("idle", "busy", "starting")] == [1, 2, 3]
    assert value("leeward_worker_recycles_total") == 4
    assert value("leeward_connections_active") == 5
    state["now"] = PoolState(idle=0, busy=0, starting=0, recycled=9)
    assert value("leeward_worker_recycles_total") == 9


def test_endpoint_serves_only_leewards_metrics():
    metrics = _metrics()
    endpoint = metrics.serve("127.0.0.1", 0)  # port 0: the kernel picks a free one
    try:
        with urllib.request.urlopen(endpoint, timeout=30) as response:
            text = response.read().decode()
    finally:
        metrics.stop()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert names == {"leeward_executions", "leeward_executions_failed", "leeward_execution_duration_seconds",
                     "leeward_memory_usage_bytes", "leeward_cpu_time_seconds", "leeward_requests",
                     "leeward_workers_total", "leeward_worker_recycles", "leeward_connections_active",
                     "leeward_requests_waiting", "leeward_zygote_restarts", "leeward_healthy",
                     "leeward_sessions_active", "leeward_sessions_ended", "leeward_session_executions"}
    assert metrics.endpoint is None


@pytest.mark.parametrize("field, bad", [
    ("duration_ms", float("nan")), ("duration_ms", float("inf")), ("duration_ms", -1.0),
    ("cpu_time_us", float("inf")), ("cpu_time_us", -5), ("memory_peak", 2 ** 2000), ("memory_peak", "1"),
])
def test_a_measurement_that_is_not_a_finite_non_negative_number_is_never_observed(field, bad):
    metrics = _metrics()
    metrics.observe_execution(ExecutionResult(exit_code=0, duration_ms=2.0, memory_peak=1 << 20, cpu_time_us=1000))
    metrics.observe_execution(ExecutionResult(**{"exit_code": 0, "duration_ms": 2.0, "memory_peak": 1 << 20,
                                                 "cpu_time_us": 1000, field: bad}))
    value = metrics.registry.get_sample_value
    assert value("leeward_executions_total") == 2
    assert value("leeward_execution_duration_seconds_sum") == pytest.approx(0.002 * (2 if field != "duration_ms" else 1))
    assert value("leeward_memory_usage_bytes_sum") == (1 << 20) * (2 if field != "memory_peak" else 1)
    assert value("leeward_cpu_time_seconds_total") == pytest.approx(0.001 * (2 if field != "cpu_time_us" else 1))
