"""cgroup v2: one child cgroup per box under `<delegated root>/<group>/`.

cgroup v2 enables no controller below a cgroup that has member processes (the
"no internal processes" rule), and systemd puts a `Delegate=yes` service's processes
in the very cgroup it delegates. So, as runc, podman and systemd-nspawn do, the daemon
first moves its processes into a leaf `<root>/daemon` and creates the boxes beside it:
this needs no `DelegateSubgroup=` (systemd >= 254, absent from Debian 12 and
Ubuntu 22.04).
"""
from __future__ import annotations

import errno
import os

from . import cgroupfs as fs
from .base import KILL_TIMEOUT_SECS, JobLimits, LimitsError, LimitsUnavailable, Usage, check_box_id, wait_until

CPU_PERIOD_US = 100_000
REQUIRED = ("memory", "pids")
LEAF = "daemon"
MOVE_ATTEMPTS = 5  # a process forked while we moved its parent lands in root: move again


class Cgroup2Backend:
    name = "cgroup2"

    def __init__(self, root: str, group: str = "leeward"):
        """`root` is a delegated cgroup2 directory: writable, with memory and pids in
        its cgroup.controllers. Boxes go under `root/group`."""
        self.root = root
        self.path = os.path.join(root, check_box_id(group))
        self.group_dirs = (self.path,)
        self.leaf: str | None = None  # where the daemon's processes were moved, if they were
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
            if fs.procs(root):
                self.leaf = move_into_leaf(root)
        except LimitsUnavailable:
            raise
        except LimitsError as e:
            raise LimitsUnavailable(f"cgroup2: cannot move the daemon into {root}/{LEAF}: {e}") from None
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
    usage_from_samples = False  # the cgroup's own counters
    cpu_before_job_us = 0
    def __init__(self, path: str, *, cpu: bool):
        self.path = path
        self.paths = (path,)
        self._cpu = cpu
        self._peak_fd: int | None = None
        # Whether memory.peak could be reset at start_job (Linux >= 6.12); before that
        # the job's peak also covers what the slot touched since attach.
        self.peak_resets: bool | None = None
        self._oom_kills_at_start = 0
        self._cpu_us_at_start = 0
        # What the limit files hold (only the daemon writes them): a session's cells
        # start with the same limits each time and need only the accounting reset.
        self._applied: JobLimits | None = None

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def attach(self, pid: int) -> None:
        fs.write(self._file("cgroup.procs"), str(pid))

    def prepare(self, limits: JobLimits) -> None:
        self._apply(limits)

    def start_job(self, limits: JobLimits) -> None:
        if limits != self._applied:
            self._apply(limits)
        self._oom_kills_at_start = fs.read_keyed(self._file("memory.events"), "oom_kill")
        self._close_peak()
        self._peak_fd, self.peak_resets = _open_peak(self._file("memory.peak"))
        self._cpu_us_at_start = fs.read_keyed(self._file("cpu.stat"), "usage_usec")

    def _apply(self, limits: JobLimits) -> None:
        if limits.cpu_quota is not None and not self._cpu:
            raise LimitsUnavailable(f"cgroup2: cpu controller not enabled above {self.path}, cannot apply cpu_quota")
        self._applied = None  # a write failing halfway leaves the files unknown
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
        self._applied = limits

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


def _open_peak(path: str) -> tuple[int, bool]:
    """An fd to read the peak through, and whether the peak was reset.

    Since Linux 6.12 writing to memory.peak resets it, but only as seen through the
    same open file: the box keeps this fd until usage() reads it."""
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except PermissionError:
            # Before 6.12 memory.peak has no write handler, so it is mode 0444: the
            # open is refused (EACCES) unless we are root. The peak then also covers
            # what the slot touched between attach and the job.
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC), False
        try:
            os.write(fd, b"reset")
        except OSError as e:
            os.close(fd)
            if e.errno != errno.EINVAL:
                raise
            # Root opened the 0444 file anyway (CAP_DAC_OVERRIDE); kernfs then refuses
            # the write of a file without a write handler with EINVAL (seen on 6.1).
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC), False
        return fd, True
    except OSError as e:
        raise LimitsError(f"write 'reset' to {path}: {e.strerror}", errno=e.errno) from e


def delegated_root(own: str) -> str:
    """The delegated root, seen from the daemon's own cgroup: its parent when the daemon
    already sits in the leaf (moved there by itself before a restart of the backend, or
    started by a process that moved there, e.g. a test harness or another daemon)."""
    return os.path.dirname(own) if os.path.basename(own) == LEAF else own


def move_into_leaf(root: str) -> str:
    """Moves every member process of `root` into `root/daemon`; returns that leaf.

    Only processes that are ours (this one and its descendants, e.g. the zygote) are
    moved: any other member (a login shell, a test runner) would be moved from under
    whoever put it there, so it makes the backend unavailable instead.
    """
    leaf = os.path.join(root, LEAF)
    for _ in range(MOVE_ATTEMPTS):
        members = fs.procs(root)
        if not members:
            return leaf
        foreign = [pid for pid in members if not is_ours(pid)]
        if foreign:
            raise LimitsUnavailable(
                f"cgroup2: {root} holds processes that are not this daemon's (pids {' '.join(map(str, foreign))}),"
                " and cgroup v2 enables no controllers below a cgroup with member processes: run the daemon"
                " as the only process of a unit with Delegate=yes, or set cgroup_root to a delegated cgroup"
                " no process is in"
            )
        fs.mkdir(leaf, exist_ok=True)
        for pid in members:
            try:
                fs.write(os.path.join(leaf, "cgroup.procs"), str(pid))
            except LimitsError as e:
                if e.errno != errno.ESRCH:  # ESRCH: it exited meanwhile, and left root by itself
                    raise
    raise LimitsUnavailable(f"cgroup2: {root} still has member processes after {MOVE_ATTEMPTS} moves into {leaf}")


def is_ours(pid: int) -> bool:
    """`pid` is this process or one of its descendants (a process that exited counts:
    it no longer holds the cgroup)."""
    me = os.getpid()
    while pid != me:
        if pid <= 1:
            return False
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            return True
        # The command name (field 2) may hold spaces and parentheses: the parent pid
        # is the second field after its last ")".
        pid = int(stat.rpartition(")")[2].split()[1])
    return True


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
            " a process entered the delegated root while the daemon moved into its leaf)"
        )
    return ""
