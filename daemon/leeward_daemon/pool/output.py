"""Collects one of a job's output pipes, keeping exactly the first `cap` bytes.

Past the cap the read end is closed, so the job's next write fails with EPIPE (a
`print` raises BrokenPipeError, a `yes` dies of SIGPIPE): a job printing forever is
cut at once instead of running on to its timeout.
"""
from __future__ import annotations

import asyncio
import os


class OutputCollector:
    def __init__(self, fd: int, cap: int):
        self._fd = fd
        self._cap = cap
        self._data = bytearray()
        self.truncated = False
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
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
            self._data += chunk[:room]
            self.truncated = True
            self._finish()
            return
        self._data += chunk

    def _finish(self) -> None:
        if not self._done.done():
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._done.set_result(None)

    async def finished(self) -> None:
        """Until EOF, or the cap, ends the collection."""
        await asyncio.shield(self._done)

    async def collect(self, grace_secs: float) -> bytes:
        """The bytes read; waits for EOF at most `grace_secs` (every writer is dead by
        then unless the sandbox somehow survives its kill)."""
        try:
            await asyncio.wait_for(asyncio.shield(self._done), grace_secs)
        except asyncio.TimeoutError:
            self._finish()
        return bytes(self._data)
