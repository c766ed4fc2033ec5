"""Python side of libleeward.so: the extern "Python" functions behind include/leeward.h.

Imported only inside the embedded interpreter (by the init code of build_ffi.py);
the C entry points in _cffi_capi.c call these. All socket and msgpack work is
libleeward.client's; this module only marshals between C structs and Connection.

Conventions: an int-returning function answers 1 for success and 0 for failure
(cffi itself answers 0 when Python cannot run), a pointer-returning one NULL for
failure; every failure first records (code, message) with lib._lw_set_error on
the calling thread. No exception ever leaves a function here.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import threading

from _libleeward_cffi import ffi, lib

from . import jsonwire, protocol
from .client import Connection, LeewardError, successful
from .protocol import DEFAULT_MAX_FRAME, Bounds, ErrorCode


class _Handle:
    __slots__ = ("conn", "lock")

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lock = threading.Lock()  # serializes reconnects; Connection serializes requests


# A handle is a token, not an address: a stale or forged LeewardHandle* is a
# dictionary miss (E2001), never a dereference.
_handles: dict[int, _Handle] = {}
_tokens = itertools.count(1)
_MAX_MOUNTS = Bounds().max_mounts


def _c_api(failure):
    """Turns every exception into lib._lw_set_error + the C failure value."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(*args):
            try:
                return fn(*args)
            except LeewardError as exc:
                _set_error(exc.code, exc.message)
            except jsonwire.JsonWireError as exc:
                _set_error(exc.code.value, str(exc))
            except MemoryError:
                _set_error(ErrorCode.INTERNAL.value, "out of memory")
            except BaseException as exc:  # noqa: BLE001 - the host must never see a Python exception
                _set_error(ErrorCode.INTERNAL.value, f"{type(exc).__name__}: {exc}")
            return failure

        return call

    return wrap


def _set_error(code: str, message: str) -> None:
    lib._lw_set_error(str(code).encode("ascii", "replace"), message.encode("utf-8", "replace"))


def _lookup(handle) -> _Handle:
    entry = _handles.get(int(ffi.cast("uintptr_t", handle)))
    if entry is None:
        raise LeewardError(ErrorCode.MISSING_FIELD.value, "invalid or disconnected handle")
    return entry


def _connected(handle) -> Connection:
    """The handle's connection, reconnected once if the last call lost it.
    A request is never resent: the one in flight when the daemon died may have run."""
    entry = _lookup(handle)
    conn = entry.conn
    if conn._sock is None:  # noqa: SLF001 - Connection has no public "is open"
        with entry.lock:
            if conn._sock is None:  # noqa: SLF001
                conn.connect()
    return conn


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LeewardError(ErrorCode.WRONG_TYPE.value, f"{what} is not valid UTF-8: {exc}") from None


def _bytes(data) -> bytes:
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)


def _dup(data: bytes):
    """A malloc()ed, NUL-terminated copy the C caller frees."""
    copy = lib._lw_memdup(data, len(data))
    if copy == ffi.NULL:
        raise MemoryError
    return copy


def _options(options) -> dict:
    if options == ffi.NULL:
        return {}
    kwargs: dict = {}
    # 0 means "the daemon's default"; anything else (negative, NaN) goes to the
    # daemon, which owns the bounds and answers E2003.
    if options.timeout_secs != 0:
        kwargs["timeout_secs"] = float(options.timeout_secs)
    if options.memory_limit:
        kwargs["memory_limit"] = int(options.memory_limit)
    count = int(options.mounts_len)
    if count:
        if options.mounts == ffi.NULL:
            raise LeewardError(ErrorCode.WRONG_TYPE.value, f"mounts is NULL but mounts_len is {count}")
        # Checked before reading: a garbage length must not walk off the array.
        if count > _MAX_MOUNTS:
            raise LeewardError(ErrorCode.OUT_OF_RANGE.value, f"at most {_MAX_MOUNTS} mounts, got {count}")
        mounts = []
        for i in range(count):
            mount = options.mounts[i]
            if mount.host == ffi.NULL or mount.sandbox == ffi.NULL:
                raise LeewardError(ErrorCode.MISSING_FIELD.value, f"mounts[{i}] has a NULL path")
            mounts.append({"host": _text(ffi.string(mount.host), f"mounts[{i}].host"),
                           "sandbox": _text(ffi.string(mount.sandbox), f"mounts[{i}].sandbox"),
                           "ro": bool(mount.read_only)})
        kwargs["mounts"] = mounts
    return kwargs


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


@ffi.def_extern()
def _lw_py_boot():
    return 1


@ffi.def_extern()
@_c_api(ffi.NULL)
def _lw_py_connect(socket_path):
    path = None if socket_path == ffi.NULL else os.fsdecode(ffi.string(socket_path))
    entry = _Handle(Connection(path))
    token = next(_tokens)
    _handles[token] = entry
    return ffi.cast("LeewardHandle *", token)


@ffi.def_extern()
@_c_api(None)
def _lw_py_disconnect(handle):
    entry = _handles.pop(int(ffi.cast("uintptr_t", handle)), None)
    if entry is not None:
        entry.conn.close()


@ffi.def_extern()
@_c_api(0)
def _lw_py_execute(handle, code, options, out):
    raw = ffi.string(code, DEFAULT_MAX_FRAME + 1)
    if len(raw) > DEFAULT_MAX_FRAME:
        # Sent anyway, the daemon would close the socket under our sendall and the
        # caller would see a broken pipe instead of this.
        raise LeewardError(ErrorCode.FRAME_TOO_LARGE.value,
                           f"code of over {DEFAULT_MAX_FRAME} bytes exceeds the daemon's frame limit")
    result = _connected(handle).execute(_text(raw, "code"), **_options(options))

    stdout, stderr = _bytes(result.stdout), _bytes(result.stderr)
    out.exit_code = result.exit_code
    out.duration_us = max(0, round(result.duration_ms * 1000))
    out.memory_peak = max(0, int(result.memory_peak))
    out.cpu_time_us = max(0, int(result.cpu_time_us))
    out.timed_out = bool(result.timed_out)
    out.oom_killed = bool(result.oom_killed)
    out.stdout_truncated = bool(result.stdout_truncated)
    out.stderr_truncated = bool(result.stderr_truncated)
    details = result.to_wire()
    del details["stdout"], details["stderr"]
    # On a failure part-way, the C side frees whichever buffers were set.
    out.details_json = _dup(json.dumps(details, default=_json_default).encode())
    out.stdout_data = _dup(stdout)
    out.stdout_len = len(stdout)
    out.stderr_data = _dup(stderr)
    out.stderr_len = len(stderr)
    return 1


@ffi.def_extern()
@_c_api(0)
def _lw_py_ping(handle):
    _connected(handle).ping()
    return 1


@ffi.def_extern()
@_c_api(ffi.NULL)
def _lw_py_status_json(handle):
    return _dup(json.dumps(_connected(handle).status(), default=_json_default).encode())


def _event_forwarder(on_event, user):
    """Event frames to the C callback, as JSON valid for the duration of the call."""
    if on_event == ffi.NULL:
        return None

    def forward(event: dict) -> None:
        on_event(jsonwire.dumps(event).encode("ascii"), user)

    return forward


@ffi.def_extern()
@_c_api(0)
def _lw_py_call(handle, request_json, on_event, user, reply_json):
    request = jsonwire.request_from_json(ffi.string(request_json))
    try:
        frame = protocol.encode_frame(request)
    except OverflowError as exc:  # an integer beyond msgpack's 64 bits
        raise LeewardError(ErrorCode.OUT_OF_RANGE.value, f"request cannot be encoded: {exc}") from None
    except ValueError as exc:  # nested deeper than msgpack allows
        raise LeewardError(ErrorCode.WRONG_TYPE.value, f"request cannot be encoded: {exc}") from None
    if len(frame) - protocol.HEADER.size > DEFAULT_MAX_FRAME:
        raise LeewardError(ErrorCode.FRAME_TOO_LARGE.value,
                           f"request of {len(frame)} bytes exceeds the daemon's frame limit of {DEFAULT_MAX_FRAME}")
    reply = successful(_connected(handle).raw_request(frame, _event_forwarder(on_event, user)))
    reply_json[0] = _dup(jsonwire.dumps(reply).encode("ascii"))
    return 1
