"""Daemon side of the zygote: starts it by a fresh exec, feeds it its configuration,
asks it for slots and receives them (pidfd, control socket, output pipes)."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Callable

from . import channel
from .config import Config
from .isolation import order
from .isolation.rootfs import SYSTEM_PATHS
from .zygote_launch import LaunchedZygote, launch

log = logging.getLogger(__name__)
START_TIMEOUT_SECS = 60.0  # preloading pandas on a cold cache takes a while


class ZygoteError(Exception):
    """The zygote could not be started or went away."""


class IsolationUnavailable(ZygoteError):
    """A layer the configuration requires is missing on this kernel (fail closed)."""


def isolation_in_force(hello: dict, optional_layers: list[str]) -> dict:
    """The zygote's findings as Status reports them; raises IsolationUnavailable, naming
    the layer and the way out, when a missing layer is not in `optional_layers`."""
    landlock_abi = int(hello.get("landlock_abi", 0))
    notify = bool(hello.get("seccomp_notify"))
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
    }


@dataclass
class SlotFds:
    slot_id: int
    pid: int
    pidfd: int
    control: socket.socket
    stdout: int
    stderr: int


def python_paths() -> list[str]:
    """Host dirs the sandbox's Python needs beyond the system dirs: prefixes and sys.path."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.update(p for p in sys.path if p)
    dirs = sorted({os.path.realpath(p) for p in candidates} | {os.path.abspath(p) for p in candidates})
    # "/" shows up as sys.path[0] of a `python -m` started in "/": never bind the host root.
    dirs = [d for d in dirs if d != "/" and os.path.isdir(d) and not _under(d, SYSTEM_PATHS)]
    return [d for d in dirs if not _under(d, [o for o in dirs if o != d])]


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


class ZygoteLink:
    def __init__(self, config: Config, limits_backend: str, on_slot: Callable[[SlotFds], None],
                 on_exit: Callable[[int, int], None], on_spawn_failed: Callable[[str], None]):
        self._config = config
        self.limits_backend = limits_backend
        self._on_slot, self._on_exit, self._on_spawn_failed = on_slot, on_exit, on_spawn_failed
        self._zygote: LaunchedZygote | None = None
        self._sock: socket.socket | None = None  # the zygote's control socket while in use
        self.preloaded: list[str] = []
        self.isolation: dict = {}  # layers in force, Landlock ABI, seccomp mode (see start())

    async def start(self, launched: LaunchedZygote | None = None) -> None:
        """Configures the zygote (`launched` early by the caller, else started now) and
        waits for its hello."""
        self._zygote = launched or launch()
        ours = self._sock = self._zygote.control
        channel.send(ours, {
            "preload": self._config.preload,
            "privileged": os.geteuid() == 0,
            "python_paths": python_paths(),
            "tmp_size": self._config.tmp_size,
            "uid_base": self._config.sandbox_uid_base,
            "uid_count": self._config.sandbox_uid_count,
            "limits_backend": self.limits_backend,
            "pids_max": self._config.pids_max,
        })
        loop = asyncio.get_running_loop()
        hello = await asyncio.wait_for(loop.run_in_executor(None, self._recv_blocking), START_TIMEOUT_SECS)
        if hello.get("op") != "hello":
            raise ZygoteError(f"unexpected first message from zygote: {hello!r}")
        if hello.get("error"):
            raise IsolationUnavailable(f"the zygote cannot prepare the isolation layers: {hello['error']}")
        self.isolation = isolation_in_force(hello, self._config.optional_layers)
        self.preloaded = hello.get("preloaded", [])
        ours.setblocking(False)
        loop.add_reader(ours.fileno(), self._on_readable)

    def _recv_blocking(self) -> dict:
        try:
            message, _ = channel.recv_packet(self._sock)
        except (channel.ChannelClosed, OSError) as exc:
            raise ZygoteError(f"zygote failed to start: {exc}") from None
        return message

    def spawn(self, count: int) -> None:
        if count > 0 and self._sock is not None:
            try:
                channel.send(self._sock, {"op": "spawn", "count": count})
            except OSError as exc:
                log.error("cannot ask the zygote for slots: %s", exc)

    def _on_readable(self) -> None:
        try:
            message, fds = channel.recv_packet(self._sock)
        except BlockingIOError:
            return
        except (channel.ChannelClosed, OSError) as exc:
            log.error("zygote channel closed: %s", exc)
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._on_spawn_failed(f"zygote exited: {exc}")
            return
        op = message.get("op")
        if op == "slot" and len(fds) == 4:
            pidfd, control, out_r, err_r = fds
            self._on_slot(SlotFds(message["id"], message["pid"], pidfd,
                                  socket.socket(fileno=control), out_r, err_r))
        elif op == "exited":
            self._on_exit(message["pid"], message["status"])
        elif op == "spawn_failed":
            self._on_spawn_failed(message.get("error", "unknown"))
        else:
            for fd in fds:
                os.close(fd)

    def stop(self) -> None:
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except RuntimeError:
                pass
            self._sock = None
        if self._zygote is not None:
            self._zygote.discard()  # EOF: the zygote kills every slot it made, then exits
