"""leeward wire protocol: framing, request/response schema, bounds and validation.

Frame: 4-byte big-endian unsigned length, then a msgpack map of that many bytes.
This module is sans-IO and imports nothing of the project but abi (the codes of
include/leeward.h): the daemon, the client and the embedded C library all share it.
"""
from __future__ import annotations

import math
import posixpath
import re
import struct
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import msgpack

from .abi import ErrorCode  # generated from include/leeward.h, the one source of the codes

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
PROTOCOL_VERSION = 1
EVENT = "Event"  # the type of a streaming request's frames before its response
# A job's Python needs this much before the first line of its code runs (the slot's
# interpreter pages it touches are charged to the job); below it a job could only be
# OOM-killed, or fail to start with a host error.
MIN_MEMORY_LIMIT = 32 * 1024 * 1024
# An error reply never grows with the request: lists name a few items and count the
# rest, and any message is cut at this many characters.
MAX_ERROR_MESSAGE = 1024
NAMED_IN_ERRORS = 5


class ProtocolError(Exception):
    """A request or frame that cannot be served; carries its stable code."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    def to_wire(self) -> dict:
        return {"code": self.code.value, "message": bounded_message(self.message)}


def bounded_message(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def name_a_few(items: list[str], few: int = NAMED_IN_ERRORS) -> str:
    """"a, b, c" or "a, b, c and 199997 more": an error never lists a whole request."""
    named = ", ".join(items[:few])
    return named if len(items) <= few else f"{named} and {len(items) - few} more"


# ---------------------------------------------------------------- framing

def encode_frame(message: dict) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def parse_header(header: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> int:
    """Returns the body length; rejects 0 and oversize before anything is allocated."""
    (length,) = HEADER.unpack(header)
    if length == 0:
        raise ProtocolError(ErrorCode.FRAME_EMPTY, "frame length is 0")
    if length > max_frame:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE, f"frame of {length} bytes exceeds the limit of {max_frame}"
        )
    return length


def decode_body(body: bytes) -> dict:
    try:
        message = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(ErrorCode.FRAME_UNDECODABLE, f"body is not valid msgpack: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.FRAME_NOT_A_MAP, f"body is a {type(message).__name__}, not a map")
    return message


# ---------------------------------------------------------------- requests

@dataclass(frozen=True)
class Bounds:
    """Daemon-side limits a request is validated against."""

    max_timeout_secs: float = 300.0
    max_memory_limit: int = 4 << 30
    min_memory_limit: int = MIN_MEMORY_LIMIT
    max_mounts: int = 64
    max_files: int = 1024
    max_env: int = 1024
    max_collect_patterns: int = 64
    max_argv: int = 4096  # arguments of an argv job
    max_argv_bytes: int = 1 << 20  # their total size (the kernel allows ~2 MiB with env)


@dataclass(frozen=True)
class Mount:
    host: str
    sandbox: str
    ro: bool = True


class _NoFields:
    """A request that is its type alone."""

    @classmethod
    def from_wire(cls, message: dict, bounds: Bounds):
        _reject_unknown(message, {"type"})
        return cls()


@dataclass(frozen=True)
class Ping(_NoFields):
    type = "Ping"


@dataclass(frozen=True)
class Status(_NoFields):
    type = "Status"


@dataclass(frozen=True)
class Execute:
    code: str = ""  # Python source; "" when `argv` names a program instead
    mounts: tuple[Mount, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    timeout_secs: float | None = None  # None: the daemon's default
    memory_limit: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes = b""
    display: bool = False  # v2: run as a notebook cell, with rich `results`
    collect: tuple[str, ...] = ()  # v2: globs of workdir files to return in `files`
    stream: bool = False  # v2: Event frames as output arrives, before the response
    execution_id: str | None = None  # v2: the handle for Cancel; None: the daemon makes one
    argv: tuple[str, ...] = ()  # v2: a program to run instead of `code`
    type = "Execute"

    @classmethod
    def from_wire(cls, message: dict, bounds: Bounds) -> "Execute":
        return _parse_execute(message, bounds)

    @property
    def is_v2(self) -> bool:
        """Whether any v2 field is set: only then does the reply carry v2 keys, so a v1
        request's reply stays byte for byte v1."""
        return any(getattr(self, f.name) != _default(f) for f in fields(self) if f.name not in V1_EXECUTE_FIELDS)


@dataclass(frozen=True)
class Cancel:
    """Ends a running job or session cell by its execution_id (same uid only)."""
    execution_id: str
    type = "Cancel"

    @classmethod
    def from_wire(cls, message: dict, bounds: Bounds) -> "Cancel":
        _reject_unknown(message, {"type", "execution_id"})
        if "execution_id" not in message:
            raise ProtocolError(ErrorCode.MISSING_FIELD, "Cancel needs 'execution_id'")
        return cls(parse_execution_id(_expect(message, "execution_id", str)))


Request = Ping | Status | Execute | Cancel
V1_EXECUTE_FIELDS = frozenset({"code", "mounts", "files", "timeout_secs", "memory_limit", "env", "stdin"})
# An execution_id as a client may choose it (the daemon's own are 22 of these characters).
_EXECUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _default(f) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Mount targets may not cover what the sandbox itself is built from.
_RESERVED_TOP = frozenset(
    {"proc", "dev", "sys", "etc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "run", "oldroot"}
)


def _reject_unknown(message: dict, allowed: set[str]) -> None:
    unknown = [str(k)[:64] for k in message if k not in allowed]
    if unknown:
        raise ProtocolError(ErrorCode.UNKNOWN_FIELD, f"unknown field(s): {name_a_few(sorted(unknown))}")


# The kernel's limit on one argument of execve (MAX_ARG_STRLEN, 32 pages, with its NUL).
MAX_ARG_BYTES = 32 * 4096 - 1


def parse_program(m: dict, request_type: str, bounds: Bounds) -> tuple[str, tuple[str, ...]]:
    """(code, argv) of an Execute or a session cell: exactly one of `code` (Python source,
    a str without NUL) and `argv` (a program), else E2009. `display` is for code only."""
    if ("code" in m) == ("argv" in m):
        raise ProtocolError(ErrorCode.CODE_OR_ARGV, f"{request_type} needs exactly one of 'code' and 'argv', "
                                                    f"got {'both' if 'code' in m else 'neither'}")
    if "argv" in m:
        if m.get("display", False) is True:
            raise ProtocolError(ErrorCode.OUT_OF_RANGE, "'display' is for code: an argv job has no display results")
        return "", parse_argv(m["argv"], bounds)
    code = _expect(m, "code", str)
    if "\x00" in code:
        raise ProtocolError(ErrorCode.WRONG_TYPE, "'code' contains a NUL character")
    return code, ()


def parse_argv(value: Any, bounds: Bounds) -> tuple[str, ...]:
    """A program and its arguments: a non-empty list of str without NUL, argv[0] not
    empty, each within the kernel's limit on one argument, all within the bounds."""
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise ProtocolError(ErrorCode.WRONG_TYPE, "'argv' must be a list of strings")
    if not value or not value[0]:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, "'argv' must name a program: argv[0] may not be empty")
    if len(value) > bounds.max_argv:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"at most {bounds.max_argv} arguments in 'argv'")
    total = 0
    for i, arg in enumerate(value):
        if "\x00" in arg:
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"argv[{i}] contains a NUL character")
        size = len(arg.encode("utf-8", "surrogateescape"))
        if size > MAX_ARG_BYTES:
            raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"argv[{i}] is {size} bytes, over the kernel's {MAX_ARG_BYTES}")
        total += size + 1
    if total > bounds.max_argv_bytes:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"'argv' is {total} bytes, over {bounds.max_argv_bytes}")
    return tuple(value)


def _parse_execute(m: dict, bounds: Bounds) -> Execute:
    _reject_unknown(m, {"type"} | {f.name for f in fields(Execute)})
    code, argv = parse_program(m, "Execute", bounds)
    return Execute(
        code=code,
        argv=argv,
        mounts=_parse_mounts(m.get("mounts", []), bounds),
        files=_parse_files(m.get("files", {}), bounds),
        timeout_secs=_parse_timeout(m.get("timeout_secs"), bounds),
        memory_limit=_parse_memory(m.get("memory_limit"), bounds),
        env=_parse_env(m.get("env", {}), bounds),
        stdin=_as_bytes(m.get("stdin", b""), "stdin"),
        display=parse_display(m.get("display", False)),
        collect=parse_collect(m.get("collect", []), bounds),
        stream=parse_stream(m.get("stream", False)),
        execution_id=parse_execution_id(m.get("execution_id")),
    )


def parse_stream(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'stream' must be a boolean, got {type(value).__name__}")
    return value


def parse_execution_id(value: Any) -> str | None:
    """None (the daemon makes one), or 1 to 64 of [A-Za-z0-9_-]."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'execution_id' must be a string, got {type(value).__name__}")
    if not _EXECUTION_ID.match(value):
        raise ProtocolError(ErrorCode.OUT_OF_RANGE,
                            f"'execution_id' must be 1 to 64 of A-Z a-z 0-9 _ -, got {value[:80]!r}")
    return value


def parse_display(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'display' must be a boolean, got {type(value).__name__}")
    return value


def parse_collect(value: Any, bounds: Bounds) -> tuple[str, ...]:
    """Glob patterns relative to the workdir: never absolute, never through `..`."""
    if not isinstance(value, list):
        raise ProtocolError(ErrorCode.WRONG_TYPE, "'collect' must be a list of glob patterns")
    if len(value) > bounds.max_collect_patterns:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"at most {bounds.max_collect_patterns} collect patterns")
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"collect[{i}] must be a string")
        if not pattern or "\x00" in pattern or len(pattern) > 1024:
            raise ProtocolError(ErrorCode.BAD_PATH, f"collect[{i}] must be a non-empty pattern: {pattern[:200]!r}")
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise ProtocolError(ErrorCode.BAD_PATH, f"collect[{i}] must stay inside the workdir: {pattern[:200]!r}")
    return tuple(value)


def _expect(m: dict, key: str, kind: type) -> Any:
    value = m[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProtocolError(
            ErrorCode.WRONG_TYPE, f"'{key}' must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _as_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise ProtocolError(ErrorCode.WRONG_TYPE, f"'{name}' must be bytes or str, got {type(value).__name__}")


def _parse_timeout(value: Any, bounds: Bounds) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'timeout_secs' must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0 or value > bounds.max_timeout_secs:
        raise ProtocolError(
            ErrorCode.OUT_OF_RANGE,
            f"'timeout_secs' must be > 0 and <= {bounds.max_timeout_secs:g}, got {value!r}",
        )
    return float(value)


def _parse_memory(value: Any, bounds: Bounds) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"'memory_limit' must be an integer, got {type(value).__name__}")
    if value < bounds.min_memory_limit or value > bounds.max_memory_limit:
        raise ProtocolError(
            ErrorCode.OUT_OF_RANGE,
            f"'memory_limit' must be >= {bounds.min_memory_limit} and <= {bounds.max_memory_limit}, got {value}",
        )
    return value


def normalize_sandbox_path(path: Any, what: str) -> str:
    """An absolute, already-normal path that does not cover the sandbox's own system dirs."""
    if not isinstance(path, str):
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"{what} must be a string")
    if not path.startswith("/") or "\x00" in path or len(path) > 4096:
        raise ProtocolError(ErrorCode.BAD_PATH, f"{what} must be an absolute path: {path[:200]!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ProtocolError(ErrorCode.BAD_PATH, f"{what} may not contain '..': {path[:200]!r}")
    if not parts or parts[0] in _RESERVED_TOP:
        raise ProtocolError(ErrorCode.BAD_PATH, f"{what} may not be / or cover a system directory: {path[:200]!r}")
    return "/" + "/".join(parts)


def _parse_mounts(value: Any, bounds: Bounds) -> tuple[Mount, ...]:
    if not isinstance(value, list):
        raise ProtocolError(ErrorCode.WRONG_TYPE, "'mounts' must be a list")
    if len(value) > bounds.max_mounts:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"at most {bounds.max_mounts} mounts")
    mounts = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"mounts[{i}] must be a map")
        _reject_unknown(item, {"host", "sandbox", "ro"})
        for key in ("host", "sandbox"):
            if key not in item:
                raise ProtocolError(ErrorCode.MISSING_FIELD, f"mounts[{i}] needs '{key}'")
        host = item["host"]
        if not isinstance(host, str) or not host.startswith("/") or "\x00" in host:
            raise ProtocolError(ErrorCode.BAD_PATH, f"mounts[{i}].host must be an absolute path")
        ro = item.get("ro", True)
        if not isinstance(ro, bool):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"mounts[{i}].ro must be a boolean")
        mounts.append(Mount(host, normalize_sandbox_path(item["sandbox"], f"mounts[{i}].sandbox"), ro))
    targets = [m.sandbox for m in mounts]
    if len(set(targets)) != len(targets):
        raise ProtocolError(ErrorCode.BAD_PATH, "two mounts share one sandbox path")
    return tuple(mounts)


def normalize_file_name(name: Any) -> str:
    """A relative path inside the job's working directory."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 1024:
        raise ProtocolError(ErrorCode.BAD_PATH, f"file name must be a non-empty string: {str(name)[:200]!r}")
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../") or ".." in name.split("/"):
        raise ProtocolError(ErrorCode.BAD_PATH, f"file name must stay inside the workdir: {name[:200]!r}")
    return normal


def _parse_files(value: Any, bounds: Bounds) -> dict[str, bytes]:
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.WRONG_TYPE, "'files' must be a map of path to bytes")
    if len(value) > bounds.max_files:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"at most {bounds.max_files} files")
    return {normalize_file_name(k): _as_bytes(v, f"files[{str(k)[:64]!r}]") for k, v in value.items()}


def _parse_env(value: Any, bounds: Bounds) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.WRONG_TYPE, "'env' must be a map of str to str")
    if len(value) > bounds.max_env:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"at most {bounds.max_env} env entries")
    for k, v in value.items():
        if not isinstance(k, str) or not _ENV_NAME.match(k):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"env name {str(k)[:64]!r} is not a valid variable name")
        if not isinstance(v, str) or "\x00" in v:
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"env[{k!r}] must be a string without NUL")
    return dict(value)


def execute_to_wire(request: Execute) -> dict:
    message: dict[str, Any] = {"type": "Execute"}
    if request.argv:
        message["argv"] = list(request.argv)
    else:
        message["code"] = request.code
    if request.mounts:
        message["mounts"] = [{"host": m.host, "sandbox": m.sandbox, "ro": m.ro} for m in request.mounts]
    if request.files:
        message["files"] = dict(request.files)
    if request.timeout_secs is not None:
        message["timeout_secs"] = request.timeout_secs
    if request.memory_limit is not None:
        message["memory_limit"] = request.memory_limit
    if request.env:
        message["env"] = dict(request.env)
    if request.stdin:
        message["stdin"] = request.stdin
    if request.display:
        message["display"] = True
    if request.collect:
        message["collect"] = list(request.collect)
    if request.stream:
        message["stream"] = True
    if request.execution_id is not None:
        message["execution_id"] = request.execution_id
    return message


# ---------------------------------------------------------------- responses

@dataclass
class ExecutionResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    duration_ms: float = 0.0
    memory_peak: int = 0
    cpu_time_us: int = 0
    timed_out: bool = False
    oom_killed: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    denied_syscalls: list[str] = field(default_factory=list)
    limits: str = "rlimit"
    error: dict | None = None  # uncaught exception: {name, value, traceback}
    # v2 keys, each pair on the wire only when asked for (`display`, `collect`), so a
    # v1 request's reply stays byte for byte what it was.
    results: list[dict] | None = None  # [{main: bool, data: {mime: value}}], in emission order
    results_truncated: bool = False
    files: dict[str, bytes] | None = None  # workdir-relative path -> exact bytes
    files_truncated: bool = False
    # Set for a v2 request only (and then `cancelled` comes with it).
    execution_id: str | None = None
    cancelled: bool = False  # a Cancel ended it

    def to_wire(self) -> dict:
        wire = {f.name: getattr(self, f.name) for f in fields(self)}
        if wire["error"] is None:
            del wire["error"]
        if wire["execution_id"] is None:
            del wire["execution_id"], wire["cancelled"]
        for key in ("results", "files"):
            if wire[key] is None:
                del wire[key], wire[f"{key}_truncated"]
        return wire

    @classmethod
    def from_wire(cls, wire: dict) -> "ExecutionResult":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in wire.items() if k in known})


def pong() -> dict:
    return {"type": "Pong", "success": True, "version": PROTOCOL_VERSION}


def execute_ok(result: ExecutionResult) -> dict:
    return {"type": "Execute", "success": True, "result": result.to_wire()}


def cancel_reply(found: bool) -> dict:
    return {"type": "Cancel", "success": True, "found": found}


def event(execution_id: str, kind: str, data: Any) -> dict:
    """A streaming request's frame before its response: kind is "stdout" or "stderr"
    (data: bin) or "display" (data: {main, data})."""
    return {"type": EVENT, "execution_id": execution_id, "event": kind, "data": data}


def error_response(kind: str, error: ProtocolError) -> dict:
    """`kind` is the request type, or "Error" when the frame was not a request at all."""
    return {"type": kind, "success": False, "error": error.to_wire()}
