"""What a sandbox is made of, shared by the daemon and the sandbox processes:
SandboxSpec (fixed in the zygote, shared by every layer), SandboxRequest (applied once,
with privilege) and Run (what the locked-down sandbox does), and the names the sandbox
sees from inside."""
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
    # The configured sandbox Python's bin dir, first on every job's PATH (`python3` in a
    # program is that venv's); "" for the daemon's own Python: PATH as SAFE_ENV has it.
    python_bin: str = ""


@dataclass(frozen=True)
class JobMount:
    host: str        # realpath on the host, checked against allowed_paths by the daemon
    sandbox: str
    ro: bool = True


@dataclass(frozen=True)
class SandboxRequest:
    """What is applied once, with privilege, before the sandbox is locked down: the
    job's mounts, its limits and its environment."""
    mounts: tuple[JobMount, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    memory_limit: int = 0
    pids_max: int = 0
    limits_backend: str = "rlimit"   # which backend the daemon enforces; rlimit is applied in here
    file_size_max: int = 0
    cpu_time_limit: float = 0.0      # seconds of CPU under the rlimit backend (RLIMIT_CPU)


@dataclass(frozen=True)
class Run:
    """What the locked-down sandbox does: one piece of Python code, or one program
    (`argv`, then `code` is ""), with its inputs. A slot runs a loop of them; a one-shot
    job is a loop of one."""
    code: str
    stdin: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    timeout_secs: float = 0.0
    # Rich results (PROTOCOL-V2): run as a notebook cell, and return files by glob. The
    # caps are the daemon's config, carried so the sandbox cuts before it sends.
    display: bool = False
    collect: tuple[str, ...] = ()
    results_max: int = 0
    repr_max: int = 0
    collect_max: int = 0
    collect_files_max: int = 0
    argv: tuple[str, ...] = ()  # a program to run instead of `code`; argv[0] looked up on PATH
