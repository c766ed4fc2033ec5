"""The binding's one exception tree; `code` is the protocol's stable error code.

    LeewardError                  every failure; .code ("E1006", ...), .message, .retryable
    ├── DaemonUnavailable         E1006: no daemon answered, it went away, or this client is closed
    ├── UntrustedSocket           E1007: the socket is not yours or root's; nothing was sent
    ├── InvalidRequest            E1xxx, E2xxx: the request was refused as invalid
    ├── SandboxError              E3xxx: the daemon could not run the job
    │   └── DaemonBusy            E3004: at its limit, nothing ran; retryable
    ├── SessionError              E5xxx: a session request could not be served
    │   ├── SessionNotFound       E5001: no such session (or not yours: the same answer)
    │   ├── SessionBusy           E5002: its cells queued past the daemon's wait; retryable
    │   ├── SessionEnded          E5003: it ended; .reason says why ("closed", "timeout", "oom", ...)
    │   └── SessionLimit          E5004: max_sessions or max_sessions_per_uid reached
    └── LibraryNotFound           libleeward.so could not be found or loaded

E2009 (`code` and `argv` both or neither) and E2010 (a feature turned off by the daemon's
config) are InvalidRequest, as every E2xxx.

A code maps to its class through one table (from_code); the codes themselves come from
include/leeward.h (libleeward.abi).
"""
from __future__ import annotations

import re

from libleeward.abi import ErrorCode

# Codes that mean "not now" rather than "no": the same request may succeed if sent again
# after a short wait (E3004: the daemon's queue or connection limit is full; E5002: the
# session's earlier cells held it past the queue wait).
RETRYABLE_CODES = frozenset({ErrorCode.DAEMON_BUSY.value, ErrorCode.SESSION_BUSY.value})

# What ended a session, as E5003's message names it (PROTOCOL-V2 "Session rules").
END_REASONS = ("closed", "idle_expired", "lifetime_expired", "timeout", "oom", "crashed", "shutdown")
_END_REASON = re.compile(r"\b(" + "|".join(END_REASONS) + r")\b")


class LeewardError(Exception):
    """The request failed. `code` is stable ("E1006", ...), `message` is for humans."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        """True when sending the same request again later may succeed."""
        return self.code in RETRYABLE_CODES


class DaemonUnavailable(LeewardError):
    """No daemon answered on the socket, it went away during the call, or this
    client was closed (E1006)."""


class UntrustedSocket(LeewardError):
    """The socket is served by, or its per-user directory belongs to, a uid that is
    neither yours nor root's: no code was sent (E1007)."""


class InvalidRequest(LeewardError):
    """The request was refused as invalid (E1xxx frame, E2xxx content: bad mount, limit out of range)."""


class SandboxError(LeewardError):
    """The daemon could not run the job (E3xxx): no sandbox, sandbox failure, shutting down."""


class DaemonBusy(SandboxError):
    """The daemon is at its limit (E3004: max_queue waiting requests, or max_connections):
    nothing ran; retry after a short wait (`retryable` is True)."""


class SessionError(LeewardError):
    """A session request could not be served (E5xxx)."""


class SessionNotFound(SessionError):
    """No session has this id for you (E5001): unknown, or another user's (the daemon
    gives both the same answer, so a session's existence does not leak)."""


class SessionBusy(SessionError):
    """The session's earlier cells kept this one waiting past the daemon's
    session_queue_secs (E5002): nothing ran; retry (`retryable` is True)."""


class SessionEnded(SessionError):
    """The session has ended (E5003); `reason` is what ended it, one of END_REASONS
    ("closed", "idle_expired", "lifetime_expired", "timeout", "oom", "crashed",
    "shutdown"), or None when the message names none of them."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        found = _END_REASON.search(message)
        self.reason: str | None = found.group(1) if found else None


class SessionLimit(SessionError):
    """The daemon's max_sessions or your max_sessions_per_uid is reached (E5004): close
    a session first."""


class LibraryNotFound(LeewardError):
    """libleeward.so could not be found or loaded."""


# The one table: an exact code first, else its class (the first two characters).
_BY_CODE: dict[str, type[LeewardError]] = {
    ErrorCode.CONNECTION_CLOSED.value: DaemonUnavailable,
    ErrorCode.UNTRUSTED_SOCKET.value: UntrustedSocket,
    ErrorCode.DAEMON_BUSY.value: DaemonBusy,
    ErrorCode.SESSION_NOT_FOUND.value: SessionNotFound,
    ErrorCode.SESSION_BUSY.value: SessionBusy,
    ErrorCode.SESSION_ENDED.value: SessionEnded,
    ErrorCode.SESSION_LIMIT.value: SessionLimit,
    "E1": InvalidRequest,
    "E2": InvalidRequest,
    "E3": SandboxError,
    "E5": SessionError,
}


def from_code(code: str, message: str) -> LeewardError:
    kind = _BY_CODE.get(code) or _BY_CODE.get(code[:2], LeewardError)
    return kind(code, message)

