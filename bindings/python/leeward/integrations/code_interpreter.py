"""`leeward.CodeInterpreter`: the shape of E2B's `e2b_code_interpreter.Sandbox`, over leeward
sessions, so moving from E2B is mostly an import change:

    from leeward import CodeInterpreter as Sandbox   # was: from e2b_code_interpreter import Sandbox

    with Sandbox.create() as sandbox:
        sandbox.run_code("x = 1")
        execution = sandbox.run_code("x += 1; x")
        print(execution.text)                         # 2

The subset: run_code -> Execution (results, logs, error, text, execution_count), the
on_stdout / on_stderr / on_result / on_error callbacks, code contexts (each its own
session), files.read / write / list / exists / remove / make_dir, create / kill /
context manager. Differences from E2B: the working directory is /tmp (not /home/user)
and file paths must stay under /tmp; only Python runs in run_code; per-call `envs` are
not supported (give them to the constructor); file entries carry name, type, path and
size only. Callbacks run on the calling thread as output arrives (when the daemon streams;
else once the cell is over). Images (`Result.png`, `.jpeg`, `.pdf`) are base64 text, as in E2B.
"""
from __future__ import annotations

import base64
import codecs
import posixpath
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Iterator, Literal, Optional

from leeward import Event, ExecutionResult, Leeward, LeewardError, Session
from leeward._client import MountLike

WORKDIR = "/tmp"
PYTHON = "python"

# MIME type -> Result attribute, as E2B names them; binary types travel as base64 text.
MIME_FIELDS = {"text/plain": "text", "text/html": "html", "text/markdown": "markdown", "image/svg+xml": "svg",
               "image/png": "png", "image/jpeg": "jpeg", "application/pdf": "pdf", "text/latex": "latex",
               "application/json": "json", "application/javascript": "javascript"}


class TimeoutException(TimeoutError):
    """A cell ran past its timeout (E2B raises its own TimeoutException there too)."""


@dataclass
class OutputMessage:
    """One chunk of stdout or stderr, as on_stdout / on_stderr get it."""

    line: str
    timestamp: int  # Unix epoch, nanoseconds
    error: bool = False

    def __str__(self) -> str:
        return self.line


@dataclass
class ExecutionError:
    """The cell's uncaught exception."""

    name: str
    value: str
    traceback: str


@dataclass
class Result:
    """One displayed value: the final expression's (`is_main_result`), a display() call's or
    a matplotlib figure's. Each MIME representation is its own attribute; `formats()` lists
    the ones present. MIME types E2B has no attribute for are in `extra`."""

    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    svg: Optional[str] = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    pdf: Optional[str] = None
    latex: Optional[str] = None
    json: Optional[dict] = None
    javascript: Optional[str] = None
    is_main_result: bool = False
    extra: Optional[dict] = None

    def formats(self) -> list[str]:
        present = [name for name in MIME_FIELDS.values() if getattr(self, name) is not None]
        return present + list(self.extra or ())

    def __getitem__(self, item: str) -> Any:
        return getattr(self, item)

    @classmethod
    def from_display(cls, main: bool, data: dict[str, Any]) -> "Result":
        fields: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for mime, value in data.items():
            if isinstance(value, (bytes, bytearray)):
                value = base64.b64encode(value).decode("ascii")
            if mime in MIME_FIELDS:
                fields[MIME_FIELDS[mime]] = value
            else:
                extra[mime] = value
        return cls(**fields, is_main_result=main, extra=extra or None)


@dataclass
class Logs:
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@dataclass
class Execution:
    """What run_code returns; a failing cell sets `error` (run_code does not raise for it)."""

    results: list[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: Optional[ExecutionError] = None
    execution_count: Optional[int] = None

    @property
    def text(self) -> Optional[str]:
        """The final expression's text, if the cell ended with one."""
        return next((r.text for r in self.results if r.is_main_result), None)


@dataclass
class Context:
    """A code context: its own interpreter state (a leeward session of its own)."""

    id: str
    language: str
    cwd: str


class FileType(str, Enum):
    FILE = "file"
    DIR = "dir"


@dataclass
class WriteInfo:
    name: str
    type: Optional[FileType]
    path: str


@dataclass
class EntryInfo(WriteInfo):
    size: int = 0


Handler = Optional[Callable[[Any], Any]]


class _Delivery:
    """Builds the Execution from the cell's events as they arrive (the daemon streams them;
    one that does not sends them all at the end) and calls the callbacks on the way."""

    def __init__(self, on_stdout: Handler, on_stderr: Handler, on_result: Handler, on_error: Handler):
        self.execution = Execution()
        self._on_error = on_error
        self._on_result = on_result
        # A chunk may end inside a UTF-8 character: each stream decodes incrementally.
        self._streams = {kind: (codecs.getincrementaldecoder("utf-8")("replace"), logs, handler, kind == "stderr")
                         for kind, logs, handler in (("stdout", self.execution.logs.stdout, on_stdout),
                                                     ("stderr", self.execution.logs.stderr, on_stderr))}

    def event(self, event: Event) -> None:
        if event.kind == "display":
            result = Result.from_display(event.data.main, event.data.data)
            self.execution.results.append(result)
            if self._on_result:
                self._on_result(result)
        elif event.kind in self._streams:
            decoder, logs, handler, is_error = self._streams[event.kind]
            self._output(decoder.decode(bytes(event.data)), logs, handler, is_error)

    def finished(self, result: ExecutionResult) -> Execution:
        for decoder, logs, handler, is_error in self._streams.values():
            self._output(decoder.decode(b"", final=True), logs, handler, is_error)
        if result.error:
            self.execution.error = ExecutionError(str(result.error.get("name", "")), str(result.error.get("value", "")),
                                                  str(result.error.get("traceback", "")))
            if self._on_error:
                self._on_error(self.execution.error)
        self.execution.execution_count = result.execution_count
        return self.execution

    @staticmethod
    def _output(text: str, logs: list[str], handler: Handler, is_error: bool) -> None:
        if text:
            logs.append(text)
            if handler:
                handler(OutputMessage(text, time.time_ns(), is_error))


class Files:
    """The sandbox's files (its main context's), done by the sandbox itself under its own
    isolation. Paths: relative to /tmp, or absolute under /tmp."""

    def __init__(self, session: Session):
        self._files = session.files
        self._session = session

    def read(self, path: str, format: Literal["text", "bytes", "stream"] = "text", **_e2b_options: Any):
        data = bytes(self._files.read(path))
        if format == "text":
            return data.decode("utf-8", "replace")
        if format == "bytes":
            return bytearray(data)
        if format == "stream":
            return iter((data,))
        raise ValueError(f"format must be 'text', 'bytes' or 'stream', not {format!r}")

    def write(self, path: str, data: str | bytes | Any, **_e2b_options: Any) -> WriteInfo:
        """Writes (replaces) one file; data: str, bytes, a binary or text file object, or an
        iterable of bytes."""
        self._files.write(path, _payload(data))
        return WriteInfo(name=posixpath.basename(path), type=FileType.FILE, path=_absolute(path))

    def write_files(self, files: list[dict], **_e2b_options: Any) -> list[WriteInfo]:
        return [self.write(entry["path"], entry["data"]) for entry in files]

    def list(self, path: str = ".", depth: int = 1, **_e2b_options: Any) -> list[EntryInfo]:
        if depth < 1:
            raise ValueError("depth should be at least 1")
        return list(self._walk(path, depth))

    def _walk(self, path: str, depth: int) -> Iterator[EntryInfo]:
        for entry in self._files.list(path):
            kind = FileType(entry.type) if entry.type in ("file", "dir") else None
            inner = posixpath.join(path, entry.name)
            if kind is not None:  # E2B lists files and directories only
                yield EntryInfo(name=entry.name, type=kind, path=_absolute(inner), size=entry.size)
            if kind is FileType.DIR and depth > 1:
                yield from self._walk(inner, depth - 1)

    def exists(self, path: str, **_e2b_options: Any) -> bool:
        parent, name = posixpath.split(path.rstrip("/"))
        try:
            return any(entry.name == name for entry in self._files.list(parent or "."))
        except LeewardError:
            return False

    def remove(self, path: str, **_e2b_options: Any) -> None:
        self._files.remove(path)

    def make_dir(self, path: str, **_e2b_options: Any) -> bool:
        """Creates the directory and its parents; False when it already existed. (Done by a
        cell of the default context: its execution_count goes up by one.)"""
        made = self._session.run(f"__import__('os').makedirs({path!r})", display=False)
        if made.error and made.error.get("name") == "FileExistsError":
            return False
        if made.error:
            raise OSError(f"cannot create {path}: {made.error.get('value')}")
        return True


def _payload(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        return _payload(data.read())
    return b"".join(bytes(chunk) for chunk in data)


def _absolute(path: str) -> str:
    return posixpath.normpath(posixpath.join(WORKDIR, path))


class CodeInterpreter:
    """An E2B-shaped sandbox: one leeward session (the default context) plus one more per
    code context, all closed by kill() (or leaving `with`).

    socket_path: the daemon (None: $LEEWARD_SOCKET or the per-user one). timeout: the
    sandbox's lifetime in seconds (None: the daemon's default). envs: environment
    variables of every context. memory_limit ("1G"), mounts: as for Leeward.session()."""

    def __init__(self, socket_path: str | None = None, *, timeout: float | None = None,
                 envs: dict[str, str] | None = None, memory_limit: int | str | None = None,
                 mounts: Iterable[MountLike] = ()):
        self._client = Leeward(socket_path)
        self._options = {"env": envs, "memory_limit": memory_limit, "mounts": list(mounts), "max_lifetime": timeout}
        try:
            self._default = self._open()
        except BaseException:
            self._client.close()
            raise
        self._contexts: dict[str, tuple[Context, Session]] = {}
        self.files = Files(self._default)

    @classmethod
    def create(cls, socket_path: str | None = None, **options: Any) -> "CodeInterpreter":
        return cls(socket_path, **options)

    @property
    def sandbox_id(self) -> str:
        return self._default.id

    def _open(self) -> Session:
        return self._client.session(**self._options)

    # ---------------------------------------------------------------- code

    def run_code(self, code: str, language: Optional[str] = None, context: Optional[Context] = None,
                 on_stdout: Handler = None, on_stderr: Handler = None, on_result: Handler = None,
                 on_error: Handler = None, envs: Optional[dict[str, str]] = None, timeout: Optional[float] = None,
                 request_timeout: Optional[float] = None) -> Execution:
        """Runs `code` in the default context (or `context`) and returns its Execution; an
        exception in the code sets `execution.error`. timeout: seconds (None or 0: the
        daemon's limit); past it the cell is interrupted and TimeoutException raised."""
        if language and context:
            raise ValueError("You can provide context or language, but not both at the same time.")
        _check_language(language)
        if envs:
            raise ValueError("per-call envs are not supported: pass envs to CodeInterpreter(envs=...)")
        session = self._session_of(context)
        delivery = _Delivery(on_stdout, on_stderr, on_result, on_error)
        # Leaving early (a callback raising, Ctrl-C) cancels the cell: the context lives on.
        with session.stream(code, timeout=timeout or None) as running:  # display: when offered
            for event in running:
                delivery.event(event)
            result = running.result()
        execution = delivery.finished(result)
        if result.timed_out:
            raise TimeoutException("Execution timed out — the 'timeout' option can be used to increase this timeout")
        return execution

    def _session_of(self, context: Optional[Context]) -> Session:
        if context is None:
            return self._default
        try:
            return self._contexts[context.id][1]
        except KeyError:
            raise ValueError(f"no code context {context.id!r} in this sandbox") from None

    # ---------------------------------------------------------------- contexts

    def create_code_context(self, cwd: Optional[str] = None, language: Optional[str] = None,
                            request_timeout: Optional[float] = None) -> Context:
        """A new context: a state of its own (its own leeward session), starting in cwd
        (made if missing; under /tmp)."""
        _check_language(language)
        session = self._open()
        context = Context(id=session.id, language=PYTHON, cwd=_absolute(cwd or "."))
        self._contexts[context.id] = (context, session)
        self._enter(context)
        return context

    def _enter(self, context: Context) -> None:
        if context.cwd != WORKDIR:
            moved = self._session_of(context).run(
                f"__import__('os').makedirs({context.cwd!r}, exist_ok=True)\n__import__('os').chdir({context.cwd!r})",
                display=False)
            if moved.error:
                raise OSError(f"cannot use {context.cwd} as the working directory: {moved.error.get('value')}")

    def list_code_contexts(self) -> list[Context]:
        return [Context(id=self._default.id, language=PYTHON, cwd=WORKDIR)] + [c for c, _ in self._contexts.values()]

    def remove_code_context(self, context: Context | str) -> None:
        context_id = context.id if isinstance(context, Context) else context
        _, session = self._contexts.pop(context_id)
        session.close()

    def restart_code_context(self, context: Context | str) -> None:
        """A fresh interpreter state for the context (a new session under the same id)."""
        context_id = context.id if isinstance(context, Context) else context
        known, session = self._contexts[context_id]
        session.close()
        self._contexts[context_id] = (known, self._open())
        self._enter(known)

    # ---------------------------------------------------------------- life

    def is_running(self) -> bool:
        try:
            return any(s.id == self._default.id for s in self._client.sessions())
        except LeewardError:
            return False

    def kill(self) -> None:
        """Ends every context's session and the connection. Idempotent."""
        if self._client.closed:
            return
        try:
            for _, session in self._contexts.values():
                session.close()
            self._default.close()
        finally:
            self._contexts.clear()
            self._client.close()

    close = kill

    def __enter__(self) -> "CodeInterpreter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()


def _check_language(language: Optional[str]) -> None:
    if language not in (None, PYTHON):
        raise ValueError(f"leeward's CodeInterpreter runs Python only, not {language!r}")

