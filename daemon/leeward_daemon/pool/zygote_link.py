"""Daemon side of the zygote: starts it by a fresh exec, feeds it its configuration,
asks it for slots and receives them (pidfd, control socket, output pipes)."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ..config import Config
from ..errors import IsolationUnavailable, MalformedMessage, ZygoteError
from ..ipc import channel, messages
from ..isolation import enforcement, order
from . import sandbox_python
from .zygote_launch import LaunchedZygote, launch

log = logging.getLogger(__name__)
START_TIMEOUT_SECS = 60.0  # preloading pandas on a cold cache takes a while
RESTART_BACKOFF_SECS = 0.5  # doubled after each failed restart...
RESTART_BACKOFF_MAX_SECS = 30.0  # ...up to this; the daemon never stops trying
RESTARTS_BEFORE_UNHEALTHY = 3


def isolation_in_force(hello: messages.Hello, optional_layers: list[str]) -> dict:
    """The zygote's findings as Status reports them; raises IsolationUnavailable, naming
    the layer and the way out, when a missing layer is not in `optional_layers`."""
    landlock_abi, notify = hello.landlock_abi, hello.seccomp_notify
    missing = {"landlock": landlock_abi < 1, "seccomp_notify": not notify}
    for layer, is_missing in missing.items():
        if is_missing and layer not in optional_layers:
            raise IsolationUnavailable(
                f"required isolation layer {layer!r} is not available on this kernel; refusing to serve "
                f"(add {layer!r} to optional_layers to run without it)")
    return {
        "layers": order.layers_in_force(landlock_abi),
        "landlock_abi": landlock_abi,
        "seccomp": "notify" if notify else "errno",
        "enforced_by": enforcement.enforced_by(landlock_abi, notify),
    }


@dataclass
class SlotFds:
    slot_id: int
    pid: int
    pidfd: int
    control: socket.socket
    stdout: int
    stderr: int


class LinkEvents(Protocol):
    """What the pool hears from the zygote. Every request for a slot is answered by
    exactly one of slot / spawn_failed / slot_lost, or by died (which answers all)."""

    def slot(self, fds: SlotFds) -> None: ...
    def spawn_failed(self, error: str) -> None: ...
    def slot_lost(self, reason: str) -> None: ...
    def exited(self, reaped: messages.Exited) -> None: ...
    def died(self, reason: str) -> None: ...
    def restarted(self) -> None: ...


class ZygoteState(str, Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # died; a new one is being started (with backoff)
    FAILED = "failed"          # could not be restarted RESTARTS_BEFORE_UNHEALTHY times in a row
    STOPPED = "stopped"


class ZygoteLink:
    def __init__(self, config: Config, limits_backend: str, events: LinkEvents):
        self._config = config
        self.limits_backend = limits_backend
        self._events = events
        self._zygote: LaunchedZygote | None = None
        self._python: sandbox_python.Resolving | None = None  # the first zygote's: every restart's too
        self._sock: socket.socket | None = None  # the zygote's control socket while in use
        self._pidfd: int | None = None  # readable once the zygote is gone: noticed at once
        self._unsent = 0  # slots asked for but not yet written to the zygote (socket full)
        self._restarting: asyncio.Task | None = None
        self.state = ZygoteState.STARTING
        self.restarts = 0
        self.last_exit: str | None = None
        self.restart_error: str | None = None
        self.preloaded: list[str] = []
        self.isolation: dict = {}  # layers in force, Landlock ABI, seccomp mode (see start())

    @property
    def running(self) -> bool:
        return self.state is ZygoteState.RUNNING

    @property
    def pid(self) -> int | None:
        return self._zygote.process.pid if self._zygote is not None else None

    async def start(self, launched: LaunchedZygote | None = None) -> None:
        """Configures the zygote (`launched` early by the caller, else started now) and
        waits for its hello."""
        if launched is None and self._python is None:
            self._python = sandbox_python.Resolving(self._config.python)
        self._zygote = launched or launch(self._python)
        self._python = self._zygote.python
        loop = asyncio.get_running_loop()
        # SandboxPythonUnusable (a StartupError) on the first start only: the answer is kept.
        python = await loop.run_in_executor(None, self._python.result)
        ours = self._sock = self._zygote.control
        channel.send(ours, messages.Configure(
            preload=list(self._config.preload), privileged=os.geteuid() == 0,
            python_paths=python.bound_paths(),
            tmp_size=self._config.tmp_size, uid_base=self._config.sandbox_uid_base,
            uid_count=self._config.sandbox_uid_count, limits_backend=self.limits_backend,
            pids_max=self._config.pids_max, python_bin=python.bin_dir).to_wire())
        hello = await asyncio.wait_for(loop.run_in_executor(None, self._recv_blocking, ours), START_TIMEOUT_SECS)
        if hello.error:
            raise IsolationUnavailable(f"the zygote cannot prepare the isolation layers: {hello.error}")
        self.isolation = isolation_in_force(hello, self._config.optional_layers)
        self.preloaded = hello.preloaded
        self._pidfd = os.pidfd_open(self._zygote.process.pid)
        ours.setblocking(False)
        loop.add_reader(ours.fileno(), self._on_readable)
        loop.add_reader(self._pidfd, self._on_gone, "it exited")
        self.state = ZygoteState.RUNNING

    @staticmethod
    def _recv_blocking(sock: socket.socket) -> messages.Hello:
        try:
            wire, _ = channel.recv_packet(sock)
            return messages.from_wire(wire, messages.Hello)
        except MalformedMessage as exc:
            raise ZygoteError(f"unexpected first message from zygote: {exc}") from None
        except (channel.ChannelClosed, OSError) as exc:
            raise ZygoteError(f"zygote failed to start: {exc}") from None

    def spawn(self, count: int) -> None:
        """Asks for `count` more slots. Never dropped: what the socket cannot take now
        (EAGAIN: its queue is short, net.unix.max_dgram_qlen) is merged into one request
        and sent once it is writable."""
        if count > 0 and self.running:
            self._unsent += count
            self._flush()

    def _flush(self) -> None:
        if not self._unsent or not self.running:
            return
        loop = asyncio.get_running_loop()
        try:
            channel.send(self._sock, messages.Spawn(self._unsent).to_wire())
        except BlockingIOError:
            loop.add_writer(self._sock.fileno(), self._on_writable)
            return
        except OSError as exc:
            self._on_gone(f"its channel failed: {exc}")
            return
        self._unsent = 0

    def _on_writable(self) -> None:
        asyncio.get_running_loop().remove_writer(self._sock.fileno())
        self._flush()

    def _on_readable(self) -> None:
        try:
            message, fds = channel.recv_packet(self._sock)
        except BlockingIOError:
            return
        except channel.DamagedRecord as exc:
            self._on_damaged(exc)
            return
        except (channel.ChannelClosed, OSError) as exc:
            self._on_gone(f"its channel closed: {exc}")
            return
        try:
            said = messages.from_wire(message, messages.SlotMade, messages.Exited, messages.SpawnFailed)
        except MalformedMessage as exc:
            for fd in fds:
                os.close(fd)
            self._on_damaged(channel.DamagedRecord(str(exc), exc.wire))
            return
        if isinstance(said, messages.SlotMade):
            self._on_slot_message(said, fds)
            return
        for fd in fds:
            os.close(fd)
        if isinstance(said, messages.Exited):
            self._events.exited(said)
        else:
            self._events.spawn_failed(said.error)

    def _on_slot_message(self, made: messages.SlotMade, fds: list[int]) -> None:
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            # The slot sees EOF on its control socket and exits on its own.
            self._events.slot_lost(f"a slot arrived with {len(fds)} of its 4 fds")
            return
        pidfd, control, out_r, err_r = fds
        self._events.slot(SlotFds(made.id, made.pid, pidfd, socket.socket(fileno=control), out_r, err_r))

    def _on_damaged(self, exc: channel.DamagedRecord) -> None:
        if exc.message is not None and exc.message.get("op") == "slot":
            self._events.slot_lost(str(exc))
        else:  # which request it answered is unknown: the pool's requests expire instead
            log.error("damaged record from the zygote: %s", exc)

    def _on_gone(self, how: str) -> None:
        """The zygote died (its pidfd is readable) or its channel broke: forget it, tell
        the pool, and start a new one with backoff."""
        if not self.running:
            return
        status = self._detach()
        self.last_exit = f"{how} ({status})"
        log.error("the zygote is gone: %s; restarting it", self.last_exit)
        self.state = ZygoteState.RESTARTING
        self._events.died(self.last_exit)
        self._restarting = asyncio.get_running_loop().create_task(self._restart())

    def _detach(self) -> str:
        """Closes our side of the current zygote and reaps it; returns how it ended."""
        loop = asyncio.get_running_loop()
        if self._pidfd is not None:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            loop.remove_writer(self._sock.fileno())
            self._sock = None
        self._unsent = 0
        zygote, self._zygote = self._zygote, None
        if zygote is None:
            return "not started"
        zygote.control.close()
        if zygote.process.poll() is None:
            zygote.process.kill()  # its channel broke: it is of no use alive
        returncode = zygote.process.wait()
        return f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"

    async def _restart(self) -> None:
        failures = 0
        while True:
            try:
                await self.start()
            except (ZygoteError, OSError, asyncio.TimeoutError) as exc:
                self._detach()
                failures += 1
                self.restart_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if failures >= RESTARTS_BEFORE_UNHEALTHY:
                    self.state = ZygoteState.FAILED
                log.error("cannot restart the zygote (attempt %d): %s", failures, self.restart_error)
                await asyncio.sleep(min(RESTART_BACKOFF_SECS * 2 ** (failures - 1), RESTART_BACKOFF_MAX_SECS))
                continue
            self.restarts += 1
            self.restart_error = None
            log.warning("zygote restarted (pid %d, restart %d)", self.pid, self.restarts)
            self._events.restarted()
            return

    def describe(self) -> dict:
        return {"state": self.state.value, "pid": self.pid if self.running else None, "restarts": self.restarts,
                "last_exit": self.last_exit, "restart_error": self.restart_error}

    def stop(self) -> None:
        self.state = ZygoteState.STOPPED
        if self._restarting is not None:
            self._restarting.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            if self._pidfd is not None:
                loop.remove_reader(self._pidfd)
            if self._sock is not None:
                loop.remove_reader(self._sock.fileno())
                loop.remove_writer(self._sock.fileno())
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._sock = None
        if self._zygote is not None:
            self._zygote.discard()  # EOF: the zygote kills every slot it made, then exits
