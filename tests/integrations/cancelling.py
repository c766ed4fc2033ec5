"""Cancel an adapter's job once its sandbox is seen running, and find what is left of it."""
from __future__ import annotations

import asyncio
import os
from typing import Awaitable, Callable

from tests.integration import sandbox_processes

FIND_SECS = 60.0  # bound on waiting for a job to start; not a speed assertion


def marked_sleep(marker: str) -> str:
    """Python that writes its marker in /tmp, then sleeps 30 s; an interrupt sets `interrupted`."""
    return (f"import time\nx = 'kept'\nopen('/tmp/{marker}', 'w').close()\n"
            "try:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    interrupted = True\n    raise\n")


async def cancel_once_running(job: Awaitable, marker: str, cancel: Callable[[], object] | None = None):
    """Runs `job`, cancels it (by `cancel`, else by cancelling its task) once a sandbox holding
    `marker` shows up, and returns (the exception the job ended with or None, that
    sandbox's boxes, its pids)."""
    running = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIND_SECS
    boxes, pids = set(), set()
    while not pids and loop.time() < deadline and not running.done():
        await asyncio.sleep(0.05)
        boxes, pids = await asyncio.to_thread(sandbox_processes.find, marker)
    assert pids, "the job's sandbox never showed up"
    (cancel or running.cancel)()
    try:
        await running
    except BaseException as ended:  # noqa: BLE001 - the caller inspects it
        return ended, boxes, pids
    return None, boxes, pids


def alive(pids: set[int]) -> list[int]:
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
