"""Boxes a dead daemon left behind: a SIGKILLed daemon never destroys its cgroups, and
their processes (a sandbox still running a job) would live on, unaccounted.

A box's name says which daemon made it (`slot-<daemon pid>-<slot pid>`), so a daemon
starting next to a live one (another user's, a test's) never touches that one's boxes.
"""
from __future__ import annotations

import logging
import os
import re

from .base import Backend, LimitsError
from .cgroup1 import Cgroup1Backend
from .cgroup2 import Cgroup2Backend

log = logging.getLogger(__name__)

# probe-<pid>: detect._probe's short-lived box, left only if its process died mid-probe.
_OWNED = re.compile(r"(?:slot-(?P<daemon>\d+)-\d+|probe-(?P<prober>\d+))")


def slot_box_id(daemon_pid: int, slot_pid: int) -> str:
    return f"slot-{daemon_pid}-{slot_pid}"


def owner(box_id: str) -> int | None:
    """The pid of the process that made the box, or None for a name leeward did not give."""
    match = _OWNED.fullmatch(box_id)
    if match is None:
        return None
    return int(match.group("daemon") or match.group("prober"))


def process_exists(pid: int) -> bool:
    # Any process with that pid counts as the owner: a reused pid keeps a stale box
    # alive (harmless garbage), whereas guessing wrong the other way kills a live
    # daemon's sandboxes. Pids are those of this pid namespace.
    return os.path.exists(f"/proc/{pid}")


def remove_stale_boxes(backend: Backend, alive=process_exists) -> list[str]:
    """Kills the processes of, and removes, every box whose maker is gone; returns their names."""
    if not isinstance(backend, (Cgroup1Backend, Cgroup2Backend)):
        return []  # rlimit boxes are pidfds: nothing outlives the daemon
    removed = []
    for box_id in backend.box_ids():
        pid = owner(box_id)
        if pid is None or pid == os.getpid() or alive(pid):
            continue
        try:
            backend.open_box(box_id).destroy()
        except LimitsError as exc:
            log.warning("could not remove stale limits box %s: %s", box_id, exc)
            continue
        removed.append(box_id)
    if removed:
        log.warning("removed %d limits box(es) left by a daemon that is gone: %s", len(removed), ", ".join(removed))
    return removed
