"""Namespaces: user, pid, mount, net, ipc, uts (slot) and a nested user + cgroup ns (job)."""
from __future__ import annotations

import os

from .. import linux
from ..model import SANDBOX_GID, SANDBOX_UID

SLOT_FLAGS = (linux.CLONE_NEWNS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC
              | linux.CLONE_NEWUTS | linux.CLONE_NEWPID)


class SlotForker:
    """Forks slots straight from the zygote, as pid 1 of a new pid namespace each, when
    the zygote is root of the host's user namespace (a root daemon).

    unshare(CLONE_NEWPID) only decides where the caller's next child goes, and a second
    one fails (EINVAL) until the caller is set back to its own pid namespace with
    setns(), which needs CAP_SYS_ADMIN over that namespace: so this is for a root zygote
    only. It saves an intermediate process per slot (its fork of the zygote's large
    address space, and that copy's teardown) while keeping glibc's and CPython's fork
    handlers (OpenBLAS stops its threads, random state is reseeded): a raw clone(2)
    with namespace flags would skip them. Everywhere else, `enter_slot_namespaces` in an
    intermediate child. The slot unshares its other namespaces itself (`enter_slot_rest`).
    """

    def __init__(self) -> None:
        self._own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)

    @classmethod
    def if_possible(cls) -> "SlotForker | None":
        """A forker when this process may create pid namespaces and set itself back,
        tried once here (nothing forked), else None."""
        forker = cls()
        try:
            forker._restore()  # a no-op that needs the same rights: fails before anything changed
            linux.unshare(linux.CLONE_NEWPID)
            forker._restore()
        except OSError:
            os.close(forker._own_pid_namespace)
            return None
        return forker

    def fork(self) -> int:
        """os.fork(), the child as pid 1 of a new pid namespace."""
        linux.unshare(linux.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            self._restore()
            raise
        if pid != 0:
            self._restore()
        return pid

    def _restore(self) -> None:
        linux.setns(self._own_pid_namespace, linux.CLONE_NEWPID)


def enter_slot_rest() -> None:
    """In a slot forked by SlotForker (pid 1, root): its other namespaces. Its network
    namespace it was forked into (network_namespaces.py)."""
    linux.unshare(SLOT_FLAGS & ~linux.CLONE_NEWPID & ~linux.CLONE_NEWNET)


def enter_slot_namespaces(own_user_namespace: bool) -> None:
    """Called in the slot's parent; the next fork() becomes pid 1 of the new pid ns.

    With a sandbox uid (a root daemon, or a zygote in its subordinate-id namespace,
    see subids.py) the slot's parent is root where it stands: it creates these
    namespaces as that root, so the slot can still read host paths (a Python under
    /root, job mounts) while it builds the root; the user namespace comes at job time,
    after the identity switch. Without one, the user namespace must come first,
    mapping inside root to the daemon's own uid.
    """
    if not own_user_namespace:
        linux.unshare(SLOT_FLAGS)
        return
    uid, gid = os.geteuid(), os.getegid()
    linux.unshare(linux.CLONE_NEWUSER | SLOT_FLAGS)
    _write_id_maps("self", inside=0, uid=uid, gid=gid)


def enter_job_user_namespace() -> None:
    """The job's own user namespace, mapping only SANDBOX_UID to the current identity.

    Created by an already unprivileged process, so its capabilities cover nothing the
    host owns; the cgroup namespace rides along so /proc/self/cgroup shows "/".
    """
    uid, gid = os.geteuid(), os.getegid()
    linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP)
    _write_id_maps("self", inside=SANDBOX_UID, uid=uid, gid=gid, inside_gid=SANDBOX_GID)


def _write_id_maps(pid: str, inside: int, uid: int, gid: int, inside_gid: int | None = None) -> None:
    # setgroups must be denied before an unprivileged gid_map write (CVE-2014-8989).
    linux.write_file(f"/proc/{pid}/setgroups", "deny")
    linux.write_file(f"/proc/{pid}/uid_map", f"{inside} {uid} 1\n")
    linux.write_file(f"/proc/{pid}/gid_map", f"{inside if inside_gid is None else inside_gid} {gid} 1\n")
