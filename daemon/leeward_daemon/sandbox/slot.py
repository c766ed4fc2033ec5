"""One sandbox slot: pid 1 of its namespaces. Prepares the isolation layers, says
ready, takes its job (the request, applied once, and its first run), applies the job
layers and runs its job: a one-shot job's one run, after which the slot exits (single
use), and with it every process of the sandbox; or a session's cells and file requests
(session.py) until the daemon kills it."""
from __future__ import annotations

import os
import signal
import socket
import time

from .. import linux
from ..errors import MalformedMessage
from ..ipc import channel, messages
from ..isolation import order, workspace
from ..isolation.layer import SlotContext
from ..model import Run, SandboxSpec
from . import cell, rich_output, runner, session

EXIT_SETUP_FAILED = 70


def run(spec: SandboxSpec, ctl: socket.socket, stdout_fd: int, stderr_fd: int) -> None:
    slot = SlotContext(spec, ctl.fileno(), stdout_fd, stderr_fd)
    try:
        signal.set_wakeup_fd(-1)  # inherited from the zygote; its pipe is about to close
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        linux.close_fds_except({0, 1, 2, ctl.fileno(), stdout_fd, stderr_fd})
        order.prepare_slot(slot)
        channel.send(ctl, messages.Ready().to_wire())
        wire, _ = channel.recv(ctl)
    except Exception as exc:
        _fail(ctl, exc)
    try:
        job = messages.from_wire(wire, messages.Job)
    except MalformedMessage:
        os._exit(0)  # not a job: the daemon is discarding this slot
    _restore_priority()
    try:
        order.enter_job(slot, job.request)
    except Exception as exc:  # isolation failed: never run the code
        _fail(ctl, exc)
    if job.session:
        _open_session(slot, job.run, ctl)
        session.serve(ctl)
    os._exit(_run(slot, job.run, ctl) & 0xFF)


def _open_session(slot: SlotContext, run: Run, ctl: socket.socket) -> None:
    """A session's open: its files delivered and "started" sent (with the seccomp
    listener), no code run; its cells come next (session.py)."""
    try:
        workspace.deliver(run)
        _hand_over_listener(slot, ctl)
    except Exception as exc:
        _fail(ctl, exc)


def _run(slot: SlotContext, run: Run, ctl: socket.socket) -> int:
    """One run: its inputs, "started" (with the seccomp listener the first time), the
    code or program, then the result. Returns the exit status pid 1 ends with: the
    code's, or the program's as a shell reports it."""
    try:
        workspace.deliver(run)
        _hand_over_listener(slot, ctl)
    except Exception as exc:
        _fail(ctl, exc)
    outcome = _outcome(run)
    # After the interpreter's shutdown: files written by atexit handlers are in.
    result = messages.Result(runner.exception_report(outcome.error), rich_output.report(run, outcome))
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
        channel.send(ctl, result.to_wire())
    except OSError:
        pass  # the job closed or broke the channel: its exit status still tells
    return outcome.exit_code


def _outcome(run: Run) -> cell.CellOutcome:
    """The run's code, or its program, to its end."""
    if run.argv:
        return cell.CellOutcome(runner.run_argv(run), error=None)
    return runner.run_python(run)


def _hand_over_listener(slot: SlotContext, ctl: socket.socket) -> None:
    """Says "started", with the seccomp listener. The listener goes to the supervisor;
    our copy must be gone before the code runs, or the job could answer its own
    notifications."""
    listener, slot.listener = slot.listener, None
    channel.send(ctl, messages.Started(time.monotonic()).to_wire(), [listener] if listener is not None else None)
    if listener is not None:
        os.close(listener)


def _restore_priority() -> None:
    """Slots are built at the zygote's background priority; the job runs at normal
    priority when the slot may raise it (root), else it stays below the daemon."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        pass


def _fail(ctl: socket.socket, exc: Exception) -> None:
    """Setup failed before any code ran: say so, and exit."""
    try:
        channel.send(ctl, messages.Failed(f"{type(exc).__name__}: {exc}").to_wire())
    except OSError:
        pass
    os._exit(EXIT_SETUP_FAILED)
