"""The one place that owns the ORDER of the isolation layers (DESIGN.md section 3).

Slot (ahead of demand): namespaces (entered by the slot's parent, see zygote.py), then
the base root. Job: job mounts while the old root is reachable, detach it and freeze
`/`, become the unprivileged sandbox identity inside a fresh user namespace, set up the
workspace (files, stdio, env) as that user, then lock down, seccomp last.
"""
from __future__ import annotations

from typing import Callable

from .. import limits
from . import identity, job_mounts, rootfs
from .spec import Job, SandboxSpec

SLOT_LAYERS = ("namespaces", "rootfs")
JOB_LAYERS = ("job_mounts", "identity", "limits")


def prepare_slot(spec: SandboxSpec) -> None:
    rootfs.build(spec)


def enter_job(spec: SandboxSpec, job: Job, workspace: Callable[[], None]) -> list[str]:
    """Runs in the slot once its job arrived; returns the names of the layers in force."""
    job_mounts.apply(job.mounts)
    rootfs.detach_old_root()
    identity.become_sandbox_user(spec)
    workspace()
    _apply_limits(job)
    return list(SLOT_LAYERS + JOB_LAYERS)


def _apply_limits(job: Job) -> None:
    """No core files and a file-size cap always; the rlimit backend's memory, pids and
    CPU caps too (cgroup backends are enforced by the daemon from outside)."""
    limits.core_and_fsize_limits(job.file_size_max)
    if job.limits_backend == "rlimit":
        limits.apply_in_sandbox(limits.JobLimits(job.memory_limit, job.pids_max),
                                file_size_max=job.file_size_max, cpu_time_limit=job.timeout_secs)
