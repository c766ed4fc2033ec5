"""The daemon's exceptions as a client sees them: one table from leeward_daemon.errors to
the wire's ErrorCode, and the masking of host paths in what the host side reports."""
from __future__ import annotations

import re

from libleeward.protocol import ErrorCode, ProtocolError

from .. import errors

CODES: dict[type[errors.RequestFailed], ErrorCode] = {
    errors.SandboxUnavailable: ErrorCode.SANDBOX_UNAVAILABLE,
    errors.SandboxFailed: ErrorCode.SANDBOX_FAILED,
    errors.ShuttingDown: ErrorCode.SHUTTING_DOWN,
    errors.DaemonBusy: ErrorCode.DAEMON_BUSY,
    errors.SessionNotFound: ErrorCode.SESSION_NOT_FOUND,
    errors.SessionBusy: ErrorCode.SESSION_BUSY,
    errors.SessionEnded: ErrorCode.SESSION_ENDED,
    errors.SessionLimit: ErrorCode.SESSION_LIMIT,
    errors.FileRefused: ErrorCode.BAD_PATH,
}
# Error texts a client sees never name a host path (cgroup dirs, the daemon's files):
# any absolute path of two or more components in an E3xxx/E4xxx message is masked.
_HOST_PATH = re.compile(r"/(?:[\w.@+-]+/)+[\w.@+-]*")


def to_protocol_error(error: errors.RequestFailed) -> ProtocolError:
    return ProtocolError(CODES[type(error)], str(error))


def internal(exc: BaseException) -> ProtocolError:
    """A bug or an unexpected host failure (the daemon logs its traceback)."""
    return ProtocolError(ErrorCode.INTERNAL, f"internal error: {exc}")


def for_client(error: ProtocolError) -> ProtocolError:
    """The error as a client may see it: E3xxx/E4xxx come from the host side (limits,
    the sandbox's setup) and must not reveal its paths."""
    if not error.code.value.startswith(("E3", "E4")):
        return error
    return ProtocolError(error.code, _HOST_PATH.sub("<host path>", error.message))
