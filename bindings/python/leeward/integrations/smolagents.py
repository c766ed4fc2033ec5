"""smolagents: run a CodeAgent's code in a leeward session (`pip install leeward[smolagents]`).

    from smolagents import CodeAgent
    from leeward.integrations.smolagents import LeewardExecutor

    agent = CodeAgent(tools=[], model=model, executor=LeewardExecutor())
    agent.run("...")
    agent.cleanup()  # closes the session

Every step's code runs as a cell of one session, so names defined in one step (and the
tool stubs smolagents sends first) are there in the next. A tool's code runs inside the
sandbox too, where there is no network.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from io import BytesIO
from typing import Any, Iterable, Iterator

import PIL.Image
from smolagents.local_python_executor import CodeOutput
from smolagents.monitoring import AgentLogger, LogLevel
from smolagents.remote_executors import RemotePythonExecutor
from smolagents.utils import AgentError

from leeward import ExecutionResult, Leeward, Session, SessionEnded

# Asks the sandbox which of the names given (pip distributions or modules) it cannot find.
_MISSING_PROBE = """
import importlib.metadata as _md, importlib.util as _iu, json as _json
def _present(name):
    try:
        _md.distribution(name)
        return True
    except _md.PackageNotFoundError:
        pass
    try:
        return _iu.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
print(_json.dumps([_n for _n in {names!r} if not _present(_n)]))
del _md, _iu, _json, _present
"""
STATE_LOST = "every variable is lost; the next step starts in a new one with the tools defined again."


class LeewardExecutor(RemotePythonExecutor):
    """A smolagents executor whose code runs in one leeward session.

    additional_imports: packages the code expects (CodeAgent's
        `additional_authorized_imports`); leeward has no network to install them, so
        those the sandbox's Python lacks are reported (logged, and kept in
        `missing_packages`) instead of sent to `pip`.
    logger: smolagents' AgentLogger (default: one at LogLevel.INFO).
    socket_path: the daemon's socket (None: $LEEWARD_SOCKET or the per-user default).
    timeout: wall-clock seconds per step (None: the daemon's default).
    session_options: passed to Leeward.session() (mounts, files, env, memory_limit,
        idle_timeout, max_lifetime).

    A user's code error is raised as smolagents' AgentError, which the agent shows the
    model as the step's error; final_answer() ends the run with its value. If a step ends
    the session (its timeout was ignored, out of memory), the next step gets a new one
    with the tools and variables sent again, and the model is told the state is gone.
    """

    def __init__(
        self,
        additional_imports: list[str] | None = None,
        logger: AgentLogger | None = None,
        allow_pickle: bool = False,
        *,
        socket_path: str | None = None,
        timeout: float | None = None,
        **session_options: Any,
    ):
        super().__init__(list(additional_imports or []), logger or AgentLogger(LogLevel.INFO), allow_pickle)
        self.timeout = timeout
        self._session_options = session_options
        # Cells smolagents sends to set a session up (tool stubs, variables): replayed
        # into a new session when a step ends the old one.
        self._setup_cells: list[str] = []
        self._recording = False
        self.missing_packages: list[str] = []
        self._session: Session | None = None
        self._client = Leeward(socket_path)
        try:
            self._session = self._client.session(**session_options)
            self.installed_packages = self.install_packages(self.additional_imports)
        except BaseException:
            self.cleanup()
            raise

    @property
    def session(self) -> Session:
        """The session the code runs in (its `files` reads and writes the workdir)."""
        if self._session is None:
            self._session = self._client.session(**self._session_options)
            self._replay_setup()
        return self._session

    # ---------------------------------------------------------------- smolagents' contract

    def run_code_raise_errors(self, code: str) -> CodeOutput:
        session = self.session  # a new one, set up again, if the last step ended the old one
        if self._recording:
            self._setup_cells.append(code)
        try:
            result = session.run(code, timeout=self.timeout)
        except SessionEnded as ended:  # between steps: idle or lifetime expiry
            self._session = None
            raise AgentError(f"The sandbox ended ({ended.reason}) before this step ran: {STATE_LOST}",
                             self.logger) from ended
        if result.session is not None and not result.session.alive:
            self._session = None  # the next step opens a new one
        logs = result.stdout if result.error else result.stdout + result.stderr
        error = result.error
        if error and error.get("name") == self.FINAL_ANSWER_EXCEPTION:
            return CodeOutput(self._deserialize_final_answer(error["value"], self.allow_pickle), logs, True)
        if error or not result.ok:
            raise AgentError(_failure_text(result, logs), self.logger)
        return CodeOutput(_main_output(result), logs, False)

    def send_tools(self, tools: dict) -> None:
        with self._recorded():
            super().send_tools(tools)

    def send_variables(self, variables: dict[str, Any]) -> None:
        with self._recorded():
            super().send_variables(variables)

    def install_packages(self, additional_imports: list[str]) -> list[str]:
        """Returns the packages the sandbox has; logs those it lacks (no `pip`: a
        sandbox has no network; they must be installed in the daemon's Python)."""
        names = sorted({_distribution_name(name) for name in additional_imports} - {""})
        if not names:
            return []
        probe = self.session.run(_MISSING_PROBE.format(names=names), timeout=self.timeout, display=False)
        missing = json.loads(probe.stdout) if probe.ok else names
        if missing:
            self.missing_packages = sorted(set(self.missing_packages) | set(missing))
            self.logger.log(
                f"leeward: the sandbox's Python lacks {', '.join(missing)}; a sandbox has no network, "
                "so install them into the Python the daemon runs sandboxes with", level=LogLevel.INFO)
        return [name for name in names if name not in missing]

    def cleanup(self) -> None:
        """Closes the session and the connection (CodeAgent.cleanup() calls this)."""
        if self._session is not None:
            self._session.close()
            self._session = None
        self._client.close()

    # ---------------------------------------------------------------- helpers

    @contextmanager
    def _recorded(self) -> Iterator[None]:
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    def _replay_setup(self) -> None:
        for code in self._setup_cells:
            self._session.run(code, timeout=self.timeout)


def _distribution_name(authorized: str) -> str:
    """'numpy.*' -> 'numpy'; '*' (any import) names nothing to check."""
    return authorized.split(".", 1)[0].strip("*").strip()


def _main_output(result: ExecutionResult) -> Any:
    """The value smolagents shows as "Last output": the final expression's image as a
    PIL image, else its text (as E2BExecutor does)."""
    main = result.main
    if main is None:
        return None
    for mime in ("image/png", "image/jpeg"):
        if mime in main.data:
            return PIL.Image.open(BytesIO(main.data[mime]))
    return main.text if main.text is not None else next(iter(main.data.values()), None)


def _failure_text(result: ExecutionResult, logs: str) -> str:
    """What the model reads for a failed step, in E2BExecutor's layout."""
    error = result.error or {}
    text = (f"{logs}\nExecuting code yielded an error:\n{error.get('name', 'Error')}\n"
            f"{error.get('value', '')}\n{error.get('traceback', result.stderr)}")
    return text + "".join(f"\n{note}" for note in _endings(result))


def _endings(result: ExecutionResult) -> Iterable[str]:
    if result.timed_out:
        yield "The step ran past its timeout and was interrupted."
    if result.oom_killed:
        yield "The step ran out of memory and was killed."
    if result.session is not None and not result.session.alive:
        yield f"The sandbox ended ({result.session.end_reason}): {STATE_LOST}"
