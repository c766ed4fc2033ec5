"""deepagents: a sandbox backend over a leeward session (`pip install leeward[langchain]`).

    from deepagents import create_deep_agent
    from leeward.integrations.deepagents import LeewardSandbox

    with LeewardSandbox() as sandbox:
        agent = create_deep_agent(model=model, backend=sandbox.backend())

The agent's shell commands (`execute`, run as `sh -c COMMAND`) and its file tools
(ls/read/write/edit/grep/glob, which deepagents' BaseSandbox builds on `execute` and
the uploads) all work in one session, so files persist between them. The workspace is
the sandbox's /tmp: paths are relative to it, or absolute under it (or under a
read-write mount); anything else is refused as `invalid_path`. No network. backend()
wraps the sandbox so that deepagents puts the large tool results it offloads in /tmp too
(by default it writes them under /, which a sandbox cannot).
"""
from __future__ import annotations

from functools import partial
from typing import Any

from deepagents.backends.protocol import (
    FILE_NOT_FOUND,
    INVALID_PATH,
    IS_DIRECTORY,
    PERMISSION_DENIED,
    ExecuteResponse,
    FileDownloadResponse,
    FileUploadResponse,
)
from deepagents.backends.composite import CompositeBackend
from deepagents.backends.sandbox import BaseSandbox

from libleeward.abi import ErrorCode

from leeward import ExecutionResult, InvalidRequest, Leeward, LeewardError, Session, SessionEnded

from ._jobs import interleaved, run_cancellable, shell

WORKDIR = "/tmp"  # a session's working directory, the one writable place besides rw mounts

# The OS's words in a refused file request (all E2005) -> deepagents' error codes.
_FILE_ERRORS = (("No such file", FILE_NOT_FOUND), ("Is a directory", IS_DIRECTORY),
                ("Permission denied", PERMISSION_DENIED))


class LeewardSandbox(BaseSandbox):
    """A deepagents SandboxBackendProtocol whose workspace is one leeward session.

    socket_path: the daemon's socket (None: $LEEWARD_SOCKET or the per-user default).
    timeout: default wall-clock seconds per command (None: the daemon's default).
    session_options: passed to Leeward.session() (mounts, files, env, memory_limit,
        idle_timeout, max_lifetime).

    A failing command is a response (its output and exit code), never an exception; a
    command past its timeout exits 124 with a note in its output.
    """

    def __init__(self, *, socket_path: str | None = None, timeout: float | None = None, **session_options: Any):
        self._timeout = timeout
        self._client = Leeward(socket_path)
        try:
            if "argv" not in self._client.cached_features():
                raise InvalidRequest(ErrorCode.FEATURE_DISABLED.value,
                                     "this leeward daemon does not run programs (its Ping lists no \"argv\"), "
                                     "which a deepagents sandbox needs for its commands")
            self._session: Session = self._client.session(**session_options)
        except BaseException:
            self._client.close()
            raise

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def session(self) -> Session:
        return self._session

    def backend(self) -> CompositeBackend:
        """This sandbox as the backend to give create_deep_agent: deepagents offloads large
        tool results (and conversation history) under its artifacts root, "/" unless the
        backend is a CompositeBackend that says otherwise; here it is the workspace."""
        return CompositeBackend(default=self, routes={}, artifacts_root=WORKDIR)

    # ---------------------------------------------------------------- commands

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        return self._run(command, timeout, None)

    async def aexecute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:  # noqa: ASYNC109
        """As execute; cancelling the awaiting task cancels the command in the daemon."""
        return await run_cancellable(lambda execution_id: self._run(command, timeout, execution_id), self._client)

    def _run(self, command: str, timeout: int | None, execution_id: str | None) -> ExecuteResponse:
        try:
            # deepagents' 0 means "no timeout" where a backend has one; leeward always
            # bounds a job, so 0 (like None) means the default.
            return _response(*interleaved(partial(self._session.run, shell(command), timeout=timeout or self._timeout,
                                                  execution_id=execution_id)))
        except SessionEnded as ended:  # an earlier command ended it, or idle expiry
            return ExecuteResponse(output=f"[the sandbox has ended ({ended.reason}): its files are gone]")

    # ---------------------------------------------------------------- files

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        responses = []
        for path, data in files:
            try:
                self._session.files.write(path, data)
                responses.append(FileUploadResponse(path=path))
            except LeewardError as refused:
                responses.append(FileUploadResponse(path=path, error=_file_error(refused)))
        return responses

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        responses = []
        for path in paths:
            try:
                responses.append(FileDownloadResponse(path=path, content=bytes(self._session.files.read(path))))
            except LeewardError as refused:
                responses.append(FileDownloadResponse(path=path, error=_file_error(refused)))
        return responses

    # ---------------------------------------------------------------- life

    def close(self) -> None:
        """Closes the session (destroying its sandbox and files) and the connection."""
        try:
            self._session.close()
        finally:
            self._client.close()

    def __enter__(self) -> "LeewardSandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _response(result: ExecutionResult, output: str) -> ExecuteResponse:
    """The command's output (stdout and stderr as written), and why it ended if not by itself."""
    exit_code = result.exit_code
    if result.timed_out:
        output, exit_code = output + "\n[timed out]", 124
    elif result.oom_killed:
        output += "\n[killed: out of memory]"
    if result.session is not None and not result.session.alive:
        output += f"\n[the sandbox ended ({result.session.end_reason}): its files are gone]"
    return ExecuteResponse(output=output, exit_code=exit_code,
                           truncated=result.stdout_truncated or result.stderr_truncated)


def _file_error(refused: LeewardError) -> str:
    if isinstance(refused, InvalidRequest):
        return next((code for words, code in _FILE_ERRORS if words in refused.message), INVALID_PATH)
    return str(refused)
