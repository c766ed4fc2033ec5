"""What a daemon may leave behind on the host, measured from outside it: processes of
its sandboxes, cgroup boxes, mounts, its own fds, socket files."""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field

WAIT_SECS = 60.0  # bound on polling, not a speed assertion
FD_SLACK = 8  # executor threads and the metrics server may hold a few fds at any moment


def poll(predicate, wait: float = WAIT_SECS) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def box_dirs(daemon_pid: int) -> list[str]:
    """cgroup boxes of a daemon: slot-<daemon pid>-<sandbox pid> (see limits/stale.py)."""
    return glob.glob(f"/sys/fs/cgroup/*/leeward/slot-{daemon_pid}-*") + \
        glob.glob(f"/sys/fs/cgroup/leeward/slot-{daemon_pid}-*")


def boxed_pids(daemon_pid: int) -> list[int]:
    """Live (not zombie) processes inside any box of the daemon."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cgroup") as fh:
                if f"/slot-{daemon_pid}-" not in fh.read():
                    continue
            if _state(int(name)) != "Z":
                found.append(int(name))
        except OSError:
            continue
    return found


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


@dataclass(frozen=True)
class Process:
    """A pid with its start time, so a reused pid is not mistaken for the same process."""
    pid: int
    start: str

    @classmethod
    def of(cls, pid: int) -> "Process | None":
        start = _start_time(pid)
        return cls(pid, start) if start is not None else None

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start and _state(self.pid) != "Z"


def processes(pids) -> set[Process]:
    return {p for p in (Process.of(pid) for pid in pids) if p is not None}


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def mounts() -> set[tuple[str, str]]:
    """(mount point, fs type) of the host's mount table, less other sessions' scratch
    mounts under /tmp (tests and tools of other users run on the same host)."""
    found = set()
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            point, fstype = fields[4], fields[fields.index("-") + 1]
            if not point.startswith("/tmp/") or point.startswith(_OWN_TMP):
                found.add((point, fstype))
    return found


_OWN_TMP = "/tmp/pytest-of-"


@dataclass
class Baseline:
    """Taken once the daemon is up and idle; `check()` after the storm."""
    daemon_pid: int
    fds: int
    mounts: set[tuple[str, str]]
    seen: set[Process] = field(default_factory=set)

    @classmethod
    def take(cls, daemon_pid: int) -> "Baseline":
        return cls(daemon_pid, open_fds(daemon_pid), mounts())

    def watch(self) -> None:
        """Remembers every process now under the daemon (zygote, slots, jobs)."""
        self.seen |= processes(descendants(self.daemon_pid))

    def problems_while_running(self, *, fds: bool = True) -> list[str]:
        problems = []
        if fds and open_fds(self.daemon_pid) > self.fds + FD_SLACK:
            problems.append(f"daemon holds {open_fds(self.daemon_pid)} fds, {self.fds} at the start")
        if mounts() - self.mounts:
            problems.append(f"new host mounts: {sorted(mounts() - self.mounts)}")
        return problems

    def problems_after_stop(self, socket_path: str) -> list[str]:
        """Once the daemon has exited: nothing of it may remain."""
        problems = []
        if not poll(lambda: not [p for p in self.seen if p.alive()]):
            problems.append(f"processes outlived the daemon: {sorted(p.pid for p in self.seen if p.alive())}")
        if not poll(lambda: not boxed_pids(self.daemon_pid)):
            problems.append(f"processes left in its boxes: {boxed_pids(self.daemon_pid)}")
        if box_dirs(self.daemon_pid):
            problems.append(f"cgroup boxes left: {box_dirs(self.daemon_pid)}")
        if mounts() - self.mounts:
            problems.append(f"new host mounts: {sorted(mounts() - self.mounts)}")
        if os.path.lexists(socket_path):
            problems.append(f"socket file left: {socket_path}")
        return problems


def _stat_field(pid: int, field: int) -> str | None:
    """Field `field` (numbered as in proc(5)) of /proc/<pid>/stat; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[field - 3]  # field 3 follows the command's name


def _start_time(pid: int) -> str | None:
    return _stat_field(pid, 22)


def _state(pid: int) -> str | None:
    return _stat_field(pid, 3)
