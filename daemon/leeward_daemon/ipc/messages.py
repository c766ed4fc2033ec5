"""The internal protocol, typed: one dataclass per op between the daemon, the zygote and
a slot, and the one place where they become wire maps and back.

`from_wire` is where "the job's word is never trusted" (DESIGN.md) is enforced: a map
is taken only if its op is one the reader expects at that point, its keys are exactly
the message's fields, and every value has the field's type; strings a slot sends are
cut to FIELD_MAX (`bounded`). Anything else raises MalformedMessage, whose text names the op only
as the sender spelled it, bounded.

    daemon -> zygote   Configure (first), Spawn
    zygote -> daemon   Hello (first), SlotMade (+ pidfd, control socket, stdout, stderr),
                       SpawnFailed, Exited
    slot -> daemon     Ready | Failed (setup), then Started (+ seccomp listener), Result
    daemon -> slot     Job

A run's rich output (its display results, its collected files) is the job's output,
like its stdout: `from_wire(..., answering=run)` type-checks it and cuts it to the
run's caps (fit_results, fit_files), and drops it when the run did not ask for it.

A session's slot (Job.session) runs no code at open: after Started it serves, one at a
time and in order, Cell (+ the cell's stdout and stderr pipe write ends), answered by
CellResult, and FileOp, answered by FileReply.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import msgpack

from ..errors import MalformedMessage
from ..model import Run, SandboxRequest
from .channel import SLOT_MAX_FRAME

FIELD_MAX = 65536  # characters of any string a slot sends (exception fields, a setup failure)


class Message:
    """Base of every op; subclasses are dataclasses with an `op` class attribute."""
    op: ClassVar[str]

    def to_wire(self) -> dict:
        return {"op": self.op, **_encode(self)}

    def bounded(self) -> Message:
        """The message with every string a slot may have chosen cut to FIELD_MAX."""
        return self

    def answering(self, run: Run | None) -> Message:
        """The message as a reply to `run`: its rich output within the run's caps."""
        return self


# ---------------------------------------------------------------- daemon <-> zygote

@dataclass(frozen=True)
class Configure(Message):
    """The zygote's whole configuration, sent once before it does anything."""
    op: ClassVar[str] = "configure"
    preload: list[str]
    privileged: bool
    python_paths: list[str]
    tmp_size: int
    uid_base: int
    uid_count: int
    limits_backend: str
    pids_max: int
    python_bin: str = ""


@dataclass(frozen=True)
class Hello(Message):
    """The zygote is ready (or, with `error`, cannot prepare the isolation layers)."""
    op: ClassVar[str] = "hello"
    pid: int
    preloaded: list[str] = field(default_factory=list)
    landlock_abi: int = 0
    seccomp_notify: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Spawn(Message):
    """Asks for `count` more slots; each is answered by a SlotMade or a SpawnFailed."""
    op: ClassVar[str] = "spawn"
    count: int


@dataclass(frozen=True)
class SlotMade(Message):
    """Travels with four fds: pidfd, control socket, stdout and stderr read ends. `uid` is
    the host uid the slot runs as, None where every slot is the daemon's own user."""
    op: ClassVar[str] = "slot"
    id: int
    pid: int
    uid: int | None


@dataclass(frozen=True)
class SpawnFailed(Message):
    """One slot of a Spawn could not be made (no sandbox uid left, a failed fork): why."""
    op: ClassVar[str] = "spawn_failed"
    error: str


@dataclass(frozen=True)
class Exited(Message):
    """A child of the zygote was reaped: its pid, its wait status, and the kernel's
    account of it and of every descendant it waited for (wait4's rusage; a pid 1 waits
    for its whole namespace as it exits): `max_rss`, the high-water mark of the resident
    set in bytes, and `cpu_time_us`, user + system time over their lives. A slot's job's
    peak and CPU even when they fell between, or after, a sampling meter's readings."""
    op: ClassVar[str] = "exited"
    pid: int
    status: int
    max_rss: int
    cpu_time_us: int


# ---------------------------------------------------------------- daemon <-> slot

@dataclass(frozen=True)
class Ready(Message):
    op: ClassVar[str] = "ready"


@dataclass(frozen=True)
class Failed(Message):
    """The slot's setup failed before the job's code could start."""
    op: ClassVar[str] = "failed"
    error: str

    def bounded(self) -> Failed:
        return Failed(_bounded(self.error))


@dataclass(frozen=True)
class Job(Message):
    """The sandbox's request (applied once) and its first run."""
    op: ClassVar[str] = "job"
    request: SandboxRequest
    run: Run
    session: bool = False  # keep serving Cell and FileOp messages instead of running `run`


@dataclass(frozen=True)
class Started(Message):
    """The code is about to run; carries the seccomp listener fd when there is one.
    `at` is the slot's CLOCK_MONOTONIC as it says so, which is the daemon's clock (the
    sandbox shares its time namespace), read by leeward's code before the job's runs:
    the job's duration starts there even when a loaded daemon reads this message late."""
    op: ClassVar[str] = "started"
    at: float


@dataclass(frozen=True)
class ExceptionReport:
    name: str
    value: str
    traceback: str


@dataclass(frozen=True)
class RichResult:
    """One display result: {mime: value}, text as str, images and PDF as bytes, JSON as a map."""
    main: bool
    data: dict[str, str | bytes | dict]


@dataclass(frozen=True)
class RichOutput:
    """A run's display results and collected files; None where the run did not ask."""
    results: list[RichResult] | None = None
    results_truncated: bool = False
    files: dict[str, bytes] | None = None
    files_truncated: bool = False


@dataclass(frozen=True)
class Result(Message):
    """The job's code is done; only its uncaught exception and its rich output are the
    job's to tell."""
    op: ClassVar[str] = "result"
    error: ExceptionReport | None
    output: RichOutput = RichOutput()

    def bounded(self) -> Result:
        if self.error is None:
            return self
        return dataclasses.replace(
            self, error=ExceptionReport(*(_bounded(text) for text in dataclasses.astuple(self.error))))

    def answering(self, run: Run | None) -> Result:
        return dataclasses.replace(self, output=within(self.output, run))


# ---------------------------------------------------------------- a session's slot

FILE_ENTRIES_MAX = 10000  # entries a FileList reply may carry
FILE_OPS = ("write", "read", "list", "remove")


@dataclass(frozen=True)
class Cell(Message):
    """One cell of a session; travels with two fds: the write ends of its stdout and
    stderr pipes, so a cell's output is its own."""
    op: ClassVar[str] = "cell"
    run: Run


@dataclass(frozen=True)
class CellResult(Message):
    """The cell is done: its exit status as `python -c` would have it (SystemExit) and
    its uncaught exception. The session's word, about its own cell only."""
    op: ClassVar[str] = "cell_result"
    exit_code: int
    error: ExceptionReport | None
    output: RichOutput = RichOutput()

    def bounded(self) -> CellResult:
        return dataclasses.replace(self, error=Result(self.error).bounded().error)

    def answering(self, run: Run | None) -> CellResult:
        return dataclasses.replace(self, output=within(self.output, run))


@dataclass(frozen=True)
class FileOp(Message):
    """A file request, carried out by the session's own process under its own Landlock
    and seccomp. `root` is /tmp or a rw mount target; `parts` the path's components
    below it (the daemon checked both); nothing is followed through a symlink."""
    op: ClassVar[str] = "file"
    kind: str
    root: str
    parts: list[str]
    data: bytes = b""
    max_bytes: int = 0


@dataclass(frozen=True)
class FileEntry:
    name: str
    type: str   # file | dir | symlink | other
    size: int


@dataclass(frozen=True)
class FileReply(Message):
    """What the sandbox did; `error` is its reason for refusing (a sentence)."""
    op: ClassVar[str] = "file_reply"
    error: str | None = None
    data: bytes = b""
    size: int = 0
    truncated: bool = False
    entries: list[FileEntry] = field(default_factory=list)

    def bounded(self) -> FileReply:
        entries = [FileEntry(_bounded(e.name)[:255], e.type if e.type in ENTRY_TYPES else "other", e.size)
                   for e in self.entries[:FILE_ENTRIES_MAX]]
        return FileReply(None if self.error is None else _bounded(self.error)[:1024], self.data, self.size,
                         self.truncated or len(self.entries) > FILE_ENTRIES_MAX, entries)


ENTRY_TYPES = ("file", "dir", "symlink", "other")


# ---------------------------------------------------------------- rich output's bounds

# What a result and a file cost beyond their bytes: counted so that the counted size is
# never below the packed size (map headers, the "main"/"data" keys, str/bin headers),
# which lets frame_max size the channel from the caps alone.
RESULT_OVERHEAD = 32
MIME_OVERHEAD = 16
FILE_OVERHEAD = 16
COLLECT_PATH_MAX = 4096  # bytes of a collected file's relative name


def within(output: RichOutput, run: Run | None) -> RichOutput:
    """`output` cut to `run`'s caps, and only what `run` asked for; ValueError for a
    collected name that is not a plain relative path (no honest sandbox sends one)."""
    asked_display = run is not None and run.display
    asked_collect = run is not None and bool(run.collect)
    results, results_cut = (fit_results(output.results or [], run.results_max) if asked_display
                            else (None, False))
    files, files_cut = (fit_files(output.files or {}, run.collect_max, run.collect_files_max) if asked_collect
                        else (None, False))
    for name in files or ():
        if not _plain_relative(name):
            raise ValueError(f"a collected file's name is not a relative path: {name[:200]!r}")
    return RichOutput(results, (output.results_truncated or results_cut) if asked_display else False,
                      files, (output.files_truncated or files_cut) if asked_collect else False)


def fit_results(results: list[RichResult], limit: int) -> tuple[list[RichResult], bool]:
    """The results in order while their counted size stays within `limit`; and whether
    any was dropped (the first that does not fit, and all after it)."""
    kept, room = [], limit
    for result in results:
        size = RESULT_OVERHEAD + sum(MIME_OVERHEAD + len(mime.encode("utf-8", "surrogatepass")) + _value_size(value)
                                     for mime, value in result.data.items())
        if size > room:
            return kept, True
        kept.append(result)
        room -= size
    return kept, False


def fit_files(files: dict[str, bytes], max_bytes: int, max_files: int) -> tuple[dict[str, bytes], bool]:
    """The files in order within `max_files` files and `max_bytes` bytes of content,
    names of at most COLLECT_PATH_MAX bytes; and whether any was left out."""
    kept: dict[str, bytes] = {}
    room, cut = max_bytes, False
    for name, data in files.items():
        if len(kept) == max_files or len(data) > room:
            return kept, True
        if len(name.encode("utf-8", "surrogatepass")) > COLLECT_PATH_MAX:
            cut = True
            continue
        kept[name] = data
        room -= len(data)
    return kept, cut


def frame_max(run: Run) -> int:
    """The largest frame a reply to `run` may take: the exception report's room plus the
    rich output's caps, as fit_results and fit_files count it."""
    size = SLOT_MAX_FRAME
    if run.display:
        size += run.results_max
    if run.collect:
        size += run.collect_max + run.collect_files_max * (COLLECT_PATH_MAX + FILE_OVERHEAD)
    return size


def _value_size(value: str | bytes | dict) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(msgpack.packb(value))


def _plain_relative(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and "\x00" not in name and all(part not in ("", ".", "..") for part in parts)


# ---------------------------------------------------------------- decoding

def from_wire(wire: object, *expected: type[Message], answering: Run | None = None) -> Message:
    """The message `wire` is, if it is one of `expected`; else MalformedMessage. A reply
    to `answering` carries rich output only as that run asked, within its caps."""
    op = wire.get("op") if isinstance(wire, dict) else None
    for kind in expected:
        if op == kind.op:
            body = {k: v for k, v in wire.items() if k != "op"}
            try:
                return _decode(kind, body).bounded().answering(answering)
            except (TypeError, ValueError) as exc:
                raise MalformedMessage(f"{describe(wire)}: {exc}", wire) from None
    raise MalformedMessage(describe(wire), wire if isinstance(wire, dict) else None)


def describe(wire: object) -> str:
    """A short, bounded name for a message (its op, as the sender spelled it)."""
    op = wire.get("op") if isinstance(wire, dict) else None
    name = repr(op)[:40] if isinstance(op, str) else f"an op of type {type(op).__name__}"
    return f"a malformed or out-of-place message (op {name})"


def _bounded(text: str) -> str:
    return text[:FIELD_MAX]


def _decode(kind: type, body: object) -> Any:
    if not isinstance(body, dict):
        raise TypeError(f"{kind.__name__} must be a map")
    names, required, converters = _schema(kind)
    if not required <= set(body) <= names:
        raise ValueError(f"{kind.__name__} has fields {sorted(names)}")
    return kind(**{name: converters[name](value) for name, value in body.items()})


@functools.cache
def _schema(kind: type) -> tuple[frozenset[str], frozenset[str], dict[str, Callable[[object], Any]]]:
    """(field names, required names, each field's converter) of a message class, worked
    out once: get_type_hints compiles every string annotation anew on each call, which
    made it most of the daemon's per-message cost."""
    fields = dataclasses.fields(kind)
    required = {f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    hints = typing.get_type_hints(kind)
    return (frozenset(f.name for f in fields), frozenset(required),
            {f.name: _converter(hints[f.name]) for f in fields})


@functools.cache
def _converter(hint: Any) -> Callable[[object], Any]:
    """The function that checks (and, for a nested message, builds) a wire value of type
    `hint`, made once per type: taking the hint apart for every value was the next cost."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _union(hint, [_converter(option) for option in args])
    if hint is type(None):
        return _none
    if dataclasses.is_dataclass(hint):
        return functools.partial(_decode, hint)
    if origin in (list, tuple):
        return _sequence(_converter(args[0]), origin)
    if origin is dict:
        return _mapping(_converter(args[0]), _converter(args[1]))
    return _exact(hint)


def prepare_schemas() -> None:
    """Works out every message's schema and field names now. The zygote calls it before
    it forks: a slot then inherits them, where working out the Job's (with its request,
    run and mounts) took 0.7 ms of every job's request path, in every single-use slot."""
    kinds = list(Message.__subclasses__())
    seen: set[type] = set()
    while kinds:
        kind = kinds.pop()
        if kind in seen:
            continue
        seen.add(kind)
        _schema(kind)
        _field_names(kind)
        kinds.extend(kind.__subclasses__())
        kinds.extend(_dataclasses_in(typing.get_type_hints(kind).values()))


def _dataclasses_in(hints: Iterable[Any]) -> list[type]:
    found = []
    for hint in hints:
        if dataclasses.is_dataclass(hint):
            found.append(hint)
        found.extend(_dataclasses_in(typing.get_args(hint)))
    return found


def _union(hint: Any, options: list[Callable[[object], Any]]) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        for option in options:
            try:
                return option(value)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{type(value).__name__} is none of {hint}")
    return convert


def _none(value: object) -> None:
    if value is not None:
        raise TypeError("expected None")
    return None


def _sequence(item: Callable[[object], Any], origin: type) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        items = [item(each) for each in value]
        return items if origin is list else tuple(items)
    return convert


def _mapping(key: Callable[[object], Any], item: Callable[[object], Any]) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected a map, got {type(value).__name__}")
        return {key(k): item(v) for k, v in value.items()}
    return convert


def _exact(hint: type) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        if hint is float and type(value) is int:
            return float(value)
        if type(value) is not hint:  # exact: a bool is no int here
            raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")
        return value
    return convert


def _encode(value: Any) -> Any:
    names = _field_names(type(value))
    if names is not None:
        return {name: _encode(getattr(value, name)) for name in names}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


@functools.cache
def _field_names(kind: type) -> tuple[str, ...] | None:
    """A message class's field names, once per class; None for any other type."""
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None
