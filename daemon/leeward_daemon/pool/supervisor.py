"""Runs one job on one slot: hands it over, enforces the wall-clock timeout by killing
the sandbox's whole pid namespace, collects its output, and measures the job itself.

Nothing the sandbox says is trusted (DESIGN.md): the exit status is the kernel's (pid
1's, read from /proc as soon as the kernel fixed it, else as the zygote reaped it), the
duration is the daemon's clock, CPU and memory are the limits box's. From the job only its exception report is taken, bounded,
and only in its place: at most one well-formed "result" after "started". Any other
message after "started" is the job's own misbehaviour: its sandbox is killed and its
reply, output kept, says why in `error`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from dataclasses import dataclass, field

from libleeward.protocol import ExecutionResult

from .. import limits, procfs
from ..config import Config
from ..errors import ChannelClosed, MalformedMessage, SandboxFailed
from ..ipc import messages
from ..model import Run, SandboxRequest
from .denials import DenialWatch
from .handle import Slot
from .hooks import CancelSignal, JobHooks, wait_first
from .output import OutputCollector

EXIT_GRACE_SECS = 5.0
# After its result, pid 1 is a few microseconds from os._exit. The event loop cannot
# wait less than a millisecond (epoll's timeout is in ms, so a 0.2 ms asyncio.sleep
# took 1 ms and that was a fifth of a one-shot job's latency): look in a short blocking
# loop first, then on the loop's timer, then leave it to the pidfd.
EARLY_STATUS_SPIN_SECS = 0.0005
EARLY_STATUS_SPIN_NAP_SECS = 0.00003
EARLY_STATUS_RETRIES_SECS = (0.001, 0.002, 0.005)
VIOLATION = "ResultChannelViolation"


@dataclass
class _Conversation:
    """What the slot said on its channel, and when (daemon clock)."""
    job_sent_at: float = 0.0
    started_at: float | None = None
    exception: dict | None = None
    output: messages.RichOutput = messages.RichOutput()  # what the run asked for, within its caps
    setup_failure: str | None = None  # "failed" before "started": the code never ran
    violation: str | None = None      # a malformed or out-of-place message after "started"
    result_received: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def over(self) -> bool:
        return self.setup_failure is not None or self.violation is not None


async def run(slot: Slot, request: SandboxRequest, code_run: Run, config: Config,
              hooks: JobHooks | None = None) -> ExecutionResult:
    """hooks: output sinks fed as it arrives, and a cancel event that kills the sandbox."""
    hooks = hooks or JobHooks()
    stdout_fd, stderr_fd = slot.take_outputs()
    stdout = OutputCollector(stdout_fd, config.stdout_max, hooks.stdout)
    stderr = OutputCollector(stderr_fd, config.stderr_max, hooks.stderr)
    denials = DenialWatch()
    talk = _Conversation()
    try:
        slot.box.start_job(limits.JobLimits(request.memory_limit, request.pids_max))
    except limits.LimitsError as exc:
        raise SandboxFailed(f"cannot apply the job's limits: {exc}") from None
    process = procfs.open_process(slot.pid)
    loop = asyncio.get_running_loop()
    listening = loop.create_task(_listen(slot, denials, talk, code_run))
    early = loop.create_task(_early_status(process, talk, stdout, stderr))
    timed_out = False
    slot.channel.allow_frames_up_to(messages.frame_max(code_run))
    try:
        talk.job_sent_at = time.monotonic()
        await slot.channel.send(messages.Job(request, code_run).to_wire())
        async with asyncio.timeout(code_run.timeout_secs):
            await _until_the_job_ends(slot, listening, early, talk, hooks.cancel)
    except TimeoutError:
        timed_out = True
    except ChannelClosed:
        pass  # the slot went away before it took the job: its exit status says how
    finally:
        ended_at = time.monotonic()
        status_fixed = early.done() and not early.cancelled()
        # A Cancel counts only if it came before the job's own end (its kill below).
        cancelled = hooks.cancelled and not status_fixed
        slot.kill()
        if status_fixed:
            status = early.result()
            listening.cancel()  # all it had to say came before its result
        else:
            early.cancel()
            reaped = await _reaped(slot)
            status = reaped.status if reaped is not None else None
            # Every process of the sandbox is gone: the channel is at EOF, and whatever
            # the job wrote before it is read to the end (a forgery queued behind the exit
            # still counts).
            await _finish(listening)
        denials.close()
        if process is not None:
            os.close(process)
    out = await stdout.collect(EXIT_GRACE_SECS)
    err = await stderr.collect(EXIT_GRACE_SECS)
    if talk.setup_failure is not None:
        raise SandboxFailed(f"sandbox setup failed: {talk.setup_failure}")
    usage = await _usage(slot, request)
    return ExecutionResult(
        exit_code=_exit_code(status),
        stdout=out,
        stderr=err,
        duration_ms=_duration_ms(talk, ended_at),
        memory_peak=usage.memory_peak,
        cpu_time_us=usage.cpu_time_us,
        timed_out=timed_out,
        oom_killed=usage.oom_killed,
        stdout_truncated=stdout.truncated,
        stderr_truncated=stderr.truncated,
        limits=request.limits_backend,
        denied_syscalls=denials.names,
        error=_violation_report(talk.violation) if talk.violation is not None else talk.exception,
        cancelled=cancelled,
        **result_output(code_run, talk.output),
    )


def cancelled_before_start(request: SandboxRequest, code_run: Run) -> ExecutionResult:
    """A job cancelled while it waited for a sandbox: never run, as if killed at once."""
    return ExecutionResult(exit_code=-signal.SIGKILL, limits=request.limits_backend, cancelled=True,
                           **result_output(code_run, messages.RichOutput()))


def result_output(run: Run, output: messages.RichOutput) -> dict:
    """The result's rich keys, only those the run asked for (a v1 reply has none)."""
    keys: dict = {}
    if run.display:
        keys.update(results=[{"main": r.main, "data": r.data} for r in output.results or []],
                    results_truncated=output.results_truncated)
    if run.collect:
        keys.update(files=output.files or {}, files_truncated=output.files_truncated)
    return keys


async def _until_the_job_ends(slot: Slot, listening: asyncio.Task, early: asyncio.Task,
                              talk: _Conversation, cancel: CancelSignal) -> None:
    """Until pid 1 has exited, which the kernel lets happen only once every other
    process of its pid namespace is gone, or its exit status is fixed (`early`), or a
    message ended the job, or a Cancel came. EOF on the channel alone is no end: the
    job may close it."""
    exited = slot.exited()  # its pidfd: even if the zygote died
    await wait_first({exited, early, listening}, cancel, None)
    if not talk.over and not cancel.is_set():
        await wait_first({exited, early}, cancel, None)


async def _early_status(process: int | None, talk: _Conversation, stdout: OutputCollector,
                        stderr: OutputCollector) -> int:
    """The common end, without waiting for the kernel's teardown of the sandbox: the
    job's result is in, both outputs are at EOF (the worker closes them before sending
    its result) and pid 1 is past the point where the kernel fixed its exit status
    (procfs.exit_status_if_exiting). Otherwise never returns: the pidfd tells."""
    await talk.result_received.wait()
    await stdout.finished()
    await stderr.finished()
    if process is not None:
        status = _spin_for_exit_status(process)
        for delay in EARLY_STATUS_RETRIES_SECS:
            if status is not None:
                return status
            await asyncio.sleep(delay)
            status = procfs.exit_status_if_exiting(process)
        if status is not None:
            return status
    await asyncio.get_running_loop().create_future()  # never resolves; cancelled at the end


def _spin_for_exit_status(process: int) -> int | None:
    """Blocks the loop for at most EARLY_STATUS_SPIN_SECS, napping between looks so the
    slot gets the CPU it needs to reach its exit."""
    deadline = time.monotonic() + EARLY_STATUS_SPIN_SECS
    while True:
        status = procfs.exit_status_if_exiting(process)
        if status is not None or time.monotonic() >= deadline:
            return status
        time.sleep(EARLY_STATUS_SPIN_NAP_SECS)


async def _reaped(slot: Slot) -> messages.Exited | None:
    """The zygote's reaping of pid 1 (the zygote is trusted, the job is not): its wait
    status and peak; None when it never came within the grace (the zygote died meanwhile)."""
    try:
        return await asyncio.wait_for(asyncio.shield(slot.reaped), EXIT_GRACE_SECS)
    except asyncio.TimeoutError:
        return None


async def _finish(listening: asyncio.Task) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(listening), EXIT_GRACE_SECS)
    except asyncio.TimeoutError:
        listening.cancel()


def _exit_code(status: int | None) -> int:
    """Like a shell's: the exit status (0-255, sys.exit(300) is 44 as with `python -c`),
    or -N for death by signal N. Never reaped in time: it was killed, as far as we know."""
    if status is None:
        return -signal.SIGKILL
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return -signal.SIGKILL


def _duration_ms(talk: _Conversation, ended_at: float) -> float:
    """From "started" (the job's code about to run, _start_time) to the moment the
    daemon saw the job end: its exit status fixed, pid 1 gone, or its kill for a message
    or the timeout. Both on the daemon's clock, neither one the job can fake (its result
    message is no end: a job could send one early and run on). A loaded daemon sees the
    end late, never early: the duration may grow by its lag but never misses the job's
    run. 0 when the code never started."""
    if talk.started_at is None:
        return 0.0
    return (ended_at - talk.started_at) * 1000.0


async def _usage(slot: Slot, request: SandboxRequest) -> limits.Usage:
    """The box's own measurement: the cgroup's counters, or under rlimits the daemon's
    sampling of the job's processes from outside (limits/rlimit.py), completed by the
    kernel's high-water mark from pid 1's reaping. Sampling alone missed the peak of a
    job that ended between two samples (a loaded machine: 187 MB for a 200 MB job); that
    reaping comes after the teardown of the sandbox's memory, a wait only a sampled box
    pays for."""
    try:
        usage = slot.box.usage()
    except limits.LimitsError:
        return limits.Usage(memory_peak=0, cpu_time_us=0, oom_killed=False)
    if not slot.box.usage_from_samples:
        return usage
    reaped = await _reaped(slot)
    if reaped is None:
        return usage
    return limits.with_reaped(usage, reaped.max_rss, reaped.cpu_time_us, slot.box.cpu_before_job_us,
                              request.memory_limit)


async def _listen(slot: Slot, denials: DenialWatch, talk: _Conversation, code_run: Run) -> None:
    """Reads the slot's messages until EOF or until one ends the job (`talk.over`)."""
    while True:
        try:
            message, fds = await slot.channel.recv()
        except ChannelClosed:
            return
        if talk.started_at is None:
            _before_start(message, fds, denials, talk)
        else:
            _close_all(fds)  # only "started" brings an fd (the seccomp listener)
            _after_start(message, talk, code_run)
        if talk.over:
            return


def _before_start(message: dict, fds: list[int], denials: DenialWatch, talk: _Conversation) -> None:
    """Before "started" only leeward's own code runs in the slot."""
    try:
        said = messages.from_wire(message, messages.Started, messages.Failed)
    except MalformedMessage:
        _close_all(fds)
        talk.setup_failure = f"unexpected message before the job started: {messages.describe(message)}"
        return
    if isinstance(said, messages.Started):
        denials.attach(fds)
        talk.started_at = _start_time(said, talk.job_sent_at, time.monotonic())
        return
    _close_all(fds)
    talk.setup_failure = said.error


def _start_time(said: messages.Started, job_sent_at: float, seen_at: float) -> float:
    """The slot's own reading as it said "started": the daemon reads the message when
    its loop gets to it, on a loaded machine many milliseconds later, and a duration
    from then fell short of the job's run (a 0.5 s sleep measured 494 ms). Kept between
    the job's sending and the message's reading, so that no value in the message makes
    the duration shorter than the daemon itself saw it."""
    return min(max(said.at, job_sent_at), seen_at)


def _after_start(message: dict, talk: _Conversation, code_run: Run) -> None:
    if not talk.result_received.is_set():
        try:
            result = messages.from_wire(message, messages.Result, answering=code_run)
        except MalformedMessage:
            pass
        else:
            talk.result_received.set()
            talk.exception = result.error and dataclasses.asdict(result.error)
            talk.output = result.output
            return
    where = "after its result" if talk.result_received.is_set() else "after it started"
    talk.violation = f"the job sent {messages.describe(message)} on its result channel {where}"


def _violation_report(violation: str) -> dict:
    return {"name": VIOLATION, "value": f"{violation}; leeward ended the job there", "traceback": ""}


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
