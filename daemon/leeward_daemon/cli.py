"""`leeward-daemon`: runs the daemon in the foreground until SIGTERM/SIGINT.

The first SIGTERM/SIGINT drains (running jobs get `shutdown_grace_secs`); a second one
kills what still runs at once. Exit status: 0 after a shutdown, 2 when the daemon
cannot start (bad configuration, a live daemon on the socket, a missing layer).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from . import config as config_module
from .errors import StartupError
from .ops import logsetup, systemd
from .pool import sandbox_python, zygote_launch
from .isolation import subids

log = logging.getLogger("leeward_daemon")
EXIT_START_FAILED = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="leeward-daemon", description="Run the leeward sandbox daemon.",
        epilog="Configuration, lowest precedence first: defaults, the TOML file (--config, else "
               "$XDG_CONFIG_HOME/leeward/config.toml, else /etc/leeward/config.toml), LEEWARD_<KEY> "
               "environment variables, then these options.")
    parser.add_argument("--socket", help="Unix socket path (default: $LEEWARD_SOCKET, "
                        "/run/leeward/leeward.sock for root, $XDG_RUNTIME_DIR/leeward.sock otherwise)")
    parser.add_argument("--workers", type=int, help="idle sandboxes kept ready (default 4)")
    parser.add_argument("--config", help="TOML configuration file (must exist)")
    parser.add_argument("--allow-path", action="append", dest="allowed_paths",
                        help="host directory jobs may mount (repeatable; replaces the file's list)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus endpoint port, 0 = off (default 9090)")
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING or ERROR")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="set any config key, VALUE written as for LEEWARD_<KEY> (repeatable)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration and where each value came from, then exit")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace, environ) -> config_module.Config:
    settings = {}
    for item in args.settings:
        key, sep, text = item.partition("=")
        if not sep or key not in config_module.field_types():
            raise config_module.ConfigError(f"--set {item!r}: expected KEY=VALUE with a config key")
        settings[key] = config_module.parse_text(key, text, origin=f"--set {key}")
    named = {"socket_path": args.socket, "workers": args.workers, "allowed_paths": args.allowed_paths,
             "metrics_port": args.metrics_port, "log_level": args.log_level}
    return config_module.load(config_module.find_file(args.config, environ), environ=environ,
                              **{**settings, **{k: v for k, v in named.items() if v is not None}})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:  # what `leeward doctor` runs: the client never imports the daemon
        from .ops import doctor
        return doctor.main(argv[1:])
    args = parse_args(argv)
    # Taken (and removed from the environment) first, so nothing started later sees it.
    try:
        listen_socket = systemd.listen_socket()
    except systemd.ActivationError as exc:
        print(f"leeward-daemon: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    try:
        cfg = load_config(args, os.environ)
    except config_module.ConfigError as exc:
        print(f"leeward-daemon: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    if args.print_config:
        print(config_module.to_toml(cfg), end="")
        return 0
    logsetup.configure(cfg.log_level)
    for name in config_module.env_values(os.environ)[1]:
        log.warning("ignoring %s: %s is not a config key", name, name[len(config_module.ENV_PREFIX):].lower())
    try:
        # Rule 1 now; the rest is checked before the zygote is configured (fail closed).
        python = sandbox_python.Resolving(cfg.python)
    except StartupError as exc:
        print(f"leeward-daemon: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    # The zygote first: its interpreter start-up and imports then overlap the daemon's
    # own (asyncio, the server, prometheus-client), which is why runner is imported here.
    zygote = zygote_launch.launch(python)
    is_warning, notice = subids.startup_notice(os.geteuid(), cfg.sandbox_uid_base, cfg.sandbox_uid_count)
    log.log(logging.WARNING if is_warning else logging.INFO, "%s", notice)
    try:
        from . import runner
        try:
            runner.run(cfg, listen_socket, zygote)
        except StartupError as exc:
            print(f"leeward-daemon: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
    finally:
        zygote.discard()
    return 0
