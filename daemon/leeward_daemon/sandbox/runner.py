"""The exec step, inside the locked-down sandbox: the run's code as `__main__` in fresh
globals, ended as `python -c` ends (threads joined, atexit handlers run), with its exit
status and uncaught exception as the interpreter would report them.

Runs in the slot process (pid 1 of the sandbox's pid namespace) once every layer is in
force; the slot (slot.py) reports the result.
"""
from __future__ import annotations

import atexit
import io
import sys
import threading
import traceback
import types

from ..ipc.messages import FIELD_MAX, ExceptionReport

CODE_FILENAME = "<leeward>"


def run_python(code: str) -> tuple[int, ExceptionReport | None]:
    """Returns (exit_code, uncaught exception), like `python -c` would."""
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    exit_code, error = 0, None
    try:
        exec(compile(code, CODE_FILENAME, "exec"), main.__dict__)
    except SystemExit as exc:
        exit_code = _system_exit_code(exc)
    except BaseException as exc:  # the job's own failure, reported like the interpreter would
        exit_code = 1
        tb = "".join(traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__)))
        error = ExceptionReport(_bounded(type(exc).__name__), _bounded(_text(exc)), _bounded(tb))
        _safe_write(sys.stderr, tb)
    _interpreter_shutdown()
    for stream in (sys.stdout, sys.stderr):
        _safe_flush(stream)
    return exit_code, error


def _interpreter_shutdown() -> None:
    """What Py_FinalizeEx does before exit, as `python -c` would: wait for non-daemon
    threads, then run atexit handlers (multiprocessing finalizes its pools and unlinks
    its /dev/shm semaphores there; logging flushes). The process ends with os._exit, so
    nothing else would run them. Errors are the job's own: printed, not fatal."""
    try:
        threading._shutdown()
    except BaseException as exc:  # e.g. KeyboardInterrupt raised in a joined thread
        _safe_write(sys.stderr, "".join(traceback.format_exception(exc)))
    atexit._run_exitfuncs()  # prints a handler's exception itself, like the interpreter


def _system_exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of SystemExit's code: None is 0, an int (a bool too)
    is itself, or -1 when it does not fit a C long; anything else is printed and is 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return int(exc.code) if -(1 << 63) <= exc.code < (1 << 63) else -1
    _safe_write(sys.stderr, f"{exc.code}\n")
    return 1


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a job's __str__ may raise anything
        return f"<unprintable {type(exc).__name__} object>"


def _bounded(text: str) -> str:
    """Each field within what the daemon keeps, so the report fits one channel frame."""
    return text[:FIELD_MAX]


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop leeward's own frames so the traceback starts in the job's code."""
    while tb is not None and tb.tb_frame.f_code.co_filename != CODE_FILENAME:
        tb = tb.tb_next
    return tb


def _safe_write(stream: io.TextIOBase, text: str) -> None:
    try:
        stream.write(text)
    except (OSError, ValueError):
        pass  # stderr closed by the job or cut by the output cap


def _safe_flush(stream: io.TextIOBase) -> None:
    try:
        stream.flush()
    except (OSError, ValueError):
        pass
