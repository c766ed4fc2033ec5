"""The request types, one entry each: REQUESTS maps a frame's `type` to its dataclass
(protocol.py), whose `from_wire(message, bounds)` validates it. A new request type is a
dataclass there, an entry here and a handler in the daemon (frontdoor/handlers.py,
whose table a test checks against this one)."""
from __future__ import annotations

from .protocol import Bounds, Cancel, ErrorCode, Execute, Ping, ProtocolError, Status
from .session_requests import SESSION_REQUESTS

REQUESTS: dict[str, type] = {cls.type: cls for cls in (Ping, Status, Execute, Cancel, *SESSION_REQUESTS)}


def parse_request(message: dict, bounds: Bounds = Bounds()):
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "request has no string 'type'")
    if kind not in REQUESTS:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown request type {kind[:64]!r}")
    return REQUESTS[kind].from_wire(message, bounds)
