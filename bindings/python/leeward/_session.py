"""Sessions: one live sandbox whose globals, imports and /tmp files persist between
cells (SessionOpen / SessionExecute / SessionClose and the File* requests of PROTOCOL-V2),
over Leeward.call.

    with Leeward() as lw, lw.session() as s:
        s.run("x = 1")
        assert s.run("x + 1").text == "2"
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from ._program import Program, program_fields
from ._results import ExecutionResult, FileContent, FileEntry
from ._streaming import Execution, callbacks, run_with_events, stream_fields
from .errors import SessionEnded

if TYPE_CHECKING:
    from ._client import Leeward


def cell_fields(*, timeout: float | None, stdin: bytes | str | None, display: bool,
                collect: Iterable[str]) -> dict[str, Any]:
    """The optional fields a one-shot Execute and a session cell share, each sent only
    when set: the daemon refuses a field it does not know, so an unused v2 field is
    never sent to a v1 daemon."""
    fields: dict[str, Any] = {}
    if timeout is not None:
        if not timeout > 0:
            raise ValueError("timeout must be > 0 (None means the daemon's default)")
        fields["timeout_secs"] = float(timeout)
    if stdin:
        fields["stdin"] = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
    if display:
        fields["display"] = True
    patterns = [collect] if isinstance(collect, str) else list(collect)
    if patterns:
        fields["collect"] = patterns
    return fields


class Session:
    """An open session; made by Leeward.session(). A context manager that closes it.

    `id` names it to any connection of the same user (the CLI's `--session ID`);
    `files` reads and writes its workdir. Cells run one at a time, in order."""

    def __init__(self, client: "Leeward", opened: dict):
        self._client = client
        self.id: str = str(opened["id"])
        self.idle_timeout_secs: float | None = opened.get("idle_timeout_secs")
        self.max_lifetime_secs: float | None = opened.get("max_lifetime_secs")
        self.files = SessionFiles(client, self.id)
        self._closed = False

    @classmethod
    def attach(cls, client: "Leeward", session_id: str) -> "Session":
        """A handle on a session opened elsewhere (another connection, the CLI): nothing
        is sent; an unknown id fails at the first request with SessionNotFound."""
        return cls(client, {"id": session_id})

    def run(self, code: Program, *, timeout: float | None = None, stdin: bytes | str | None = None,
            display: bool | None = None, collect: Iterable[str] = (),
            on_stdout: Callable[[bytes], None] | None = None, on_stderr: Callable[[bytes], None] | None = None,
            execution_id: str | None = None) -> ExecutionResult:
        """Runs `code` as the session's next cell, or a program when given an argv list
        (`s.run(["ls", "-l"])`: in the session's sandbox and workdir, as Leeward.run();
        its timeout sends SIGINT to the program, then the session is killed if it
        ignores that, as for code). display (as in a notebook, code only): the final
        expression's value is the main result (`.text`, `.html`), display() and
        matplotlib figures add more; None (the default) means on when the daemon
        offers it (Pong's features list "display"). collect: globs relative to the
        workdir whose files come back in `.files`. A cell past its timeout is
        interrupted (KeyboardInterrupt); one that ignores that ends the session
        (`result.session.alive` is False). on_stdout / on_stderr / execution_id: as
        for Leeward.execute(); a cancelled cell gets KeyboardInterrupt and the session
        lives on."""
        handler = callbacks(on_stdout, on_stderr)
        request = self._cell_request(code, timeout, stdin, display, collect)
        request.update(stream_fields(self._client, execution_id, streaming=handler is not None))
        if handler is None:
            return ExecutionResult.from_wire(self._client.call(request)["result"])
        return run_with_events(self._client, request, handler)

    def stream(self, code: Program, *, timeout: float | None = None, stdin: bytes | str | None = None,
               display: bool | None = None, collect: Iterable[str] = (),
               execution_id: str | None = None) -> Execution:
        """Starts the cell and returns at once, as Leeward.stream(): iterate for Events,
        .result(), .cancel() (KeyboardInterrupt in the cell; the session lives on)."""
        request = self._cell_request(code, timeout, stdin, display, collect)
        request.update(stream_fields(self._client, execution_id, streaming=True))
        return Execution(self._client, request)

    def _cell_request(self, code: Program, timeout: float | None, stdin: bytes | str | None, display: bool | None,
                      collect: Iterable[str]) -> dict[str, Any]:
        program = program_fields(self._client, code)
        if display is None:
            display = "code" in program and "display" in self._client.cached_features()
        return {"type": "SessionExecute", "session_id": self.id, **program,
                **cell_fields(timeout=timeout, stdin=stdin, display=display, collect=collect)}

    def close(self) -> None:
        """Ends the session and destroys its sandbox. Idempotent; a session that has
        already ended (idle TTL, lifetime, OOM, ...) closes without an error."""
        if self._closed:
            return
        try:
            self._client.call({"type": "SessionClose", "session_id": self.id})
        except SessionEnded:
            pass
        self._closed = True

    @property
    def closed(self) -> bool:
        """True once close() was called on this handle."""
        return self._closed

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<leeward.Session {self.id}{' closed' if self._closed else ''}>"


class SessionFiles:
    """The session's files, read and written by its own sandbox process under its
    Landlock and seccomp. Paths are relative to the workdir (/tmp), or absolute under
    /tmp or a read-write mount; `..` is refused (InvalidRequest, E2005)."""

    def __init__(self, client: "Leeward", session_id: str):
        self._client = client
        self._session_id = session_id

    def _call(self, kind: str, **fields: Any) -> dict:
        return self._client.call({"type": kind, "session_id": self._session_id, **fields})

    def write(self, path: str, data: bytes | str) -> int:
        """Writes `data` (str as UTF-8) to `path`, replacing it; returns the size written."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        return int(self._call("FileWrite", path=path, data=payload)["size"])

    def read(self, path: str, max_bytes: int | None = None) -> FileContent:
        """The file's bytes (at most max_bytes of them): bytes with `.size` (the whole
        file's) and `.truncated`."""
        fields = {} if max_bytes is None else {"max_bytes": int(max_bytes)}
        reply = self._call("FileRead", path=path, **fields)
        data = reply.get("data") or b""
        return FileContent(data, int(reply.get("size", len(data))), bool(reply.get("truncated", False)))

    def list(self, path: str = ".") -> list[FileEntry]:
        """The entries of the directory `path`."""
        return [FileEntry.from_wire(entry) for entry in self._call("FileList", path=path).get("entries") or []]

    def remove(self, path: str) -> None:
        self._call("FileRemove", path=path)
