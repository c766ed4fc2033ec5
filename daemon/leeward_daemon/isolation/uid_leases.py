"""Sandbox uids that no other daemon, and no earlier daemon, is still using.

A daemon's sandbox uid range (sandbox_uid_base/count for root, the user's /etc/subuid
range otherwise) is cut into blocks of BLOCK_SIZE uids. A daemon runs its sandboxes
only from the one block it leases: an exclusive flock on that block's lock file, held
by the zygote for its lifetime. The kernel drops the lock when the holder dies, however
it dies, so a lock file that can be taken means no live daemon is handing out its uids.

A dead holder may still have left processes behind (a zygote killed by SIGKILL orphans
its slots) and files (a job's output in a rw mount keeps its uid forever). So:
- a block with a live process of one of its uids is skipped, never reused (the
  processes are listed in the error when nothing else is left);
- blocks are reused least recently leased first (never leased ones before all others;
  the lease stamps its file's mtime), so a uid comes back as late as the range allows.
Within the block, `SandboxUids` gives each live slot its own uid and returns a released
uid to the back of the queue.

Daemons coordinate when they share the lock directory and cut the same range: every
root daemon (/run/leeward/uids), every daemon of one user (/run/user/<uid>/leeward/uids,
or /tmp/leeward-<uid>/uids without a runtime directory). Daemons configured with
different, overlapping ranges do not: give them disjoint ones.
"""
from __future__ import annotations

import collections
import fcntl
import os
import stat
import time
from dataclasses import dataclass

from ..errors import UidLeaseError

BLOCK_SIZE = 1024  # uids per daemon: more live sandboxes than that on one daemon fail to spawn
ROOT_LOCK_DIR = "/run/leeward/uids"


@dataclass(frozen=True)
class Block:
    first: int   # first host uid of the block
    count: int

    @property
    def name(self) -> str:
        return f"{self.first}+{self.count}.lock"

    def __contains__(self, uid: int) -> bool:
        return self.first <= uid < self.first + self.count


class UidLease:
    """A leased block; the lock lasts as long as this fd stays open in some process."""

    def __init__(self, block: Block, fd: int, path: str):
        self.block, self.fd, self.path = block, fd, path

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def blocks(first: int, count: int, size: int = BLOCK_SIZE) -> list[Block]:
    return [Block(start, min(size, first + count - start)) for start in range(first, first + count, size)]


def default_lock_dir(euid: int) -> str:
    """Independent of the environment, so that every daemon of a user finds the same one."""
    if euid == 0:
        return ROOT_LOCK_DIR
    runtime = f"/run/user/{euid}"
    try:
        info = os.lstat(runtime)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == euid:
            return os.path.join(runtime, "leeward", "uids")
    except OSError:
        pass
    return f"/tmp/leeward-{euid}/uids"


def lease(first: int, count: int, lock_dir: str, size: int = BLOCK_SIZE) -> UidLease:
    """The least recently leased block of [first, first+count) that no live daemon holds
    and no live process runs as."""
    dir_fd = _open_private_dir(lock_dir)
    try:
        candidates = blocks(first, count, size)
        in_use = live_uids(first, count)
        candidates.sort(key=lambda b: _last_leased(b, dir_fd))
        held, busy = 0, {}
        for block in candidates:
            fd = os.open(block.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                held += 1
                continue
            leftovers = {uid: pids for uid, pids in in_use.items() if uid in block}
            if leftovers:
                os.close(fd)
                busy[block] = leftovers
                continue
            _stamp(fd)
            return UidLease(block, fd, os.path.join(lock_dir, block.name))
    finally:
        os.close(dir_fd)
    described = "; ".join(f"{b.first}-{b.first + b.count - 1} still has processes {_pids(u)}" for b, u in busy.items())
    raise UidLeaseError(f"no free sandbox uid block in {first}-{first + count - 1} ({held} held by running "
                        f"daemons{'; ' + described if described else ''}); stop a daemon, kill the leftover "
                        f"processes, or widen the range")


def live_uids(first: int, count: int) -> dict[int, list[int]]:
    """Host uid -> pids of the processes whose real, effective, saved or fs uid is in the range."""
    found: dict[int, list[int]] = collections.defaultdict(list)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                uids = next(line for line in fh if line.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):
            continue  # exited while we looked
        for uid in {int(u) for u in uids}:
            if first <= uid < first + count:
                found[uid].append(int(name))
    return dict(found)


class SandboxUids:
    """One uid per live slot out of the leased block: `count` ids numbered from `first`
    as the zygote names them. Least recently released first."""

    def __init__(self, first: int, count: int):
        self._free = collections.deque(range(first, first + count))

    def take(self) -> int:
        if not self._free:
            raise UidLeaseError("every sandbox uid of this daemon's block is held by a live sandbox")
        return self._free.popleft()

    def give_back(self, uid: int) -> None:
        self._free.append(uid)


def _open_private_dir(path: str) -> int:
    """Opens `path`, creating it and its parents below a trusted base as needed; refuses
    any of those that someone else could write or swap (a lock file another user
    controls would let them starve us of uids or make two daemons share them)."""
    euid = os.geteuid()
    base = next((b for b in (f"/run/user/{euid}", "/run", "/tmp") if path.startswith(b + "/")), os.path.dirname(path))
    created_mode = 0o755 if euid == 0 else 0o700  # /run/leeward may hold a root daemon's socket too
    current = base
    for part in os.path.relpath(path, base).split(os.sep):
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o700 if current == path else created_mode)
        except FileExistsError:
            pass
        info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise UidLeaseError(f"uid lock directory {current} is unsafe: not a directory (a symlink?); remove it")
        if info.st_uid != euid or info.st_mode & 0o022:
            raise UidLeaseError(f"uid lock directory {current} is unsafe: owned by uid {info.st_uid}, mode "
                                f"{stat.S_IMODE(info.st_mode):o}; only the daemon's user may write it: remove it")
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UidLeaseError(f"uid lock directory {path} is unusable: {exc.strerror}") from None


def _last_leased(block: Block, dir_fd: int) -> float:
    try:
        return os.stat(block.name, dir_fd=dir_fd, follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return float("-inf")  # never leased: first choice


def _stamp(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for an operator's eyes
    now = time.time()
    os.utime(fd, (now, now))


def _pids(uids: dict[int, list[int]]) -> str:
    return ",".join(str(p) for pids in uids.values() for p in pids)
