"""The zygote: a single-threaded process started by a fresh exec of the Python
interpreter (never a fork of the daemon, which has threads and secrets), with a
scrubbed environment (its entry point is zygote_boot.py, run by the sandbox's Python).
It imports the preload modules once, then forks sandbox slots ahead of demand. It
never runs untrusted code.

A root zygote forks each slot itself, as pid 1 of a new pid namespace
(namespaces.SlotForker), and hands the daemon the slot's pidfd, control socket and
output pipes over its channel. Otherwise each slot is made by a short-lived
intermediate child that enters the namespaces, forks the slot, hands it over the same
way and exits. The zygote is a child subreaper, so slots become its children either
way and it reports their exit statuses.
"""
from __future__ import annotations

import ctypes
import dataclasses
import gc
import importlib
import os
import select
import signal
import socket
import struct
from dataclasses import dataclass

import prctl

from .. import limits
from ..errors import MalformedMessage, SubidError, UidLeaseError
from ..ipc import channel, messages
from ..ipc.channel import ZYGOTE_FD_ENV
from ..isolation import capabilities, landlock, namespaces, network_namespaces, seccomp_policy, subids, uid_leases
from ..model import SandboxSpec
from . import huge_pages, runner, slot  # noqa: F401  (runner: imported here, before any fork)

BACKGROUND_NICE = 10


def main() -> None:
    control = socket.socket(fileno=int(os.environ[ZYGOTE_FD_ENV]))
    os.environ.clear()
    _blank_initial_environment()
    # Never outlive the daemon, and take the sandboxes along: SIGTERM (not SIGKILL) so
    # the zygote gets to kill its slots, which as a subreaper are its children.
    prctl.set_pdeathsig(signal.SIGTERM)
    prctl.set_child_subreaper(True)
    # Building replacement slots is background work: it must not steal the CPU from
    # the request path (the daemon and the running jobs) on a small machine.
    os.nice(BACKGROUND_NICE)
    try:
        wire, _ = channel.recv_packet(control)
        config = messages.from_wire(wire, messages.Configure)
    except (channel.ChannelClosed, MalformedMessage):
        return  # the daemon stopped before configuring us
    try:
        # Before the preload: a process with threads (OpenBLAS starts some) cannot
        # enter a user namespace.
        book = _sandbox_uids(config)
    except (UidLeaseError, SubidError, OSError) as exc:
        channel.send(control, messages.Hello(os.getpid(), error=f"sandbox uids: {exc}").to_wire())
        return
    # OpenBLAS sizes its thread pool when numpy is imported (here, by the preload).
    os.environ.update(limits.blas_thread_env(config.limits_backend, config.pids_max))
    preloaded = _preload(config.preload)
    try:
        spec = _sandbox_spec(config)
    except (landlock.LandlockError, seccomp_policy.SeccompError) as exc:
        channel.send(control, messages.Hello(os.getpid(), error=str(exc)).to_wire())
        return
    messages.prepare_schemas()
    # Every object so far (the interpreter, leeward, the preloaded modules) moves to the
    # permanent generation: a collection in a slot or job then never walks them, which
    # would write to (and so copy) nearly every page the slot shares with the zygote.
    gc.freeze()
    huge_pages.collapse_anonymous_memory()  # after the preload, before the first fork
    channel.send(control, messages.Hello(os.getpid(), preloaded, spec.landlock_abi, spec.seccomp_notify).to_wire())
    forker = namespaces.SlotForker.if_possible() if config.privileged else None
    networks = network_namespaces.NetworkNamespaces() if forker is not None else None
    try:
        _serve(control, spec, book, forker, networks)
    finally:
        _kill_slots()


def _sandbox_spec(config: messages.Configure) -> SandboxSpec:
    """Every slot's spec but its uid. What the kernel offers is probed once; the seccomp
    filter compiled once, here, before any filter is in force (libseccomp's own probes
    would be refused later)."""
    notify = seccomp_policy.notify_available()
    capabilities.last_cap()  # cached for every slot: no /proc read on the request path
    return SandboxSpec(privileged=config.privileged, python_paths=tuple(config.python_paths),
                       tmp_size=config.tmp_size, landlock_abi=landlock.abi_version(),
                       seccomp_filter=seccomp_policy.compile_policy(notify=notify), seccomp_notify=notify,
                       python_bin=config.python_bin)


def _blank_initial_environment() -> None:
    """Zero the exec-time environment block. /proc/<pid>/environ reads that memory, not
    os.environ, and every slot inherits it by fork: without this a job would still read
    the zygote's variables in /proc/self/environ. Safe once os.environ.clear() has
    unset them, so nothing points into the block any more."""
    with open("/proc/self/stat") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2:].split()  # fields 3.. of proc(5); comm may hold spaces
    env_start, env_end = int(fields[50 - 3]), int(fields[51 - 3])
    if env_end > env_start:
        ctypes.memset(env_start, 0, env_end - env_start)


def _preload(modules: list[str]) -> list[str]:
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # not installed, or broken: preload is an optimisation only
            continue
    return loaded


def _serve(control: socket.socket, spec: SandboxSpec, book: "SandboxUidBook | None",
           forker: namespaces.SlotForker | None, networks: network_namespaces.NetworkNamespaces | None) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    sequence = 0
    while not terminated:
        ready, _, _ = select.select([control, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _report_exits(control, book, networks)
        if control in ready:
            try:
                wire, _ = channel.recv_packet(control)
            except (channel.ChannelClosed, OSError):
                return
            try:
                spawn = messages.from_wire(wire, messages.Spawn)
            except MalformedMessage:
                continue
            for _ in range(spawn.count):
                if forker is not None:
                    _fork_slot(control, spec, sequence, book, forker, networks)
                else:
                    _spawn(control, spec, sequence, book)
                sequence += 1


def _kill_slots() -> None:
    """Every child is a slot (pid 1 of its pid namespace: SIGKILL takes its whole tree)
    or a short-lived intermediate; none may outlive the zygote."""
    children = f"/proc/self/task/{os.getpid()}/children"
    while True:
        with open(children) as fh:
            pids = [int(p) for p in fh.read().split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in pids:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


def _report_exits(control: socket.socket, book: "SandboxUidBook | None",
                  networks: network_namespaces.NetworkNamespaces | None) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if book is not None:
            book.exited(pid)
        if networks is not None:
            networks.slot_reaped(pid)
        cpu_time_us = round((usage.ru_utime + usage.ru_stime) * 1_000_000)
        channel.send(control, messages.Exited(pid, status, usage.ru_maxrss * 1024, cpu_time_us).to_wire())


def _fork_slot(control: socket.socket, spec: SandboxSpec, sequence: int, book: "SandboxUidBook | None",
               forker: namespaces.SlotForker, networks: network_namespaces.NetworkNamespaces) -> None:
    """A root zygote's slot: its own child, no intermediate (see namespaces.SlotForker),
    forked into a network namespace of its own (network_namespaces.py)."""
    try:
        uid = book.take() if book is not None else None
    except UidLeaseError as exc:
        channel.send(control, messages.SpawnFailed(str(exc)).to_wire())
        return
    daemon_end, slot_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    booked = False
    try:
        network = networks.enter_for_next_slot()
        try:
            pid = forker.fork()
        except BaseException:
            networks.restore()
            networks.drop(network)
            raise
        if pid == 0:
            _become_slot(dataclasses.replace(spec, outside_uid=uid, outside_gid=uid), slot_end, out_w, err_w)
        networks.assign(pid, network)  # first: a failing restore below must not lose it
        networks.restore()
        if book is not None:
            book.spawned(pid, uid)  # given back once the slot is reaped
            booked = True
        pidfd = os.pidfd_open(pid)
        try:
            made = messages.SlotMade(sequence, pid, None if book is None else book.host_uid(uid))
            channel.send(control, made.to_wire(), [pidfd, daemon_end.fileno(), out_r, err_r])
        finally:
            os.close(pidfd)
    except OSError as exc:
        # A slot forked but not handed over finds its channel's far end closed, and exits.
        if book is not None and not booked:
            book.give_back(uid)
        try:
            channel.send(control, messages.SpawnFailed(f"{type(exc).__name__}: {exc}").to_wire())
        except OSError:
            pass
    finally:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        daemon_end.close()
        slot_end.close()


def _become_slot(spec: SandboxSpec, ctl: socket.socket, out_w: int, err_w: int) -> None:
    """The child of SlotForker.fork: pid 1 of its pid namespace. Never returns."""
    try:
        namespaces.enter_slot_rest()
        slot.run(spec, ctl, out_w, err_w)
    finally:
        os._exit(slot.EXIT_SETUP_FAILED)  # slot.run exits by itself; never back into the zygote's loop


def _spawn(control: socket.socket, spec: SandboxSpec, sequence: int, book: "SandboxUidBook | None") -> None:
    try:
        uid = book.take() if book is not None else None
    except UidLeaseError as exc:
        channel.send(control, messages.SpawnFailed(str(exc)).to_wire())
        return
    intermediate = os.fork()
    if intermediate != 0:
        if book is not None:
            book.spawned(intermediate, uid)
        return
    # intermediate child
    try:
        spec = dataclasses.replace(spec, outside_uid=uid, outside_gid=uid)
        daemon_end, slot_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        namespaces.enter_slot_namespaces(own_user_namespace=uid is None)
        pid = os.fork()
        if pid == 0:
            slot.run(spec, slot_end, out_w, err_w)
            os._exit(0)
        if book is not None:
            book.slot_started(pid)
        pidfd = os.pidfd_open(pid)
        made = messages.SlotMade(sequence, pid, None if book is None else book.host_uid(uid))
        channel.send(control, made.to_wire(), [pidfd, daemon_end.fileno(), out_r, err_r])
    except Exception as exc:
        try:
            channel.send(control, messages.SpawnFailed(f"{type(exc).__name__}: {exc}").to_wire())
        except OSError:
            pass
    os._exit(0)


# ---------------------------------------------------------------- sandbox uids

def _sandbox_uids(config: messages.Configure) -> "SandboxUidBook | None":
    """Leases this daemon's block of sandbox uids (uid_leases.py). A root daemon's come
    from sandbox_uid_base/count; an unprivileged daemon's from its subordinate ids, and
    the zygote moves into a user namespace that maps them (subids.py). None: no
    subordinate ids, every job is the daemon's own uid (doctor and the daemon's log say so)."""
    if config.privileged:
        lease = uid_leases.lease(config.uid_base, config.uid_count, uid_leases.ROOT_LOCK_DIR)
        return SandboxUidBook(lease, first=lease.block.first, host_offset=0)
    found = subids.find()
    if found is None:
        return None
    lease = uid_leases.lease(found.uids.first, found.count, uid_leases.default_lock_dir(os.geteuid()))
    try:
        subids.enter_user_namespace(found, lease.block.first - found.uids.first, lease.block.count)
    except BaseException:
        lease.release()
        raise
    # Id k of the zygote's namespace is host uid block.first + k - 1 (0 is the daemon's user).
    return SandboxUidBook(lease, first=1, host_offset=lease.block.first - 1)


@dataclass
class SandboxUidBook:
    """Which uid of the lease each live slot holds: a uid goes back to the free queue
    only once its slot (pid 1 of its pid namespace: all of the sandbox) was reaped.

    A root zygote's slot is its own child. Any other slot is the zygote's grandchild:
    the intermediate that forked it records (intermediate pid, slot pid) on a pipe
    before it exits, so by the time the zygote can reap either of them the record is
    there to read."""
    lease: uid_leases.UidLease
    first: int
    host_offset: int

    RECORD = struct.Struct("=ii")

    def __post_init__(self) -> None:
        self._uids = uid_leases.SandboxUids(self.first, self.lease.block.count)
        self._records_r, self._records_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._by_intermediate: dict[int, int] = {}
        self._by_slot: dict[int, int] = {}

    def host_uid(self, uid: int) -> int:
        return uid + self.host_offset

    def take(self) -> int:
        self._read_records()  # frees the pipe for records to come
        return self._uids.take()

    def spawned(self, child: int, uid: int) -> None:
        """`child`: the slot itself (a root zygote's), or the intermediate that forks it."""
        self._by_intermediate[child] = uid

    def give_back(self, uid: int) -> None:
        """A uid taken for a slot that was never made."""
        self._uids.give_back(uid)

    def slot_started(self, slot_pid: int) -> None:
        """In the intermediate. A record is far below PIPE_BUF: written whole or not at all."""
        os.write(self._records_w, self.RECORD.pack(os.getpid(), slot_pid))

    def exited(self, pid: int) -> None:
        self._read_records()
        uid = self._by_intermediate.pop(pid, None) or self._by_slot.pop(pid, None)
        if uid is not None:
            self._uids.give_back(uid)  # an intermediate still listed here made no slot

    def _read_records(self) -> None:
        while True:
            try:
                data = os.read(self._records_r, self.RECORD.size * 64)
            except BlockingIOError:
                return
            for intermediate, slot_pid in self.RECORD.iter_unpack(data):
                uid = self._by_intermediate.pop(intermediate, None)
                if uid is not None:
                    self._by_slot[slot_pid] = uid
