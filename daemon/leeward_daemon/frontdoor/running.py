"""The jobs and session cells a Cancel can reach, by execution_id (PROTOCOL-V2 "New
requests"). Keyed by the peer's uid and the id together: one uid never finds another's
job, nor learns that an id is in use by someone else."""
from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from libleeward.protocol import ErrorCode, ProtocolError

from ..pool.hooks import JobHooks


def new_execution_id() -> str:
    """128 random bits, url-safe: an id nobody can guess."""
    return secrets.token_urlsafe(16)


class RunningJobs:
    def __init__(self) -> None:
        self._hooks: dict[tuple[int | None, str], JobHooks] = {}

    @contextlib.contextmanager
    def running(self, uid: int | None, execution_id: str, hooks: JobHooks) -> Iterator[None]:
        """Cancellable while inside: from the request's arrival (waiting for a sandbox or
        its session's turn included) until its result is made."""
        key = (uid, execution_id)
        if key in self._hooks:
            raise ProtocolError(ErrorCode.OUT_OF_RANGE,
                                f"execution_id {execution_id!r} is already in use by a running job of yours")
        self._hooks[key] = hooks
        try:
            yield
        finally:
            del self._hooks[key]

    def cancel(self, uid: int | None, execution_id: str) -> bool:
        """Whether the caller's job of that id was running (and is now being cancelled)."""
        hooks = self._hooks.get((uid, execution_id))
        if hooks is None:
            return False
        hooks.cancel.set()
        return True
