"""Subordinate ids for an unprivileged daemon, as rootless podman uses them.

/etc/subuid and /etc/subgid grant a user ranges of host ids it does not otherwise own;
the setuid helpers newuidmap/newgidmap (Debian package `uidmap`) write a user
namespace's id maps with them, which the kernel allows no unprivileged process to do
itself. The zygote uses them once, at start: it enters a user namespace of its own in
which 0 is the daemon's user and 1..n is the block of subordinate ids it leased
(uid_leases.py). From then on it works as a root daemon does on the host: each slot
switches to its own id 1..n before it creates the job's user namespace. One mapping
for the zygote's lifetime, instead of a newuidmap/newgidmap exec pair per slot, keeps
the slot's cost exactly what it was.

What this separates (the kernel keys it by host uid): file ownership, signals and
ptrace between sandboxes and with the daemon's user, and the per-user budgets kept
in the user_struct (pipe buffer pages, epoll watches). What it does not: the kernel
charges namespace-scoped counters (processes under RLIMIT_NPROC, pending signals,
mqueue bytes, inotify/fanotify, namespaces) at every level up the chain of user
namespace owners, so they still add up to the daemon's user at the host level.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

from .. import linux
from ..errors import SubidError

SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
HELPER_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
SHARED_UID = ("jobs run as your own uid: they share your per-user kernel limits (inotify instances, processes, "
              "...)")
SUBID_FIX = "add a range to /etc/subuid and /etc/subgid and install uidmap"
MISSING_ADVICE = f"{SHARED_UID}; {SUBID_FIX}"


@dataclass(frozen=True)
class IdRange:
    first: int
    count: int


@dataclass(frozen=True)
class Subids:
    uids: IdRange
    gids: IdRange
    newuidmap: str
    newgidmap: str

    @property
    def count(self) -> int:
        """Ids usable in both ranges, at the same offset."""
        return min(self.uids.count, self.gids.count)


def granted(path: str, uid: int, name: str | None) -> IdRange | None:
    """The first range subuid(5)/subgid(5) gives the user, by name or by number."""
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(uid)):
            continue
        try:
            first, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if first > 0 and count > 0:
            return IdRange(first, count)
    return None


def find(uid: int | None = None, gid: int | None = None) -> Subids | None:
    """The daemon user's subordinate ids and the helpers to map them, or None when
    either range or either helper is missing."""
    uid = os.geteuid() if uid is None else uid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    uids, gids = granted(SUBUID, uid, name), granted(SUBGID, uid, name)
    newuidmap, newgidmap = shutil.which("newuidmap", path=HELPER_PATH), shutil.which("newgidmap", path=HELPER_PATH)
    if not (uids and gids and newuidmap and newgidmap):
        return None
    return Subids(uids, gids, newuidmap, newgidmap)


def missing_parts(uid: int | None = None) -> list[str]:
    """What is lacking for `find` to succeed, in words (for doctor)."""
    uid = os.geteuid() if uid is None else uid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    parts = [f"no range for uid {uid} in {path}" for path in (SUBUID, SUBGID) if granted(path, uid, name) is None]
    if not (shutil.which("newuidmap", path=HELPER_PATH) and shutil.which("newgidmap", path=HELPER_PATH)):
        parts.append("newuidmap/newgidmap not installed (package uidmap)")
    return parts


def enter_user_namespace(subids: Subids, offset: int, count: int) -> None:
    """Moves the calling (single-threaded) process into a new user namespace mapping 0 to
    its own ids and 1..count to subordinate ids offset..offset+count-1 of each range.

    The helpers must run outside the namespace: a child forked first waits until we
    have unshared, runs them on our pid, and exits; we wait for it. setgroups stays
    allowed (newgidmap leaves it so), which the slots need to drop their groups.
    """
    uid, gid = os.geteuid(), os.getegid()
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    target = os.getpid()
    helper = os.fork()
    if helper == 0:
        os.close(ready_w)
        os.close(report_r)
        try:
            if os.read(ready_r, 1) == b"u":
                _run_helper([subids.newuidmap, str(target), "0", str(uid), "1",
                             "1", str(subids.uids.first + offset), str(count)])
                _run_helper([subids.newgidmap, str(target), "0", str(gid), "1",
                             "1", str(subids.gids.first + offset), str(count)])
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the zygote reports it
            os.write(report_w, str(exc).encode()[:4000] or b"failed")
        finally:
            os._exit(0)
    os.close(ready_r)
    os.close(report_w)
    try:
        linux.unshare(linux.CLONE_NEWUSER)
        os.write(ready_w, b"u")
    finally:
        os.close(ready_w)  # EOF: a helper not told to map exits without mapping
        with os.fdopen(report_r, "rb") as report:
            error = report.read().decode(errors="replace")
        os.waitpid(helper, 0)
    if error:
        raise SubidError(f"cannot map the subordinate ids {subids.uids.first + offset}+{count} (uids) and "
                         f"{subids.gids.first + offset}+{count} (gids): {error}")


def _run_helper(argv: list[str]) -> None:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env={"PATH": HELPER_PATH}, close_fds=True)
    if proc.returncode != 0:
        raise SubidError(f"{' '.join(argv)}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")


def startup_notice(euid: int, uid_base: int, uid_count: int) -> tuple[bool, str]:
    """(is_warning, text): what the daemon logs once at start about its sandboxes' uids."""
    if euid == 0:
        return False, f"each sandbox runs as its own host uid from {uid_base}-{uid_base + uid_count - 1}"
    found = find(euid)
    if found is None:
        return True, MISSING_ADVICE
    return False, (f"each sandbox runs as its own subordinate uid from {found.uids.first}-"
                   f"{found.uids.first + found.count - 1} (/etc/subuid)")
