"""Daemon side of seccomp denial reporting: the job's listener fd served on the event
loop, so a denied syscall is answered (EPERM) while the job waits, and named in the
result's `denied_syscalls`."""
from __future__ import annotations

import asyncio
import logging
import os

from ..isolation.seccomp_policy import DenialReporter

log = logging.getLogger(__name__)


class DenialWatch:
    """Takes the first listener fd a slot sends; ignores (closes) any later fd, which
    can only come from the job's own code forging a message."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._reporter: DenialReporter | None = None  # kept after close(): it holds the names

    def attach(self, fds: list[int]) -> None:
        if self._reporter is not None or not fds:
            _close_all(fds)
            return
        listener, rest = fds[0], fds[1:]
        _close_all(rest)
        self._reporter = DenialReporter(listener)
        self._loop.add_reader(listener, self._on_ready)

    @property
    def names(self) -> list[str]:
        return self._reporter.denied if self._reporter is not None else []

    def close(self) -> None:
        """Idempotent; later fds a forged message might bring are still refused."""
        if self._reporter is not None:
            self._stop_reading()
            self._reporter.close()

    def _on_ready(self) -> None:
        assert self._reporter is not None
        try:
            self._reporter.handle_ready()
        except OSError as exc:  # not a seccomp listener after all, or the kernel said no
            log.warning("seccomp listener failed: %s", exc)
            self._stop_reading()
            return
        if self._reporter.hung_up:  # every task of the job has exited: POLLHUP forever
            self._stop_reading()

    def _stop_reading(self) -> None:
        if self._reporter is not None and self._reporter.fileno() >= 0:
            self._loop.remove_reader(self._reporter.fileno())


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
