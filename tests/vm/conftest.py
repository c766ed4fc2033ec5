"""The shipped systemd units under a real systemd: what the VM stage's guest has
(scripts/vm: Debian 12, systemd 252, cgroup v2 only). Elsewhere these tests skip
with what they need; in the guest, scripts/vm/check-junit.py makes a skip a failure.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

WAIT_SECS = 180.0  # bound on a unit starting under TCG emulation, not a speed assertion
DAEMON = os.path.join(os.path.dirname(sys.executable), "leeward-daemon")  # this checkout's entry point
LEEWARD = os.path.join(os.path.dirname(sys.executable), "leeward")


def _needs_systemd_and_cgroup2() -> str | None:
    if os.geteuid() != 0:
        return "needs root (installs units)"
    if not os.path.isdir("/run/systemd/system"):
        return "needs systemd as PID 1 (the VM stage's guest: make test-vm)"
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "needs a cgroup v2-only host (the VM stage's guest: make test-vm)"
    if not os.path.exists(DAEMON):
        return f"no {DAEMON}: run make setup"
    return None


@pytest.fixture(scope="session")
def systemd_host():
    reason = _needs_systemd_and_cgroup2()
    if reason:
        pytest.skip(reason)


def run(*args: str, check: bool = True, user: pwd.struct_passwd | None = None, **kwargs) -> subprocess.CompletedProcess:
    argv = list(args)
    if user is not None:
        argv = ["runuser", "-u", user.pw_name, "--", "env", f"XDG_RUNTIME_DIR=/run/user/{user.pw_uid}", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def install_units(source: str, target: str, exec_start: str, owner: pwd.struct_passwd | None = None) -> None:
    """The units as shipped, plus the one drop-in README "Operations" tells users to
    write: where leeward-daemon is installed (here, this checkout's .venv)."""
    os.makedirs(os.path.join(target, "leeward.service.d"), exist_ok=True)
    for name in ("leeward.service", "leeward.socket"):
        shutil.copy(os.path.join(source, name), os.path.join(target, name))
    with open(os.path.join(target, "leeward.service.d", "where.conf"), "w") as f:
        f.write(f"[Service]\nExecStart=\nExecStart={exec_start}\n")
        if REPO == "/tmp" or REPO.startswith("/tmp/"):
            # The system unit's PrivateTmp= would hide a checkout (and its .venv) that lives
            # under /tmp, as CI's fresh clones do: a leeward installed there needs this too.
            f.write("PrivateTmp=no\n")
    if owner is not None:
        for directory, _, files in os.walk(target):
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            for name in files:
                os.chown(os.path.join(directory, name), owner.pw_uid, owner.pw_gid)


def wait_for(what: str, done) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECS}s: {what}")
        time.sleep(0.2)


def cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


UNITS = os.path.join(REPO, "deploy", "systemd")
