"""The job's workspace: its working directory, standard streams and environment, set up
once as the sandbox user (`apply`), and each run's inputs (`deliver`: files and stdin),
written into the size-capped /tmp before that run's code starts."""
from __future__ import annotations

import io
import os
import sys

from ..model import WORKDIR, Run, SandboxRequest
from .layer import Layer, SlotContext

# The environment a job always gets; the request's `env` is laid over it.
SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "TMPDIR": WORKDIR,
    "LANG": "C.UTF-8",
    "USER": "sandbox",
}


def apply(slot: SlotContext, request: SandboxRequest, _state: object) -> None:
    os.chdir(WORKDIR)
    for fd, target in ((slot.stdout_fd, 1), (slot.stderr_fd, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    os.environ.clear()
    os.environ.update(SAFE_ENV)
    if slot.spec.python_bin:
        os.environ["PATH"] = f"{slot.spec.python_bin}:{SAFE_ENV['PATH']}"
    os.environ.update(request.env)
    sys.argv = ["-c"]
    # `python -c` puts the working directory first on the import path: modules sent
    # with `files=` import, and spawned multiprocessing children inherit the entry.
    # The zygote's own entry (its start-up directory, see zygote_boot.py) is no business of the job.
    if sys.path:
        sys.path[0] = ""


def deliver(run: Run) -> None:
    """The run's files (never through a link planted by an earlier run) and its stdin."""
    for name, data in run.files.items():
        if os.path.dirname(name):
            os.makedirs(os.path.dirname(name), exist_ok=True)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    stdin_fd = os.memfd_create("stdin", 0)
    os.write(stdin_fd, run.stdin)
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    os.dup2(stdin_fd, 0)
    os.close(stdin_fd)


LAYER = Layer("workspace", apply=apply)
