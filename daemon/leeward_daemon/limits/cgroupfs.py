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
    return _parse_int(path, read(path))


def read_keyed(path: str, key: str) -> int:
    """The value of `key` in a flat-keyed file (memory.events, cpu.stat, memory.oom_control)."""
    return _parse_keyed(path, read(path), key)


class KeptFile:
    """A control file read (or reset) again and again (a box's accounting, before and
    after every job or cell): kept open, each reading is one pread from offset 0, which
    the kernel answers with fresh figures, and each write one pwrite (cgroup files take
    every write whole, whatever the offset); open and close each time would cost ten
    times as much."""

    def __init__(self, path: str, *, writable: bool = False):
        self.path = path
        try:
            self._fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)
        except OSError as e:
            raise LimitsError(f"open {path}: {e.strerror}", errno=e.errno) from e

    def write(self, value: str) -> None:
        try:
            os.pwrite(self._fd, value.encode(), 0)
        except OSError as e:
            raise LimitsError(f"write {value!r} to {self.path}: {e.strerror}", errno=e.errno) from e

    def read_int(self) -> int:
        return _parse_int(self.path, self._read())

    def read_keyed(self, key: str) -> int:
        return _parse_keyed(self.path, self._read(), key)

    def close(self) -> None:
        os.close(self._fd)

    def _read(self) -> str:
        try:
            return os.pread(self._fd, 4096, 0).decode()
        except OSError as e:
            raise LimitsError(f"read {self.path}: {e.strerror}", errno=e.errno) from e


def _parse_int(path: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise LimitsError(f"read {path}: expected an integer, got {text.strip()!r}") from None


def _parse_keyed(path: str, text: str, key: str) -> int:
    for line in text.splitlines():
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
