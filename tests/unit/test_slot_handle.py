"""The slot handle's exited() future: one reader on the pidfd for the slot's life,
resolved when pid 1 exits or the handle is closed; Slot.close() takes that reader off
before the pidfd goes, so the number's next owner (another slot's channel or pidfd)
keeps its own reader."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

from leeward_daemon.pool.handle import Slot
from leeward_daemon.pool.zygote_link import SlotFds


def _slot(child: subprocess.Popen) -> tuple[Slot, socket.socket, list[int]]:
    ours, theirs = socket.socketpair()
    outputs = [os.pipe(), os.pipe()]
    slot = Slot(SlotFds(1, child.pid, os.pidfd_open(child.pid), ours, outputs[0][0], outputs[1][0]), box=None)
    return slot, theirs, [outputs[0][1], outputs[1][1]]


def test_exited_resolves_when_pid_1_exits_and_is_the_same_future_for_every_wait():
    async def main() -> bool:
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        slot, theirs, ends = _slot(child)
        try:
            first = slot.exited()
            assert slot.exited() is first and not first.done()
            child.stdin.close()
            await asyncio.wait_for(first, 10)
            return slot.exited().done()
        finally:
            child.wait()
            slot.close()
            theirs.close()
            for fd in ends:
                os.close(fd)

    assert asyncio.run(main()) is True


def test_close_resolves_exited_and_leaves_the_fd_numbers_next_owner_alone():
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        slot, theirs, ends = _slot(child)
        next_r, next_w = os.pipe()
        exited = slot.exited()  # its reader is on the pidfd now
        number = slot.pidfd
        slot.kill()
        slot.close()
        os.dup2(next_r, number)  # the number's next owner: a pipe with a reader of its own
        readable = loop.create_future()
        loop.add_reader(number, lambda: readable.done() or readable.set_result(True))
        try:
            await asyncio.sleep(0)
            os.write(next_w, b"x")
            return exited.done(), await asyncio.wait_for(readable, 2)
        except asyncio.TimeoutError:
            return exited.done(), False
        finally:
            loop.remove_reader(number)
            child.wait()
            for fd in (number, next_r, next_w, *ends):
                os.close(fd)
            theirs.close()

    assert asyncio.run(main()) == (True, True)
