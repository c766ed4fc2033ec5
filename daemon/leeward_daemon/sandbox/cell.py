"""One cell of Python in a namespace: a one-shot job's code run as `python -c` runs it,
or (display) as a notebook cell runs it. A plain library: it imports nothing of the
daemon, so it runs and is tested in a plain process as in a sandbox.

The caller owns the namespace (one per job, or one per session, kept between cells)
and the process's end (runner.py): a cell never joins threads or runs atexit handlers.
"""
from __future__ import annotations

import io
import sys
import traceback
import types
from dataclasses import dataclass, field


@dataclass
class CellOutcome:
    exit_code: int  # 0, or what `python -c` would exit with
    error: dict | None  # the uncaught exception: {name, value, traceback}
    results: list[dict] = field(default_factory=list)  # [{main, data: {mime: value}}]
    results_truncated: bool = False


def new_main_namespace() -> dict:
    """Fresh globals of a new `__main__` module, which becomes sys.modules["__main__"]
    (pickle and `if __name__ == "__main__"` rely on it)."""
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    return main.__dict__


def run_cell(code: str, namespace: dict, *, display: bool, filename: str) -> CellOutcome:
    """Runs `code` in `namespace`. An uncaught exception is printed to stderr, as the
    interpreter prints it, and reported; SystemExit sets the exit code instead."""
    try:
        exec(compile(code, filename, "exec"), namespace)
    except SystemExit as exc:
        return CellOutcome(_system_exit_code(exc), None)
    except BaseException as exc:  # the job's own failure, reported like the interpreter would
        return CellOutcome(1, _report(exc, filename))
    return CellOutcome(0, None)


def _report(exc: BaseException, filename: str) -> dict:
    tb = "".join(traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__, filename)))
    safe_write(sys.stderr, tb)
    return {"name": type(exc).__name__, "value": _text(exc), "traceback": tb}


def _system_exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of SystemExit's code: None is 0, an int (a bool too)
    is itself, or -1 when it does not fit a C long; anything else is printed and is 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return int(exc.code) if -(1 << 63) <= exc.code < (1 << 63) else -1
    safe_write(sys.stderr, f"{exc.code}\n")
    return 1


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a job's __str__ may raise anything
        return f"<unprintable {type(exc).__name__} object>"


def _user_frames(tb: types.TracebackType | None, filename: str) -> types.TracebackType | None:
    """Drop leeward's own frames so the traceback starts in the cell's code."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def safe_write(stream: io.TextIOBase, text: str) -> None:
    try:
        stream.write(text)
    except (OSError, ValueError):
        pass  # stderr closed by the job or cut by the output cap
