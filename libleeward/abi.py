"""What libleeward shares with include/leeward.h: the version and the stable error codes.

Generated from the header by `python -m libleeward.header`; do not edit.
"""
from enum import Enum

VERSION = '0.1.0'


class ErrorCode(str, Enum):
    """Stable error codes (LEEWARD_E_* in the header). Never renumber: clients match on them."""

    FRAME_EMPTY = 'E1001'  # frame length is 0
    FRAME_TOO_LARGE = 'E1002'  # frame over the limit (the client does not send it)
    FRAME_UNDECODABLE = 'E1003'  # body is not msgpack (leeward_call: not JSON)
    FRAME_NOT_A_MAP = 'E1004'  # body is not a map (leeward_call: not an object)
    UNKNOWN_TYPE = 'E1005'  # unknown or missing request "type"
    CONNECTION_CLOSED = 'E1006'  # client side: no daemon, the connection dropped, or the client is closed
    UNTRUSTED_SOCKET = 'E1007'  # client side: the socket or its directory is not yours or root's
    MISSING_FIELD = 'E2001'
    WRONG_TYPE = 'E2002'
    OUT_OF_RANGE = 'E2003'
    UNKNOWN_FIELD = 'E2004'
    BAD_PATH = 'E2005'  # mount target over a system dir, file outside the workdir, ".."
    MOUNT_NOT_ALLOWED = 'E2006'  # mount source not under the daemon's allowed paths
    MOUNT_NOT_FOUND = 'E2007'
    MOUNT_SYMLINK = 'E2008'
    CODE_OR_ARGV = 'E2009'  # exactly one of "code" and "argv"
    FEATURE_DISABLED = 'E2010'  # the feature is turned off by the daemon's config
    SANDBOX_UNAVAILABLE = 'E3001'
    SANDBOX_FAILED = 'E3002'
    SHUTTING_DOWN = 'E3003'
    DAEMON_BUSY = 'E3004'  # queue or connection limit full: the one retryable code
    INTERNAL = 'E4001'
    SESSION_NOT_FOUND = 'E5001'  # no such session, or not yours: the two are not told apart
    SESSION_BUSY = 'E5002'  # the session ran other cells past session_queue_secs
    SESSION_ENDED = 'E5003'  # the session has ended; the message names the reason
    SESSION_LIMIT = 'E5004'  # max_sessions or max_sessions_per_uid reached
