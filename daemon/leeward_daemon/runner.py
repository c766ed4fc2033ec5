"""The daemon's event loop from start to shutdown (imported by cli.main only once the
zygote is already starting, see zygote_launch.py)."""
from __future__ import annotations

import asyncio
import logging
import signal
import socket

from . import config as config_module
from .errors import StartupError
from .frontdoor.server import Server
from .ops import systemd
from .pool.zygote_launch import LaunchedZygote

log = logging.getLogger("leeward_daemon")


def run(cfg: config_module.Config, listen_socket: socket.socket | None, zygote: LaunchedZygote) -> None:
    """Serves until SIGTERM/SIGINT; raises a StartupError when it cannot start."""
    asyncio.run(serve(cfg, listen_socket, zygote))


async def serve(cfg: config_module.Config, listen_socket: socket.socket | None,
                zygote: LaunchedZygote | None = None) -> None:
    server = Server(cfg, listen_socket, zygote)
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await server.start()
    systemd.notify("READY=1")
    print(f"leeward daemon ready on {cfg.socket_path}", flush=True)
    await stop.wait()
    systemd.notify("STOPPING=1")
    log.info("signal received: shutting down (grace %gs; signal again to kill running jobs now)",
             cfg.shutdown_grace_secs)
    await server.shutdown(hurry)
