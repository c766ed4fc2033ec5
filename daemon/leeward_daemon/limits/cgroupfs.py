"""Reading and writing cgroup control files, for both hierarchies.

Every failure is a `LimitsError` naming the file and the value, so "Device or resource
busy" arrives with the memory.limit_in_bytes and number that caused it.
"""
from __future__ import annotations

import errno
import os

from .base import LimitsError


def write(path: str, value: str) -> None:
    # One write() per value: cgroup files parse each write on its own, so a buffered
    # writer that split the value would apply half of it. No O_CREAT: a missing file
    # means the controller is not enabled there, and must fail rather than create one.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise LimitsError(f"write {value!r} to {path}: {e.strerror}", errno=e.errno) from e


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise LimitsError(f"read {path}: {e.strerror}", errno=e.errno) from e


def read_int(path: str) -> int:
    text = read(path).strip()
    try:
        return int(text)
    except ValueError:
        raise LimitsError(f"read {path}: expected an integer, got {text!r}") from None


def read_keyed(path: str, key: str) -> int:
    """The value of `key` in a flat-keyed file (memory.events, cpu.stat, memory.oom_control)."""
    for line in read(path).splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    raise LimitsError(f"read {path}: no {key!r} line")


def procs(group: str) -> list[int]:
    """Member pids of a cgroup; a cgroup that no longer exists has none."""
    try:
        return [int(pid) for pid in read(os.path.join(group, "cgroup.procs")).split()]
    except LimitsError as e:
        if e.errno == errno.ENOENT:
            return []
        raise


def mkdir(path: str, *, exist_ok: bool = False) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        if not exist_ok:
            raise LimitsError(f"mkdir {path}: cgroup already exists", errno=errno.EEXIST) from None
    except OSError as e:
        raise LimitsError(f"mkdir {path}: {e.strerror}", errno=e.errno) from e


def rmdir(path: str) -> None:
    """Remove a cgroup; one that is already gone is fine."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise LimitsError(f"rmdir {path}: {e.strerror}", errno=e.errno) from e


def subgroups(group: str) -> list[str]:
    """Names of the child cgroups of `group`; none when it does not exist."""
    try:
        return [entry.name for entry in os.scandir(group) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except OSError as e:
        raise LimitsError(f"list {group}: {e.strerror}", errno=e.errno) from e
