"""The JSON form of wire messages, as leeward_call (include/leeward.h) takes and gives them.

JSON has no bytes, msgpack has: a msgpack bin value is written {"$bytes": "<base64>"}
(RFC 4648, padded), both ways. Everything else maps one to one (str, numbers, bools,
null, lists, maps). Defined here once, for the C ABI and for the bindings that build
or read such JSON themselves.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .abi import ErrorCode

BYTES_KEY = "$bytes"


class JsonWireError(ValueError):
    """Text that is not a request in the JSON form; `code` is the protocol's."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if BYTES_KEY in value:
            return _decode_bytes(value)
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _decode_bytes(value: dict) -> bytes:
    text = value[BYTES_KEY]
    if len(value) != 1 or not isinstance(text, str):
        raise JsonWireError(ErrorCode.WRONG_TYPE, f'{{"{BYTES_KEY}": ...}} must have exactly that one key, a base64 string')
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise JsonWireError(ErrorCode.WRONG_TYPE, f'"{BYTES_KEY}" is not valid base64: {exc}') from None


def request_from_json(text: bytes) -> dict:
    """A request map from UTF-8 JSON text: E1003 when it is not JSON, E1004 when not
    an object (as the daemon says of a frame that is not msgpack / not a map)."""
    try:
        value = json.loads(text.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JsonWireError(ErrorCode.FRAME_UNDECODABLE, f"request is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise JsonWireError(ErrorCode.FRAME_NOT_A_MAP, f"request is a JSON {type(value).__name__}, not an object")
    return _from_json(value)


def _to_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    return value


def loads(text: str | bytes) -> Any:
    """JSON text in this form back to Python values, bytes for {"$bytes": ...}."""
    return _from_json(json.loads(text))


def dumps(value: Any) -> str:
    """Python values (bytes included) as JSON text in this form; ASCII only, so the
    text is safe in any C string, and strict (no NaN) so any JSON parser reads it."""
    return json.dumps(_to_json(value), allow_nan=False)
