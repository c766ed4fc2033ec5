"""OutputCollector (pool/output.py): every kept chunk reaches the sink in order, caps cut
both alike, and a sink that is behind stops the reading until it has room."""
from __future__ import annotations

import asyncio
import os

from leeward_daemon.pool.output import OutputCollector


class RecordingSink:
    def __init__(self, behind_after: int | None = None):
        self.chunks: list[bytes] = []
        self.behind_after = behind_after  # bytes taken before saying it is behind
        self.room_asked = 0
        self.caught_up = asyncio.Event()

    def write(self, chunk: bytes) -> bool:
        self.chunks.append(chunk)
        return self.behind_after is not None and sum(map(len, self.chunks)) >= self.behind_after

    async def room(self) -> None:
        self.room_asked += 1
        await self.caught_up.wait()


async def _behind_after_first_chunk(first: bytes) -> tuple[OutputCollector, RecordingSink, int]:
    """An uncapped collector whose sink is behind once it took `first` (written and taken
    by the time this returns); returns (collector, sink, the pipe's write end)."""
    read_end, write_end = os.pipe()
    sink = RecordingSink(behind_after=1)
    collector = OutputCollector(read_end, 1 << 30, sink)
    os.write(write_end, first)
    while not sink.chunks:
        await asyncio.sleep(0.001)
    return collector, sink, write_end


def _fill(fd: int, data: bytes) -> int:
    """Writes what fits without blocking; how much that was."""
    os.set_blocking(fd, False)
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:written + 65536])
    except BlockingIOError:
        pass
    return written


def test_the_sink_gets_exactly_what_is_kept_and_the_cap_cuts_both():
    async def main():
        read_end, write_end = os.pipe()
        sink = RecordingSink()
        collector = OutputCollector(read_end, 100, sink)
        os.write(write_end, b"a" * 60)
        await asyncio.sleep(0.01)
        os.write(write_end, b"b" * 60)
        os.close(write_end)
        data = await collector.collect(5.0)
        return data, sink, collector.truncated

    data, sink, truncated = asyncio.run(main())
    assert data == b"a" * 60 + b"b" * 40 and truncated
    assert b"".join(sink.chunks) == data


def test_a_sink_that_is_behind_stops_the_reading_until_it_has_room():
    async def main():
        collector, sink, write_end = await _behind_after_first_chunk(b"first")
        # Paused: the pipe is not read, so it fills and a writer would block.
        written = _fill(write_end, b"x" * (4 << 20))
        for _ in range(20):
            await asyncio.sleep(0.001)
        taken_while_behind = b"".join(sink.chunks)
        sink.behind_after = None
        sink.caught_up.set()
        os.set_blocking(write_end, True)
        os.close(write_end)
        data = await collector.collect(5.0)
        return taken_while_behind, written, data, sink

    taken_while_behind, written, data, sink = asyncio.run(main())
    assert taken_while_behind == b"first" and sink.room_asked == 1
    assert written < 4 << 20  # the pipe filled: the writer was held back
    assert data == b"first" + b"x" * written == b"".join(sink.chunks)


def test_collect_reads_the_rest_even_while_the_sink_is_behind():
    async def main():
        collector, sink, write_end = await _behind_after_first_chunk(b"one")
        os.write(write_end, b"two")
        os.close(write_end)
        return await collector.collect(5.0), sink

    data, sink = asyncio.run(main())
    assert data == b"onetwo" == b"".join(sink.chunks)  # the job is over: no more waiting for room
