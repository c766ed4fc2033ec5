"""Unique memory (USS) of the idle sandboxes: what each ready slot costs on top of the
zygote it shares its pages with."""
from __future__ import annotations

import statistics

from tests.reliability.leaks import children


def uss_bytes(pid: int) -> int | None:
    """Private_Clean + Private_Dirty from smaps_rollup; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return sum(int(fields[name].split()[0]) * 1024 for name in ("Private_Clean", "Private_Dirty"))


def idle_slot_uss_mib(zygote_pid: int) -> float | None:
    """Median USS of the zygote's children (its ready slots, when no job runs)."""
    sizes = [size for size in map(uss_bytes, children(zygote_pid)) if size is not None]
    return statistics.median(sizes) / (1 << 20) if sizes else None
