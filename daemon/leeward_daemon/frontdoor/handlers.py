"""One handler per request type, in HANDLERS (keyed like libleeward.messages.REQUESTS,
which a test checks): each takes the server, the parsed request and its record, and
returns the reply, or raises a daemon error (frontdoor/errors.py gives its code)."""
from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from libleeward import protocol
from libleeward.abi import VERSION  # include/leeward.h's LEEWARD_VERSION
from libleeward.protocol import Cancel, Execute, ExecutionResult, Ping, Status

from ..errors import RequestFailed, SandboxUnavailable, ShuttingDown
from ..model import Run, SandboxRequest
from ..pool import supervisor
from ..pool.handle import Slot
from ..pool.hooks import JobHooks
from . import events, sandbox_request, session_handlers
from .accounting import RequestRecord, describe_execute
from .running import new_execution_id

if TYPE_CHECKING:
    from .server import Server


# Protocol v2 features that work in this daemon (PROTOCOL-V2 "Discovery"): a client
# sends a v2 field only when the feature is listed here.
PROTOCOL_VERSION = 2
FEATURES = ("sessions", "display", "collect", "files", "argv", "stream", "cancel")


async def ping(server: Server, request: Ping, record: RequestRecord) -> dict:
    problem = server.pool.problem()
    if problem is not None:  # a health check must not hear "fine" from a daemon that cannot serve
        raise SandboxUnavailable(f"daemon unhealthy: {problem}")
    return {**protocol.pong(), "version": PROTOCOL_VERSION, "features": list(FEATURES)}


async def status(server: Server, request: Status, record: RequestRecord) -> dict:
    pool, config = server.pool, server.config
    return {
        "type": "Status", "success": True, "version": VERSION,
        "pool": {"target": config.workers, "idle": pool.idle, "busy": pool.busy,
                 "starting": pool.starting, "total": pool.idle + pool.busy + pool.starting,
                 "recycled": pool.recycled, "last_failure": pool.last_failure,
                 "waiting": pool.waiting, "max_queue": config.max_queue,
                 "max_building": config.max_building, "expired_requests": pool.expired},
        "zygote": pool.link.describe(),
        "healthy": pool.problem() is None,
        "problem": pool.problem(),
        "executions": server.executions.count,
        "failed": dict(server.executions.failed),
        "requests": server.requests,
        "connections": len(server.connections()),
        "max_connections": server.max_connections,
        "refused_connections": server.refused_connections,
        "dropped_stalled_connections": server.dropped_stalled,
        "uptime_secs": time.monotonic() - server.started_at,
        "preloaded": pool.link.preloaded,
        "privileged": os.geteuid() == 0,
        "limits": pool.limits.name,
        "isolation": pool.link.isolation,
        "socket": config.socket_path,
        "socket_activated": server.socket_activated,
        "metrics": server.metrics.endpoint,
        "metrics_error": server.metrics_error,
        "shutting_down": server.draining,
        "pid": os.getpid(),
        "protocol": {"version": PROTOCOL_VERSION, "features": list(FEATURES)},
        "sessions": server.sessions.describe(),
    }


async def execute(server: Server, request: Execute, record: RequestRecord) -> dict:
    """The request becomes what the sandbox applies once (SandboxRequest) and what it
    runs (Run); a slot runs them under the supervisor."""
    record.details.update(describe_execute(request))
    config = server.config
    timeout_secs = request.timeout_secs or config.default_timeout_secs
    sandbox = sandbox_request.build(config, server.pool.limits.name, request.mounts, request.env,
                                    request.memory_limit, timeout_secs)
    code_run = sandbox_request.code_run(config, request, files=request.files, timeout_secs=timeout_secs)
    execution_id = request.execution_id or new_execution_id()
    hooks, stream = events.for_request(execution_id, request.stream, record.writer)
    with server.jobs.running(record.peer_uid, execution_id, hooks):
        slot = await server.pool.acquire(hooks.cancel)
        if slot is None:  # cancelled while it waited for a sandbox
            result = supervisor.cancelled_before_start(sandbox, code_run)
        else:
            result = await _supervise(server, slot, sandbox, code_run, hooks)
    if request.is_v2:  # a v1 request's reply stays byte for byte v1
        result.execution_id = execution_id
    if stream is not None:
        stream.display(result.results)
    server.executions.observe(result)
    record.result = result
    return protocol.execute_ok(result)


async def _supervise(server: Server, slot: Slot, sandbox: SandboxRequest, code_run: Run,
                    hooks: JobHooks) -> ExecutionResult:
    """The job on its slot, which goes back to the pool (to be discarded) whatever happens."""
    server.running.add(slot)
    try:
        result = await supervisor.run(slot, sandbox, code_run, server.config, hooks)
    except RequestFailed:
        if slot not in server.killed:
            raise
    finally:
        server.running.discard(slot)
        server.pool.release(slot)
    if slot in server.killed:
        raise ShuttingDown("the daemon shut down and killed this job after its "
                           f"{server.config.shutdown_grace_secs:g}s shutdown grace")
    return result


async def cancel(server: Server, request: Cancel, record: RequestRecord) -> dict:
    """Another uid's job, like a finished or unknown one, is simply not found."""
    return protocol.cancel_reply(server.jobs.cancel(record.peer_uid, request.execution_id))


Handler = Callable[["Server", Any, RequestRecord], Awaitable[dict]]
HANDLERS: dict[type, Handler] = {Ping: ping, Status: status, Execute: execute, Cancel: cancel,
                                 **session_handlers.HANDLERS}
