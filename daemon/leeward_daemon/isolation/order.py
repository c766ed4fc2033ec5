"""The one place that owns the ORDER of the isolation layers (DESIGN.md section 3).

Slot (ahead of demand): namespaces (entered by the slot's parent, see zygote.py), then
the base root. Job: clone the job's mount sources while the old root is reachable,
detach it, attach the clones (targets are resolved only in the sandbox's own tree),
freeze `/`, become the unprivileged sandbox identity inside a fresh user namespace, set up the
workspace (files, stdio, env) as that user, limits, then lock down: Landlock, drop every
capability, no_new_privs, close every fd but 0-2 and the result channel, seccomp last.

Why this lock-down order: Landlock and the capability drop are set up with syscalls the
seccomp policy refuses (landlock_*, capset, PR_CAPBSET_DROP), so seccomp must come last;
the capability drop needs CAP_SETPCAP, which the job's user namespace gives until then;
fds are closed after everything that may still open files (Landlock's O_PATH rules).
"""
from __future__ import annotations

import os
from typing import Callable

from .. import limits, linux
from ..errors import IsolationError
from . import capabilities, identity, job_mounts, landlock, rootfs, seccomp_policy
from ..model import Job, SandboxSpec

SLOT_LAYERS = ("namespaces", "rootfs")
JOB_LAYERS = ("job_mounts", "identity", "limits")
LOCKDOWN_LAYERS = ("landlock", "capabilities", "no_new_privs", "fd_hygiene", "seccomp")

# Landlock: read and execute anywhere in the sandbox's own tree (it holds nothing but the
# system and Python binds, /etc, /proc, /dev, /tmp and the job's mounts; the host tree
# is detached, so `os.listdir("/")` works as users expect), write only in these places
# and rw job mounts. Device files need write too: /dev/null is written to by everyone.
READ_ONLY_PATHS = ("/",)
READ_WRITE_PATHS = ("/tmp", "/dev/shm") + tuple(f"/dev/{name}" for name in rootfs.DEVICES)


def layers_in_force(landlock_abi: int) -> list[str]:
    """Names of the layers every job gets, in the order they are applied."""
    lockdown = [name for name in LOCKDOWN_LAYERS if name != "landlock" or landlock_abi > 0]
    return list(SLOT_LAYERS + JOB_LAYERS) + lockdown


def prepare_slot(spec: SandboxSpec) -> landlock.Ruleset | None:
    """Off the request path: the base root, and the Landlock ruleset for its static
    paths (the job's mounts are added to it when the job arrives)."""
    os.setsid()  # no controlling terminal: TIOCSTI-style injection needs one
    rootfs.build(spec)
    if spec.landlock_abi < 1:
        return None
    ruleset = landlock.Ruleset(kernel_abi=spec.landlock_abi)
    ruleset.allow(READ_ONLY_PATHS, READ_WRITE_PATHS)
    return ruleset


def enter_job(spec: SandboxSpec, job: Job, ruleset: landlock.Ruleset | None,
              workspace: Callable[[], None], keep_fd: int) -> int | None:
    """Runs in the slot once its job arrived. Returns the seccomp listener fd (the caller
    hands it to the supervisor and closes it before running code), or None when the
    kernel has no user notification."""
    clones = job_mounts.clone_sources(job.mounts)
    try:
        rootfs.detach_old_root()
    except BaseException:
        job_mounts.close(clones)
        raise
    job_mounts.attach(clones)  # targets are looked up only once the host tree is gone
    rootfs.freeze_root()
    identity.become_sandbox_user(spec)
    workspace()
    _apply_limits(job)
    return _lock_down(spec, job, ruleset, keep_fd)


def _apply_limits(job: Job) -> None:
    """No core files and a file-size cap always; the rlimit backend's memory, pids and
    CPU caps too (cgroup backends are enforced by the daemon from outside)."""
    limits.core_and_fsize_limits(job.file_size_max)
    if job.limits_backend == "rlimit":
        limits.apply_in_sandbox(limits.JobLimits(job.memory_limit, job.pids_max),
                                file_size_max=job.file_size_max, cpu_time_limit=job.timeout_secs)


def _lock_down(spec: SandboxSpec, job: Job, ruleset: landlock.Ruleset | None, keep_fd: int) -> int | None:
    if spec.landlock_abi > 0:
        if ruleset is None:
            raise IsolationError("Landlock is required but the slot has no ruleset")
        ruleset.allow([], [], shared=[m.sandbox for m in job.mounts if not m.ro])
        ruleset.enforce()
    capabilities.drop_all()
    capabilities.set_no_new_privs()
    linux.close_fds_except({0, 1, 2, keep_fd})
    if not spec.seccomp_filter:
        raise IsolationError("no seccomp filter was compiled for this sandbox")
    return seccomp_policy.install(spec.seccomp_filter, notify=spec.seccomp_notify)
