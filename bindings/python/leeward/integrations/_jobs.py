"""Running a leeward job from asyncio so that cancelling the awaiting task ends the job in
the daemon (Cancel by its execution_id) instead of leaving it running."""
from __future__ import annotations

import asyncio
import secrets
from typing import Callable, TypeVar

from leeward import ExecutionResult, Leeward, LeewardError

# Between Cancel attempts that found nothing: the job's request may not have reached the
# daemon yet when the task is cancelled.
CANCEL_RETRY_SECS = 0.05

T = TypeVar("T")


def shell(command: str) -> list[str]:
    """The argv of a shell command line (deepagents and AutoGen send command lines)."""
    return ["sh", "-c", command]


async def run_cancellable(job: Callable[[str], T], control: Leeward) -> T:
    """Runs `job(execution_id)` in a worker thread; the job passes the id to the binding,
    which sends it when the daemon offers Cancel. If the awaiting task is cancelled,
    cancels the job through `control` (any connection of the same user) and waits for
    the job to end, so its sandbox is gone when CancelledError propagates. A daemon
    without Cancel leaves the job to finish on its own."""
    cancellable = "cancel" in await asyncio.to_thread(control.cached_features)
    execution_id = secrets.token_urlsafe(16)
    running = asyncio.get_running_loop().run_in_executor(None, job, execution_id)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        if cancellable:
            await _cancel(control, execution_id, running)
        raise


async def _cancel(control: Leeward, execution_id: str, running: asyncio.Future) -> None:
    while not running.done():
        if await asyncio.to_thread(_send_cancel, control, execution_id):
            break
        await asyncio.wait({running}, timeout=CANCEL_RETRY_SECS)
    await asyncio.wait({running})
    if not running.cancelled():
        running.exception()  # retrieved, so asyncio does not log it: nobody wants this reply now


def _send_cancel(control: Leeward, execution_id: str) -> bool:
    """True when the daemon found the job (and ends it)."""
    try:
        return control.cancel(execution_id)
    except LeewardError:
        return False  # the daemon went away: so did the job


def interleaved(run: Callable[..., ExecutionResult]) -> tuple[ExecutionResult, str]:
    """Runs `run(on_stdout=..., on_stderr=...)` and returns its result with stdout and
    stderr as one text in the order the program wrote them, as a terminal shows them (a
    daemon that streams sends each chunk as it comes; one that does not, stdout then
    stderr at the end)."""
    chunks: list[bytes] = []
    result = run(on_stdout=chunks.append, on_stderr=chunks.append)
    return result, b"".join(chunks).decode("utf-8", "replace")
