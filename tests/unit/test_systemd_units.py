"""The unit files in deploy/systemd/: what they must say, and systemd's own verdict on them."""
import configparser
import os
import shutil
import subprocess
import tomllib

import pytest

from leeward_daemon import config
from leeward_daemon.frontdoor import shutdown
from leeward_daemon.pool import supervisor
from tests.conftest import REPO

UNITS = os.path.join(REPO, "deploy", "systemd")
SYSTEM, USER = UNITS, os.path.join(UNITS, "user")
# Options that would break what sandboxes are built from (see the comment in the unit).
FORBIDDEN = {"PrivateUsers", "RestrictNamespaces", "ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc",
             "ProcSubset", "ProtectControlGroups", "ProtectHostname", "SystemCallFilter",
             "RestrictAddressFamilies", "MemoryDenyWriteExecute", "PrivateNetwork"}
# In a user manager these imply PrivateUsers=yes.
MOUNT_NAMESPACE_OPTIONS = {"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ReadOnlyPaths",
                           "InaccessiblePaths", "TemporaryFileSystem"}


def _unit(directory: str, name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    with open(os.path.join(directory, name)) as fh:
        parser.read_file(fh)
    return parser


def _entry_point() -> str:
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts["leeward-daemon"] == "leeward_daemon.cli:main"
    return "leeward-daemon"


@pytest.mark.parametrize("directory", [SYSTEM, USER])
def test_service_runs_the_daemon_entry_point_as_a_notify_service(directory):
    service = _unit(directory, "leeward.service")["Service"]
    assert os.path.basename(service["ExecStart"].split()[0]) == _entry_point()
    assert service["Type"] == "notify"  # the daemon sends READY=1 once it serves
    assert service["Delegate"] == "yes"
    assert service["KillMode"] == "mixed"  # SIGTERM to the daemon, which drains


@pytest.mark.parametrize("directory", [SYSTEM, USER])
def test_stop_timeout_outlasts_the_daemons_own_shutdown(directory):
    service = _unit(directory, "leeward.service")["Service"]
    own = (config.Config().shutdown_grace_secs + shutdown.KILLED_REPLY_WAIT_SECS + supervisor.EXIT_GRACE_SECS
           + shutdown.REPLY_FLUSH_SECS)
    assert float(service["TimeoutStopSec"]) > own


@pytest.mark.parametrize("directory", [SYSTEM, USER])
def test_service_requires_its_socket(directory):
    unit = _unit(directory, "leeward.service")
    assert unit["Unit"]["Requires"] == unit["Unit"]["After"] == "leeward.socket"
    assert unit["Install"]["Also"] == "leeward.socket"


@pytest.mark.parametrize("directory", [SYSTEM, USER])
def test_no_hardening_option_that_breaks_sandboxes(directory):
    assert FORBIDDEN.isdisjoint(_unit(directory, "leeward.service")["Service"])


def test_user_service_has_no_option_that_needs_a_mount_namespace():
    assert MOUNT_NAMESPACE_OPTIONS.isdisjoint(_unit(USER, "leeward.service")["Service"])


def test_system_socket_is_roots_default_path_mode_0600():
    socket_unit = _unit(SYSTEM, "leeward.socket")["Socket"]
    assert socket_unit["ListenStream"] == "/run/leeward/leeward.sock"
    assert socket_unit["SocketMode"] == "0600"


def test_user_socket_is_the_clients_default_path():
    socket_unit = _unit(USER, "leeward.socket")["Socket"]
    assert socket_unit["ListenStream"] == "%t/leeward.sock"  # %t = $XDG_RUNTIME_DIR
    assert socket_unit["SocketMode"] == "0600"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("directory, mode", [(SYSTEM, "--system"), (USER, "--user")])
def test_systemd_analyze_verify_accepts_the_units(tmp_path, directory, mode):
    # verify checks that ExecStart exists: point it at this checkout's entry point.
    executable = os.path.join(REPO, ".venv", "bin", _entry_point())
    assert os.access(executable, os.X_OK), f"{executable} missing: run make setup"
    units = tmp_path / "units"
    units.mkdir()
    for name in ("leeward.service", "leeward.socket"):
        with open(os.path.join(directory, name)) as fh:
            text = fh.read()
        lines = [f"ExecStart={executable}" if line.startswith("ExecStart=") else line for line in text.splitlines()]
        (units / name).write_text("\n".join(lines) + "\n")
    runtime = tmp_path / "runtime"  # a user manager needs $XDG_RUNTIME_DIR
    runtime.mkdir(mode=0o700)
    proc = subprocess.run(["systemd-analyze", mode, "verify", str(units / "leeward.service"),
                           str(units / "leeward.socket")],
                          capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
