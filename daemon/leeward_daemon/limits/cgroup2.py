"""cgroup v2: one child cgroup per box under `<delegated root>/<group>/`."""
from __future__ import annotations

import errno
import os

from . import cgroupfs as fs
from .base import KILL_TIMEOUT_SECS, JobLimits, LimitsError, LimitsUnavailable, Usage, check_box_id, wait_until

CPU_PERIOD_US = 100_000
REQUIRED = ("memory", "pids")


class Cgroup2Backend:
    name = "cgroup2"

    def __init__(self, root: str, group: str = "leeward"):
        """`root` is a delegated cgroup2 directory: writable, with memory and pids in
        its cgroup.controllers. Boxes go under `root/group`."""
        self.root = root
        self.path = os.path.join(root, check_box_id(group))
        self.group_dirs = (self.path,)
        try:
            controllers = fs.read(os.path.join(root, "cgroup.controllers")).split()
        except LimitsError as e:
            raise LimitsUnavailable(f"cgroup2: {root} is not a usable cgroup2 directory ({e})") from None
        missing = [c for c in REQUIRED if c not in controllers]
        if missing:
            raise LimitsUnavailable(
                f"cgroup2: {', '.join(missing)} not in {root}/cgroup.controllers "
                f"(has: {' '.join(controllers) or 'none'}); delegate them to this subtree"
            )
        try:
            _enable(root, REQUIRED)
            fs.mkdir(self.path, exist_ok=True)
            _enable(self.path, REQUIRED)
        except LimitsError as e:
            raise LimitsUnavailable(f"cgroup2: {e}{_hint(e)}") from None
        # cpu is optional: a box without it still has cpu.stat, it just cannot take
        # a quota (the kernel also refuses +cpu while real-time threads sit below).
        self.cpu = "cpu" in controllers
        if self.cpu:
            try:
                _enable(root, ("cpu",))
                _enable(self.path, ("cpu",))
            except LimitsError:
                self.cpu = False
        for name, kernel in (("cgroup.kill", "5.14"), ("memory.peak", "5.19")):
            if not os.path.exists(os.path.join(self.path, name)):
                raise LimitsUnavailable(f"cgroup2: no {self.path}/{name} (needs Linux >= {kernel})")

    def create_box(self, box_id: str) -> Cgroup2Box:
        path = os.path.join(self.path, check_box_id(box_id))
        fs.mkdir(path)
        return Cgroup2Box(path, cpu=self.cpu)

    def open_box(self, box_id: str) -> Cgroup2Box:
        """A box that already exists, e.g. one a killed daemon left behind."""
        return Cgroup2Box(os.path.join(self.path, check_box_id(box_id)), cpu=self.cpu)

    def box_ids(self) -> list[str]:
        return sorted(fs.subgroups(self.path))


class Cgroup2Box:
    def __init__(self, path: str, *, cpu: bool):
        self.path = path
        self.paths = (path,)
        self._cpu = cpu
        self._peak_fd: int | None = None
        self._oom_kills_at_start = 0
        self._cpu_us_at_start = 0

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def attach(self, pid: int) -> None:
        fs.write(self._file("cgroup.procs"), str(pid))

    def start_job(self, limits: JobLimits) -> None:
        if limits.cpu_quota is not None and not self._cpu:
            raise LimitsUnavailable(f"cgroup2: cpu controller not enabled above {self.path}, cannot apply cpu_quota")
        fs.write(self._file("memory.max"), str(limits.memory_limit))
        # Without swap.max=0 a job over memory.max is swapped out instead of killed,
        # and keeps running past its limit. The file is absent when the kernel does no
        # swap accounting, in which case there is no swap to escape into through it.
        if os.path.exists(self._file("memory.swap.max")):
            fs.write(self._file("memory.swap.max"), "0")
        fs.write(self._file("pids.max"), str(limits.pids_max))
        if self._cpu:
            quota = "max" if limits.cpu_quota is None else str(round(limits.cpu_quota * CPU_PERIOD_US))
            fs.write(self._file("cpu.max"), f"{quota} {CPU_PERIOD_US}")
        self._oom_kills_at_start = fs.read_keyed(self._file("memory.events"), "oom_kill")
        self._close_peak()
        self._peak_fd = _open_peak(self._file("memory.peak"))
        self._cpu_us_at_start = fs.read_keyed(self._file("cpu.stat"), "usage_usec")

    def _read_peak(self) -> int:
        path = self._file("memory.peak")
        try:
            os.lseek(self._peak_fd, 0, os.SEEK_SET)
            return int(os.read(self._peak_fd, 64).strip())
        except (OSError, ValueError) as e:
            raise LimitsError(f"read {path}: {e}") from e

    def _close_peak(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None

    def usage(self) -> Usage:
        if self._peak_fd is None:
            raise LimitsError(f"usage() of {self.path} before start_job()")
        return Usage(
            memory_peak=self._read_peak(),
            cpu_time_us=fs.read_keyed(self._file("cpu.stat"), "usage_usec") - self._cpu_us_at_start,
            oom_killed=fs.read_keyed(self._file("memory.events"), "oom_kill") > self._oom_kills_at_start,
        )

    def kill(self) -> None:
        # cgroup.kill kills the whole subtree atomically, racing forks included.
        try:
            fs.write(self._file("cgroup.kill"), "1")
        except LimitsError as e:
            if e.errno == errno.ENOENT:
                return
            raise
        if not wait_until(self._empty):
            raise LimitsError(f"{self.path} still populated {KILL_TIMEOUT_SECS}s after cgroup.kill")

    def _empty(self) -> bool:
        try:
            return fs.read_keyed(self._file("cgroup.events"), "populated") == 0
        except LimitsError as e:
            if e.errno == errno.ENOENT:
                return True
            raise

    def destroy(self) -> None:
        self._close_peak()
        self.kill()
        fs.rmdir(self.path)


def _open_peak(path: str) -> int:
    # Since Linux 6.12 writing to memory.peak resets it, but only as seen through the
    # same open file: the box keeps this fd until usage() reads it.
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except PermissionError:
            # Before 6.12 memory.peak has no write handler (EACCES even for root): the
            # peak then also covers what the slot touched between attach and the job.
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"reset")
        except OSError:
            os.close(fd)
            raise
        return fd
    except OSError as e:
        raise LimitsError(f"write 'reset' to {path}: {e.strerror}", errno=e.errno) from e


def _enable(group: str, controllers: tuple[str, ...]) -> None:
    path = os.path.join(group, "cgroup.subtree_control")
    enabled = fs.read(path).split()
    # One controller per write: the kernel applies a multi-token write all or nothing,
    # and the error would not say which controller it refused.
    for c in controllers:
        if c not in enabled:
            fs.write(path, f"+{c}")


def _hint(e: LimitsError) -> str:
    if e.errno == errno.EBUSY:
        return (
            " (cgroup v2 allows no controllers below a cgroup that has member processes:"
            " give leeward a subtree the daemon itself is not in, e.g. systemd"
            " Delegate=yes with DelegateSubgroup=)"
        )
    return ""
