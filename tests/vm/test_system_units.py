"""The system units under systemd: socket activation, draining stop, restart keeping
the socket, cgroup v2 with Delegate=yes alone, and doctor saying so."""
from __future__ import annotations

import json
import os
import threading

import pytest

from libleeward.client import Connection
from tests.vm.conftest import DAEMON, LEEWARD, UNITS, cgroup_of, install_units, run, wait_for

pytestmark = pytest.mark.integration
SOCKET = "/run/leeward/leeward.sock"
MiB = 1 << 20


def _active(unit: str) -> str:
    return run("systemctl", "is-active", unit, check=False).stdout.strip()


def _main_pid() -> int:
    return int(run("systemctl", "show", "-P", "MainPID", "leeward.service").stdout)


@pytest.fixture(scope="module")
def units(systemd_host):
    # /run/systemd/system: gone at the next boot, and it beats /etc only to /run's own.
    install_units(UNITS, "/run/systemd/system", f"{DAEMON} --workers 1 --metrics-port 0")
    run("systemctl", "daemon-reload")
    yield
    run("systemctl", "stop", "leeward.socket", "leeward.service", check=False)


def connect() -> Connection:
    return Connection(SOCKET, timeout=300, trust_uid=0)


def test_units_verify(units):
    result = run("systemd-analyze", "verify", "/run/systemd/system/leeward.service",
                 "/run/systemd/system/leeward.socket", check=False)
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if "/leeward." in line], result.stderr


def test_first_connection_starts_the_daemon(units):
    run("systemctl", "stop", "leeward.service", "leeward.socket", check=False)
    run("systemctl", "start", "leeward.socket")
    assert _active("leeward.service") == "inactive"
    with connect() as conn:
        result = conn.execute("print(6 * 7)")
    assert (result.stdout, result.limits) == (b"42\n", "cgroup2")
    assert _active("leeward.service") == "active"


def test_daemon_sits_in_the_leaf_and_boxes_beside_it(units):
    with connect() as conn:
        status = conn.status()
        result = conn.execute("print(open('/proc/self/cgroup').read())")
    assert status["socket_activated"] is True and status["limits"] == "cgroup2"
    unit = "/sys/fs/cgroup/system.slice/leeward.service"
    assert cgroup_of(_main_pid()) == "/system.slice/leeward.service/daemon"
    with open(os.path.join(unit, "cgroup.subtree_control")) as f:
        assert {"memory", "pids"} <= set(f.read().split())
    with open(os.path.join(unit, "cgroup.procs")) as f:
        assert f.read() == ""  # the no-internal-processes rule, kept
    assert os.path.isdir(os.path.join(unit, "leeward"))
    assert result.exit_code == 0


def test_memory_limit_is_the_kernels(units):
    with connect() as conn:
        result = conn.execute("x = bytearray(512 << 20)\nx[::4096] = b'x' * len(x[::4096])", memory_limit=64 * MiB)
    assert result.exit_code != 0
    assert result.oom_killed or (result.error or {}).get("name") == "MemoryError"


def test_stop_drains_a_running_job(units):
    with connect() as conn:
        assert conn.execute("pass").exit_code == 0
    outcome = {}

    def job():
        with connect() as conn:
            outcome["result"] = conn.execute("import time; time.sleep(4); print('finished')")

    thread = threading.Thread(target=job)
    thread.start()
    with connect() as conn:
        wait_for("the job to be running", lambda: conn.status()["pool"]["busy"] >= 1)
    run("systemctl", "stop", "leeward.service")
    thread.join(300)
    assert outcome["result"].stdout == b"finished\n"
    assert _active("leeward.service") == "inactive"
    assert _active("leeward.socket") == "active"


def test_restart_keeps_the_socket(units):
    with connect() as conn:
        first = conn.status()["pid"]
    inode = os.stat(SOCKET).st_ino
    run("systemctl", "restart", "leeward.service")
    assert os.stat(SOCKET).st_ino == inode
    with connect() as conn:
        assert conn.status()["pid"] != first
        assert conn.execute("print('again')").stdout == b"again\n"


def test_doctor_under_delegate_reports_cgroup2(units):
    result = run("systemd-run", "--quiet", "--wait", "--pipe", "-p", "Delegate=yes", LEEWARD, "doctor", "--json",
                 check=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    backend = checks["limits_backend"]
    assert backend["status"] == "OK", backend
    assert backend["data"]["backend"] == "cgroup2"
    assert backend["data"]["leaf"].endswith("/daemon"), backend
