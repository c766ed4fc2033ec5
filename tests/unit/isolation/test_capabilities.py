"""Capabilities against the real kernel: each drop runs in a forked child."""
from __future__ import annotations

import os
import subprocess

import pytest

from leeward_daemon import linux
import isolation_probes as probes
from leeward_daemon.isolation import capabilities

SETS = {"effective", "permitted", "inheritable", "bounding", "ambient"}
ZERO = dict.fromkeys(SETS, 0)


def _enter_user_namespace(map_root: bool = False) -> None:
    """A fresh user namespace, where this process holds every capability."""
    uid, gid = os.getuid(), os.getgid()
    linux.unshare(linux.CLONE_NEWUSER)
    if map_root:
        linux.write_file("/proc/self/setgroups", "deny")
        linux.write_file("/proc/self/uid_map", f"0 {uid} 1")
        linux.write_file("/proc/self/gid_map", f"0 {gid} 1")


def test_current_capabilities_has_the_five_sets_as_ints():
    caps = probes.current_capabilities()
    assert set(caps) == SETS
    assert all(isinstance(v, int) for v in caps.values())


def test_drop_all_empties_every_set_in_a_user_namespace(run_in_child):
    def child():
        _enter_user_namespace()
        before = probes.current_capabilities()
        capabilities.drop_all()
        return before, probes.current_capabilities()

    before, after = run_in_child(child).unwrap()
    full = (1 << (capabilities.last_cap() + 1)) - 1
    assert before["effective"] == before["permitted"] == before["bounding"] == full
    assert after == ZERO


def test_exec_as_namespace_root_regains_nothing(run_in_child):
    """uid 0 exec recomputes caps from the bounding set: it must stay empty."""
    def status_of_exec() -> dict:
        out = subprocess.run(["/bin/cat", "/proc/self/status"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines())
        return {k: int(fields[k], 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")}

    def child():
        _enter_user_namespace(map_root=True)
        assert os.getuid() == 0
        control = status_of_exec()
        capabilities.drop_all()
        return control, status_of_exec()

    control, after = run_in_child(child).unwrap()
    assert control["CapEff"] != 0  # without drop_all the exec'd root gets caps back
    assert after == {"CapEff": 0, "CapPrm": 0, "CapBnd": 0, "CapAmb": 0}


def test_drop_all_fails_closed_without_cap_setpcap(run_in_child):
    def child():
        _enter_user_namespace()
        linux.capset(0, 0, 0)  # caps gone, bounding set still full: it cannot be emptied
        try:
            capabilities.drop_all()
        except capabilities.CapabilityError as exc:
            return str(exc)
        return None

    message = run_in_child(child).unwrap()
    assert message is not None and "PR_CAPBSET_DROP" in message


def test_drop_all_is_idempotent(run_in_child):
    def child():
        _enter_user_namespace()
        capabilities.drop_all()
        capabilities.drop_all()  # bounding already empty: nothing left to need CAP_SETPCAP for
        return probes.current_capabilities()

    assert run_in_child(child).unwrap() == ZERO


def test_set_no_new_privs(run_in_child):
    def child():
        before = capabilities.no_new_privs()
        capabilities.set_no_new_privs()
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("NoNewPrivs:"))
        return before, capabilities.no_new_privs(), int(line.split()[1])

    before, after, status = run_in_child(child).unwrap()
    if before:
        pytest.skip("the test runner already runs with no_new_privs")
    assert (after, status) == (True, 1)
