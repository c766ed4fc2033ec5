"""What a request attaches to its running job or cell: where its output goes as it
arrives (a streaming request's Event frames) and the signal a Cancel sets."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .output import Sink


class CancelSignal:
    """Set once, by a Cancel. Waiters get a future (`requested`) to put beside their
    other futures in one asyncio.wait: an Event's wait() would need a task of its own
    at every wait, and a session cell waits twice."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future] = []

    def set(self) -> None:
        self._set = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def is_set(self) -> bool:
        return self._set

    def requested(self) -> asyncio.Future:
        """Resolved once set (at once if it is); the waiter may cancel it when done."""
        waiter = asyncio.get_running_loop().create_future()
        if self._set:
            waiter.set_result(None)
        else:
            self._waiters = [w for w in self._waiters if not w.done()]  # earlier waits that gave up
            self._waiters.append(waiter)
        return waiter


async def wait_first(futures: set[asyncio.Future], cancel: CancelSignal | None, timeout: float | None) -> None:
    """Until one of `futures` is done, `cancel` is set, or `timeout` seconds passed (None:
    no limit). The caller then looks at which: its futures, cancel.is_set()."""
    cancelled = cancel.requested() if cancel is not None else None
    try:
        await asyncio.wait(futures | ({cancelled} if cancelled is not None else set()),
                           timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if cancelled is not None:
            cancelled.cancel()


@dataclass(frozen=True)
class JobHooks:
    stdout: Sink | None = None
    stderr: Sink | None = None
    cancel: CancelSignal = field(default_factory=CancelSignal)

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()
