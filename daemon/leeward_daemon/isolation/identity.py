"""The job's identity: never host root (DESIGN.md "Identity").

A slot with a sandbox uid (a root daemon's, or a subordinate one of an unprivileged
daemon, see subids.py) first becomes that uid/gid with no supplementary groups; only
then does it create the job's user namespace, so inside root, caps or not, never maps
back to host uid 0 (which could still write host-root files such as
/proc/sys/kernel/core_pattern) nor to the daemon's user. Without one (an unprivileged
daemon with no subordinate ids) the job is the daemon's own uid.
"""
from __future__ import annotations

import os

import prctl

from . import namespaces
from ..model import SandboxSpec


def become_sandbox_user(spec: SandboxSpec) -> None:
    if spec.outside_uid is not None:
        assert spec.outside_gid is not None
        os.setgroups([])
        os.setresgid(spec.outside_gid, spec.outside_gid, spec.outside_gid)
        os.setresuid(spec.outside_uid, spec.outside_uid, spec.outside_uid)
        # A uid change makes the process non-dumpable, which hands /proc/self/*_map
        # to host root and so forbids writing our own id maps.
        prctl.set_dumpable(True)
    namespaces.enter_job_user_namespace()
