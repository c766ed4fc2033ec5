"""A session's slot once open: every layer is in force (applied once, at open), and the
process serves its daemon's messages one at a time until the daemon kills it: a Cell
runs in the one namespace the session keeps (globals and imports persist), or runs its
program as a child (same workdir, environment and /tmp as the Python cells), a FileOp is
done here, under this process's own Landlock and seccomp (files.py).

Per-cell output is delimited by the pipes themselves: each Cell brings fresh stdout
and stderr write ends, put on fds 1 and 2 for the cell only; between cells fds 1 and 2
are this process's holding pipes, so a background thread's later output waits there
and goes out first with the next cell, never into a finished cell's reply.
"""
from __future__ import annotations

import os
import signal
import socket
import sys

from ..errors import ChannelClosed, MalformedMessage
from ..ipc import channel, messages
from ..isolation import workspace
from . import cell, files, rich_output, runner


class _HoldingPipes:
    """fds 1 and 2 between cells: pipes only this process reads."""

    def __init__(self) -> None:
        self._pipes = [os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK) for _ in (1, 2)]
        for read_end, write_end in self._pipes:
            os.set_blocking(write_end, True)  # a writer between cells waits, it never loses output

    def install(self) -> None:
        _flush()
        for target, (_, write_end) in zip((1, 2), self._pipes):
            os.dup2(write_end, target)

    def drain(self) -> None:
        """What was written between cells, onto the cell's own fds 1 and 2."""
        for target, (read_end, _) in zip((1, 2), self._pipes):
            while True:
                try:
                    chunk = os.read(read_end, 1 << 16)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                try:
                    os.write(target, chunk)
                except OSError:
                    break  # the cell's pipe is past its cap: the rest is dropped, as in one-shot


class _ProgramGroups:
    """The process groups of the argv cells run so far. A program's background children
    outlive it and, orphaned, become this process's children: each would stay a zombie
    holding one of the session's pids for good unless reaped here. Only these groups: a
    Python cell's own subprocesses are in this process's group, theirs to wait for."""

    def __init__(self) -> None:
        self._groups: set[int] = set()

    def add(self, pgid: int) -> None:
        self._groups.add(pgid)

    def reap(self) -> None:
        for pgid in list(self._groups):
            try:
                while os.waitpid(-pgid, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                self._groups.discard(pgid)  # nothing of that group is left to wait for


def serve(ctl: socket.socket) -> None:
    """Never returns: the daemon ends a session by killing its sandbox."""
    holding = _HoldingPipes()
    holding.install()  # the open's output pipes close here: the daemon sees their EOF
    namespace = cell.new_main_namespace()
    programs = _ProgramGroups()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a cell's timeout interrupts only a cell
    while True:
        try:
            wire, fds = channel.recv(ctl)
            said = messages.from_wire(wire, messages.Cell, messages.FileOp)
        except (ChannelClosed, MalformedMessage, OSError):
            os._exit(0)
        if isinstance(said, messages.Cell):
            programs.reap()  # what earlier programs left behind and has ended since
            reply = _cell(said.run, fds, holding, namespace, programs)
        else:
            for fd in fds:
                os.close(fd)
            reply = files.serve(said)
        try:
            channel.send(ctl, reply.to_wire())
        except OSError:
            os._exit(0)


def _cell(run, fds: list[int], holding: _HoldingPipes, namespace: dict,
          programs: _ProgramGroups) -> messages.CellResult:
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return messages.CellResult(1, messages.ExceptionReport("LeewardError", "the cell's output pipes are missing", ""))
    _flush()
    for target, fd in zip((1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    holding.drain()
    workspace.deliver(run)
    if run.argv:  # a program, as a child: a timed-out cell's interrupt is passed on to it
        outcome = cell.CellOutcome(runner.run_argv(run, interruptible=True, started=programs.add), error=None)
        return _finish(messages.CellResult(outcome.exit_code, None, rich_output.report(run, outcome)), holding)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        outcome = runner.run_cell(run, namespace)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        result = messages.CellResult(outcome.exit_code, runner.exception_report(outcome.error),
                                     rich_output.report(run, outcome))
    except KeyboardInterrupt:  # the interrupt came as the cell ended: it still was the cell's
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        result = messages.CellResult(1, messages.ExceptionReport("KeyboardInterrupt", "", ""))
    return _finish(result, holding)


def _finish(result: messages.CellResult, holding: _HoldingPipes) -> messages.CellResult:
    holding.install()  # the cell's pipes close here (unless its own children still hold them)
    return result


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
