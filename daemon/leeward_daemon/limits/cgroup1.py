"""cgroup v1: one directory per box in each hierarchy, under `<hierarchy>/<group>/`.

Hosts mount the controllers in different layouts (cpu and cpuacct co-mounted as
"cpu,cpuacct", or as two hierarchies, as on the dev VM), so everything here goes
through a controller -> directory map and writes each distinct directory once.
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping

from . import cgroupfs as fs
from .base import KILL_TIMEOUT_SECS, JobLimits, LimitsError, LimitsUnavailable, Usage, check_box_id, wait_until

# controller -> a file that proves the directory really belongs to that controller
REQUIRED = {"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpuacct": "cpuacct.usage"}
# cpu: only for cpu_quota; freezer: makes kill() race-free against forks
OPTIONAL = {"cpu": "cpu.cfs_quota_us", "freezer": "freezer.state"}
FREEZE_TIMEOUT_SECS = 1.0
_PEAK = "memory.max_usage_in_bytes"  # read after each job, reset before it


class Cgroup1Backend:
    name = "cgroup1"

    def __init__(self, hierarchies: Mapping[str, str], group: str = "leeward"):
        """`hierarchies` maps a controller name to the directory its hierarchy is
        mounted on; boxes go under `<that directory>/<group>/`."""
        check_box_id(group)
        missing = [c for c in REQUIRED if c not in hierarchies]
        if missing:
            raise LimitsUnavailable(f"cgroup1: no {', '.join(missing)} hierarchy mounted")
        self._groups: dict[str, str] = {}
        for controller, probe in {**REQUIRED, **OPTIONAL}.items():
            if controller not in hierarchies:
                continue
            path = os.path.join(hierarchies[controller], group)
            try:
                fs.mkdir(path, exist_ok=True)
            except LimitsError as e:
                if controller in REQUIRED:
                    raise LimitsUnavailable(f"cgroup1: {e}") from None
                continue
            if not os.path.exists(os.path.join(path, probe)):
                if controller in REQUIRED:
                    raise LimitsUnavailable(f"cgroup1: {path} is not a {controller} cgroup (no {probe})")
                continue
            self._groups[controller] = path
        self.group_dirs = tuple(_distinct(self._groups.values()))

    def create_box(self, box_id: str) -> Cgroup1Box:
        check_box_id(box_id)
        created: list[str] = []
        try:
            for group in self.group_dirs:
                fs.mkdir(os.path.join(group, box_id))
                created.append(os.path.join(group, box_id))
        except LimitsError:
            for path in created:
                fs.rmdir(path)
            raise
        return self.open_box(box_id)

    def open_box(self, box_id: str) -> Cgroup1Box:
        """A box that already exists, e.g. one a killed daemon left behind."""
        check_box_id(box_id)
        return Cgroup1Box({c: os.path.join(g, box_id) for c, g in self._groups.items()},
                          tuple(os.path.join(g, box_id) for g in self.group_dirs))

    def box_ids(self) -> list[str]:
        """Every box under the group, in any hierarchy (a crash can leave a box half made)."""
        return sorted({name for group in self.group_dirs for name in fs.subgroups(group)})


class Cgroup1Box:
    usage_from_samples = False  # the cgroup's own counters
    cpu_before_job_us = 0
    def __init__(self, dirs: Mapping[str, str], paths: tuple[str, ...]):
        """`dirs`: each controller's directory; `paths`: each distinct one once (the
        backend knows which hierarchies are co-mounted: no path resolved per box)."""
        self.dirs = dict(dirs)
        self.paths = paths
        self._started = False
        self._oom_kills_at_start = 0
        self._cpu_ns_at_start = 0
        # What the limit files hold (only the daemon writes them): a session's cells
        # start with the same limits each time and need only the accounting reset.
        self._applied: JobLimits | None = None
        # The accounting files, opened at the first job. destroy() runs in another thread
        # (off the event loop) and may overlap a late usage(): the lock keeps a closed fd
        # number, perhaps reused by then, from ever being read.
        self._kept: dict[str, fs.KeptFile] | None = {}
        self._kept_lock = threading.Lock()

    def _file(self, controller: str, name: str) -> str:
        return os.path.join(self.dirs[controller], name)

    def _read_accounting(self, controller: str, name: str, key: str | None = None) -> int:
        with self._kept_lock:
            kept = self._kept_file(controller, name)
            return kept.read_int() if key is None else kept.read_keyed(key)

    def _reset_peak(self) -> None:
        """Writing 0 resets the high-water mark to the current usage, so the peak read
        after the job is the job's, not whatever the slot touched while it was built."""
        with self._kept_lock:
            self._kept_file("memory", _PEAK).write("0")

    def _kept_file(self, controller: str, name: str) -> fs.KeptFile:
        """Under _kept_lock."""
        if self._kept is None:
            raise LimitsError(f"{self.dirs[controller]} was destroyed")
        kept = self._kept.get(name)
        if kept is None:
            kept = self._kept[name] = fs.KeptFile(self._file(controller, name), writable=name == _PEAK)
        return kept

    def attach(self, pid: int) -> None:
        for path in self.paths:
            fs.write(os.path.join(path, "cgroup.procs"), str(pid))

    def prepare(self, limits: JobLimits) -> None:
        self._apply(limits)

    def start_job(self, limits: JobLimits) -> None:
        if limits != self._applied:
            self._apply(limits)
        self._reset_peak()
        self._oom_kills_at_start = self._read_accounting("memory", "memory.oom_control", "oom_kill")
        self._cpu_ns_at_start = self._read_accounting("cpuacct", "cpuacct.usage")
        self._started = True

    def _apply(self, limits: JobLimits) -> None:
        if limits.cpu_quota is not None and "cpu" not in self.dirs:
            raise LimitsUnavailable("cgroup1: no writable cpu hierarchy, cannot apply cpu_quota")
        self._applied = None  # a write failing halfway leaves the files unknown
        self._set_memory(limits.memory_limit)
        fs.write(self._file("pids", "pids.max"), str(limits.pids_max))
        if "cpu" in self.dirs:
            quota = -1
            if limits.cpu_quota is not None:
                quota = round(limits.cpu_quota * fs.read_int(self._file("cpu", "cpu.cfs_period_us")))
            fs.write(self._file("cpu", "cpu.cfs_quota_us"), str(quota))
        self._applied = limits

    def _set_memory(self, limit: int) -> None:
        mem = self._file("memory", "memory.limit_in_bytes")
        memsw = self._file("memory", "memory.memsw.limit_in_bytes")
        # memsw (memory+swap) equal to the memory limit means no swap: without it a
        # job over its limit is swapped out instead of OOM-killed. The file is absent
        # when the kernel does no swap accounting.
        if not os.path.exists(memsw):
            fs.write(mem, str(limit))
            return
        # The kernel rejects (EINVAL) any write that would leave limit_in_bytes above
        # memsw.limit_in_bytes, so whichever one moves toward the other goes second.
        if limit > fs.read_int(memsw):
            fs.write(memsw, str(limit))
            fs.write(mem, str(limit))
        else:
            fs.write(mem, str(limit))
            fs.write(memsw, str(limit))

    def usage(self) -> Usage:
        if not self._started:
            raise LimitsError(f"usage() of {self.dirs['memory']} before start_job()")
        cpu_ns = self._read_accounting("cpuacct", "cpuacct.usage") - self._cpu_ns_at_start
        return Usage(
            memory_peak=self._read_accounting("memory", _PEAK),
            cpu_time_us=cpu_ns // 1000,
            oom_killed=self._read_accounting("memory", "memory.oom_control", "oom_kill")
            > self._oom_kills_at_start,
        )

    def _pids(self) -> set[int]:
        # A pid is in every hierarchy, unless attach() failed halfway through.
        return {pid for path in self.paths for pid in fs.procs(path)}

    def kill(self) -> None:
        if not wait_until(self._kill_pass):
            raise LimitsError(f"{self.dirs['memory']} still has processes {sorted(self._pids())} "
                              f"{KILL_TIMEOUT_SECS}s after SIGKILL")

    def _kill_pass(self) -> bool:
        if not self._pids():
            return True
        # v1 has no cgroup.kill: a task can fork between our reading cgroup.procs and
        # our signal reaching it. Frozen tasks cannot, and die once thawed; without a
        # freezer hierarchy, the passes repeat until pids.max lets nothing new appear.
        state = self._file("freezer", "freezer.state") if "freezer" in self.dirs else None
        if state:
            fs.write(state, "FROZEN")
            wait_until(lambda: fs.read(state).strip() != "FREEZING", FREEZE_TIMEOUT_SECS)
        for pid in self._pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if state:
            fs.write(state, "THAWED")
        return False

    def destroy(self) -> None:
        with self._kept_lock:
            for kept in (self._kept or {}).values():
                kept.close()
            self._kept = None
        self.kill()
        for path in self.paths:
            fs.rmdir(path)


def _distinct(paths) -> list[str]:
    """Each directory once: co-mounted controllers share one hierarchy."""
    seen: dict[str, str] = {}
    for path in paths:
        seen.setdefault(os.path.realpath(path), path)
    return list(seen.values())
