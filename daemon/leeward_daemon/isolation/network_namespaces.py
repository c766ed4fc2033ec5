"""Network namespaces for a root zygote's slots: each slot its own, never shared by two
live sandboxes, but recycled from one sandbox to the next once the first is gone.

Why: a network namespace is the dearest namespace to make and to tear down (the
kernel's cleanup_net, in a worker): 0.83 ms of machine CPU per sandbox measured on the
bench VM, against 0.20 for a mount namespace and 0.25 for a pid namespace.

Why a recycled one carries nothing from one job to the next: a job cannot change its
namespace (it was made by the root zygote, so a job's user namespace holds no
capability over it: no interface, address, route or sysctl), seccomp refuses every
socket but AF_UNIX (so no traffic and no counters move), and its Unix sockets die with
its processes. A namespace goes back to the free list only once its slot, pid 1 of
the sandbox's pid namespace, was reaped (every process of the sandbox is gone) and it
lists no Unix socket at all (/proc/net/unix read from inside it): a socket a job's
fd kept alive elsewhere (one it passed out before it died) makes the namespace be
dropped instead. A probe checks it (tests/escapes/test_network_namespace_reuse.py).

Not for an unprivileged daemon's slots, which make their network namespace together
with their user namespace in an intermediate process (namespaces.py)."""
from __future__ import annotations

import os

from .. import linux

MAX_FREE = 16  # kept for reuse at most; a burst's extra namespaces are dropped


class NetworkNamespaces:
    def __init__(self) -> None:
        self._own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._free: list[int] = []
        self._by_slot: dict[int, int] = {}
        self.reused = 0

    def enter_for_next_slot(self) -> int:
        """Moves this process into a network namespace for the slot it forks next: a
        recycled one, else a new one. Returns its handle; `restore` after the fork."""
        if self._free:
            handle = self._free.pop()
            try:
                linux.setns(handle, linux.CLONE_NEWNET)
            except OSError:
                os.close(handle)
                raise
            self.reused += 1
            return handle
        linux.unshare(linux.CLONE_NEWNET)
        try:
            return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.restore()
            raise

    def restore(self) -> None:
        linux.setns(self._own, linux.CLONE_NEWNET)

    def assign(self, slot_pid: int, handle: int) -> None:
        self._by_slot[slot_pid] = handle

    def drop(self, handle: int) -> None:
        """A handle whose slot was never made."""
        os.close(handle)

    def slot_reaped(self, slot_pid: int) -> None:
        """The slot and with it every process of its sandbox is gone: its namespace is
        free for the next slot if nothing of it is left."""
        handle = self._by_slot.pop(slot_pid, None)
        if handle is None:
            return
        if len(self._free) < MAX_FREE and self._is_empty(handle):
            self._free.append(handle)
        else:
            os.close(handle)

    def _is_empty(self, handle: int) -> bool:
        """No Unix socket in the namespace (/proc/self/net is the reader's namespace's)."""
        try:
            linux.setns(handle, linux.CLONE_NEWNET)
        except OSError:
            return False
        try:
            with open("/proc/self/net/unix") as listing:
                return len(listing.read().splitlines()) == 1  # its header only
        except OSError:
            return False
        finally:
            self.restore()
