"""Inside the sandbox: set up the workspace, run the job's code as `__main__`, report.

Runs in the slot process (pid 1 of the sandbox's pid namespace) after it received its
job. Never returns: the process exits, and with it every process of the sandbox.
"""
from __future__ import annotations

import atexit
import io
import os
import socket
import sys
import threading
import traceback
import types

from ..ipc import channel
from ..isolation import landlock, order
from ..model import WORKDIR, Job, SandboxSpec

# The environment a job always gets; the request's `env` is laid over it.
SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "TMPDIR": WORKDIR,
    "LANG": "C.UTF-8",
    "USER": "sandbox",
}
CODE_FILENAME = "<leeward>"
EXCEPTION_FIELD_MAX = 65536  # characters; the daemon cuts there too (supervisor.FIELD_MAX)


def run_job(spec: SandboxSpec, job: Job, ruleset: landlock.Ruleset | None, ctl: socket.socket,
            stdout_fd: int, stderr_fd: int) -> None:
    try:
        listener = order.enter_job(spec, job, ruleset, lambda: _workspace(job, stdout_fd, stderr_fd), ctl.fileno())
        # The listener goes to the supervisor; our copy must be gone before the code
        # runs, or the job could answer its own notifications.
        channel.send(ctl, {"op": "started"}, [listener] if listener is not None else None)
        if listener is not None:
            os.close(listener)
    except Exception as exc:  # isolation failed: never run the code
        channel.send(ctl, {"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        os._exit(70)
    exit_code, error = _run_code(job.code)
    # Our ends of the output pipes go before the result does: with both at EOF and the
    # result in, the daemon replies as soon as the kernel has fixed our exit status,
    # before it has torn down this process's (large, zygote-inherited) address space.
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass  # the job closed it itself
    # Only the exception is ours to tell: the daemon takes the exit status from the
    # kernel and measures time, CPU and memory itself.
    try:
        channel.send(ctl, {"op": "result", "error": error})
    except OSError:
        pass  # the job closed or broke the channel: its exit status still tells
    os._exit(exit_code & 0xFF)


def _workspace(job: Job, stdout_fd: int, stderr_fd: int) -> None:
    os.chdir(WORKDIR)
    for name, data in job.files.items():
        if os.path.dirname(name):
            os.makedirs(os.path.dirname(name), exist_ok=True)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    stdin_fd = os.memfd_create("stdin", 0)
    os.write(stdin_fd, job.stdin)
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    for fd, target in ((stdin_fd, 0), (stdout_fd, 1), (stderr_fd, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    os.environ.clear()
    os.environ.update(SAFE_ENV)
    os.environ.update(job.env)
    sys.argv = ["-c"]
    # `python -c` puts the working directory first on the import path: modules sent
    # with `files=` import, and spawned multiprocessing children inherit the entry.
    # The zygote's own entry (its start-up directory, from `-m`) is no business of the job.
    if sys.path:
        sys.path[0] = ""


def _run_code(code: str) -> tuple[int, dict | None]:
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
        error = {"name": _bounded(type(exc).__name__), "value": _bounded(_text(exc)), "traceback": _bounded(tb)}
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
    return text[:EXCEPTION_FIELD_MAX]


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
