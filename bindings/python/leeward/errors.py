"""Typed errors of the leeward binding; `code` is the protocol's stable error code."""
from __future__ import annotations

# Codes that mean "not now" rather than "no": the same request may succeed if sent again
# after a short wait (E3004: the daemon's queue or connection limit is full).
RETRYABLE_CODES = frozenset({"E3004"})


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
    """No daemon answered on the socket, or it went away during the call (E1006)."""


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


def from_code(code: str, message: str) -> LeewardError:
    if code == "E1006":
        return DaemonUnavailable(code, message)
    if code == "E1007":
        return UntrustedSocket(code, message)
    if code.startswith(("E1", "E2")):
        return InvalidRequest(code, message)
    if code == "E3004":
        return DaemonBusy(code, message)
    if code.startswith("E3"):
        return SandboxError(code, message)
    return LeewardError(code, message)
