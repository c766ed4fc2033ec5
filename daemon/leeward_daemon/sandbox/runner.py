"""The exec step, inside the locked-down sandbox: the run's code as `__main__` in fresh
globals, ended as `python -c` ends (threads joined, atexit handlers run), with its exit
status and uncaught exception as the interpreter would report them; or the run's
program (`argv`) as a child of this process, to its end.

Runs in the slot process (pid 1 of the sandbox's pid namespace) once every layer is in
force; the slot (slot.py) reports the result. How the code itself runs is cell.py's.

A program is this process's child, not this process: pid 1 must outlive it to collect
its files and report. Pid 1 of a pid namespace cannot die of a signal it did not
handle, so a one-shot slot hands on the program's wait status through its own exit
status, as a shell does: the exit status, or 128 + N for death by signal N. The
daemon still reads that status from the kernel; the program cannot reach pid 1 to
change it: pid 1 makes itself non-dumpable first (no /proc/1/mem, no /proc/1/fd), and
ptrace is refused to every process of the sandbox.
"""
from __future__ import annotations

import atexit
import io
import os
import signal
import sys
import threading
import traceback
from typing import Callable

import prctl

from ..ipc.messages import FIELD_MAX, ExceptionReport
from ..model import Run
from . import cell

CODE_FILENAME = "<leeward>"
# What a shell exits with for a command it could not start (POSIX "Command Search and
# Execution"): not found, or found but not executable.
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126
SIGNAL_EXIT_BASE = 128
# The program starts with every signal at its default and none blocked: this Python
# ignores SIGPIPE and SIGXFSZ, and a session's process ignores SIGINT between cells,
# and ignored signals would stay ignored across execve (`yes | head` would end with an
# EPIPE complaint on stderr instead of quietly).
_DEFAULT_SIGNALS = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


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


def run_argv(run: Run, *, interruptible: bool = False, started: Callable[[int], None] | None = None) -> int:
    """Runs the run's program, on the sandbox's PATH, with this process's stdin, stdout,
    stderr, working directory and environment, in a process group of its own, and
    returns its exit status as a shell reports it (128 + N for death by signal N; 127
    or 126, with a line on stderr, when it cannot be started).

    interruptible (a session's cell): the SIGINT a timed-out cell gets is passed on to
    the program's process group, as a terminal's ^C reaches its foreground job.
    started: told the program's pid, which is also its process group's id."""
    child: list[int] = []
    interrupted = False

    def pass_on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        if child:
            _signal_group(child[0], signal.SIGINT)

    if interruptible:
        signal.signal(signal.SIGINT, pass_on_interrupt)
    else:
        prctl.set_dumpable(False)  # pid 1's exit status is the result: out of the program's reach
    try:
        try:
            child.append(os.posix_spawnp(run.argv[0], list(run.argv), os.environ, setpgroup=0,
                                         setsigdef=_DEFAULT_SIGNALS, setsigmask=()))
        except OSError as exc:
            cell.safe_write(sys.stderr, f"leeward: {run.argv[0]}: {exc.strerror or exc}\n")
            _safe_flush(sys.stderr)
            return EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_EXECUTE
        if started is not None:
            started(child[0])
        if interrupted:  # the interrupt came while the program was being started
            _signal_group(child[0], signal.SIGINT)
        _, status = os.waitpid(child[0], 0)
    finally:
        if interruptible:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return shell_status(status)


def shell_status(wait_status: int) -> int:
    """A wait status as a shell's `$?`: the exit status, or 128 + N for signal N."""
    if os.WIFSIGNALED(wait_status):
        return SIGNAL_EXIT_BASE + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the whole group is gone already


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
