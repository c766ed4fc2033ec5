"""Capabilities: the job runs with every capability set empty, bounding set included.

Before the job: nothing. In the job, after the mounts and the identity switch (which
need privileges inside the user namespace): `drop_all()`, then `set_no_new_privs()`,
then seccomp. Landlock may come before or after; it needs no capability.

Why the bounding set matters even with empty sets: the job is uid 0 *inside* its user
namespace, and execve by uid 0 recomputes permitted = inheritable | bounding. An empty
bounding set (plus SECBIT_NOROOT, locked) is what keeps an exec'd program from getting
every capability of the namespace back.

Tools: python-prctl for no_new_privs and PR_CAPBSET_READ/DROP; raw prctl(2) via
linux.py for PR_CAP_AMBIENT, which python-prctl 1.8 rejects as "Unknown prctl option",
and for PR_SET_SECUREBITS, whose python-prctl wrapper refuses the NO_CAP_AMBIENT_RAISE
bits ("Invalid securebits set"); raw capset(2) via linux.py for the three per-thread
sets: python-prctl's set_caps goes cap by cap through its own name table (which has no
name for CAP_CHECKPOINT_RESTORE, 40), while one capset of zeros is complete whatever
the kernel's last capability is.
"""
from __future__ import annotations

import functools

import prctl

from .. import linux
from ..errors import CapabilityError

_PR_GET_SECUREBITS = 27
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_SETPCAP = 8

# Exec by uid 0 grants nothing, ambient caps can never be raised, and neither can be
# undone; KEEP_CAPS stays off and is locked so a setuid() cannot keep anything either.
_SECUREBITS = (
    prctl.SECBIT_NOROOT | prctl.SECBIT_NOROOT_LOCKED
    | prctl.SECBIT_KEEP_CAPS_LOCKED
    | (1 << 6) | (1 << 7)  # SECBIT_NO_CAP_AMBIENT_RAISE(_LOCKED), unknown to python-prctl
)


def set_no_new_privs() -> None:
    """Irreversibly forbid execve from granting privileges (setuid bits, file caps)."""
    try:
        prctl.set_no_new_privs(1)
    except OSError as exc:
        raise CapabilityError(f"prctl(PR_SET_NO_NEW_PRIVS, 1): {exc}") from exc


def no_new_privs() -> bool:
    return bool(prctl.get_no_new_privs())


@functools.cache  # a kernel constant; the zygote reads it once, every slot inherits it
def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        pass
    # No /proc (e.g. called after /proc was hidden): the kernel answers EINVAL past the end.
    for cap in range(64):
        try:
            prctl.capbset_read(cap)
        except OSError:
            return cap - 1
    return 63


def drop_all() -> None:
    """Empty the effective, permitted, inheritable, ambient and bounding sets of this thread.

    Needs CAP_SETPCAP (in the current user namespace) unless the bounding set is already
    empty; fails closed with CapabilityError otherwise.
    """
    effective = linux.capget()[0]
    if effective >> _CAP_SETPCAP & 1:
        # Must happen while CAP_SETPCAP is still effective; bits already set are kept.
        try:
            current = linux.prctl(_PR_GET_SECUREBITS, name="prctl(PR_GET_SECUREBITS)")
            if current & _SECUREBITS != _SECUREBITS:
                linux.prctl(_PR_SET_SECUREBITS, current | _SECUREBITS,
                            name=f"prctl(PR_SET_SECUREBITS, {current | _SECUREBITS:#x})")
        except OSError as exc:
            raise CapabilityError(str(exc)) from exc
    can_drop = bool(effective >> _CAP_SETPCAP & 1)
    for cap in range(last_cap() + 1):
        # With CAP_SETPCAP dropping an absent cap is a no-op, cheaper than asking first;
        # without it every drop is EPERM, so only a cap still there is an error.
        if not can_drop and not prctl.capbset_read(cap):
            continue
        try:
            prctl.capbset_drop(cap)
        except OSError as exc:
            raise CapabilityError(f"prctl(PR_CAPBSET_DROP, {cap}): {exc}") from exc
    try:
        linux.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL,
                    name="prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)")
        linux.capset(0, 0, 0)
    except OSError as exc:
        raise CapabilityError(str(exc)) from exc
    # Verify through syscalls rather than /proc, which the caller may have hidden by now.
    left = linux.capget()
    bounding = [cap for cap in range(last_cap() + 1) if prctl.capbset_read(cap)]
    if any(left) or bounding:
        raise CapabilityError(f"capabilities left after drop_all: eff/prm/inh={left}, bounding={bounding}")
