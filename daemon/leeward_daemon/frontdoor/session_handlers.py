"""The session and file requests' handlers (PROTOCOL-V2 "New requests"). Every one is
keyed by the peer's uid: another uid's session is answered exactly as an unknown id."""
from __future__ import annotations

from typing import TYPE_CHECKING

from libleeward.protocol import ErrorCode, ExecutionResult, ProtocolError
from libleeward.session_requests import (
    FileList,
    FileRead,
    FileRemove,
    FileRequest,
    FileWrite,
    SessionClose,
    SessionExecute,
    SessionList,
    SessionOpen,
)

from ..errors import FileRefused, SessionEnded
from ..ipc.messages import FileOp
from ..model import WORKDIR
from ..pool.session import FILE_READ_MAX
from ..pool.sessions import CancelledInQueue, Session
from . import events, sandbox_request
from .accounting import RequestRecord
from .running import new_execution_id

if TYPE_CHECKING:
    from .server import Server


async def session_open(server: Server, request: SessionOpen, record: RequestRecord) -> dict:
    config = server.config
    idle = _within(request.idle_timeout_secs, config.session_idle_timeout_secs, config.max_session_idle_secs,
                   "idle_timeout_secs", "max_session_idle_secs")
    lifetime = _within(request.max_lifetime_secs, config.session_max_lifetime_secs,
                       config.session_max_lifetime_secs, "max_lifetime_secs", "session_max_lifetime_secs")
    sandbox = sandbox_request.build(config, server.pool.limits.name, request.mounts, request.env,
                                    request.memory_limit, lifetime)
    session = await server.sessions.open(record.peer_uid, sandbox, request.files, idle, lifetime)
    record.details["session"] = session.id[:8]
    return {"type": "SessionOpen", "success": True,
            "session": {"id": session.id, "idle_timeout_secs": idle, "max_lifetime_secs": lifetime}}


async def session_execute(server: Server, request: SessionExecute, record: RequestRecord) -> dict:
    run = sandbox_request.code_run(server.config, request,
                                   timeout_secs=request.timeout_secs or server.config.default_timeout_secs)

    execution_id = request.execution_id or new_execution_id()
    hooks, stream = events.for_request(execution_id, request.stream, record.writer)

    async def cell(session: Session) -> tuple[ExecutionResult, dict]:
        session.executions += 1
        result = await session.sandbox.run_cell(run, hooks)
        return result, {"execution_count": session.executions, "session": _state(session)}

    with server.jobs.running(record.peer_uid, execution_id, hooks):
        try:
            result, extra = await server.sessions.use(record.peer_uid, request.session_id, cell, hooks.cancel)
        except CancelledInQueue as queued:  # answered at once, not after the cells ahead of it
            session = queued.session
            result = session.sandbox.never_run(run)
            extra = {"execution_count": session.executions, "session": _state(session)}
    result.execution_id = execution_id  # a session cell is always a v2 request
    if stream is not None:
        stream.display(result.results)
    server.executions.observe(result)
    server.metrics.session_executions.inc()
    record.result = result
    return {"type": "SessionExecute", "success": True, "result": {**result.to_wire(), **extra}}


async def session_close(server: Server, request: SessionClose, record: RequestRecord) -> dict:
    server.sessions.end(server.sessions.find(record.peer_uid, request.session_id), "closed")
    return {"type": "SessionClose", "success": True}


async def session_list(server: Server, request: SessionList, record: RequestRecord) -> dict:
    return {"type": "SessionList", "success": True,
            "sessions": [s.describe() for s in server.sessions.owned_by(record.peer_uid)]}


async def file_request(server: Server, request: FileRequest, record: RequestRecord) -> dict:
    async def on(session: Session):
        op = _file_op(request, session)
        reply = await session.sandbox.file_op(op)
        if reply is None:
            raise SessionEnded(f"session ended: {session.sandbox.end_reason}")
        if reply.error is not None:
            raise FileRefused(reply.error)
        return reply

    reply = await server.sessions.use(record.peer_uid, request.session_id, on)
    answer = {"type": request.type, "success": True}
    if isinstance(request, FileWrite):
        answer["size"] = reply.size
    elif isinstance(request, FileRead):
        answer.update(data=reply.data, size=reply.size, truncated=reply.truncated)
    elif isinstance(request, FileList):
        answer["entries"] = [{"name": e.name, "type": e.type, "size": e.size} for e in reply.entries]
    return answer


def _file_op(request: FileRequest, session: Session) -> FileOp:
    root, parts = _locate(request.path, [m.sandbox for m in session.sandbox.request.mounts if not m.ro])
    if isinstance(request, FileWrite):
        return FileOp("write", root, parts, data=request.data)
    if isinstance(request, FileRead):
        limit = FILE_READ_MAX if request.max_bytes is None else min(request.max_bytes, FILE_READ_MAX)
        return FileOp("read", root, parts, max_bytes=limit)
    return FileOp("list" if isinstance(request, FileList) else "remove", root, parts)


def _locate(path: str, rw_mounts: list[str]) -> tuple[str, list[str]]:
    """(root, components below it): relative paths are under the workdir; an absolute
    one must lie under /tmp or a rw mount (E2005 otherwise)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FileRefused(f"path may not contain '..': {path[:200]!r}")
    if not path.startswith("/"):
        return WORKDIR, parts
    for root in sorted([WORKDIR, *rw_mounts], key=len, reverse=True):
        prefix = [p for p in root.split("/") if p]
        if parts[:len(prefix)] == prefix:
            return root, parts[len(prefix):]
    raise FileRefused(f"path must be relative to {WORKDIR}, or under {WORKDIR} or a rw mount: {path[:200]!r}")


def _within(asked: float | None, default: float, most: float, key: str, bound_key: str) -> float:
    if asked is None:
        return default
    if asked > most:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"'{key}' must be <= {most:g} ({bound_key}), got {asked:g}")
    return asked


def _state(session: Session) -> dict:
    state = {"id": session.id, "alive": session.sandbox.alive}
    if not session.sandbox.alive:
        state["end_reason"] = session.sandbox.end_reason
    return state


HANDLERS = {SessionOpen: session_open, SessionExecute: session_execute, SessionClose: session_close,
            SessionList: session_list, FileWrite: file_request, FileRead: file_request, FileList: file_request,
            FileRemove: file_request}
