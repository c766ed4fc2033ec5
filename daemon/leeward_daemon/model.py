"""What one sandbox is built from; fixed in the zygote, shared by every layer."""
from __future__ import annotations

from dataclasses import dataclass, field

# Inside the sandbox the code runs as this uid/gid (synthetic /etc/passwd names it).
SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_HOSTNAME = "leeward"
WORKDIR = "/tmp"


@dataclass(frozen=True)
class SandboxSpec:
    privileged: bool                 # daemon runs as host root
    python_paths: tuple[str, ...]    # host dirs (besides the system ones) Python needs, bound ro
    tmp_size: int
    # The box's own uid/gid as the zygote sees them: a root daemon's otherwise unused host
    # uid, or 1..n in the zygote's subordinate-id namespace (subids.py); None: the daemon's.
    outside_uid: int | None = None
    outside_gid: int | None = None
    landlock_abi: int = 0            # 0: the kernel has none (allowed only via optional_layers)
    seccomp_filter: bytes = b""      # BPF compiled once by the zygote, installed last in every job
    seccomp_notify: bool = True      # report denials by name through a user-notification listener


@dataclass(frozen=True)
class JobMount:
    host: str        # realpath on the host, checked against allowed_paths by the daemon
    sandbox: str
    ro: bool = True


@dataclass
class Job:
    code: str
    mounts: list[JobMount] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes = b""
    memory_limit: int = 0
    pids_max: int = 0
    timeout_secs: float = 0.0
    limits_backend: str = "rlimit"   # which backend the daemon enforces; rlimit is applied in here
    file_size_max: int = 0
