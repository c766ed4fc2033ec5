"""A running sandbox's limits box directories and host pids, found from the host by a
marker file only its /tmp holds (the sandbox's cgroup namespace hides its own path),
and the wait for them to be gone."""
from __future__ import annotations

import glob
import os
import time

WAIT_SECS = 60.0  # bound on waiting for an end the daemon reaches by itself; not a speed assertion


def find(marker: str) -> tuple[set[str], set[int]]:
    boxes, pids = set(), set()
    for procs in glob.glob("/sys/fs/cgroup/*/leeward/*/cgroup.procs"):
        try:
            with open(procs) as fh:
                members = {int(line) for line in fh if line.strip()}
        except FileNotFoundError:
            continue  # another sandbox's box, removed since the glob
        for pid in members:
            if os.path.exists(f"/proc/{pid}/root/tmp/{marker}"):
                boxes.add(os.path.dirname(procs))
                pids |= members
    return boxes, pids


def wait_until_gone(boxes: set[str], pids: set[int]) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while time.monotonic() < deadline:
        if not any(os.path.exists(b) for b in boxes) and not any(os.path.exists(f"/proc/{p}") for p in pids):
            return
        time.sleep(0.05)
    raise AssertionError(f"left behind: boxes {[b for b in boxes if os.path.exists(b)]}, "
                         f"pids {[p for p in pids if os.path.exists(f'/proc/{p}')]}")
