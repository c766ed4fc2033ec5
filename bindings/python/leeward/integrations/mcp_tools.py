"""The tools leeward-mcp offers, over the Python binding: run_python, run_command, the
session lifecycle and a session's files.

Each call opens its own connection (a fraction of a millisecond on a Unix socket), so a
long job never holds up another client's call. State lives only in sessions, named by an
explicit `session_id` argument: the newest MCP revision has no per-connection session to
hang it on. Daemon refusals (an unknown session, a bad path, a busy daemon) become
ToolError, whose message reaches the client; a user's code failing is a result.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import secrets
import threading
from typing import Annotated, Callable, Iterator, Literal

import anyio
import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from leeward import ExecutionResult, Leeward, LeewardError

from .mcp_results import RunOutput, to_tool_result

Connect = Callable[[], Leeward]

# Between Cancel attempts that found nothing: the job's request may not have reached the
# daemon yet when the call is cancelled.
CANCEL_RETRY_SECS = 0.05

Code = Annotated[str, Field(description="Python source; the value of a final expression is returned, "
                                        "matplotlib figures come back as images")]
Timeout = Annotated[float, Field(gt=0, description="wall-clock limit in seconds")]
SessionId = Annotated[str, Field(description="a session from session_open")]
OptionalSessionId = Annotated[str | None, Field(
    description="run in this session (from session_open) to keep variables, imports and files; "
                "omit for a fresh, throw-away sandbox")]
Path = Annotated[str, Field(description="relative to the sandbox's working directory /tmp, or absolute under /tmp")]


class SessionInfo(BaseModel):
    session_id: str
    idle_timeout_secs: float | None = None
    max_lifetime_secs: float | None = None


class SessionListing(BaseModel):
    class Entry(BaseModel):
        session_id: str
        executions: int
        busy: bool
        created_at: float
        last_used_at: float
        expires_at: float

    sessions: list[Entry]


class Closed(BaseModel):
    closed: str


class FileData(BaseModel):
    path: str
    encoding: Literal["utf-8", "base64"]
    content: str
    size: int = Field(description="the whole file's size in bytes")
    truncated: bool


class Written(BaseModel):
    path: str
    size: int


class Listing(BaseModel):
    class Entry(BaseModel):
        name: str
        type: Literal["file", "dir", "symlink", "other"]
        size: int

    path: str
    entries: list[Entry]


class LeewardTools:
    """The tool functions; `connect` returns a new connection to the daemon."""

    def __init__(self, connect: Connect):
        self._connect = connect
        self._features: list[str] | None = None

    @contextlib.contextmanager
    def _client(self) -> Iterator[Leeward]:
        try:
            with self._connect() as client:
                if self._features is None:
                    self._features = client.features()
                yield client
        except LeewardError as exc:
            raise ToolError(f"leeward: {exc}") from exc

    async def _cancellable(self, job: Callable[[Leeward, str | None], ExecutionResult]) -> ExecutionResult:
        """Runs `job` on a worker thread. When the MCP client cancels the call, the job is
        cancelled in the daemon too (a one-shot sandbox killed, a session cell interrupted)
        rather than left running where nobody waits for it."""
        execution_id = secrets.token_urlsafe(16)  # unguessable: Cancel finds jobs by it
        over = threading.Event()

        def work() -> ExecutionResult:
            try:
                with self._client() as client:
                    return job(client, execution_id if "cancel" in (self._features or ()) else None)
            finally:
                over.set()

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._cancel, execution_id, over)
            raise

    def _cancel(self, execution_id: str, over: threading.Event) -> None:
        """Sends Cancel until the daemon finds the job (the request may not have reached
        it yet) or the job is over, then waits for its end: its sandbox is gone after."""
        try:
            with self._connect() as client:
                while not client.cancel(execution_id) and not over.wait(CANCEL_RETRY_SECS):
                    pass
        except LeewardError:
            return  # the daemon went away (and the job with it), or it cannot cancel
        over.wait()

    async def run_python(self, code: Code, timeout_secs: Timeout = 30.0,
                         session_id: OptionalSessionId = None) -> Annotated[CallToolResult, RunOutput]:
        """Run Python code in an isolated leeward sandbox (no network, no host files).
        Returns stdout/stderr, the value of the final expression, and plots as images;
        an exception is reported with its traceback. Pass session_id to keep state."""

        def job(client: Leeward, execution_id: str | None) -> ExecutionResult:
            display = "display" in (self._features or ())
            if session_id is None:
                return client.execute(code, timeout=timeout_secs, display=display, execution_id=execution_id)
            return client.attach(session_id).run(code, timeout=timeout_secs, display=display,
                                                 execution_id=execution_id)

        return to_tool_result(await self._cancellable(job), session_id)

    async def run_command(
        self,
        argv: Annotated[list[str] | None, Field(description="the program and its arguments, e.g. [\"ls\", \"-l\"]")] = None,
        command: Annotated[str | None, Field(description="a shell command line, run as sh -c COMMAND")] = None,
        timeout_secs: Timeout = 30.0,
        session_id: OptionalSessionId = None,
        stdin: Annotated[str | None, Field(description="text given to the program on stdin")] = None,
    ) -> Annotated[CallToolResult, RunOutput]:
        """Run a program (argv) or a shell command line (command) in an isolated leeward
        sandbox; give exactly one. In a session it sees the session's files."""
        if (argv is None) == (command is None):
            raise ToolError("give exactly one of argv and command")
        if argv is not None and not argv:
            raise ToolError("argv must name a program")
        program = argv if argv is not None else ["sh", "-c", command]

        def job(client: Leeward, execution_id: str | None) -> ExecutionResult:
            if session_id is None:
                return client.run(program, timeout=timeout_secs, stdin=stdin, execution_id=execution_id)
            return client.attach(session_id).run(program, timeout=timeout_secs, stdin=stdin,
                                                 execution_id=execution_id)

        return to_tool_result(await self._cancellable(job), session_id)

    def session_open(
        self,
        memory_limit: Annotated[str | None, Field(description="for the whole session, e.g. \"512M\"")] = None,
        idle_timeout_secs: Annotated[float | None, Field(gt=0, description="ends after this long unused")] = None,
        max_lifetime_secs: Annotated[float | None, Field(gt=0, description="ends this long after opening")] = None,
    ) -> SessionInfo:
        """Open a session: one sandbox kept alive between calls, whose variables, imports and
        files persist. Pass its session_id to run_python, run_command and the file tools;
        close it with session_close when done."""
        with self._client() as client:
            try:
                session = client.session(memory_limit=memory_limit, idle_timeout=idle_timeout_secs,
                                         max_lifetime=max_lifetime_secs)
            except ValueError as exc:
                raise ToolError(str(exc)) from exc
        return SessionInfo(session_id=session.id, idle_timeout_secs=session.idle_timeout_secs,
                           max_lifetime_secs=session.max_lifetime_secs)

    def session_close(self, session_id: SessionId) -> Closed:
        """Close a session and destroy its sandbox."""
        with self._client() as client:
            client.attach(session_id).close()
        return Closed(closed=session_id)

    def session_list(self) -> SessionListing:
        """Your open sessions."""
        with self._client() as client:
            sessions = client.sessions()
        return SessionListing(sessions=[
            SessionListing.Entry(session_id=s.id, executions=s.executions, busy=s.busy, created_at=s.created_at,
                                 last_used_at=s.last_used_at, expires_at=s.expires_at) for s in sessions])

    def file_read(self, session_id: SessionId, path: Path,
                  max_bytes: Annotated[int | None, Field(gt=0)] = None) -> FileData:
        """Read a file of a session: text as UTF-8, anything else as base64."""
        with self._client() as client:
            data = client.attach(session_id).files.read(path, max_bytes=max_bytes)
        try:
            encoding, content = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            encoding, content = "base64", base64.b64encode(data).decode("ascii")
        return FileData(path=path, encoding=encoding, content=content, size=data.size, truncated=data.truncated)

    def file_write(self, session_id: SessionId, path: Path, content: str,
                   encoding: Literal["utf-8", "base64"] = "utf-8") -> Written:
        """Write a file into a session (replacing it): content as text, or base64 for bytes."""
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
        except binascii.Error as exc:
            raise ToolError(f"content is not valid base64: {exc}") from exc
        with self._client() as client:
            size = client.attach(session_id).files.write(path, data)
        return Written(path=path, size=size)

    def file_list(self, session_id: SessionId, path: Path = ".") -> Listing:
        """List a directory of a session."""
        with self._client() as client:
            entries = client.attach(session_id).files.list(path)
        return Listing(path=path, entries=[Listing.Entry(name=e.name, type=e.type, size=e.size) for e in entries])

    def register(self, server) -> None:
        """Adds every tool to an MCPServer."""
        for tool in (self.run_python, self.run_command, self.session_open, self.session_close,
                     self.session_list, self.file_read, self.file_write, self.file_list):
            server.add_tool(tool)
