"""Jobs the adapters send beyond what Session.run covers (a program by argv, an
execution_id to cancel by), and running one from asyncio so that cancelling the awaiting
task ends the job in the daemon instead of leaving it running."""
from __future__ import annotations

import asyncio
import secrets
from typing import Any, Callable, Sequence, TypeVar

from leeward import ExecutionResult, Leeward, LeewardError, parse_size
from leeward._session import cell_fields

# Between Cancel attempts that found nothing: the job's request may not have reached the
# daemon yet when the task is cancelled.
CANCEL_RETRY_SECS = 0.05

T = TypeVar("T")


def daemon_features(socket_path: str | None) -> frozenset[str]:
    """What the daemon's protocol offers ("sessions", "display", "argv", "cancel", ...)."""
    with Leeward(socket_path) as client:
        return frozenset(client.features())


def shell(command: str) -> list[str]:
    """The argv of a shell command line (deepagents and AutoGen send command lines)."""
    return ["sh", "-c", command]


def run_job(client: Leeward, *, code: str | None = None, argv: Sequence[str] | None = None,
            session_id: str | None = None, timeout: float | None = None, display: bool = False,
            memory_limit: int | str | None = None, execution_id: str | None = None) -> ExecutionResult:
    """Runs Python `code` or the program `argv`, in the session `session_id` or else in a
    fresh sandbox (whose memory_limit may be given: a session's is set when it opens). Needs a daemon whose features list "argv" for argv and "cancel" for an
    execution_id (a daemon refuses fields it does not know)."""
    request: dict[str, Any] = {"type": "SessionExecute", "session_id": session_id} if session_id else {"type": "Execute"}
    if argv is not None:
        request["argv"] = list(argv)
    else:
        request["code"] = code
    if memory_limit is not None and session_id is None:
        request["memory_limit"] = parse_size(memory_limit)
    request.update(cell_fields(timeout=timeout, stdin=None, display=display, collect=()))
    if execution_id is not None:
        request["execution_id"] = execution_id
    return ExecutionResult.from_wire(client.call(request)["result"])


async def run_cancellable(job: Callable[[str | None], T], *, socket_path: str | None, cancellable: bool) -> T:
    """Runs `job(execution_id)` in a worker thread (execution_id None: the daemon
    offers no Cancel, so the job must not send one). If the awaiting task is cancelled, sends Cancel for
    the job (on a connection of its own: the job's is busy) and waits for the job to end,
    so its sandbox is gone when CancelledError propagates. cancellable: the daemon offers
    Cancel (its features list "cancel"); without it the job is left to finish on its own."""
    execution_id = secrets.token_urlsafe(16) if cancellable else None
    running = asyncio.get_running_loop().run_in_executor(None, job, execution_id)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        if execution_id is not None:
            await _cancel(socket_path, execution_id, running)
        raise


async def _cancel(socket_path: str | None, execution_id: str, running: asyncio.Future) -> None:
    while not running.done():
        if await asyncio.to_thread(_send_cancel, socket_path, execution_id):
            break
        await asyncio.wait({running}, timeout=CANCEL_RETRY_SECS)
    await asyncio.wait({running})
    if not running.cancelled():
        running.exception()  # retrieved, so asyncio does not log it: nobody wants this reply now


def _send_cancel(socket_path: str | None, execution_id: str) -> bool:
    """True when the daemon found the job (and ends it)."""
    try:
        with Leeward(socket_path) as client:
            return bool(client.call({"type": "Cancel", "execution_id": execution_id}).get("found"))
    except LeewardError:
        return False  # the daemon went away: so did the job
