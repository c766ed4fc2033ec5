"""leeward: run untrusted Python in a single-use, namespace-isolated sandbox.

    from leeward import Leeward

    with Leeward() as sandbox:
        result = sandbox.execute("print(sum(range(100)))")
        print(result.stdout)  # "4950\n"

        with sandbox.session() as s:  # one live sandbox: state persists between cells
            s.run("x = 1")
            print(s.run("x + 1").text)  # "2"

    with leeward.connect() as sandbox:  # as Leeward(), starting a per-user daemon if none answers
        ...

A ctypes binding over libleeward.so, the C ABI of include/leeward.h.
"""
from libleeward.abi import VERSION as __version__  # include/leeward.h's LEEWARD_VERSION

from ._autostart import connect
from ._client import Leeward, Mount, parse_size
from ._results import DisplayResult, ExecutionResult, FileContent, FileEntry, SessionState, SessionSummary
from ._session import Session, SessionFiles
from ._streaming import Event, Execution
from .errors import (
    DaemonBusy,
    DaemonUnavailable,
    InvalidRequest,
    LeewardError,
    LibraryNotFound,
    SandboxError,
    SessionBusy,
    SessionEnded,
    SessionError,
    SessionLimit,
    SessionNotFound,
    UntrustedSocket,
)

__all__ = [
    "CodeInterpreter",
    "DaemonBusy",
    "DaemonUnavailable",
    "DisplayResult",
    "Event",
    "Execution",
    "ExecutionResult",
    "FileContent",
    "FileEntry",
    "InvalidRequest",
    "Leeward",
    "LeewardError",
    "LibraryNotFound",
    "Mount",
    "SandboxError",
    "Session",
    "SessionBusy",
    "SessionEnded",
    "SessionError",
    "SessionFiles",
    "SessionLimit",
    "SessionNotFound",
    "SessionState",
    "SessionSummary",
    "UntrustedSocket",
    "connect",
    "parse_size",
]


def __getattr__(name: str):
    # Imported on first use, so `import leeward` never imports an integration.
    if name == "CodeInterpreter":
        from .integrations.code_interpreter import CodeInterpreter

        return CodeInterpreter
    raise AttributeError(f"module 'leeward' has no attribute {name!r}")
