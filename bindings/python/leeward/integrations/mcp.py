"""`leeward-mcp`: leeward as an MCP server, so any MCP client (a desktop app, an agent
framework) can run code in leeward sandboxes.

    leeward-mcp                          # stdio: what a desktop MCP client launches
    leeward-mcp http [--host H] [--port N]   # streamable HTTP on http://127.0.0.1:8765/mcp
    leeward-mcp --socket PATH ...        # a given daemon (no autostart)

Tools: run_python, run_command, session_open / session_close / session_list, file_read /
file_write / file_list (see mcp_tools). With no --socket, a per-user daemon is started
when none answers, as the `leeward` CLI does. Needs `pip install leeward[mcp]`.

In-process (tests, embedding): `build_server(socket_path)` returns the MCPServer.
"""
from __future__ import annotations

import argparse
import ipaddress
import sys

from mcp.server.mcpserver import MCPServer

from leeward import connect

from .mcp_tools import LeewardTools

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
HTTP_PATH = "/mcp"

INSTRUCTIONS = """\
leeward runs Python (and programs) in isolated, throw-away Linux sandboxes: no network,
no host files, limited memory and time. run_python runs code and returns its output, the
value of its last expression, and matplotlib figures as images; errors come back with
their traceback. For work in several steps, session_open gives a session_id: pass it to
run_python, run_command and the file tools to keep variables, imports and files, and call
session_close at the end. The working directory is /tmp."""


def build_server(socket_path: str | None = None, *, autostart: bool = True) -> MCPServer:
    """The MCP server, its tools talking to the daemon on socket_path (None: the per-user
    default, started when none answers unless autostart is False)."""
    # WARNING: a user's code failing is routine, not worth a log line per call.
    server = MCPServer("leeward", instructions=INSTRUCTIONS, log_level="WARNING")
    LeewardTools(_connector(socket_path, autostart)).register(server)
    return server


def _connector(socket_path: str | None, autostart: bool):
    # Connected per call: with autostart, a daemon that went away meanwhile is started again.
    return lambda: connect(socket_path, autostart=autostart)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="leeward-mcp", description="leeward as an MCP server (stdio by default).")
    parser.add_argument("--socket", help="daemon socket (default: $LEEWARD_SOCKET or the per-user one, "
                                         "started when none answers)")
    parser.add_argument("--no-autostart", action="store_true", help="fail instead of starting a daemon")
    transports = parser.add_subparsers(dest="transport", metavar="TRANSPORT")
    transports.add_parser("stdio", help="serve MCP on stdin/stdout (the default)")
    http = transports.add_parser("http", help=f"serve streamable HTTP at http://HOST:PORT{HTTP_PATH}")
    http.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    http.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    server = build_server(args.socket, autostart=not args.no_autostart)
    if args.transport == "http":
        if not _is_loopback(args.host):
            # No authentication: whoever reaches the port runs code as this user.
            print(f"leeward-mcp: WARNING: serving on {args.host}: anyone who can reach it can run code "
                  f"in your sandboxes and use your sessions", file=sys.stderr)
        server.run(transport="streamable-http", host=args.host, port=args.port, streamable_http_path=HTTP_PATH)
    else:
        server.run()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
