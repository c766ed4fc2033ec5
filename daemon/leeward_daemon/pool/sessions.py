"""Every open session, keyed by its id and owned by the peer uid that opened it
(PROTOCOL-V2 "Session rules"): caps, ownership, one request at a time in arrival order,
idle TTL and lifetime, and the end of each (its slot released, its end remembered).

A session's slot is taken from the pool like a one-shot job's and the pool is asked
to replace it at once, so sessions never hold one-shot Execute's ready sandboxes.
"""
from __future__ import annotations

import asyncio
import collections
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..config import Config
from ..errors import SessionBusy, SessionEnded, SessionLimit, SessionNotFound
from ..model import SandboxRequest
from .hooks import CancelSignal, wait_first
from .pool import Pool
from .session import SessionSandbox

T = TypeVar("T")
ENDED_REMEMBERED = 4096  # ended ids kept to answer E5003 (beyond: E5001, as for any unknown id)
REASONS = ("closed", "idle_expired", "lifetime_expired", "timeout", "cancelled", "oom", "crashed", "shutdown")


class CancelledInQueue(Exception):
    """A Cancel came while the request waited for its session's turn: it never ran."""

    def __init__(self, session: "Session"):
        super().__init__("cancelled while waiting for the session's turn")
        self.session = session


@dataclass
class Session:
    id: str
    uid: int | None
    sandbox: SessionSandbox
    idle_timeout_secs: float
    max_lifetime_secs: float
    created_at: float = field(default_factory=time.time)
    last_used_at: float = field(default_factory=time.time)
    executions: int = 0
    busy: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting_turns: int = 0  # requests in _take_turn's wait for the lock
    watchdog: asyncio.Task | None = None

    @property
    def expires_at(self) -> float:
        return min(self.last_used_at + self.idle_timeout_secs, self.created_at + self.max_lifetime_secs)

    def describe(self) -> dict:
        return {"id": self.id, "created_at": self.created_at, "last_used_at": self.last_used_at,
                "executions": self.executions, "busy": self.busy, "expires_at": self.expires_at}


class Sessions:
    def __init__(self, pool: Pool, config: Config, on_end: Callable[[str], None] = lambda reason: None):
        self._pool = pool
        self._config = config
        self._on_end = on_end
        self._open: dict[str, Session] = {}
        self._ended: collections.OrderedDict[str, tuple[int | None, str]] = collections.OrderedDict()
        self._opening: dict[int | None, int] = {}  # per uid, counted against the caps while being built

    @property
    def active(self) -> int:
        return len(self._open)

    def describe(self) -> dict:
        return {"active": self.active, "max": self._config.session_cap,
                "per_uid_max": self._config.max_sessions_per_uid}

    def owned_by(self, uid: int | None) -> list[Session]:
        return [s for s in self._open.values() if s.uid == uid]

    async def open(self, uid: int | None, request: SandboxRequest, files: dict[str, bytes],
                   idle_timeout_secs: float, max_lifetime_secs: float) -> Session:
        building = sum(self._opening.values())
        if self.active + building >= self._config.session_cap:
            raise SessionLimit(f"session limit reached: {self.active + building} open "
                               f"(max_sessions {self._config.session_cap})")
        mine = len(self.owned_by(uid)) + self._opening.get(uid, 0)
        if mine >= self._config.max_sessions_per_uid:
            raise SessionLimit(f"session limit reached: uid {uid} has {mine} open "
                               f"(max_sessions_per_uid {self._config.max_sessions_per_uid})")
        self._opening[uid] = self._opening.get(uid, 0) + 1
        try:
            slot = await self._pool.acquire_for_session()
            sandbox = SessionSandbox(slot, request, self._config)
            try:
                await sandbox.open(files)
            except BaseException:
                sandbox.close()
                self._pool.release(slot)
                raise
        finally:
            self._opening[uid] -= 1
            if not self._opening[uid]:
                del self._opening[uid]
        session = Session(secrets.token_urlsafe(16), uid, sandbox, idle_timeout_secs, max_lifetime_secs)
        self._open[session.id] = session
        session.watchdog = asyncio.get_running_loop().create_task(self._watch(session))
        return session

    async def use(self, uid: int | None, session_id: str, work: Callable[[Session], Awaitable[T]],
                  cancel: CancelSignal | None = None) -> T:
        """Runs `work` on the caller's session once the session's earlier requests are
        done (arrival order), waiting at most session_queue_secs. A `cancel` set while
        it waits ends the wait at once (CancelledInQueue): a cancelled request is not
        held up to session_queue_secs behind another's cell."""
        session = self.find(uid, session_id)
        await _take_turn(session, self._config.session_queue_secs, cancel)
        try:
            session = self.find(uid, session_id)  # it may have ended while we waited
            session.busy = True
            try:
                return await work(session)
            finally:
                session.busy = False
                session.last_used_at = time.time()
                if not session.sandbox.alive:
                    self._finish(session)
        finally:
            session.lock.release()

    def find(self, uid: int | None, session_id: str) -> Session:
        session = self._open.get(session_id)
        if session is not None and session.uid == uid:
            if session.sandbox.alive:
                return session
            raise SessionEnded(f"session ended: {session.sandbox.end_reason}")
        ended = self._ended.get(session_id)
        if ended is not None and ended[0] == uid:
            raise SessionEnded(f"session ended: {ended[1]}")
        raise SessionNotFound("no such session")  # nor one of another uid's: existence never leaks

    def end(self, session: Session, reason: str) -> None:
        """Ends it now (a running cell is killed and answered); its slot goes once free."""
        session.sandbox.end(reason)
        if not session.busy:
            self._finish(session)

    def end_all(self, reason: str) -> None:
        for session in list(self._open.values()):
            self.end(session, reason)

    def _finish(self, session: Session) -> None:
        if self._open.pop(session.id, None) is None:
            return
        reason = session.sandbox.end_reason or "crashed"
        self._ended[session.id] = (session.uid, reason)
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)
        if session.watchdog is not None and session.watchdog is not asyncio.current_task():
            session.watchdog.cancel()
        session.sandbox.close()
        if not session.sandbox.slot.closed:  # the pool's stop() may have taken it already
            self._pool.release(session.sandbox.slot)
        self._on_end(reason)

    async def _watch(self, session: Session) -> None:
        """Idle TTL and lifetime; a busy session's idle clock starts when it is free."""
        lifetime_end = session.created_at + session.max_lifetime_secs
        while session.id in self._open:
            now = time.time()
            if now >= lifetime_end:
                self.end(session, "lifetime_expired")
                return
            if not session.busy and now >= session.last_used_at + session.idle_timeout_secs:
                self.end(session, "idle_expired")
                return
            if not session.busy and not session.sandbox.slot.alive():
                session.sandbox.note_death()  # between cells: a thread's OOM, say
                self.end(session, "crashed")
                return
            await asyncio.sleep(max(0.05, min(session.expires_at - now, 1.0)))


async def _take_turn(session: Session, queue_secs: float, cancel: CancelSignal | None) -> None:
    """Takes the session's lock; SessionBusy past `queue_secs`, CancelledInQueue once
    `cancel` is set. The lock is never left taken by a wait that gave up (asyncio.Lock
    hands a cancelled waiter's turn to the next one)."""
    if not session.lock.locked() and not session.waiting_turns:
        # Free and nobody's turn (a released lock stays unlocked until its next waiter
        # runs): taken without a wait. The common case, and no tasks on a cell's path.
        await session.lock.acquire()
        return
    session.waiting_turns += 1
    try:
        await _wait_turn(session, queue_secs, cancel)
    finally:
        session.waiting_turns -= 1


async def _wait_turn(session: Session, queue_secs: float, cancel: CancelSignal | None) -> None:
    acquiring = asyncio.ensure_future(session.lock.acquire())
    try:
        await wait_first({acquiring}, cancel, queue_secs)
    except BaseException:  # this request itself was cancelled (the daemon stopping)
        await _give_up(acquiring)
        if not acquiring.cancelled():
            session.lock.release()
        raise
    await _give_up(acquiring)
    if not acquiring.cancelled():
        return  # taken (a Cancel that came too late is seen by the cell itself)
    if cancel is not None and cancel.is_set():
        raise CancelledInQueue(session)
    raise SessionBusy(f"session busy: other cells ran past session_queue_secs ({queue_secs:g}s)")


async def _give_up(acquiring: asyncio.Task) -> None:
    """Stops a lock wait that is still waiting and lets it finish; it may have taken
    the lock meanwhile (then it is not cancelled)."""
    if acquiring.done():
        return
    acquiring.cancel()
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        pass
