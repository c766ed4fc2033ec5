"""The daemon's drain: stop accepting, end every session, let running jobs finish
within the grace, kill what still runs, answer every client that sent a request, then stop the pool."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger(__name__)
# After the grace, killed jobs still need their supervisor to collect output and reap
# (bounded by its own EXIT_GRACE_SECS): wait that long before dropping connections.
KILLED_REPLY_WAIT_SECS = 15.0
# Replies already made get this long to reach their clients at the end: one that does
# not read its reply never holds the shutdown for the grace.
REPLY_FLUSH_SECS = 5.0
# How often a wait looks again at which requests still work (one may turn to replying).
RECHECK_SECS = 0.2


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

    def working() -> set[asyncio.Task]:
        """Requests not yet at their reply (running, queued or being read)."""
        return {c.task for c in server.connections() if c.busy and not c.replying and c.task is not None}

    if working():
        log.info("shutting down: waiting up to %gs for %d running request(s)",
                 server.config.shutdown_grace_secs, len(working()))
        await _wait(working, server.config.shutdown_grace_secs, hurry)
    if working():
        log.warning("shutting down: killing %d job(s) still running after the grace", len(server.running))
        server.killed.update(server.running)
        for slot in list(server.running):
            slot.kill()
        await _wait(working, KILLED_REPLY_WAIT_SECS, None)

    def busy() -> set[asyncio.Task]:
        return {c.task for c in server.connections() if c.busy and c.task is not None}

    await _wait(busy, REPLY_FLUSH_SECS, None)
    for task in busy():
        task.cancel()
    for conn in server.connections():
        conn.writer.close()
    server.pool.stop()
    server.metrics.stop()
    log.info("leeward daemon stopped")


async def _wait(pending_now: Callable[[], set[asyncio.Task]], timeout: float, hurry: asyncio.Event | None) -> None:
    """Waits until `pending_now()` is empty, up to `timeout`, or until `hurry` is set."""
    hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
    deadline = time.monotonic() + timeout
    try:
        while (pending := {t for t in pending_now() if not t.done()}) and not (hurry is not None and hurry.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait(pending | ({hurried} if hurried else set()), timeout=min(remaining, RECHECK_SECS),
                               return_when=asyncio.FIRST_COMPLETED)
    finally:
        if hurried is not None:
            hurried.cancel()
