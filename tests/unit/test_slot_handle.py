"""Slot.close() against a wait_exited that was cancelled but has not run its cleanup
yet: the pidfd's number, once closed, may be the next slot's, and a late cleanup by
number used to take that slot's reader off the event loop (its job then never started)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

from leeward_daemon.pool.handle import Slot
from leeward_daemon.pool.zygote_link import SlotFds


def test_a_late_wait_exited_cleanup_leaves_the_fd_numbers_next_owner_alone():
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        ours, theirs = socket.socketpair()
        outputs = [os.pipe(), os.pipe()]
        next_r, next_w = os.pipe()
        slot = Slot(SlotFds(1, child.pid, os.pidfd_open(child.pid), ours, outputs[0][0], outputs[1][0]), box=None)
        waiting = loop.create_task(slot.wait_exited())
        await asyncio.sleep(0)  # its reader is on the pidfd now
        number = slot.pidfd
        waiting.cancel()  # ... and its cleanup has not run when the slot closes
        slot.close()
        os.dup2(next_r, number)  # the number's next owner: a pipe with a reader of its own
        readable = loop.create_future()
        loop.add_reader(number, lambda: readable.done() or readable.set_result(True))
        try:
            await asyncio.sleep(0)  # the cancelled wait_exited cleans up now
            os.write(next_w, b"x")
            return await asyncio.wait_for(readable, 2)
        except asyncio.TimeoutError:
            return False
        finally:
            loop.remove_reader(number)
            child.kill()
            child.wait()
            for fd in (number, next_r, next_w, outputs[0][1], outputs[1][1]):
                os.close(fd)
            theirs.close()

    assert asyncio.run(main()) is True
