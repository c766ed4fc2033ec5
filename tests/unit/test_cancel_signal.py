"""CancelSignal: the futures a job and a session cell wait on beside their others."""
from __future__ import annotations

import asyncio

from leeward_daemon.pool.hooks import CancelSignal, JobHooks


def test_waiters_before_and_after_the_set_are_resolved():
    async def main() -> tuple[bool, bool, bool, bool]:
        signal = CancelSignal()
        before = signal.requested()
        given_up = signal.requested()
        given_up.cancel()  # a wait that ended otherwise
        unset = before.done()
        signal.set()
        await asyncio.sleep(0)
        return unset, before.done() and not before.cancelled(), signal.requested().done(), signal.is_set()

    assert asyncio.run(main()) == (False, True, True, True)


def test_a_job_is_cancelled_once_its_signal_is_set():
    hooks = JobHooks()
    assert not hooks.cancelled
    hooks.cancel.set()
    assert hooks.cancelled
