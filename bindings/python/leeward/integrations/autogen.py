"""AutoGen: a code executor that runs `python` and `sh` blocks in leeward
(`pip install leeward[autogen]`).

    from autogen_agentchat.agents import CodeExecutorAgent
    from leeward.integrations.autogen import LeewardCodeExecutor

    async with LeewardCodeExecutor(stateful=True) as executor:
        agent = CodeExecutorAgent("runner", code_executor=executor)
        ...

Blocks run in order and stop at the first that exits non-zero. By default each block runs
in a fresh sandbox, as AutoGen's command-line executors run each in a fresh process;
`stateful=True` runs them all as cells of one session, as its Jupyter executor does, so
variables and /tmp files carry over (restart() starts a new, empty one). Figures a
Python block draws are saved as PNG files in `output_dir` and listed in the result's
`output_files`. A block past `timeout` exits 124 (" Timeout" appended to its output).
Cancelling the CancellationToken cancels the block in the daemon and raises
CancelledError once it has ended: a fresh sandbox is gone by then; a session's cell gets
KeyboardInterrupt and the session lives on. A session that ended (idle expiry, a block
that ignored its timeout) is replaced by a new one, and the output says its state is lost.
"""
from __future__ import annotations

import asyncio
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from functools import partial
from typing import Callable, ClassVar

from autogen_core import CancellationToken, Component
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult
from pydantic import BaseModel
from typing_extensions import Self

from leeward import ExecutionResult, Leeward, Session, SessionEnded

from ._jobs import interleaved, run_cancellable

PYTHON = ("python", "python3", "py")
SHELLS = {"sh": "sh", "shell": "sh", "bash": "bash"}  # a block's language -> the program that runs it
TIMEOUT_EXIT_CODE = 124  # what timeout(1) exits with, as AutoGen's Docker executor reports it


@dataclass
class LeewardCodeResult(CodeResult):
    """A CodeResult with the figures the blocks drew, saved as files (as JupyterCodeResult)."""

    output_files: list[Path] = field(default_factory=list)


class LeewardCodeExecutorConfig(BaseModel):
    """LeewardCodeExecutor's declarative config (dump_component / load_component)."""

    socket_path: str | None = None
    timeout: int = 60
    stateful: bool = False
    memory_limit: int | str | None = None
    output_dir: str | None = None


class LeewardCodeExecutor(CodeExecutor, Component[LeewardCodeExecutorConfig]):
    """Runs code blocks in leeward sandboxes.

    socket_path: the daemon's socket (None: $LEEWARD_SOCKET or the per-user default).
    timeout: wall-clock seconds per block (the daemon bounds it).
    stateful: run every block in one session instead of a fresh sandbox each.
    memory_limit: bytes or "512M": per block, or for the whole session when stateful.
    output_dir: where figures are saved (default: a temporary directory made for the first
        figure, and left for the caller like JupyterCodeExecutor's: results name its files).
    """

    component_config_schema = LeewardCodeExecutorConfig
    component_provider_override = "leeward.integrations.autogen.LeewardCodeExecutor"
    SUPPORTED_LANGUAGES: ClassVar[list[str]] = [*PYTHON, *SHELLS]

    def __init__(self, *, socket_path: str | None = None, timeout: int = 60, stateful: bool = False,
                 memory_limit: int | str | None = None, output_dir: str | Path | None = None):
        if timeout < 1:
            raise ValueError("timeout must be at least 1 second")
        self._socket_path = socket_path
        self._timeout = timeout
        self._stateful = stateful
        self._memory_limit = memory_limit
        self._output_dir = None if output_dir is None else Path(output_dir)
        self._configured_output_dir = self._output_dir is not None
        self._client: Leeward | None = None
        self._session: Session | None = None
        self._features: frozenset[str] = frozenset()

    @property
    def timeout(self) -> int:
        return self._timeout

    @property
    def output_dir(self) -> Path | None:
        """Where figures are saved (None until the first figure when not configured)."""
        return self._output_dir

    @property
    def session(self) -> Session | None:
        """The session the blocks run in (stateful, once started)."""
        return self._session

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        """Connects to the daemon (and opens the session when stateful). Called on first
        use if not called before; `async with` calls start() and stop()."""
        if self._client is not None:
            return
        self._client = await asyncio.to_thread(Leeward, self._socket_path)
        self._features = frozenset(await asyncio.to_thread(self._client.features))
        if self._stateful:
            self._session = await asyncio.to_thread(self._open_session)

    async def stop(self) -> None:
        """Closes the session and the connection."""
        client, session, self._client, self._session = self._client, self._session, None, None
        if session is not None:
            await asyncio.to_thread(session.close)
        if client is not None:
            client.close()

    async def restart(self) -> None:
        """Stateful: ends the session and opens a new, empty one. Stateless: nothing to
        reset, every block already starts fresh."""
        if self._client is None or not self._stateful:
            return
        old, self._session = self._session, None
        if old is not None:
            await asyncio.to_thread(old.close)
        self._session = await asyncio.to_thread(self._open_session)

    # ---------------------------------------------------------------- execution

    async def execute_code_blocks(self, code_blocks: list[CodeBlock],
                                  cancellation_token: CancellationToken) -> LeewardCodeResult:
        if not code_blocks:
            raise ValueError("no code blocks to execute")
        await self.start()
        outputs: list[str] = []
        files: list[Path] = []
        exit_code = 0
        for block in code_blocks:
            language = block.language.lower()
            refusal = self._refusal(language)
            if refusal:
                outputs.append(refusal + "\n")
                exit_code = 1
                break
            task = asyncio.ensure_future(self._run_block(block.code, language))
            cancellation_token.link_future(task)
            result, streams, note = await task
            exit_code, output = _exit_and_output(result, streams)
            outputs.append(note + output)
            files += self._save_figures(result)
            if exit_code != 0:
                break
        return LeewardCodeResult(exit_code=exit_code, output="".join(outputs), output_files=files)

    async def _run_block(self, code: str, language: str) -> tuple[ExecutionResult, str, str]:
        """The block's result, its stdout and stderr as one text, and a note for the model
        when the session's state was lost before it ran."""
        program = code if language in PYTHON else [SHELLS[language], "-c", code]
        display = language in PYTHON and "display" in self._features

        def job(execution_id: str) -> tuple[ExecutionResult, str]:
            run = self._runner(program, display, execution_id)
            if isinstance(program, str):
                # Python's stdout is block-buffered in a sandbox (no terminal): in arrival
                # order its prints would land after its traceback, so stdout goes first.
                result = run()
                return result, result.stdout + result.stderr
            return interleaved(run)

        try:
            (result, streams), note = await run_cancellable(job, self._client), ""
        except SessionEnded as ended:  # idle or lifetime expiry since the last block
            self._session = await asyncio.to_thread(self._open_session)
            result, streams = await run_cancellable(job, self._client)
            note = f"[the session had ended ({ended.reason}); this block ran in a new one, without its state]\n"
        if result.session is not None and not result.session.alive:
            self._session = await asyncio.to_thread(self._open_session)  # the block ended it
        return result, streams, note

    def _runner(self, program: str | list[str], display: bool, execution_id: str) -> Callable[..., ExecutionResult]:
        """The binding's call that runs the block: in the session when stateful, else in a
        fresh sandbox."""
        if self._session is not None:
            return partial(self._session.run, program, timeout=self._timeout, display=display,
                           execution_id=execution_id)
        if isinstance(program, str):
            return partial(self._client.execute, program, timeout=self._timeout, memory=self._memory_limit,
                           display=display, execution_id=execution_id)
        return partial(self._client.run, program, timeout=self._timeout, memory=self._memory_limit,
                       execution_id=execution_id)

    def _refusal(self, language: str) -> str | None:
        """Why a block of `language` cannot run here, told to the model as a failed block."""
        if language not in self.SUPPORTED_LANGUAGES:
            return f"unknown language {language}"
        if language in SHELLS and "argv" not in self._features:
            return f"this leeward daemon runs no programs (its Ping lists no \"argv\"), so no {language} blocks"
        return None

    def _open_session(self) -> Session:
        return self._client.session(memory_limit=self._memory_limit)

    def _save_figures(self, result: ExecutionResult) -> list[Path]:
        saved = []
        for shown in result.results:
            png = shown.png
            if png is not None:
                if self._output_dir is None:
                    self._output_dir = Path(tempfile.mkdtemp(prefix="leeward-autogen-"))
                self._output_dir.mkdir(parents=True, exist_ok=True)
                path = self._output_dir / f"{uuid.uuid4().hex}.png"
                path.write_bytes(png)
                saved.append(path.absolute())
        return saved

    # ---------------------------------------------------------------- config

    def _to_config(self) -> LeewardCodeExecutorConfig:
        return LeewardCodeExecutorConfig(
            socket_path=self._socket_path, timeout=self._timeout, stateful=self._stateful,
            memory_limit=self._memory_limit,
            output_dir=str(self._output_dir) if self._configured_output_dir else None)

    @classmethod
    def _from_config(cls, config: LeewardCodeExecutorConfig) -> Self:
        return cls(socket_path=config.socket_path, timeout=config.timeout, stateful=config.stateful,
                   memory_limit=config.memory_limit, output_dir=config.output_dir)


def _exit_and_output(result: ExecutionResult, streams: str) -> tuple[int, str]:
    """A block's exit code and output as AutoGen's executors give them: stdout and stderr
    (a traceback included), then the value of the last line (as Jupyter shows it)."""
    output = streams
    if result.text is not None:
        output += result.text + "\n"
    if result.session is not None and not result.session.alive:
        output += f"\n The session ended ({result.session.end_reason}): its state is lost"
    if result.timed_out:
        return TIMEOUT_EXIT_CODE, output + "\n Timeout"
    if result.oom_killed:
        return result.exit_code or 137, output + "\n Killed: out of memory"
    return result.exit_code, output
