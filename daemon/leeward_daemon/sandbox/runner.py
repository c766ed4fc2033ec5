"""The exec step, inside the locked-down sandbox: the run's code as `__main__` in fresh
globals, ended as `python -c` ends (threads joined, atexit handlers run), with its exit
status and uncaught exception as the interpreter would report them.

Runs in the slot process (pid 1 of the sandbox's pid namespace) once every layer is in
force; the slot (slot.py) reports the result. How the code itself runs is cell.py's.
"""
from __future__ import annotations

import atexit
import io
import sys
import threading
import traceback

from ..ipc.messages import FIELD_MAX, ExceptionReport
from ..model import Run
from . import cell

CODE_FILENAME = "<leeward>"


def run_python(run: Run) -> cell.CellOutcome:
    """The run's code to its end as `python -c` would end it (exit code, uncaught
    exception), with its display results when the run asked for them."""
    outcome = run_cell(run, cell.new_main_namespace())
    _interpreter_shutdown()
    for stream in (sys.stdout, sys.stderr):
        _safe_flush(stream)
    return outcome


def run_cell(run: Run, namespace: dict) -> cell.CellOutcome:
    """The run's code in `namespace`, as a notebook cell if it asked for `display`."""
    return cell.run_cell(run.code, namespace, display=run.display, filename=CODE_FILENAME,
                         results_max=run.results_max, repr_max=run.repr_max)


def exception_report(error: dict | None) -> ExceptionReport | None:
    """A cell's uncaught exception as the slot sends it: each field within what the
    daemon keeps, so the report fits one channel frame."""
    if error is None:
        return None
    return ExceptionReport(*(error[key][:FIELD_MAX] for key in ("name", "value", "traceback")))


def _interpreter_shutdown() -> None:
    """What Py_FinalizeEx does before exit, as `python -c` would: wait for non-daemon
    threads, then run atexit handlers (multiprocessing finalizes its pools and unlinks
    its /dev/shm semaphores there; logging flushes). The process ends with os._exit, so
    nothing else would run them. Errors are the job's own: printed, not fatal."""
    try:
        threading._shutdown()
    except BaseException as exc:  # e.g. KeyboardInterrupt raised in a joined thread
        cell.safe_write(sys.stderr, "".join(traceback.format_exception(exc)))
    atexit._run_exitfuncs()  # prints a handler's exception itself, like the interpreter


def _safe_flush(stream: io.TextIOBase) -> None:
    try:
        stream.flush()
    except (OSError, ValueError):
        pass
