"""Prometheus metrics of one daemon, served over HTTP from a thread of the daemon.

Everything is counted here, in the daemon, from the results the supervisor returns:
sandboxes never write metrics (no shared directory a sandbox could write to), and a
dedicated registry keeps the process's default collectors and any other library's
metrics out of leeward's endpoint.
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from libleeward.protocol import ExecutionResult

log = logging.getLogger(__name__)
# The *_created series (a timestamp per counter) only repeat the daemon's start time.
disable_created_metrics()

FAILURE_REASONS = ("timeout", "oom", "error")
# Wall-clock seconds from a sub-millisecond print() to the 300 s default maximum.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Peak memory of a job, 1 MiB to 4 GiB (the default maximum) in powers of 4.
MEMORY_BUCKETS = tuple(float(1 << shift) for shift in range(20, 34, 2))


def failure_reason(result: ExecutionResult) -> str | None:
    """Why an execution failed, or None when it exited 0. One reason per execution, the
    most specific first: the kernel's OOM killer struck ("oom"), else the wall clock ran
    out ("timeout"), else the code exited non-zero, raised, or died by a signal ("error")."""
    if result.oom_killed:
        return "oom"
    if result.timed_out:
        return "timeout"
    if result.exit_code != 0:
        return "error"
    return None


def _measurement(value: object, per_unit: int) -> float | None:
    """`value / per_unit` when it is a finite, non-negative number, else None (logged):
    a single NaN or infinity in a histogram's sum or a counter poisons it until restart.
    The supervisor only reports the daemon's own measurements; this is the last guard."""
    try:
        number = float(value) / per_unit if type(value) in (int, float) else math.nan
    except OverflowError:  # an int beyond any float
        number = math.inf
    if math.isfinite(number) and number >= 0:
        return number
    log.warning("metrics: ignored a measurement that is not a finite, non-negative number: %.40r", value)
    return None


@dataclass(frozen=True)
class PoolState:
    idle: int
    busy: int
    starting: int
    recycled: int
    waiting: int = 0          # requests queued for a sandbox
    zygote_restarts: int = 0
    healthy: bool = True      # False: the daemon cannot run jobs now (see Status "problem")


class _LiveCollector:
    """State read when scraped (from the HTTP thread): plain int reads of the pool and
    server, which the event loop alone writes."""

    def __init__(self, pool_state: Callable[[], PoolState], connections: Callable[[], int]):
        self._pool_state = pool_state
        self._connections = connections

    def collect(self):
        state = self._pool_state()
        workers = GaugeMetricFamily("leeward_workers_total", "Sandboxes by state", labels=["state"])
        for name in ("idle", "busy", "starting"):
            workers.add_metric([name], getattr(state, name))
        yield workers
        yield CounterMetricFamily("leeward_worker_recycles", "Sandboxes thrown away after serving a job "
                                  "(each sandbox is single-use)", value=state.recycled)
        yield GaugeMetricFamily("leeward_connections_active", "Open client connections", value=self._connections())
        yield GaugeMetricFamily("leeward_requests_waiting", "Requests waiting for a sandbox", value=state.waiting)
        yield CounterMetricFamily("leeward_zygote_restarts", "Times the zygote died and was started again",
                                  value=state.zygote_restarts)
        yield GaugeMetricFamily("leeward_healthy", "1 when the daemon can run jobs; 0 when the zygote cannot "
                                "be restarted or sandboxes cannot be built", value=int(state.healthy))


class Metrics:
    def __init__(self, pool_state: Callable[[], PoolState], connections: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.executions = Counter("leeward_executions", "Jobs that ran to a result", registry=self.registry)
        self.failed = Counter("leeward_executions_failed", "Jobs that ran but failed, by reason "
                              "(oom, else timeout, else a non-zero exit)", ["reason"], registry=self.registry)
        for reason in FAILURE_REASONS:  # every series exists from the start, at 0
            self.failed.labels(reason)
        self.duration = Histogram("leeward_execution_duration_seconds", "Wall-clock time of each job",
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.memory = Histogram("leeward_memory_usage_bytes", "Peak memory of each job (kernel accounting "
                                "under cgroups)", buckets=MEMORY_BUCKETS, registry=self.registry)
        self.cpu = Counter("leeward_cpu_time_seconds", "CPU time used by jobs", registry=self.registry)
        self.requests = Counter("leeward_requests", "Requests answered, by type and outcome "
                                "(ok or the error code)", ["type", "outcome"], registry=self.registry)
        self.registry.register(_LiveCollector(pool_state, connections))
        self.sessions_active = Gauge("leeward_sessions_active", "Sessions open now", registry=self.registry)
        self.sessions_ended = Counter("leeward_sessions_ended", "Sessions that ended, by reason",
                                      ["reason"], registry=self.registry)
        self.session_executions = Counter("leeward_session_executions", "Session cells that ran to a result",
                                          registry=self.registry)
        self._httpd = None
        self._thread: threading.Thread | None = None
        self.endpoint: str | None = None

    def observe_execution(self, result: ExecutionResult) -> None:
        self.executions.inc()
        reason = failure_reason(result)
        if reason is not None:
            self.failed.labels(reason).inc()
        for record, value in ((self.duration.observe, _measurement(result.duration_ms, 1000)),
                              (self.memory.observe, _measurement(result.memory_peak, 1)),
                              (self.cpu.inc, _measurement(result.cpu_time_us, 1_000_000))):
            if value is not None:
                record(value)

    def observe_request(self, kind: str, outcome: str) -> None:
        self.requests.labels(kind, outcome).inc()

    def serve(self, address: str, port: int) -> str:
        """Starts the HTTP endpoint; raises OSError when the address cannot be bound."""
        self._httpd, self._thread = start_http_server(port, address, registry=self.registry)
        host = f"[{address}]" if ":" in address else address
        self.endpoint = f"http://{host}:{self._httpd.server_port}/metrics"
        return self.endpoint

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
            self.endpoint = None
