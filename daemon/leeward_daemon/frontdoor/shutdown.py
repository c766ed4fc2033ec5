"""The daemon's drain: stop accepting, end every session, let running jobs finish
within the grace, kill what still runs, answer every client that sent a request, then stop the pool."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger(__name__)
# After the grace, killed jobs still need their supervisor to collect output and reap
# (bounded by its own EXIT_GRACE_SECS): wait that long before dropping connections.
KILLED_REPLY_WAIT_SECS = 15.0


async def drain(server: Server, hurry: asyncio.Event | None = None) -> None:
    """Stops accepting, lets running jobs finish for up to shutdown_grace_secs (or
    until `hurry` is set), kills what still runs, replies to every client that sent
    a request, then kills every sandbox. The socket file goes first, so no new
    client can connect to a daemon that will not serve it."""
    server.draining = True
    server.stop_listening()
    if not server.socket_activated:  # systemd's socket file stays: it starts us again on demand
        with contextlib.suppress(FileNotFoundError):
            os.unlink(server.config.socket_path)
    server.pool.close()
    server.sessions.end_all("shutdown")  # a cell running now is killed and answered
    for conn in server.connections():
        if not conn.busy:
            conn.writer.close()  # idle: no request to answer; the client sees EOF
    busy = {c.task for c in server.connections() if c.busy and c.task is not None}
    if busy:
        log.info("shutting down: waiting up to %gs for %d running request(s)",
                 server.config.shutdown_grace_secs, len(busy))
        busy = await _wait(busy, server.config.shutdown_grace_secs, hurry)
    if busy:
        log.warning("shutting down: killing %d job(s) still running after the grace", len(server.running))
        server.killed.update(server.running)
        for slot in list(server.running):
            slot.kill()
        busy = await _wait(busy, KILLED_REPLY_WAIT_SECS, None)
    for task in busy:
        task.cancel()
    for conn in server.connections():
        conn.writer.close()
    server.pool.stop()
    server.metrics.stop()
    log.info("leeward daemon stopped")


async def _wait(tasks: set[asyncio.Task], timeout: float, hurry: asyncio.Event | None) -> set[asyncio.Task]:
    """Waits for `tasks` up to `timeout`, or until `hurry` is set; returns those still running."""
    hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
    deadline = time.monotonic() + timeout
    pending = {t for t in tasks if not t.done()}
    try:
        while pending and not (hurry is not None and hurry.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait(pending | ({hurried} if hurried else set()), timeout=remaining,
                               return_when=asyncio.FIRST_COMPLETED)
            pending = {t for t in pending if not t.done()}
    finally:
        if hurried is not None:
            hurried.cancel()
    return pending
