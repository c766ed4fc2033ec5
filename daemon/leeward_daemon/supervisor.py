"""Runs one job on one slot: hands it over, enforces the wall-clock timeout by killing
the sandbox's whole pid namespace, collects output and the result, and never trusts
what the slot says beyond its own exit code and exception."""
from __future__ import annotations

import asyncio
import os
import signal
import time

from libleeward.protocol import ErrorCode, ExecutionResult, ProtocolError

from . import limits
from .channel import ChannelClosed
from .config import Config
from .denials import DenialWatch
from .isolation.spec import Job
from .output import OutputCollector
from .pool import Slot

EXIT_GRACE_SECS = 5.0
STATUS_GRACE_SECS = 1.0


async def run(slot: Slot, job: Job, config: Config) -> ExecutionResult:
    started = time.monotonic()
    stdout_fd, stderr_fd = slot.take_outputs()
    stdout = OutputCollector(stdout_fd, config.stdout_max)
    stderr = OutputCollector(stderr_fd, config.stderr_max)
    report: dict | None = None
    timed_out = False
    denials = DenialWatch()
    try:
        slot.box.start_job(limits.JobLimits(job.memory_limit, job.pids_max))
    except limits.LimitsError as exc:
        raise ProtocolError(ErrorCode.SANDBOX_FAILED, f"cannot apply the job's limits: {exc}") from None
    try:
        await slot.channel.send({"op": "job", "job": _job_to_wire(job)})
        async with asyncio.timeout(job.timeout_secs):
            report = await _await_report(slot, denials)
    except TimeoutError:
        timed_out = True
    except ChannelClosed:
        report = None
    finally:
        slot.kill()
        # With the job's own report in hand, its exit status adds nothing: reply as soon
        # as the output pipes reach EOF (exit closes them early) instead of waiting for
        # pid 1 to be reaped, which comes after the kernel tore its namespaces down.
        if not _is_result(report):
            try:
                await asyncio.wait_for(slot.wait_exited(), EXIT_GRACE_SECS)
            except asyncio.TimeoutError:
                pass
        denials.close()
    out = await stdout.collect(EXIT_GRACE_SECS)
    err = await stderr.collect(EXIT_GRACE_SECS)
    if report is not None and report.get("op") == "failed":
        raise ProtocolError(ErrorCode.SANDBOX_FAILED, f"sandbox setup failed: {report.get('error')}")
    elapsed_ms = (time.monotonic() - started) * 1000.0
    usage = _usage(slot, job, report)
    return ExecutionResult(
        exit_code=await _exit_code(slot, report, timed_out),
        stdout=out,
        stderr=err,
        duration_ms=_number(report, "duration_ms", float, elapsed_ms),
        memory_peak=usage.memory_peak,
        cpu_time_us=usage.cpu_time_us,
        timed_out=timed_out,
        oom_killed=usage.oom_killed,
        stdout_truncated=stdout.truncated,
        stderr_truncated=stderr.truncated,
        limits=job.limits_backend,
        denied_syscalls=denials.names,
        error=_exception(report),
    )


def _is_result(report: dict | None) -> bool:
    return report is not None and report.get("op") == "result" and isinstance(report.get("exit_code"), int)


def _usage(slot: Slot, job: Job, report: dict | None) -> limits.Usage:
    """cgroup numbers are the kernel's; under rlimits only the sandbox can measure, so
    its own report is used (a hostile job can only misstate its own figures)."""
    if job.limits_backend == "rlimit":
        return limits.Usage(memory_peak=_number(report, "memory_peak", int, 0),
                            cpu_time_us=_number(report, "cpu_time_us", int, 0), oom_killed=False)
    try:
        return slot.box.usage()
    except limits.LimitsError:
        return limits.Usage(memory_peak=0, cpu_time_us=0, oom_killed=False)


async def _await_report(slot: Slot, denials: DenialWatch) -> dict | None:
    while True:
        try:
            message, fds = await slot.channel.recv()
        except ChannelClosed:
            return None
        if message.get("op") == "started":
            denials.attach(fds)  # the seccomp listener, sent before the job's code runs
        else:
            for fd in fds:
                os.close(fd)
        if message.get("op") in ("result", "failed"):
            return message


async def _exit_code(slot: Slot, report: dict | None, timed_out: bool) -> int:
    if timed_out:
        return -signal.SIGKILL
    if _is_result(report):
        return report["exit_code"]
    try:
        status = await asyncio.wait_for(asyncio.shield(slot.exit_status), STATUS_GRACE_SECS)
    except asyncio.TimeoutError:
        return -signal.SIGKILL
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _number(report: dict | None, key: str, kind: type, default):
    value = (report or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return default
    return kind(value)


def _exception(report: dict | None) -> dict | None:
    error = (report or {}).get("error")
    if not isinstance(error, dict):
        return None
    return {k: str(error.get(k, ""))[:65536] for k in ("name", "value", "traceback")}


def _job_to_wire(job: Job) -> dict:
    return {
        "code": job.code,
        "mounts": [{"host": m.host, "sandbox": m.sandbox, "ro": m.ro} for m in job.mounts],
        "files": job.files, "env": job.env, "stdin": job.stdin,
        "memory_limit": job.memory_limit, "pids_max": job.pids_max, "timeout_secs": job.timeout_secs,
        "limits_backend": job.limits_backend, "file_size_max": job.file_size_max,
    }
