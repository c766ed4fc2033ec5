"""One sandbox slot: pid 1 of its namespaces. Builds its root, says ready, waits for
exactly one job, runs it and exits (single use)."""
from __future__ import annotations

import os
import signal
import socket

from .. import linux
from ..ipc import channel
from ..isolation import order
from ..model import Job, JobMount, SandboxSpec
from . import runner


def run(spec: SandboxSpec, ctl: socket.socket, stdout_fd: int, stderr_fd: int) -> None:
    try:
        signal.set_wakeup_fd(-1)  # inherited from the zygote; its pipe is about to close
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        linux.close_fds_except({0, 1, 2, ctl.fileno(), stdout_fd, stderr_fd})
        ruleset = order.prepare_slot(spec)
        channel.send(ctl, {"op": "ready"})
        message, _ = channel.recv(ctl)
    except Exception as exc:
        _report_failure(ctl, exc)
        os._exit(70)
    if message.get("op") != "job":
        os._exit(0)
    _restore_priority()
    runner.run_job(spec, _job_from_wire(message["job"]), ruleset, ctl, stdout_fd, stderr_fd)


def _restore_priority() -> None:
    """Slots are built at the zygote's background priority; the job runs at normal
    priority when the slot may raise it (root), else it stays below the daemon."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        pass


def _job_from_wire(wire: dict) -> Job:
    return Job(
        code=wire["code"],
        mounts=[JobMount(**m) for m in wire["mounts"]],
        files=wire["files"],
        env=wire["env"],
        stdin=wire["stdin"],
        memory_limit=wire["memory_limit"],
        pids_max=wire["pids_max"],
        timeout_secs=wire["timeout_secs"],
        limits_backend=wire["limits_backend"],
        file_size_max=wire["file_size_max"],
    )


def _report_failure(ctl: socket.socket, exc: Exception) -> None:
    try:
        channel.send(ctl, {"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
    except OSError:
        pass
