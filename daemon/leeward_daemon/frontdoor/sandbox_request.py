"""What a request asks of its sandbox: one-shot Execute and SessionOpen build their
SandboxRequest (applied once) here, Execute and SessionExecute their Run (code or argv), with the
daemon's defaults and bounds."""
from __future__ import annotations

from libleeward.protocol import Execute, Mount
from libleeward.session_requests import SessionExecute

from ..config import Config
from ..model import Run, SandboxRequest
from . import mounts


def build(config: Config, limits_backend: str, requested_mounts: tuple[Mount, ...], env: dict[str, str],
          memory_limit: int | None, cpu_time_limit: float) -> SandboxRequest:
    return SandboxRequest(
        mounts=tuple(mounts.resolve(requested_mounts, config.allowed_paths, config.socket_path)),
        env=env,
        memory_limit=memory_limit or config.default_memory_limit,
        pids_max=config.pids_max,
        limits_backend=limits_backend,
        file_size_max=config.file_size_max,
        cpu_time_limit=cpu_time_limit,
    )


def code_run(config: Config, request: Execute | SessionExecute, *, timeout_secs: float,
             files: dict[str, bytes] | None = None) -> Run:
    """The code or program, its inputs and its rich output's asks, with the config's caps."""
    return Run(code=request.code, argv=request.argv, stdin=request.stdin, files=files or {}, timeout_secs=timeout_secs,
               display=request.display, collect=request.collect,
               results_max=config.results_max, repr_max=config.repr_max,
               collect_max=config.collect_max, collect_files_max=config.collect_files_max)
