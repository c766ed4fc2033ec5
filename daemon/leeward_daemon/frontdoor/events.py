"""A streaming request's Event frames (PROTOCOL-V2 "Streaming"), written to its own
connection ahead of the response, as the job's output arrives.

Bounded memory per connection: a sink says it is behind once the connection's write
buffer holds more than STREAM_BUFFER_MAX bytes, and the job's pipe is then not read
until the client has caught up (pool/output.py), so a client that does not read
stalls its own job (whose timeout still runs), never the daemon's memory. A client
that went away gets nothing more; its job's output is still collected for the result.
"""
from __future__ import annotations

import asyncio

from libleeward import protocol

from ..pool.hooks import JobHooks

# Bytes queued for one client before its job's pipes stop being read. Two outputs may
# each add one chunk (64 KiB) past it.
STREAM_BUFFER_MAX = 256 * 1024


def for_request(execution_id: str, stream: bool,
                writer: asyncio.StreamWriter | None) -> tuple[JobHooks, EventStream | None]:
    """The hooks a request's job runs with, and its event stream if it asked for one."""
    if not stream or writer is None:
        return JobHooks(), None
    events = EventStream(writer, execution_id)
    return events.hooks(), events


class EventStream:
    def __init__(self, writer: asyncio.StreamWriter, execution_id: str):
        self._writer = writer
        self._execution_id = execution_id

    def hooks(self) -> JobHooks:
        return JobHooks(stdout=_OutputSink(self, "stdout"), stderr=_OutputSink(self, "stderr"))

    def display(self, results: list[dict] | None) -> None:
        """The display results, known only from the job's final report: sent just before
        the response, in emission order."""
        for result in results or []:
            self.send("display", {"main": result["main"], "data": result["data"]})

    def send(self, kind: str, data) -> bool:
        """Queues one Event; True when the client is behind (over STREAM_BUFFER_MAX)."""
        transport = self._writer.transport
        if transport.is_closing():
            return False  # gone: the result is still collected, nobody reads events
        self._writer.write(protocol.encode_frame(protocol.event(self._execution_id, kind, data)))
        return transport.get_write_buffer_size() > STREAM_BUFFER_MAX

    async def room(self) -> None:
        """Returns once the client has read its backlog, or went away."""
        try:
            await self._writer.drain()
        except ConnectionError:
            pass


class _OutputSink:
    """One output's chunks as "stdout" or "stderr" events (pool.output.Sink)."""

    def __init__(self, stream: EventStream, kind: str):
        self._stream = stream
        self._kind = kind

    def write(self, chunk: bytes) -> bool:
        return self._stream.send(self._kind, chunk)

    async def room(self) -> None:
        await self._stream.room()
