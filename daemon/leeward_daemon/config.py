"""Daemon configuration: defaults, a TOML file, then command-line overrides."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field

from libleeward.paths import default_socket_path
from libleeward.protocol import DEFAULT_MAX_FRAME, Bounds

MiB = 1 << 20
GiB = 1 << 30
# landlock: no Landlock on the kernel; seccomp_notify: denials are refused (plain
# ERRNO) but not reported by name. Namespaces, capabilities and seccomp are never optional.
OPTIONAL_LAYERS = ("landlock", "seccomp_notify")


class ConfigError(Exception):
    """A bad configuration value; the message names the key."""


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
    acquire_timeout_secs: float = 30.0     # how long a request waits for a ready sandbox
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

    def bounds(self) -> Bounds:
        return Bounds(max_timeout_secs=self.max_timeout_secs, max_memory_limit=self.max_memory_limit)

    def validate(self) -> "Config":
        positive = ["workers", "default_timeout_secs", "max_timeout_secs", "default_memory_limit",
                    "max_memory_limit", "pids_max", "tmp_size", "stdout_max", "stderr_max", "max_frame",
                    "acquire_timeout_secs", "sandbox_uid_count", "file_size_max"]
        for key in positive:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r}")
        if self.limits_backend not in ("auto", "cgroup2", "cgroup1", "rlimit"):
            raise ConfigError(f"limits_backend must be auto, cgroup2, cgroup1 or rlimit, got {self.limits_backend!r}")
        if self.default_timeout_secs > self.max_timeout_secs:
            raise ConfigError("default_timeout_secs exceeds max_timeout_secs")
        if self.default_memory_limit > self.max_memory_limit:
            raise ConfigError("default_memory_limit exceeds max_memory_limit")
        if not 0 < self.sandbox_uid_base < 2**32 - 1 - self.sandbox_uid_count:
            raise ConfigError("sandbox_uid_base out of range")
        for layer in self.optional_layers:
            if layer not in OPTIONAL_LAYERS:
                raise ConfigError(f"optional_layers entries must be one of {', '.join(OPTIONAL_LAYERS)}, got {layer!r}")
        for path in self.allowed_paths:
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ConfigError(f"allowed_paths entries must be absolute paths, got {path!r}")
        self.allowed_paths = [os.path.realpath(p) for p in self.allowed_paths]
        return self


def load(path: str | None = None, **overrides) -> Config:
    values: dict = {}
    if path:
        try:
            with open(path, "rb") as fh:
                values = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
    for key, value in values.items():
        default = getattr(Config(), key)
        if isinstance(default, list) != isinstance(value, list):
            raise ConfigError(f"{key} has the wrong type: {value!r}")
    return Config(**values).validate()
