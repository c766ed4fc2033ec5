"""The session and file requests of protocol v2 (PROTOCOL-V2.md "New requests"): their
dataclasses and their validation. Shape only: bounds that depend on the daemon's
configuration (idle timeout, lifetime, whether a path lies under a rw mount) are the
daemon's to check."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields

from .protocol import (
    Bounds,
    ErrorCode,
    Mount,
    ProtocolError,
    _as_bytes,
    _expect,
    _parse_env,
    _parse_files,
    _parse_memory,
    _parse_mounts,
    _parse_timeout,
    _reject_unknown,
    parse_program,
    parse_collect,
    parse_display,
    parse_execution_id,
    parse_stream,
)

# Ids the daemon makes are 22 url-safe characters (128 random bits); anything longer or
# of other characters cannot be one, and is refused before any lookup.
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FILE_PATH = 4096


@dataclass(frozen=True)
class SessionOpen:
    mounts: tuple[Mount, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    memory_limit: int | None = None
    idle_timeout_secs: float | None = None
    max_lifetime_secs: float | None = None
    type = "SessionOpen"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> SessionOpen:
        _reject_unknown(m, {"type"} | {f.name for f in fields(cls)})
        return cls(
            mounts=_parse_mounts(m.get("mounts", []), bounds),
            files=_parse_files(m.get("files", {}), bounds),
            env=_parse_env(m.get("env", {}), bounds),
            memory_limit=_parse_memory(m.get("memory_limit"), bounds),
            idle_timeout_secs=_positive_seconds(m, "idle_timeout_secs"),
            max_lifetime_secs=_positive_seconds(m, "max_lifetime_secs"),
        )


@dataclass(frozen=True)
class SessionExecute:
    session_id: str
    code: str = ""  # as Execute's: "" when `argv` names a program instead
    timeout_secs: float | None = None
    stdin: bytes = b""
    display: bool = False  # as Execute's
    collect: tuple[str, ...] = ()  # as Execute's
    stream: bool = False  # as Execute's
    execution_id: str | None = None  # as Execute's
    argv: tuple[str, ...] = ()  # as Execute's: run in the session's sandbox
    type = "SessionExecute"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> SessionExecute:
        _reject_unknown(m, {"type"} | {f.name for f in fields(cls)})
        session_id = _session_id(m)
        code, argv = parse_program(m, "SessionExecute", bounds)
        return cls(session_id=session_id, code=code, argv=argv,
                   timeout_secs=_parse_timeout(m.get("timeout_secs"), bounds),
                   stdin=_as_bytes(m.get("stdin", b""), "stdin"),
                   display=parse_display(m.get("display", False)),
                   collect=parse_collect(m.get("collect", []), bounds),
                   stream=parse_stream(m.get("stream", False)),
                   execution_id=parse_execution_id(m.get("execution_id")))


@dataclass(frozen=True)
class SessionClose:
    session_id: str
    type = "SessionClose"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> SessionClose:
        _reject_unknown(m, {"type", "session_id"})
        return cls(_session_id(m))


@dataclass(frozen=True)
class SessionList:
    type = "SessionList"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> SessionList:
        _reject_unknown(m, {"type"})
        return cls()


@dataclass(frozen=True)
class FileWrite:
    session_id: str
    path: str
    data: bytes
    type = "FileWrite"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> FileWrite:
        _reject_unknown(m, {"type", "session_id", "path", "data"})
        if "data" not in m:
            raise ProtocolError(ErrorCode.MISSING_FIELD, "FileWrite needs 'data'")
        return cls(_session_id(m), file_path(m), _as_bytes(m["data"], "data"))


@dataclass(frozen=True)
class FileRead:
    session_id: str
    path: str
    max_bytes: int | None = None  # None: the daemon's cap
    type = "FileRead"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> FileRead:
        _reject_unknown(m, {"type", "session_id", "path", "max_bytes"})
        max_bytes = m.get("max_bytes")
        if max_bytes is not None:
            max_bytes = _expect(m, "max_bytes", int)
            if max_bytes < 0:
                raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"'max_bytes' must be >= 0, got {max_bytes}")
        return cls(_session_id(m), file_path(m), max_bytes)


@dataclass(frozen=True)
class FileList:
    session_id: str
    path: str = "."
    type = "FileList"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> FileList:
        _reject_unknown(m, {"type", "session_id", "path"})
        return cls(_session_id(m), file_path(m) if "path" in m else ".")


@dataclass(frozen=True)
class FileRemove:
    session_id: str
    path: str
    type = "FileRemove"

    @classmethod
    def from_wire(cls, m: dict, bounds: Bounds) -> FileRemove:
        _reject_unknown(m, {"type", "session_id", "path"})
        return cls(_session_id(m), file_path(m))


SESSION_REQUESTS = (SessionOpen, SessionExecute, SessionClose, SessionList, FileWrite, FileRead, FileList, FileRemove)
FileRequest = FileWrite | FileRead | FileList | FileRemove


def _session_id(m: dict) -> str:
    if "session_id" not in m:
        raise ProtocolError(ErrorCode.MISSING_FIELD, f"{m.get('type')} needs 'session_id'")
    value = _expect(m, "session_id", str)
    if not _SESSION_ID.match(value):
        # Not a session id the daemon could have made: the same answer as an unknown one.
        raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, "no such session")
    return value


def file_path(m: dict) -> str:
    """The path as sent, refused when it cannot be a workdir path: not a string, empty,
    a NUL, or a `..` component anywhere (E2005). Whether an absolute one lies under
    /tmp or a rw mount is the daemon's check; the walk itself is the sandbox's."""
    if "path" not in m:
        raise ProtocolError(ErrorCode.MISSING_FIELD, f"{m.get('type')} needs 'path'")
    path = m["path"]
    if not isinstance(path, str):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'path' must be str, got {type(path).__name__}")
    if not path or "\x00" in path or len(path) > MAX_FILE_PATH:
        raise ProtocolError(ErrorCode.BAD_PATH, f"'path' must be 1 to {MAX_FILE_PATH} characters without NUL")
    if ".." in path.split("/"):
        raise ProtocolError(ErrorCode.BAD_PATH, f"'path' may not contain '..': {path[:200]!r}")
    return path


def _positive_seconds(m: dict, key: str) -> float | None:
    value = m.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'{key}' must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"'{key}' must be > 0, got {value!r}")
    return float(value)
