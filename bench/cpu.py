"""Whole-machine CPU over a window, split by component.

The machine's busy time comes from /proc/stat (every CPU's user, nice, system, irq and
softirq; idle, iowait and steal are not work of ours). The named components come from
/proc/<pid>/stat of the processes we know: the daemon (all its threads), the zygote
itself, and the zygote's reaped children (cutime + cstime: the zygote is the sandboxes'
subreaper, so every slot, intermediate and job it or its slots reaped lands there); the
bench's own clients from os.times(). What is left is kernel work no process is billed
for (kworkers tearing down namespaces and cgroups, RCU callbacks, softirqs) plus
whatever else the machine did: the idle rate measured just before the window is taken
off, so on a quiet machine that bucket is the kernel's work for us.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")
BUSY_FIELDS = (0, 1, 2, 5, 6)  # user nice system irq softirq (guest is inside user)


def machine_busy_ms() -> float:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    return sum(int(fields[i]) for i in BUSY_FIELDS) * TICK_MS


def process_ms(pid: int) -> tuple[float, float]:
    """(own user+system, reaped children's user+system) of `pid`, in ms; (0, 0) once gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # from field 3 on; comm may hold spaces
    utime, stime, cutime, cstime = (int(fields[i - 3]) for i in (14, 15, 16, 17))
    return (utime + stime) * TICK_MS, (cutime + cstime) * TICK_MS


def own_ms() -> tuple[float, float]:
    times = os.times()
    return (times.user + times.system) * 1000.0, (times.children_user + times.children_system) * 1000.0


def background_rate(seconds: float = 1.0) -> float:
    """Busy ms per second of the machine while we do nothing: others' work and our idle daemons'."""
    start, busy = time.perf_counter(), machine_busy_ms()
    time.sleep(seconds)
    return (machine_busy_ms() - busy) / (time.perf_counter() - start)


@dataclass
class Snapshot:
    wall: float
    machine: float
    daemon: float
    zygote: float
    sandboxes: float
    clients: float
    children: float  # the bench's own reaped children (the bare baselines' processes)


def snapshot(daemon_pid: int | None = None, zygote_pid: int | None = None) -> Snapshot:
    daemon, _ = process_ms(daemon_pid) if daemon_pid else (0.0, 0.0)
    zygote, sandboxes = process_ms(zygote_pid) if zygote_pid else (0.0, 0.0)
    clients, children = own_ms()
    return Snapshot(time.perf_counter(), machine_busy_ms(), daemon, zygote, sandboxes, clients, children)


@dataclass
class Breakdown:
    """CPU ms per execution by component over one window."""
    executions: int
    seconds: float
    components: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.components.values())

    @property
    def rate(self) -> float:
        return self.executions / self.seconds


def breakdown(before: Snapshot, after: Snapshot, executions: int, idle_rate: float) -> Breakdown:
    seconds = after.wall - before.wall
    named = {
        "daemon": after.daemon - before.daemon,
        "zygote": after.zygote - before.zygote,
        "sandbox processes": after.sandboxes - before.sandboxes,
        "processes (bare)": after.children - before.children,
        "bench clients": after.clients - before.clients,
    }
    machine = after.machine - before.machine - idle_rate * seconds
    named["kernel, unbilled"] = max(0.0, machine - sum(named.values()))
    per = max(1, executions)
    return Breakdown(executions, seconds, {name: ms / per for name, ms in named.items() if ms > 0 or
                                           name == "kernel, unbilled"})
