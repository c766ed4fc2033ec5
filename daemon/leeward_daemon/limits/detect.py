"""Which limits backend this host can give leeward: cgroup v2, else v1, else rlimits."""
from __future__ import annotations

import logging
import os
import re
from typing import NamedTuple

from .base import Backend, LimitsError, LimitsUnavailable
from .cgroup1 import Cgroup1Backend
from .cgroup2 import Cgroup2Backend, delegated_root
from .rlimit import RlimitBackend

log = logging.getLogger(__name__)

BACKENDS = ("cgroup2", "cgroup1", "rlimit")


def select_backend(config_root: str | None = None, *, prefer: str = "auto", group: str = "leeward") -> Backend:
    """The first usable backend, or exactly `prefer`, raising LimitsUnavailable (fail
    closed) when that one cannot be applied.

    `config_root` is the cgroup directory the config gives leeward: for cgroup v2 the
    delegated subtree itself; for v1 the directory holding one sub-directory per
    hierarchy, named after its controllers (the /sys/fs/cgroup layout). None means the
    daemon's own cgroup2 cgroup (its parent if the daemon already sits in the `daemon`
    leaf, see cgroup2.py), and the v1 hierarchies found in /proc/self/mountinfo.
    `group` is the directory created under those to hold the boxes.
    """
    if prefer == "rlimit":
        return RlimitBackend()
    if prefer != "auto":
        if prefer not in BACKENDS:
            raise LimitsError(f"unknown limits backend {prefer!r}: expected auto, {', '.join(BACKENDS)}")
        return _cgroup_backend(prefer, config_root, group)
    for name in ("cgroup2", "cgroup1"):
        try:
            return _cgroup_backend(name, config_root, group)
        except LimitsUnavailable as e:
            log.warning("limits: not using %s: %s", name, e.reason)
    return RlimitBackend()


def _cgroup_backend(name: str, config_root: str | None, group: str) -> Backend:
    if name == "cgroup2":
        root = config_root if config_root is not None else delegated_root(own_cgroup2_dir())
        backend: Backend = Cgroup2Backend(root, group)
    else:
        backend = Cgroup1Backend(cgroup1_hierarchies(config_root), group)
    _probe(backend)
    return backend


def _probe(backend: Backend) -> None:
    """A group dir left by another (e.g. root) daemon can exist yet refuse our boxes:
    only creating one proves the backend usable."""
    try:
        box = backend.create_box(f"probe-{os.getpid()}")
    except LimitsError as e:
        raise LimitsUnavailable(f"{backend.name}: cannot create a box: {e}") from None
    box.destroy()


class Mount(NamedTuple):
    root: str  # the directory of the filesystem that is mounted here
    mount_point: str
    fstype: str
    super_options: tuple[str, ...]


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        # Optional fields vary in number; a lone "-" ends them.
        sep = fields.index("-")
        mounts.append(Mount(_unescape(fields[3]), _unescape(fields[4]), fields[sep + 1],
                            tuple(fields[sep + 3].split(","))))
    return mounts


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise LimitsUnavailable(f"read {path}: {e.strerror}") from None


def own_cgroup2_dir(mountinfo: str | None = None, proc_cgroup: str | None = None) -> str:
    """The directory of the daemon's own cgroup2 cgroup (as seen in its namespaces)."""
    mounts = [m for m in parse_mountinfo(mountinfo or _read("/proc/self/mountinfo")) if m.fstype == "cgroup2"]
    if not mounts:
        raise LimitsUnavailable("cgroup2: no cgroup2 filesystem mounted")
    own = next((line[3:] for line in (proc_cgroup or _read("/proc/self/cgroup")).splitlines()
                if line.startswith("0::")), None)
    if own is None:
        raise LimitsUnavailable("cgroup2: no 0:: line in /proc/self/cgroup")
    for m in mounts:
        rel = os.path.relpath(own, m.root)
        if rel != ".." and not rel.startswith("../"):
            return os.path.normpath(os.path.join(m.mount_point, rel))
    raise LimitsUnavailable(f"cgroup2: own cgroup {own} is below no cgroup2 mount")


def cgroup1_hierarchies(config_root: str | None, mountinfo: str | None = None) -> dict[str, str]:
    """controller -> directory of the v1 hierarchy that holds it."""
    found: dict[str, str] = {}
    if config_root is None:
        for m in parse_mountinfo(mountinfo or _read("/proc/self/mountinfo")):
            if m.fstype == "cgroup":
                for option in m.super_options:
                    if option not in ("rw", "ro"):
                        found.setdefault(option, m.mount_point)
        return found
    try:
        entries = sorted(os.listdir(config_root))
    except OSError as e:
        raise LimitsUnavailable(f"cgroup1: list {config_root}: {e.strerror}") from None
    for entry in entries:
        path = os.path.join(config_root, entry)
        if os.path.isdir(path):
            for controller in entry.split(","):
                found.setdefault(controller, path)
    return found
