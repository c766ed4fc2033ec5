"""leeward: run untrusted Python in a single-use, namespace-isolated sandbox.

    from leeward import Leeward

    with Leeward() as sandbox:
        result = sandbox.execute("print(sum(range(100)))")
        print(result.stdout)  # "4950\n"

A ctypes binding over libleeward.so, the C ABI of include/leeward.h.
"""
from libleeward.abi import VERSION as __version__  # include/leeward.h's LEEWARD_VERSION

from ._client import ExecutionResult, Leeward, Mount, parse_size
from .errors import DaemonBusy, DaemonUnavailable, InvalidRequest, LeewardError, LibraryNotFound, SandboxError, UntrustedSocket

__all__ = [
    "DaemonUnavailable",
    "ExecutionResult",
    "InvalidRequest",
    "Leeward",
    "LeewardError",
    "LibraryNotFound",
    "Mount",
    "SandboxError",
    "DaemonBusy",
    "UntrustedSocket",
    "parse_size",
]
