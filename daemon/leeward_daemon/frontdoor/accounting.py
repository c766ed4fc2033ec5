"""What the daemon counts and says about each request: its one INFO log line (never the
code or its output), its DEBUG details, the request and execution metrics, and the
execution tallies Status reports."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field

from libleeward.protocol import Execute, ExecutionResult

from ..ops.metrics import Metrics, failure_reason

log = logging.getLogger(__name__)


@dataclass
class RequestRecord:
    """One frame's life, for its log line and its metrics."""
    id: int
    peer_uid: int | None
    started: float = field(default_factory=time.monotonic)
    kind: str = "Error"
    outcome: str = "disconnected"  # "ok", an error code, or the client left mid-request
    result: ExecutionResult | None = None
    details: dict = field(default_factory=dict)
    writer: asyncio.StreamWriter | None = None  # its connection: a streaming request's events go there


@dataclass
class Executions:
    """Jobs the daemon ran, and how many failed for which reason."""
    metrics: Metrics
    count: int = 0
    failed: dict[str, int] = field(default_factory=lambda: {"timeout": 0, "oom": 0, "error": 0})

    def observe(self, result: ExecutionResult) -> None:
        self.count += 1
        reason = failure_reason(result)
        if reason is not None:
            self.failed[reason] += 1
        self.metrics.observe_execution(result)


def describe_execute(request: Execute) -> dict:
    """What DEBUG may say about a job: sizes, limits and a digest, never the code or the
    program's arguments themselves."""
    code = request.code.encode() if not request.argv else b"\0".join(a.encode("utf-8", "surrogateescape")
                                                                     for a in request.argv)
    return {"kind": "argv" if request.argv else "code",
            "code_bytes": len(code), "code_sha256": hashlib.sha256(code).hexdigest()[:16],
            "mounts": len(request.mounts), "files": len(request.files), "env": len(request.env),
            "stdin_bytes": len(request.stdin), "timeout_secs": request.timeout_secs,
            "memory_limit": request.memory_limit}


def account(metrics: Metrics, record: RequestRecord) -> None:
    """The request's one INFO line (no code, no output) and its metrics."""
    elapsed_ms = (time.monotonic() - record.started) * 1000.0
    metrics.observe_request(record.kind, record.outcome)
    extra = ""
    if record.result is not None:
        result = record.result
        extra = f" job={failure_reason(result) or 'success'} exit_code={result.exit_code}"
        if result.cancelled:
            extra += " cancelled=1"
        record.details.update(stdout_bytes=len(result.stdout), stderr_bytes=len(result.stderr),
                              memory_peak=result.memory_peak, cpu_time_us=result.cpu_time_us,
                              denied_syscalls=result.denied_syscalls)
    log.info("request id=%d uid=%s type=%s duration_ms=%.2f outcome=%s%s", record.id,
             "?" if record.peer_uid is None else record.peer_uid, record.kind, elapsed_ms,
             record.outcome, extra)
    if record.details and log.isEnabledFor(logging.DEBUG):
        log.debug("request id=%d details: %s", record.id,
                  " ".join(f"{key}={value}" for key, value in record.details.items()))
