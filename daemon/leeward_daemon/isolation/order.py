"""The one place that owns the ORDER of the isolation layers (DESIGN.md section 3): two
lists, SLOT (built ahead of demand) and JOB (applied once the job arrived), and the two
loops that run them. Every layer has the same shape (layer.py); the names Status reports
are these lists' names.

Slot: namespaces (entered by the slot's parent, so the next fork is pid 1 of the new pid
namespace: zygote.py), then the base root; every layer's `prepare` runs then (Landlock
builds its ruleset for the static paths). Job: the job's mounts (cloned while the old
root is reachable, which is then detached; targets are resolved only in the sandbox's
own tree; `/` frozen), the unprivileged sandbox identity inside a fresh user namespace,
the workspace (cwd, stdio, env) as that user, limits, then lock down: Landlock, drop
every capability, no_new_privs, close every fd but 0-2 and the result channel, seccomp
last.

Why this lock-down order: Landlock and the capability drop are set up with syscalls the
seccomp policy refuses (landlock_*, capset, PR_CAPBSET_DROP), so seccomp must come last;
the capability drop needs CAP_SETPCAP, which the job's user namespace gives until then;
fds are closed after everything that may still open files (Landlock's O_PATH rules).
"""
from __future__ import annotations

import os

from .. import limits, linux
from ..errors import IsolationError
from ..model import SandboxRequest
from . import capabilities, identity, job_mounts, landlock, rootfs, seccomp_policy, workspace
from .layer import Layer, SlotContext

# Landlock: read and execute anywhere in the sandbox's own tree (it holds nothing but the
# system and Python binds, /etc, /proc, /dev, /tmp and the job's mounts; the host tree
# is detached, so `os.listdir("/")` works as users expect), write only in these places
# and rw job mounts. Device files need write too: /dev/null is written to by everyone.
READ_ONLY_PATHS = ("/",)
READ_WRITE_PATHS = ("/tmp", "/dev/shm") + tuple(f"/dev/{name}" for name in rootfs.DEVICES)


def _build_root(slot: SlotContext) -> None:
    os.setsid()  # no controlling terminal: TIOCSTI-style injection needs one
    rootfs.build(slot.spec)


def _swap_in_job_mounts(slot: SlotContext, request: SandboxRequest, _state: object) -> None:
    clones = job_mounts.clone_sources(request.mounts)
    try:
        rootfs.detach_old_root()
    except BaseException:
        job_mounts.close(clones)
        raise
    job_mounts.attach(clones)  # targets are looked up only once the host tree is gone
    rootfs.freeze_root()


def _apply_limits(slot: SlotContext, request: SandboxRequest, _state: object) -> None:
    """No core files and a file-size cap always; the rlimit backend's memory, pids and
    CPU caps too (cgroup backends are enforced by the daemon from outside)."""
    limits.core_and_fsize_limits(request.file_size_max)
    if request.limits_backend == "rlimit":
        limits.apply_in_sandbox(limits.JobLimits(request.memory_limit, request.pids_max),
                                file_size_max=request.file_size_max, cpu_time_limit=request.cpu_time_limit)


def _landlock_ruleset(slot: SlotContext) -> landlock.Ruleset | None:
    """Off the request path: the ruleset for the static paths (the job's rw mounts are
    added when the job arrives)."""
    if slot.spec.landlock_abi < 1:
        return None
    ruleset = landlock.Ruleset(kernel_abi=slot.spec.landlock_abi)
    ruleset.allow(READ_ONLY_PATHS, READ_WRITE_PATHS)
    return ruleset


def _enforce_landlock(slot: SlotContext, request: SandboxRequest, ruleset: landlock.Ruleset | None) -> None:
    if slot.spec.landlock_abi < 1:
        return
    if ruleset is None:
        raise IsolationError("Landlock is required but the slot has no ruleset")
    ruleset.allow([], [], shared=[m.sandbox for m in request.mounts if not m.ro])
    ruleset.enforce()


def _close_other_fds(slot: SlotContext, _request: SandboxRequest, _state: object) -> None:
    linux.close_fds_except({0, 1, 2, slot.channel_fd})


def _install_seccomp(slot: SlotContext, _request: SandboxRequest, _state: object) -> None:
    if not slot.spec.seccomp_filter:
        raise IsolationError("no seccomp filter was compiled for this sandbox")
    slot.listener = seccomp_policy.install(slot.spec.seccomp_filter, notify=slot.spec.seccomp_notify)


SLOT = (
    Layer("namespaces"),  # entered by the slot's parent: namespaces.enter_slot_namespaces
    Layer("rootfs", prepare=_build_root),
)
JOB = (
    Layer("job_mounts", apply=_swap_in_job_mounts),
    Layer("identity", apply=lambda slot, request, state: identity.become_sandbox_user(slot.spec)),
    workspace.LAYER,
    Layer("limits", apply=_apply_limits),
    Layer("landlock", prepare=_landlock_ruleset, apply=_enforce_landlock),
    Layer("capabilities", apply=lambda slot, request, state: capabilities.drop_all()),
    Layer("no_new_privs", apply=lambda slot, request, state: capabilities.set_no_new_privs()),
    Layer("fd_hygiene", apply=_close_other_fds),
    Layer("seccomp", apply=_install_seccomp),
)


def layers_in_force(landlock_abi: int) -> list[str]:
    """Names of the layers every job gets, in the order they are applied."""
    return [layer.name for layer in SLOT + JOB if layer.name != "landlock" or landlock_abi > 0]


def prepare_slot(slot: SlotContext) -> None:
    """In the slot, ahead of demand: every layer's `prepare`, in order."""
    for layer in SLOT + JOB:
        if layer.prepare is not None:
            slot.states[layer.name] = layer.prepare(slot)


def enter_job(slot: SlotContext, request: SandboxRequest) -> None:
    """In the slot, once its job arrived: every job layer's `apply`, in order. Leaves
    the seccomp listener (None without user notification) in `slot.listener`: the caller
    hands it to the supervisor and closes it before any code runs."""
    for layer in JOB:
        if layer.apply is not None:
            layer.apply(slot, request, slot.states.get(layer.name))
