"""The user units under a real `systemd --user` of an unprivileged user, whose
user@.service delegates the cgroup subtree (Debian: memory, pids and cpu)."""
from __future__ import annotations

import json
import os
import pwd
import sys

import pytest

from tests.conftest import REPO
from tests.vm.conftest import DAEMON, UNITS, cgroup_of, install_units, run, wait_for

pytestmark = pytest.mark.integration
USER = "leeward-vm"
CLIENT = """
import json, sys
from libleeward.client import Connection
with Connection(sys.argv[1], timeout=300) as conn:
    result = conn.execute("import os; print(os.getuid())")
    print(json.dumps({"status": conn.status(), "stdout": result.stdout.decode(), "limits": result.limits}))
"""


@pytest.fixture(scope="module")
def user_manager(systemd_host):
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        run("useradd", "--create-home", "--shell", "/bin/bash", USER)
        user = pwd.getpwnam(USER)
    run("loginctl", "enable-linger", USER)
    wait_for("the user manager", lambda: os.path.exists(f"/run/user/{user.pw_uid}/systemd/private"))
    install_units(os.path.join(UNITS, "user"), os.path.join(user.pw_dir, ".config/systemd/user"),
                  f"{DAEMON} --workers 1 --metrics-port 0", owner=user)
    run("systemctl", "--user", "daemon-reload", user=user)
    run("systemctl", "--user", "start", "leeward.socket", user=user)
    yield user
    run("systemctl", "--user", "stop", "leeward.socket", "leeward.service", user=user, check=False)
    run("loginctl", "disable-linger", USER, check=False)


def test_user_socket_activation_runs_jobs_under_cgroup2(user_manager):
    user = user_manager
    socket_path = f"/run/user/{user.pw_uid}/leeward.sock"
    result = run(sys.executable, "-c", CLIENT, socket_path, user=user, cwd=REPO, check=False,
                 env={**os.environ, "PYTHONPATH": REPO})
    journal = run("journalctl", "--no-pager", "-n", "60", f"_UID={user.pw_uid}", check=False).stdout
    assert result.returncode == 0, f"{result.stderr}\n--- the user's journal:\n{journal}"
    answer = json.loads(result.stdout)
    assert answer["limits"] == "cgroup2", answer
    assert answer["status"]["socket_activated"] is True
    assert answer["status"]["privileged"] is False
    pid = answer["status"]["pid"]
    assert cgroup_of(pid).endswith(f"user@{user.pw_uid}.service/app.slice/leeward.service/daemon")
    assert int(answer["stdout"]) != 0  # never root, whatever uid the job got


def test_user_units_verify(user_manager):
    user = user_manager
    unit_dir = os.path.join(user.pw_dir, ".config/systemd/user")
    result = run("systemd-analyze", "--user", "verify", os.path.join(unit_dir, "leeward.service"),
                 os.path.join(unit_dir, "leeward.socket"), user=user, check=False, cwd="/")
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if "/leeward." in line], result.stderr
