"""Daemon configuration: the keys, their types and ranges, and where values come from.

Precedence, lowest first: defaults, one TOML file (`find_file`), `LEEWARD_<KEY>`
environment variables, command-line overrides. Every key is documented in README.md
"Configuration" (a test keeps the two in step).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from libleeward.paths import default_socket_path
from libleeward.protocol import DEFAULT_MAX_FRAME, MIN_MEMORY_LIMIT, Bounds

from .errors import ConfigError

MiB = 1 << 20
GiB = 1 << 30
# landlock: no Landlock on the kernel; seccomp_notify: denials are refused (plain
# ERRNO) but not reported by name. Namespaces, capabilities and seccomp are never optional.
OPTIONAL_LAYERS = ("landlock", "seccomp_notify")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# sun_path is 108 bytes including the terminating NUL; a longer path fails at bind()
# with a message that does not name the key.
MAX_SOCKET_PATH = 107


@dataclass
class Config:
    socket_path: str = field(default_factory=default_socket_path)
    workers: int = 4                       # idle sandboxes kept ready
    allowed_paths: list[str] = field(default_factory=list)  # host dirs jobs may mount
    default_timeout_secs: float = 300.0    # the spec's defaults
    max_timeout_secs: float = 300.0
    default_memory_limit: int = 4 * GiB
    max_memory_limit: int = 4 * GiB
    pids_max: int = 64
    tmp_size: int = 256 * MiB              # size cap of the sandbox's /tmp (and /dev/shm)
    stdout_max: int = 1 * MiB
    stderr_max: int = 1 * MiB
    max_frame: int = DEFAULT_MAX_FRAME
    preload: list[str] = field(default_factory=lambda: ["numpy", "pandas"])
    # The sandbox's Python: an interpreter, or a venv (or prefix) directory meaning its
    # bin/python; "" = the interpreter the daemon runs in. Rules: pool/sandbox_python.py.
    python: str = ""
    acquire_timeout_secs: float = 30.0     # how long a request waits for a ready sandbox
    # Admission control (README "Operations"): past these a client gets E3004 at once.
    max_queue: int = 256                   # requests waiting for a sandbox
    max_connections: int = 1024            # open client connections (also bounded by free fds)
    max_connections_per_uid: int = 256     # of those, from one client uid
    max_building: int = 4                  # sandboxes being built at once
    client_read_timeout_secs: float = 30.0  # a frame once begun must arrive whole within this
    limits_backend: str = "auto"           # auto | cgroup2 | cgroup1 | rlimit (forced: fail closed)
    cgroup_root: str = ""                  # delegated cgroup subtree; "" = find it
    file_size_max: int = 1 * GiB           # RLIMIT_FSIZE of every job
    # Isolation layers the daemon may run without when the kernel lacks them; any other
    # missing layer stops the daemon (fail closed). Choices: OPTIONAL_LAYERS.
    optional_layers: list[str] = field(default_factory=list)
    # A root daemon never runs a sandbox as host root: each box gets an otherwise
    # unused outside uid/gid from this range (see DESIGN.md "Identity").
    sandbox_uid_base: int = 2_000_000_000
    sandbox_uid_count: int = 65536
    metrics_port: int = 9090               # Prometheus /metrics; 0 = off
    metrics_address: str = "127.0.0.1"     # an IP literal; the metrics are not secret but not public either
    shutdown_grace_secs: float = 10.0      # SIGTERM: how long running jobs may finish before they are killed
    log_level: str = "INFO"
    # Sharing one root daemon between local users (PROTOCOL-V2 "Sharing one daemon").
    socket_mode: int = 0o600               # permission bits of the socket file
    socket_group: str = ""                 # group of the socket file; "" = the daemon's
    # Sessions (PROTOCOL-V2 "Session rules"): each holds one sandbox for its whole life.
    max_sessions: int = 0                  # open at once; 0 = as many as `workers`
    max_sessions_per_uid: int = 4
    session_idle_timeout_secs: float = 300.0   # default idle TTL of a session
    max_session_idle_secs: float = 3600.0      # the most a SessionOpen may ask for
    session_max_lifetime_secs: float = 3600.0  # default and most of a session's lifetime
    session_queue_secs: float = 30.0       # a cell waits this long behind the session's others (E5002)
    interrupt_grace_secs: float = 1.0      # a timed-out cell's SIGINT, then the sandbox is killed
    # Rich results and collected files (PROTOCOL-V2 "Result: new keys").
    results_max: int = 8 * MiB
    repr_max: int = 64 * 1024
    collect_max: int = 16 * MiB
    collect_files_max: int = 100

    # Where each key's value came from ("default" when absent): set by load(),
    # read by --print-config and by the metrics server (a port chosen explicitly must bind).
    sources: ClassVar[dict[str, str]] = {}

    def bounds(self) -> Bounds:
        return Bounds(max_timeout_secs=self.max_timeout_secs, max_memory_limit=self.max_memory_limit)

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def validate(self) -> "Config":
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_type(f.name, getattr(self, f.name)))
        positive = ["workers", "default_timeout_secs", "max_timeout_secs", "default_memory_limit",
                    "max_memory_limit", "pids_max", "tmp_size", "stdout_max", "stderr_max", "max_frame",
                    "acquire_timeout_secs", "sandbox_uid_count", "file_size_max", "max_queue",
                    "max_connections", "max_connections_per_uid", "max_building", "client_read_timeout_secs",
                    "max_sessions_per_uid", "session_idle_timeout_secs", "max_session_idle_secs",
                    "session_max_lifetime_secs", "session_queue_secs", "interrupt_grace_secs", "results_max",
                    "repr_max", "collect_max", "collect_files_max"]
        for key in positive:
            value = getattr(self, key)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{key} must be a positive number, got {value!r}")
        if not (self.shutdown_grace_secs >= 0 and math.isfinite(self.shutdown_grace_secs)):
            raise ConfigError(f"shutdown_grace_secs must be a number >= 0, got {self.shutdown_grace_secs!r}")
        if self.limits_backend not in ("auto", "cgroup2", "cgroup1", "rlimit"):
            raise ConfigError(f"limits_backend must be auto, cgroup2, cgroup1 or rlimit, got {self.limits_backend!r}")
        if self.default_timeout_secs > self.max_timeout_secs:
            raise ConfigError("default_timeout_secs exceeds max_timeout_secs")
        if self.default_memory_limit > self.max_memory_limit:
            raise ConfigError("default_memory_limit exceeds max_memory_limit")
        for key in ("default_memory_limit", "max_memory_limit"):
            if getattr(self, key) < MIN_MEMORY_LIMIT:
                raise ConfigError(f"{key} must be at least {MIN_MEMORY_LIMIT} (the smallest a job can run in), "
                                  f"got {getattr(self, key)}")
        if not 0 < self.sandbox_uid_base < 2**32 - 1 - self.sandbox_uid_count:
            raise ConfigError("sandbox_uid_base out of range")
        for layer in self.optional_layers:
            if layer not in OPTIONAL_LAYERS:
                raise ConfigError(f"optional_layers entries must be one of {', '.join(OPTIONAL_LAYERS)}, got {layer!r}")
        for path in self.allowed_paths:
            if not os.path.isabs(path):
                raise ConfigError(f"allowed_paths entries must be absolute paths, got {path!r}")
        self.allowed_paths = [os.path.realpath(p) for p in self.allowed_paths]
        self._validate_operations()
        self._validate_sessions()
        return self

    def _validate_sessions(self) -> None:
        if not 0 <= self.socket_mode <= 0o777:
            raise ConfigError(f"socket_mode must be permission bits (0 to 0o777), got {self.socket_mode!r}")
        if self.max_sessions < 0:
            raise ConfigError(f"max_sessions must be >= 0 (0: as many as workers), got {self.max_sessions!r}")
        if self.session_idle_timeout_secs > self.max_session_idle_secs:
            raise ConfigError("session_idle_timeout_secs exceeds max_session_idle_secs")

    @property
    def session_cap(self) -> int:
        """max_sessions as it applies: 0 means as many as the pool keeps ready."""
        return self.max_sessions or self.workers

    def _validate_operations(self) -> None:
        if not self.socket_path or len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise ConfigError(f"socket_path must be a path of 1 to {MAX_SOCKET_PATH} bytes, got {self.socket_path!r}")
        if self.cgroup_root and not os.path.isabs(self.cgroup_root):
            raise ConfigError(f"cgroup_root must be an absolute path or empty, got {self.cgroup_root!r}")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be 0 (off) to 65535, got {self.metrics_port!r}")
        try:
            ipaddress.ip_address(self.metrics_address)
        except ValueError:
            raise ConfigError(f"metrics_address must be an IP address, got {self.metrics_address!r}") from None
        level = self.log_level.upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        self.log_level = level
        if self.python and not os.path.isabs(self.python):
            raise ConfigError(f"python must be an absolute path (an interpreter or a venv directory) or empty, "
                              f"got {self.python!r}")
        for name in self.preload:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ConfigError(f"preload entries must be module names, got {name!r}")


def field_types() -> dict[str, Any]:
    """Key -> its annotated type (int, float, str or list[str])."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def check_type(key: str, value: Any) -> Any:
    """`value` as the type `key` is declared with, or ConfigError naming the key. An int
    is accepted for a float key (TOML writes 300 for 300.0); a bool is never a number."""
    kind = field_types()[key]
    if kind is float and type(value) in (int, float):
        return float(value)
    if kind is int and type(value) is int:
        return value
    if kind is str and isinstance(value, str):
        return value
    if kind == list[str] and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{key} must be {type_name(kind)}, got {value!r}")


def type_name(kind: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string"}.get(kind, "a list of strings")


# ---------------------------------------------------------------- sources

ENV_PREFIX = "LEEWARD_"
# LEEWARD_* variables that are not config keys but belong to other parts of leeward.
OTHER_ENV = {"LEEWARD_SOCKET", "LEEWARD_LIBRARY", "LEEWARD_PYTHONPATH", "LEEWARD_AUTOSTART_TIMEOUT",
             "LEEWARD_ZYGOTE_FD"}


def find_file(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The config file to read: `explicit` (which must exist), else the first that
    exists of $XDG_CONFIG_HOME/leeward/config.toml (default ~/.config) and
    /etc/leeward/config.toml; None when there is none."""
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    for candidate in default_files(environ):
        if os.path.isfile(candidate):
            return candidate
    return None


def default_files(environ: Mapping[str, str]) -> list[str]:
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [os.path.join(xdg, "leeward", "config.toml"), "/etc/leeward/config.toml"]


def env_values(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Config values from LEEWARD_<KEY> variables, and the LEEWARD_* names that are no key
    (reported, not fatal: other leeward tools share the prefix)."""
    types = field_types()
    values: dict[str, Any] = {}
    ignored = []
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in OTHER_ENV:
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in types:
            ignored.append(name)
            continue
        values[key] = parse_text(key, text, origin=name)
    return values, sorted(ignored)


def parse_text(key: str, text: str, origin: str | None = None) -> Any:
    """A string (an environment variable, `--set key=value`) as `key`'s type: ints and
    floats in Python syntax (underscores allowed), lists comma-separated (empty = [])."""
    kind = field_types()[key]
    where = origin or key
    try:
        if kind is int:
            try:
                return int(text.strip())
            except ValueError:
                return int(text.strip(), 0)  # 0o660 as in TOML, for socket_mode
        if kind is float:
            return float(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: {key} must be {type_name(kind)}, got {text!r}") from None
    if kind is str:
        return text
    return [item.strip() for item in text.split(",") if item.strip()]


def read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None


def load(path: str | None = None, *, environ: Mapping[str, str] | None = None, **overrides) -> Config:
    """A checked Config from `path` (None: no file), then `environ`'s LEEWARD_<KEY>
    variables (None: none), then `overrides` (None values are ignored)."""
    layers: list[tuple[str, dict[str, Any]]] = []  # (origin, with {KEY} for the key's name)
    if path:
        layers.append((f"file {path}", read_file(path)))
    if environ is not None:
        layers.append((f"environment {ENV_PREFIX}{{KEY}}", env_values(environ)[0]))
    layers.append(("command line", {k: v for k, v in overrides.items() if v is not None}))
    types = field_types()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, layer in layers:
        unknown = sorted(set(layer) - set(types))
        if unknown:
            raise ConfigError(f"unknown config key(s) in {origin.replace('{KEY}', '*')}: {', '.join(unknown)}")
        for key, value in layer.items():
            values[key] = check_type(key, value)
            sources[key] = origin.replace("{KEY}", key.upper())
    cfg = Config(**values)
    cfg.sources = sources
    return cfg.validate()


def to_toml(cfg: Config) -> str:
    """The effective configuration as a TOML file would set it, each key's origin noted."""
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        lines.append(f"{f.name} = {_toml_value(value)}  # {cfg.source(f.name)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
