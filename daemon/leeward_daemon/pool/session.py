"""The daemon's side of one session's sandbox: opened once with every layer applied
(the slot's Job with `session`), then one cell or file request at a time over its
control channel, until it ends and its slot is released (killed, box removed).

As for one-shot jobs, nothing the sandbox says is trusted beyond its own cell: the
cell's duration is the daemon's clock, CPU and memory the box's, and a cell's end is
its reply or the sandbox's death. A timed-out or cancelled cell gets SIGINT, then the
sandbox is killed after interrupt_grace_secs.

Accounting per cell: the box's start_job runs before every cell, so `cpu_time_us` is
the cell's and `memory_peak` is the cell's where the backend resets the peak (cgroup
v1; cgroup v2 on kernels whose memory.peak can be reset), else the session's so far.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time

from libleeward.protocol import ExecutionResult

from .. import limits
from ..config import Config
from ..errors import ChannelClosed, MalformedMessage, SandboxFailed
from ..ipc import messages
from ..model import Run, SandboxRequest
from .denials import DenialWatch
from .handle import Slot
from .hooks import CancelSignal, JobHooks, wait_first
from .output import OutputCollector
from .supervisor import result_output

OPEN_TIMEOUT_SECS = 30.0
# After a cell's reply its pipes are at EOF unless a process it started still holds
# them: wait this long for that one, then the cell's output is what came.
OUTPUT_GRACE_SECS = 1.0
FILE_TIMEOUT_SECS = 30.0
FILE_READ_MAX = 8 << 20  # bytes of one FileRead (its frame must fit the slot channel)


class SessionSandbox:
    def __init__(self, slot: Slot, request: SandboxRequest, config: Config):
        self.slot = slot
        self.request = request
        self._config = config
        self._limits = limits.JobLimits(request.memory_limit, request.pids_max)
        self._denials = DenialWatch()
        self.end_reason: str | None = None

    @property
    def alive(self) -> bool:
        return self.end_reason is None

    async def open(self, files: dict[str, bytes]) -> None:
        """Applies every layer once; SandboxFailed (the session never existed) if any fails."""
        slot = self.slot
        for fd in slot.take_outputs():
            os.close(fd)  # the open runs no code: its output pipes have nothing to say
        try:
            slot.box.start_job(self._limits)
        except limits.LimitsError as exc:
            raise SandboxFailed(f"cannot apply the session's limits: {exc}") from None
        slot.channel.allow_frames_up_to(FILE_READ_MAX + (1 << 20))
        try:
            await slot.channel.send(messages.Job(self.request, Run(code="", files=files), session=True).to_wire())
            wire, fds = await asyncio.wait_for(slot.channel.recv(), OPEN_TIMEOUT_SECS)
        except (ChannelClosed, asyncio.TimeoutError) as exc:
            raise SandboxFailed(f"the session's sandbox did not start: {exc or 'timeout'}") from None
        try:
            said = messages.from_wire(wire, messages.Started, messages.Failed)
        except MalformedMessage as exc:
            _close_all(fds)
            raise SandboxFailed(f"the session's sandbox did not start: {exc}") from None
        if isinstance(said, messages.Failed):
            _close_all(fds)
            raise SandboxFailed(f"sandbox setup failed: {said.error}")
        self._denials.attach(fds)

    async def run_cell(self, run: Run, hooks: JobHooks | None = None) -> ExecutionResult:
        """hooks: output sinks fed as it arrives; a cancel event that interrupts the cell."""
        hooks = hooks or JobHooks()
        if hooks.cancelled:
            # Cancelled while it waited its turn: never sent (between cells the sandbox
            # ignores SIGINT, so an interrupt could not stop it).
            return self.never_run(run)
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        err_read, err_write = os.pipe2(os.O_CLOEXEC)
        stdout = OutputCollector(out_read, self._config.stdout_max, hooks.stdout)
        stderr = OutputCollector(err_read, self._config.stderr_max, hooks.stderr)
        denied_before = len(self._denials.names)
        try:
            self.slot.box.start_job(self._limits)  # this cell's peak and CPU from here
        except limits.LimitsError:
            pass  # the previous figures remain: accounting only, the limits are in force
        started = time.monotonic()
        timed_out = cancelled = False
        self.slot.channel.allow_frames_up_to(messages.frame_max(run))
        try:
            await self.slot.channel.send(messages.Cell(run).to_wire(), [out_write, err_write])
        except ChannelClosed:
            pass  # dead: the wait below finds out why
        finally:
            os.close(out_write)
            os.close(err_write)
        reply = await self._reply(messages.CellResult, run.timeout_secs, run, hooks.cancel)
        if reply is _TIMEOUT or reply is _CANCELLED:
            timed_out, cancelled = reply is _TIMEOUT, reply is _CANCELLED
            self._interrupt()
            reply = await self._reply(messages.CellResult, self._config.interrupt_grace_secs, run)
            if reply is _TIMEOUT:
                self.end("timeout" if timed_out else "cancelled")
        ended_at = time.monotonic()
        if not isinstance(reply, messages.CellResult) and self.alive:
            self.end("crashed")
        out = await stdout.collect(OUTPUT_GRACE_SECS)
        err = await stderr.collect(OUTPUT_GRACE_SECS)
        usage = self._usage()
        if usage.oom_killed and self.end_reason == "crashed":
            self.end_reason = "oom"
        return ExecutionResult(
            exit_code=reply.exit_code if isinstance(reply, messages.CellResult) else -signal.SIGKILL,
            stdout=out, stderr=err,
            duration_ms=(ended_at - started) * 1000.0,
            memory_peak=usage.memory_peak, cpu_time_us=usage.cpu_time_us,
            timed_out=timed_out, oom_killed=usage.oom_killed, cancelled=cancelled,
            stdout_truncated=stdout.truncated, stderr_truncated=stderr.truncated,
            limits=self.request.limits_backend,
            denied_syscalls=self._denials.names[denied_before:],
            error=_report(reply.error) if isinstance(reply, messages.CellResult) else None,
            **result_output(run, reply.output if isinstance(reply, messages.CellResult) else messages.RichOutput()),
        )

    def never_run(self, run: Run) -> ExecutionResult:
        """The result of a cell cancelled before it was sent."""
        return ExecutionResult(exit_code=-signal.SIGINT, limits=self.request.limits_backend, cancelled=True,
                               **result_output(run, messages.RichOutput()))

    async def file_op(self, op: messages.FileOp) -> messages.FileReply | None:
        """The sandbox's reply, or None when it died meanwhile (the session ended)."""
        try:
            await self.slot.channel.send(op.to_wire())
        except ChannelClosed:
            pass
        reply = await self._reply(messages.FileReply, FILE_TIMEOUT_SECS)
        if isinstance(reply, messages.FileReply):
            return reply
        if self.alive:
            self.end("crashed")  # a file request never takes that long: the sandbox is wedged
        return None

    def end(self, reason: str) -> None:
        """Ends the session (the first reason stays) and kills its sandbox; the slot is
        released by its owner once no request uses it."""
        if self.end_reason is None:
            self.end_reason = reason
        self.slot.kill()

    def close(self) -> None:
        self._denials.close()

    def _interrupt(self) -> None:
        try:
            signal.pidfd_send_signal(self.slot.pidfd, signal.SIGINT)
        except (ProcessLookupError, OSError):
            pass

    async def _reply(self, kind: type[messages.Message], timeout: float | None, run: Run | None = None,
                     cancel: CancelSignal | None = None):
        """The slot's next message if it is a `kind` (a reply to `run`, if a cell's); None
        when the sandbox died, its channel closed or it said something else; _TIMEOUT
        after `timeout` seconds; _CANCELLED once `cancel` is set."""
        # Futures, not tasks: this wait is on every cell's path.
        receiving = self.slot.channel.receive()
        exited = self.slot.exited()
        await wait_first({receiving, exited}, cancel, timeout or None)
        if not receiving.done():
            receiving.cancel()  # loses no frame: the next receive() gets it
            if exited.done():
                self.note_death()
                return None
            return _CANCELLED if cancel is not None and cancel.is_set() else _TIMEOUT
        try:
            wire, fds = receiving.result()
        except ChannelClosed:
            self.note_death()
            return None
        _close_all(fds)
        try:
            return messages.from_wire(wire, kind, answering=run)
        except MalformedMessage:
            return None

    def note_death(self) -> None:
        """The sandbox died by itself: out of memory, or crashed."""
        if self.alive:
            self.end("oom" if self._usage().oom_killed else "crashed")

    def _usage(self) -> limits.Usage:
        try:
            return self.slot.box.usage()
        except limits.LimitsError:
            return limits.Usage(memory_peak=0, cpu_time_us=0, oom_killed=False)


_TIMEOUT = object()
_CANCELLED = object()


def _report(error: messages.ExceptionReport | None) -> dict | None:
    return None if error is None else {"name": error.name, "value": error.value, "traceback": error.traceback}


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
