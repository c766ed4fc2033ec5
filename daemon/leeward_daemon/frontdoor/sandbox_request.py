"""What a request asks of its sandbox, applied once: one-shot Execute and SessionOpen
build their SandboxRequest here, with the daemon's defaults and bounds."""
from __future__ import annotations

from libleeward.protocol import Mount

from ..config import Config
from ..model import SandboxRequest
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
