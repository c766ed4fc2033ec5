"""What the daemon sends back, as typed values: a job's result (with a notebook cell's
rich results and collected files), display results, session state, file entries.

Built from the wire protocol's result map (PROTOCOL-V2 "Result"): keys this binding
does not know are ignored, so a newer daemon's additions never break an older client.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Result keys a daemon sends only when asked for or relevant (PROTOCOL-V2): to_dict()
# writes them only when they carry something, so a v1 result keeps the v1 shape.
OPTIONAL_KEYS = ("results", "results_truncated", "files", "files_truncated", "execution_id",
                 "execution_count", "cancelled", "session")


@dataclass(frozen=True)
class DisplayResult:
    """One displayed value: `data` maps a MIME type to its value (text types as str,
    image/png, image/jpeg and application/pdf as bytes, application/json as a dict).
    `main` is True for the value of the cell's final expression, False for display()
    calls and matplotlib figures."""

    main: bool
    data: dict[str, Any]

    @property
    def text(self) -> str | None:
        return self.data.get("text/plain")

    @property
    def html(self) -> str | None:
        return self.data.get("text/html")

    @property
    def markdown(self) -> str | None:
        return self.data.get("text/markdown")

    @property
    def svg(self) -> str | None:
        return self.data.get("image/svg+xml")

    @property
    def png(self) -> bytes | None:
        return self.data.get("image/png")

    @property
    def jpeg(self) -> bytes | None:
        return self.data.get("image/jpeg")

    @property
    def json(self) -> Any:
        return self.data.get("application/json")

    @classmethod
    def from_wire(cls, wire: dict) -> "DisplayResult":
        return cls(main=bool(wire.get("main", False)), data=dict(wire.get("data") or {}))


@dataclass(frozen=True)
class SessionState:
    """The session a cell ran in, after the cell: `alive` False means the cell ended it
    (`end_reason`: "timeout", "oom", "crashed", ...)."""

    id: str
    alive: bool
    end_reason: str | None = None

    @classmethod
    def from_wire(cls, wire: dict) -> "SessionState":
        return cls(id=str(wire["id"]), alive=bool(wire.get("alive", False)), end_reason=wire.get("end_reason"))


@dataclass(frozen=True)
class ExecutionResult:
    """What a job or a session cell did. `stdout`/`stderr` are text (UTF-8, undecodable
    bytes replaced); the exact bytes are in `stdout_bytes`/`stderr_bytes`.

    With display: `results` in emission order; `text` is the value of the final
    expression (its text/plain), `html`/`png` the main result's or else the first
    result's that has one (a matplotlib figure is not the main result). With collect:
    `files` maps a path relative to the workdir to its exact bytes."""

    exit_code: int
    stdout_bytes: bytes
    stderr_bytes: bytes
    duration_ms: float
    memory_peak: int
    cpu_time_us: int
    timed_out: bool
    oom_killed: bool
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    denied_syscalls: list[str] = field(default_factory=list)
    limits: str = ""
    error: dict | None = None  # uncaught exception: {name, value, traceback}
    results: list[DisplayResult] = field(default_factory=list)
    results_truncated: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    files_truncated: bool = False
    execution_id: str | None = None
    execution_count: int | None = None  # session cells: 1, 2, ...
    cancelled: bool = False
    session: SessionState | None = None

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        """The code ran to completion and exited 0."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed

    @property
    def main(self) -> DisplayResult | None:
        """The final expression's result, if the cell ended with one (and no `;`)."""
        return next((r for r in self.results if r.main), None)

    @property
    def text(self) -> str | None:
        return self.main.text if self.main else None

    @property
    def html(self) -> str | None:
        return self._first("text/html")

    @property
    def png(self) -> bytes | None:
        return self._first("image/png")

    def _first(self, mime: str) -> Any:
        ordered = sorted(self.results, key=lambda r: not r.main)  # stable: main first, then emission order
        return next((r.data[mime] for r in ordered if mime in r.data), None)

    def to_dict(self) -> dict[str, Any]:
        """The result map of the wire protocol, with stdout/stderr as text (bytes stay
        bytes elsewhere: collected files, images)."""
        wire = asdict(self)
        del wire["stdout_bytes"], wire["stderr_bytes"]
        wire = {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr, **wire}
        if wire["error"] is None:
            del wire["error"]
        for key in OPTIONAL_KEYS:
            if not wire[key]:
                del wire[key]
        return wire

    @classmethod
    def from_wire(cls, wire: dict) -> "ExecutionResult":
        """From the `result` map of an Execute or SessionExecute reply."""
        session = wire.get("session")
        return cls(
            exit_code=int(wire["exit_code"]),
            stdout_bytes=_bytes(wire.get("stdout")),
            stderr_bytes=_bytes(wire.get("stderr")),
            duration_ms=float(wire.get("duration_ms", 0.0)),
            memory_peak=int(wire.get("memory_peak", 0)),
            cpu_time_us=int(wire.get("cpu_time_us", 0)),
            timed_out=bool(wire.get("timed_out", False)),
            oom_killed=bool(wire.get("oom_killed", False)),
            stdout_truncated=bool(wire.get("stdout_truncated", False)),
            stderr_truncated=bool(wire.get("stderr_truncated", False)),
            denied_syscalls=list(wire.get("denied_syscalls") or []),
            limits=str(wire.get("limits", "")),
            error=wire.get("error"),
            results=[DisplayResult.from_wire(r) for r in wire.get("results") or []],
            results_truncated=bool(wire.get("results_truncated", False)),
            files={str(k): _bytes(v) for k, v in (wire.get("files") or {}).items()},
            files_truncated=bool(wire.get("files_truncated", False)),
            execution_id=wire.get("execution_id"),
            execution_count=wire.get("execution_count"),
            cancelled=bool(wire.get("cancelled", False)),
            session=SessionState.from_wire(session) if session else None,
        )


def _bytes(value: Any) -> bytes:
    """A bin field; a str (what a JSON-only peer may send) is taken as UTF-8."""
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else bytes(value)


@dataclass(frozen=True)
class SessionSummary:
    """One of your open sessions, as SessionList reports it (times: Unix seconds)."""

    id: str
    created_at: float
    last_used_at: float
    executions: int
    busy: bool
    expires_at: float

    @classmethod
    def from_wire(cls, wire: dict) -> "SessionSummary":
        return cls(id=str(wire["id"]), created_at=wire.get("created_at", 0), last_used_at=wire.get("last_used_at", 0),
                   executions=int(wire.get("executions", 0)), busy=bool(wire.get("busy", False)),
                   expires_at=wire.get("expires_at", 0))


@dataclass(frozen=True)
class FileEntry:
    """An entry of a session directory: `type` is "file", "dir", "symlink" or "other"."""

    name: str
    type: str
    size: int

    @classmethod
    def from_wire(cls, wire: dict) -> "FileEntry":
        return cls(name=str(wire["name"]), type=str(wire.get("type", "other")), size=int(wire.get("size", 0)))


class FileContent(bytes):
    """The bytes FileRead returned (equal to plain bytes), with the file's whole `size`
    and `truncated` (True when max_bytes cut it short)."""

    size: int
    truncated: bool

    def __new__(cls, data: bytes, size: int, truncated: bool) -> "FileContent":
        content = super().__new__(cls, data)
        content.size = size
        content.truncated = truncated
        return content
