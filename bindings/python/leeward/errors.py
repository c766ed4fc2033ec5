"""The binding's one exception tree; `code` is the protocol's stable error code.

    LeewardError                  every failure; .code ("E1006", ...), .message, .retryable
    ├── DaemonUnavailable         E1006: no daemon answered, it went away, or this client is closed
    ├── UntrustedSocket           E1007: the socket is not yours or root's; nothing was sent
    ├── InvalidRequest            E1xxx, E2xxx: the request was refused as invalid
    ├── SandboxError              E3xxx: the daemon could not run the job
    │   └── DaemonBusy            E3004: at its limit, nothing ran; retryable
    └── LibraryNotFound           libleeward.so could not be found or loaded

A code maps to its class through one table (from_code); the codes themselves come from
include/leeward.h (libleeward.abi).
"""
from __future__ import annotations

from libleeward.abi import ErrorCode

# Codes that mean "not now" rather than "no": the same request may succeed if sent again
# after a short wait (E3004: the daemon's queue or connection limit is full).
RETRYABLE_CODES = frozenset({ErrorCode.DAEMON_BUSY.value})


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


class LibraryNotFound(LeewardError):
    """libleeward.so could not be found or loaded."""


# The one table: an exact code first, else its class (the first two characters).
_BY_CODE: dict[str, type[LeewardError]] = {
    ErrorCode.CONNECTION_CLOSED.value: DaemonUnavailable,
    ErrorCode.UNTRUSTED_SOCKET.value: UntrustedSocket,
    ErrorCode.DAEMON_BUSY.value: DaemonBusy,
    "E1": InvalidRequest,
    "E2": InvalidRequest,
    "E3": SandboxError,
}


def from_code(code: str, message: str) -> LeewardError:
    kind = _BY_CODE.get(code) or _BY_CODE.get(code[:2], LeewardError)
    return kind(code, message)

