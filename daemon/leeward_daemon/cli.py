"""`leeward-daemon`: runs the daemon in the foreground until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from . import config as config_module
from .limits import LimitsUnavailable
from .server import DaemonAlreadyRunning, Server


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="leeward-daemon", description="Run the leeward sandbox daemon.")
    parser.add_argument("--socket", help="Unix socket path (default: $LEEWARD_SOCKET, "
                        "/run/leeward/leeward.sock for root, $XDG_RUNTIME_DIR/leeward.sock otherwise)")
    parser.add_argument("--workers", type=int, help="idle sandboxes kept ready (default 4)")
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument("--allow-path", action="append", dest="allowed_paths",
                        help="host directory jobs may mount (repeatable)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(cfg: config_module.Config) -> None:
    server = Server(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"leeward daemon ready on {cfg.socket_path}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_module.load(args.config, socket_path=args.socket, workers=args.workers,
                                 allowed_paths=args.allowed_paths)
        asyncio.run(serve(cfg))
    except (config_module.ConfigError, DaemonAlreadyRunning, LimitsUnavailable) as exc:
        print(f"leeward-daemon: {exc}", file=sys.stderr)
        return 2
    return 0
