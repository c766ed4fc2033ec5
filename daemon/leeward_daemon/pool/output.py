"""Collects one of a job's output pipes, keeping exactly the first `cap` bytes, and
hands each kept chunk to a sink as it arrives (a streaming request's Event frames).

Past the cap the read end is closed, so the job's next write fails with EPIPE (a
`print` raises BrokenPipeError, a `yes` dies of SIGPIPE): a job printing forever is
cut at once instead of running on to its timeout.

Backpressure: a sink answers a chunk True when its client is behind (its connection's
write buffer is over a bound). Reading stops until its room() returns, so the
pipe fills and the job blocks in write(): a client that does not read holds the job,
not the daemon's memory. The job's timeout still runs. Once the job has ended
(`collect`), the rest is read without waiting: a pipe holds at most pipe-max-size.
"""
from __future__ import annotations

import asyncio
import os
from typing import Protocol


class Sink(Protocol):
    """Where each kept chunk goes as it arrives."""

    def write(self, chunk: bytes) -> bool:
        """Takes the chunk; True when its reader is behind and reading should wait for room()."""

    async def room(self) -> None:
        """Returns once the reader has caught up (or is gone)."""


class OutputCollector:
    def __init__(self, fd: int, cap: int, sink: Sink | None = None):
        self._fd = fd
        self._cap = cap
        self._sink = sink
        self._data = bytearray()
        self.truncated = False
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        self._bounded = True  # until collect(): then the rest is read whatever the sink says
        self._paused: asyncio.Task | None = None  # waiting for the sink's room; not reading meanwhile
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._finish()
            return
        room = self._cap - len(self._data)
        if len(chunk) > room:
            self._keep(chunk[:room])
            self.truncated = True
            self._finish()
            return
        self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._data += chunk
        if self._sink is None:
            return
        behind = self._sink.write(chunk)
        if behind and self._bounded and not self._done.done():
            self._loop.remove_reader(self._fd)
            self._paused = self._loop.create_task(self._resume_after_room(self._sink))

    async def _resume_after_room(self, sink: Sink) -> None:
        await sink.room()
        self._resume()

    def _resume(self) -> None:
        if self._paused is not None and not self._done.done():
            self._paused = None
            self._loop.add_reader(self._fd, self._on_readable)

    def _finish(self) -> None:
        if not self._done.done():
            if self._paused is None:
                self._loop.remove_reader(self._fd)
            else:
                self._paused.cancel()
            os.close(self._fd)
            self._done.set_result(None)

    async def finished(self) -> None:
        """Until EOF, or the cap, ends the collection."""
        await asyncio.shield(self._done)

    async def collect(self, grace_secs: float) -> bytes:
        """The bytes read; waits for EOF at most `grace_secs` (every writer is dead by
        then unless the sandbox somehow survives its kill). The sink's backpressure
        ends here: what is left is at most a pipe's capacity."""
        self._bounded = False
        if self._paused is not None:
            self._paused.cancel()
            self._resume()
        if not self._done.done():
            self._on_readable()  # mostly at EOF already: then no timer and no task to wait on
        if not self._done.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._done), grace_secs)
            except asyncio.TimeoutError:
                self._finish()
        return bytes(self._data)

