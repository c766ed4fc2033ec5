"""Daemon-side handle of one sandbox slot (pid 1 of its namespaces): its pidfd, its
control channel, its output pipes and its limits box."""
from __future__ import annotations

import asyncio
import os
import select
import signal

from .. import limits
from ..ipc.async_channel import AsyncChannel
from .zygote_link import SlotFds


class Slot:
    """Daemon-side handle of one sandbox (pid 1 of its namespaces)."""

    def __init__(self, fds: SlotFds, box: limits.Box, generation: int = 0):
        self.id, self.pid, self.pidfd = fds.slot_id, fds.pid, fds.pidfd
        self.generation = generation  # of the zygote that made it
        self.box = box  # its cgroup (or rlimit holder): limits and accounting of its job
        self._outputs: tuple[int, int] | None = (fds.stdout, fds.stderr)
        self.channel = AsyncChannel(fds.control)
        # The zygote's report of reaping pid 1 (messages.Exited): its wait status and peak.
        self._loop = asyncio.get_running_loop()
        self.reaped: asyncio.Future = self._loop.create_future()
        self._exited: asyncio.Future | None = None
        self.closed = False

    def take_outputs(self) -> tuple[int, int]:
        """Hands the stdout/stderr read ends to the caller, who then owns (closes) them."""
        assert self._outputs is not None, "outputs already taken"
        outputs, self._outputs = self._outputs, None
        return outputs

    def alive(self) -> bool:
        if self.closed:
            return False
        # poll, not select: the daemon's fds may number past FD_SETSIZE (1024).
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return not poller.poll(0)

    def kill(self) -> None:
        if self.closed:
            return
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def exited(self) -> asyncio.Future:
        """Resolves once pid 1 is gone, which the kernel allows only after every other
        process of its pid namespace is gone too (or once the handle is closed). One
        future for the slot's life, its reader on the pidfd added once: a session waits
        on it beside every cell. Shared: wait on it, never cancel it."""
        if self._exited is None:
            self._exited = self._loop.create_future()
            if self.alive():
                self._loop.add_reader(self.pidfd, self._on_exit)
            else:
                self._exited.set_result(None)
        return self._exited

    def _on_exit(self) -> None:
        self._loop.remove_reader(self.pidfd)
        if not self._exited.done():
            self._exited.set_result(None)

    def close(self) -> None:
        """Idempotent: a closed fd number may already belong to someone else."""
        if self.closed:
            return
        self.closed = True
        self.channel.close()
        # The pidfd's reader goes before the fd does, never by number after (when the
        # number may already be another slot's channel or pidfd).
        self._loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)  # killed and let go: gone, as far as its waiters go
        if self._outputs is not None:
            for fd in self._outputs:
                os.close(fd)
            self._outputs = None
