"""Looking at the host's own processes from a test (not from a sandbox)."""
from __future__ import annotations

import os


def host_pids(*, marker: str | None = None, uid: int | None = None) -> list[int]:
    """Host pids whose command line (arguments joined by spaces) contains `marker`, or
    whose real uid is `uid`; never the calling test process."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ")
            with open(f"/proc/{name}/status") as fh:
                real_uid = int(next(line for line in fh if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration):
            continue  # exited while we looked
        if (marker is not None and marker.encode() in cmdline) or (uid is not None and real_uid == uid):
            found.append(int(name))
    return found
