"""The pool of ready sandboxes: asks the zygote for replacements off the request path,
hands each slot to exactly one job, and refuses to serve (fail closed) when slots
cannot be built."""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import select
import signal
import threading
import time

from .. import limits
from ..config import Config
from ..errors import ChannelClosed, DaemonBusy, MalformedMessage, RequestFailed, SandboxUnavailable, ShuttingDown
from ..ipc import messages
from ..limits.base import KILL_TIMEOUT_SECS
from ..limits.stale import remove_stale_boxes, slot_box_id
from .handle import Slot
from .hooks import CancelSignal, wait_first
from .zygote_launch import LaunchedZygote
from .zygote_link import SlotFds, ZygoteLink, ZygoteState

log = logging.getLogger(__name__)
READY_TIMEOUT_SECS = 30.0
FAILURES_BEFORE_REFUSING = 3
RETRY_DELAY_SECS = 1.0
REQUEST_EXPIRY_SECS = 60.0  # a slot takes well under a second to build; allow for a loaded host
REQUEST_EXPIRY_CHECK_SECS = 5.0


class Pool:
    """Accounting, exact under every error path: each slot asked of the zygote is a
    dated entry in `_requests` until the zygote answers it (a slot, a failure, a slot
    that arrived damaged) or dies; an entry it never answers expires and is asked for
    again. Slots received but not yet ready are counted in `_admitting`."""

    def __init__(self, config: Config):
        self._config = config
        # Fail closed: a forced backend that cannot be applied stops the daemon here.
        self.limits = limits.select_backend(config.cgroup_root or None, prefer=config.limits_backend)
        self.link = ZygoteLink(config, self.limits.name, _LinkEvents(self))
        self._idle: collections.deque[Slot] = collections.deque()
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._by_pid: dict[int, Slot] = {}
        self._requests: collections.deque[float] = collections.deque()  # when each was asked for
        self._admitting = 0
        self.busy = 0
        self.recycled = 0
        self.expired = 0  # requests the zygote never answered (see _expire_requests)
        self._failures = 0
        self.last_failure: str | None = None
        self._closed = False
        self._generation = 0  # of the zygote: slots of a dead one are never handed out
        self._admit_tasks: set[asyncio.Task] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._unclaimed: set[limits.Box] = set()  # boxed in a thread, slot not registered yet
        self._unclaimed_lock = threading.Lock()

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def starting(self) -> int:
        return len(self._requests) + self._admitting

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def problem(self) -> str | None:
        """Why the pool cannot serve now, or None: the basis of the daemon's health."""
        if self.link.state is ZygoteState.FAILED:
            return f"the zygote cannot be restarted: {self.link.restart_error}"
        if self._failures >= FAILURES_BEFORE_REFUSING:
            return f"sandboxes cannot be built: {self.last_failure}"
        return None

    async def start(self, zygote: LaunchedZygote | None = None) -> None:
        # Off the loop: killing a dead daemon's leftover sandboxes waits for them to exit.
        await asyncio.get_running_loop().run_in_executor(None, remove_stale_boxes, self.limits)
        await self.link.start(zygote)
        self._expiry = asyncio.get_running_loop().call_later(REQUEST_EXPIRY_CHECK_SECS, self._expire_requests)
        self._replenish()

    def close(self) -> None:
        """Stops serving: waiting and future requests get SHUTTING_DOWN, idle slots are
        killed, no replacement is built; slots running a job are left to their job."""
        self._closed = True
        for timer in (self._retry, self._expiry):
            if timer is not None:
                timer.cancel()
        self._fail_waiters(ShuttingDown("daemon is shutting down"))
        while self._idle:
            self._discard(self._idle.popleft())

    def stop(self) -> None:
        """Kills every slot, busy ones included, and the zygote."""
        self.close()
        for task in self._admit_tasks:
            task.cancel()
        with self._unclaimed_lock:  # a box still being made is destroyed by its thread
            unclaimed, self._unclaimed = self._unclaimed, set()
        for box in unclaimed:
            _destroy_quietly(box)
        for slot in list(self._by_pid.values()):
            slot.kill()
            slot.close()
            # Synchronously: the event loop is about to end, an executor job may never run.
            _destroy_quietly(slot.box)
        self._by_pid.clear()
        self.link.stop()

    async def acquire(self, cancel: CancelSignal | None = None) -> Slot | None:
        """A ready slot; None when `cancel` was set while the request waited for one (a
        Cancel is answered at once, not once a sandbox was built for nothing)."""
        if self._closed:
            raise ShuttingDown("daemon is shutting down")
        while self._idle:
            slot = self._idle.popleft()
            if slot.alive():
                return self._take(slot)
            self._discard(slot)
        problem = self.problem()
        if problem is not None:
            raise SandboxUnavailable(problem)
        if len(self._waiters) >= self._config.max_queue:
            raise DaemonBusy(f"daemon busy: {len(self._waiters)} waiting "
                             f"(max_queue {self._config.max_queue}); retry later")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._replenish()
        try:
            await wait_first({waiter}, cancel, self._config.acquire_timeout_secs)
        except BaseException:  # this request itself was cancelled (the daemon stopping)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._offer(waiter.result())  # handed over meanwhile: not lost with the request
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if waiter.done():
            return self._take(waiter.result())
        if cancel is not None and cancel.is_set():
            return None
        raise SandboxUnavailable(
            f"no sandbox became ready within {self._config.acquire_timeout_secs:g}s"
            + (f" (last failure: {self.last_failure})" if self.last_failure else ""))

    async def acquire_for_session(self) -> Slot:
        """A slot a session keeps for its life: its replacement is asked for at once,
        so sessions never hold the sandboxes one-shot jobs are served from."""
        slot = await self.acquire()
        self._replenish()
        return slot

    def release(self, slot: Slot) -> None:
        """A slot is single-use: after its job it is killed and never served again.
        Its replacement is asked for once the caller has sent its reply (call_soon)."""
        self.busy -= 1
        self.recycled += 1
        self._discard(slot)
        asyncio.get_running_loop().call_soon(self._replenish)

    def _take(self, slot: Slot) -> Slot:
        # Building a replacement competes with the job for the CPU (two cores here):
        # while ready slots remain it waits for release(); only the last one taken
        # starts a build at once.
        self.busy += 1
        if not self._idle:
            self._replenish()
        return slot

    def _discard(self, slot: Slot) -> None:
        exited = None if slot.closed else _dup_or_none(slot.pidfd)
        slot.kill()
        slot.close()
        self._by_pid.pop(slot.pid, None)
        # Removing a cgroup waits for its last process to be gone: off the loop.
        asyncio.get_running_loop().run_in_executor(None, _destroy_once_exited, slot.box, exited)

    def _replenish(self) -> None:
        """Asks for what the target and the waiters lack, never more than max_building
        at once: a burst of requests queues here, not as thousands of half-built slots."""
        if self._closed or not self.link.running:
            return
        wanted = self._config.workers + len(self._waiters) - len(self._idle) - self.starting
        count = min(wanted, self._config.max_building - self.starting)
        if count > 0:
            now = time.monotonic()
            self._requests.extend([now] * count)
            self.link.spawn(count)

    def _answered(self) -> None:
        """The zygote answered the oldest request (late answers to expired ones too)."""
        if self._requests:
            self._requests.popleft()

    def _expire_requests(self) -> None:
        """Self-healing: a request the zygote never answered (a record lost or garbled on
        the way) would otherwise count as "starting" forever."""
        deadline = time.monotonic() - REQUEST_EXPIRY_SECS
        expired = 0
        while self._requests and self._requests[0] < deadline:
            self._requests.popleft()
            expired += 1
        if expired:
            self.expired += expired
            log.warning("%d slot request(s) to the zygote went unanswered for %gs; asking again",
                        expired, REQUEST_EXPIRY_SECS)
            self._replenish()
        if not self._closed:
            self._expiry = asyncio.get_running_loop().call_later(REQUEST_EXPIRY_CHECK_SECS, self._expire_requests)

    def _on_slot(self, fds: SlotFds) -> None:
        self._answered()
        self._admitting += 1
        task = asyncio.get_running_loop().create_task(self._admit(fds, self._generation))
        self._admit_tasks.add(task)  # the loop keeps only a weak reference to tasks
        task.add_done_callback(self._admit_tasks.discard)

    async def _admit(self, fds: SlotFds, generation: int) -> None:
        # In a thread: a cgroup v1 attach waits for an RCU grace period per hierarchy
        # (~1 ms each, five hierarchies here), which would stall every connection.
        # The slot meanwhile builds its root; it gets no job before it is boxed and ready.
        try:
            box = await asyncio.get_running_loop().run_in_executor(None, self._box_for, fds.pid)
        except limits.LimitsError as exc:
            box, error = None, f"cannot put the slot in its {self.limits.name} box: {exc}"
        else:
            error = None if self._claim(box) else "daemon is shutting down"
            if error is not None:
                box = None  # stop() destroyed it
        if error is not None:
            self._admitting -= 1
            signal.pidfd_send_signal(fds.pidfd, signal.SIGKILL)
            for fd in (fds.pidfd, fds.stdout, fds.stderr):
                os.close(fd)
            fds.control.close()
            if box is not None:
                _destroy_quietly(box)
            if not self._closed:
                self._failed(error)
            return
        slot = Slot(fds, box, generation)
        self._by_pid[slot.pid] = slot
        try:
            ready, error = await self._await_ready(slot)
        finally:
            self._admitting -= 1
        if not ready:
            self._discard(slot)
            self._failed(error)
            return
        self._failures = 0
        if self._closed or generation != self._generation:
            self._discard(slot)
            self._replenish()
            return
        self._offer(slot)

    def _offer(self, slot: Slot) -> None:
        """A ready slot to the oldest request waiting for one, else to the idle ones up
        to the target; past it (built for a request that stopped waiting: cancelled, or
        timed out) it is discarded."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        if len(self._idle) >= self._config.workers:
            self._discard(slot)
            return
        self._idle.append(slot)

    def _box_for(self, pid: int) -> limits.Box:
        """Runs in a worker thread (see _admit). Until its slot is registered the box is
        in `_unclaimed`, so stop() can remove it even while this thread still runs."""
        box = self.limits.create_box(slot_box_id(os.getpid(), pid))
        try:
            box.attach(pid)  # before the job exists, so all its processes are inside
            box.prepare(limits.JobLimits(self._config.default_memory_limit, self._config.pids_max))
        except limits.LimitsError:
            box.destroy()
            raise
        with self._unclaimed_lock:
            if self._closed:
                box.destroy()
                raise limits.LimitsError("daemon is shutting down")
            self._unclaimed.add(box)
        return box

    def _claim(self, box: limits.Box) -> bool:
        """False when stop() already removed the box."""
        with self._unclaimed_lock:
            if box not in self._unclaimed:
                return False
            self._unclaimed.discard(box)
            return True

    @staticmethod
    async def _await_ready(slot: Slot) -> tuple[bool, str]:
        try:
            wire, _ = await asyncio.wait_for(slot.channel.recv(), READY_TIMEOUT_SECS)
            said = messages.from_wire(wire, messages.Ready, messages.Failed)
        except (ChannelClosed, MalformedMessage, asyncio.TimeoutError) as exc:
            return False, f"slot did not become ready: {exc or 'timeout'}"
        if isinstance(said, messages.Failed):
            return False, said.error
        return True, ""

    def _on_exit(self, reaped: messages.Exited) -> None:
        slot = self._by_pid.pop(reaped.pid, None)
        if slot is not None and not slot.reaped.done():
            slot.reaped.set_result(reaped)

    def _on_spawn_failed(self, error: str) -> None:
        self._answered()
        self._failed(error)

    def _on_slot_lost(self, reason: str) -> None:
        """A slot message arrived without its fds (the daemon ran out of them) or
        garbled: the request is answered, capacity is asked for again."""
        self._answered()
        self._failed(reason)

    def _failed(self, error: str) -> None:
        self._failures += 1
        self.last_failure = error
        log.error("sandbox slot failed to start: %s", error)
        if self._failures >= FAILURES_BEFORE_REFUSING:
            self._fail_waiters(SandboxUnavailable(f"sandboxes cannot be built: {error}"))
        if self._retry is None or self._retry.cancelled() or self._retry.when() <= asyncio.get_running_loop().time():
            self._retry = asyncio.get_running_loop().call_later(RETRY_DELAY_SECS * min(self._failures, 10),
                                                                self._replenish)

    def _on_zygote_died(self, reason: str) -> None:
        """Its unanswered requests will never be answered and its idle slots can no
        longer be watched (their exit statuses went with it): forget them, and fail the
        waiting requests now rather than at their timeout. Running jobs finish."""
        self._generation += 1
        self._requests.clear()
        while self._idle:
            self._discard(self._idle.popleft())
        self._fail_waiters(SandboxUnavailable(f"the sandbox zygote died ({reason}); it is being restarted, retry"))

    def _fail_waiters(self, error: RequestFailed) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class _LinkEvents:
    """The pool's side of ZygoteLink's events."""

    def __init__(self, pool: Pool):
        self._pool = pool

    def slot(self, fds: SlotFds) -> None:
        self._pool._on_slot(fds)

    def spawn_failed(self, error: str) -> None:
        self._pool._on_spawn_failed(error)

    def slot_lost(self, reason: str) -> None:
        self._pool._on_slot_lost(reason)

    def exited(self, reaped: messages.Exited) -> None:
        self._pool._on_exit(reaped)

    def died(self, reason: str) -> None:
        self._pool._on_zygote_died(reason)

    def restarted(self) -> None:
        self._pool._replenish()


def _dup_or_none(fd: int) -> int | None:
    """None when the daemon is out of fds: the box is then removed at once (kill rounds)."""
    try:
        return os.dup(fd)
    except OSError:
        return None


def _destroy_once_exited(box: limits.Box, exited: int | None) -> None:
    """In a worker thread. `exited`, a pidfd of the slot, is readable once pid 1 has
    exited, which the kernel allows only after every other process of its pid namespace
    is gone: the box is empty then, and removing it is one pass instead of rounds of
    freeze, kill and sleep against a sandbox still exiting."""
    if exited is not None:
        try:
            poller = select.poll()
            poller.register(exited, select.POLLIN)
            poller.poll(KILL_TIMEOUT_SECS * 1000)  # then destroy() kills whatever is left
        finally:
            os.close(exited)
    _destroy_quietly(box)


def _destroy_quietly(box: limits.Box) -> None:
    try:
        box.destroy()
    except limits.LimitsError as exc:
        log.error("could not remove a sandbox's limits box: %s", exc)
