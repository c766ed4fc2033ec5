"""Where the daemon's socket lives by default; shared by the daemon and every client."""
from __future__ import annotations

import os

SOCKET_ENV = "LEEWARD_SOCKET"


def default_socket_path() -> str:
    """`$LEEWARD_SOCKET`, else /run/leeward/leeward.sock for root, else
    `$XDG_RUNTIME_DIR/leeward.sock`, else a private per-user dir under /tmp."""
    explicit = os.environ.get(SOCKET_ENV)
    if explicit:
        return explicit
    if os.geteuid() == 0:
        return "/run/leeward/leeward.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "leeward.sock")
    return f"/tmp/leeward-{os.geteuid()}/leeward.sock"
