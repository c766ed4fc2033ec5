"""LangChain: a tool that runs Python in leeward (`pip install leeward[langchain]`).

    from leeward.integrations.langchain import LeewardPythonTool

    tool = LeewardPythonTool()
    tool.invoke({"code": "x = 2\\nx * 21"})                                   # '42'
    tool.invoke({"code": "x += 1"}, {"configurable": {"thread_id": "t1"}})   # state kept per thread
    tool.close()

Without a thread_id each call runs in a fresh sandbox. With one (LangGraph passes the
conversation's `config["configurable"]["thread_id"]`), the calls of that thread run as
cells of one leeward session, so variables, imports and /tmp files carry over; another
thread never sees them. A user's code failing is an answer (the traceback in the text),
never an exception; the daemon refusing (no daemon, too many sessions) is LangChain's
ToolException. The artifact (ToolMessage.artifact) carries the whole result, figures as
PNG bytes included. A thread's session lasts until close(thread_id) or close(), or the
daemon's idle timeout; the daemon caps each user's open sessions (max_sessions_per_uid).
"""
from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field, PrivateAttr

from leeward import ExecutionResult, Leeward, LeewardError, Session, SessionEnded

from ._jobs import run_cancellable

FIGURE_TYPES = ("image/png", "image/jpeg")


class CodeInput(BaseModel):
    code: str = Field(description="Python source to run; the value of its last line is returned")


class LeewardPythonTool(BaseTool):
    """Runs Python in an isolated leeward sandbox: no network, no host files.

    socket_path: the daemon's socket (None: $LEEWARD_SOCKET or the per-user default).
    timeout: wall-clock seconds per call (None: the daemon's default).
    session_options: passed to Leeward.session() for each thread's session (mounts,
        files, env, memory_limit, idle_timeout, max_lifetime).
    """

    name: str = "leeward_python"
    description: str = (
        "Run Python code in an isolated sandbox (no network, no host files) and get its "
        "printed output and the value of its last line. Within one conversation, variables, "
        "imports and files in /tmp persist between calls. matplotlib figures are captured.")
    args_schema: type[BaseModel] = CodeInput
    response_format: str = "content_and_artifact"
    socket_path: str | None = None
    timeout: float | None = None
    session_options: dict[str, Any] = Field(default_factory=dict)

    # thread_id -> its session, each on a connection of its own so that threads run in parallel
    _sessions: dict[str, tuple[Leeward, Session]] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _control: Leeward | None = PrivateAttr(default=None)  # for Cancel and the daemon's features

    # ---------------------------------------------------------------- BaseTool

    def _run(self, code: str, config: RunnableConfig) -> tuple[str, dict]:
        with _daemon_errors():
            return _answer(*self._execute(code, _thread_id(config), None))

    async def _arun(self, code: str, config: RunnableConfig) -> tuple[str, dict]:
        """As _run; cancelling the awaiting task cancels the job in the daemon."""
        thread_id = _thread_id(config)
        with _daemon_errors():
            control = await asyncio.to_thread(self._control_client)
            outcome = await run_cancellable(lambda execution_id: self._execute(code, thread_id, execution_id),
                                            control)
        return _answer(*outcome)

    # ---------------------------------------------------------------- sessions

    def close(self, thread_id: str | None = None) -> None:
        """Closes the session of `thread_id`, or (None) every session this tool opened."""
        with self._lock:
            keys = list(self._sessions) if thread_id is None else [thread_id]
            ended = [self._sessions.pop(key) for key in keys if key in self._sessions]
            control = None
            if thread_id is None:  # the tool is done: its control connection goes too
                control, self._control = self._control, None
        for client, session in ended:
            try:
                session.close()
            finally:
                client.close()
        if control is not None:
            control.close()

    def session(self, thread_id: str) -> Session:
        """The session of `thread_id`, opened if it has none: its `files` reads and writes
        what the thread's code sees (put inputs there before a run, fetch outputs after)."""
        with self._lock:
            if thread_id not in self._sessions:
                client = Leeward(self.socket_path)
                try:
                    self._sessions[thread_id] = client, client.session(**self.session_options)
                except BaseException:
                    client.close()
                    raise
            return self._sessions[thread_id][1]

    @property
    def thread_sessions(self) -> dict[str, str]:
        """thread_id -> the id of its open session."""
        with self._lock:
            return {key: session.id for key, (_, session) in self._sessions.items()}

    # ---------------------------------------------------------------- helpers

    def _execute(self, code: str, thread_id: str | None,
                 execution_id: str | None) -> tuple[ExecutionResult, str | None]:
        """The result, and a note for the model when the thread's state was lost."""
        if thread_id is None:
            display = "display" in self._control_client().cached_features()
            with Leeward(self.socket_path) as client:  # its own connection: calls run in parallel
                return client.execute(code, timeout=self.timeout, display=display, execution_id=execution_id), None
        session = self.session(thread_id)
        note = None
        try:
            result = session.run(code, timeout=self.timeout, execution_id=execution_id)
        except SessionEnded as ended:  # idle or lifetime expiry since the thread's last call
            self._drop(thread_id, session)
            note = f"[this conversation's sandbox had ended ({ended.reason}); this ran in a new one, without its state]"
            session = self.session(thread_id)
            result = session.run(code, timeout=self.timeout, execution_id=execution_id)
        if result.session is not None and not result.session.alive:
            self._drop(thread_id, session)
        return result, note

    def _drop(self, thread_id: str, session: Session) -> None:
        """Forgets an ended session (unless another call has replaced it already)."""
        with self._lock:
            current = self._sessions.get(thread_id)
            if current is None or current[1] is not session:
                return
            del self._sessions[thread_id]
        current[0].close()

    def _control_client(self) -> Leeward:
        with self._lock:
            if self._control is None:
                self._control = Leeward(self.socket_path)
            return self._control


@contextmanager
def _daemon_errors() -> Iterator[None]:
    """The daemon refusing or failing (not the user's code, whose errors are answers) as
    LangChain's ToolException, which handle_tool_error=True turns into the tool's answer."""
    try:
        yield
    except LeewardError as failed:
        raise ToolException(f"leeward: {failed}") from failed


def _thread_id(config: RunnableConfig | None) -> str | None:
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    return None if thread_id is None else str(thread_id)


def _answer(result: ExecutionResult, note: str | None) -> tuple[str, dict]:
    """(what the model reads, the artifact: the whole result as the wire protocol has it)."""
    return _render(result, note), result.to_dict()


def _render(result: ExecutionResult, note: str | None) -> str:
    """stdout, stderr, the traceback, figures (named: they are in the artifact), the last
    line's value, then what ended the code if it did not end cleanly."""
    parts = [note] if note else []
    parts += [text.rstrip("\n") for text in (result.stdout, result.stderr) if text]
    traceback = (result.error or {}).get("traceback")
    if traceback and traceback not in result.stderr:
        parts.append(traceback.rstrip("\n"))
    figures = sum(1 for shown in result.results if any(mime in shown.data for mime in FIGURE_TYPES))
    if figures:
        parts.append(f"[{figures} figure{'s' if figures > 1 else ''} captured]")
    if result.text is not None:
        parts.append(result.text)
    if result.timed_out:
        parts.append("[timed out]")
    if result.oom_killed:
        parts.append("[killed: out of memory]")
    if result.exit_code != 0 and not result.error and not result.timed_out and not result.oom_killed:
        parts.append(f"[exit code {result.exit_code}]")
    if result.session is not None and not result.session.alive:
        parts.append(f"[the sandbox ended ({result.session.end_reason}): its state is lost]")
    return "\n".join(parts) or "(no output)"
