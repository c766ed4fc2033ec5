"""The `leeward` CLI, run as a user would (a child process), through libleeward.so."""
from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leeward import _autostart, cli
from leeward._results import OPTIONAL_KEYS
from libleeward.protocol import ExecutionResult as WireResult


def leeward(*args: str, socket: str | None = None, stdin: str | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}
    if socket:
        environ["LEEWARD_SOCKET"] = socket
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "leeward", *args], input=stdin, capture_output=True,
                          text=True, env=environ, timeout=timeout)


# ---------------------------------------------------------------- arguments

@pytest.mark.parametrize("text,expected", [
    ("/a:/b", cli.Mount("/a", "/b", True)),
    ("/a:/b:rw", cli.Mount("/a", "/b", False)),
    ("/a:/b:ro", cli.Mount("/a", "/b", True)),
])
def test_mount_syntax(text, expected):
    assert cli._mount(text) == expected


@pytest.mark.parametrize("args", [
    ["exec", "--mount", "/a", "x"], ["exec", "--mount", "/a:/b:rx", "x"], ["exec", "--memory", "lots", "x"],
    ["exec", "--timeout", "0", "x"], ["exec", "--timeout", "nan", "x"], ["exec", "--memory", "0", "x"],
])
def test_bad_arguments_are_usage_errors(args):
    proc = leeward(*args, "--no-autostart")
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_nothing_to_run():
    proc = leeward("exec", "--no-autostart")
    assert proc.returncode != 0 and "nothing to run" in proc.stderr


def test_no_daemon_and_no_autostart(tmp_path):
    socket = str(tmp_path / "leeward.sock")
    proc = leeward("exec", "--no-autostart", "print(1)", socket=socket)
    assert proc.returncode == cli.EXIT_LEEWARD_ERROR
    assert "E1006" in proc.stderr and "leeward.sock" in proc.stderr
    assert not os.path.exists(socket)


@pytest.mark.parametrize("command", ["status", "ping"])
def test_status_and_ping_without_daemon(tmp_path, command):
    proc = leeward(command, socket=str(tmp_path / "leeward.sock"))
    assert proc.returncode == cli.EXIT_LEEWARD_ERROR and "E1006" in proc.stderr


def test_daemon_command_runs_the_daemon():
    proc = leeward("daemon", "--help")
    assert proc.returncode == 0 and "leeward-daemon" in proc.stdout and "--workers" in proc.stdout


# ---------------------------------------------------------------- live daemon

@pytest.mark.integration
def test_exec_prints_and_exits_with_the_code_status(daemon):
    proc = leeward("exec", "print('hello')", socket=daemon.socket_path)
    assert (proc.returncode, proc.stdout) == (0, "hello\n"), proc.stderr
    proc = leeward("exec", "import sys; print('bye', file=sys.stderr); sys.exit(3)", socket=daemon.socket_path)
    assert (proc.returncode, proc.stderr) == (3, "bye\n")


@pytest.mark.integration
def test_exec_json(daemon):
    proc = leeward("exec", "--json", "print(1)", socket=daemon.socket_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["stdout"] == "1\n" and result["exit_code"] == 0 and result["timed_out"] is False
    assert set(result) >= set(WireResult(exit_code=0).to_wire())  # every key of a v1 reply - set(OPTIONAL_KEYS)

    raised = json.loads(leeward("exec", "--json", "1/0", socket=daemon.socket_path).stdout)
    assert raised["error"]["name"] == "ZeroDivisionError"


@pytest.mark.integration
def test_exec_from_file_and_stdin(daemon, tmp_path):
    script = tmp_path / "job.py"
    script.write_text("print(6 * 7)\n")
    assert leeward("exec", "-f", str(script), socket=daemon.socket_path).stdout == "42\n"
    assert leeward("exec", "-", stdin="print('piped')", socket=daemon.socket_path).stdout == "piped\n"
    assert leeward("exec", "-f", "-", stdin="print('piped')", socket=daemon.socket_path).stdout == "piped\n"
    missing = leeward("exec", "-f", str(tmp_path / "nope.py"), socket=daemon.socket_path)
    assert missing.returncode == cli.EXIT_LEEWARD_ERROR and "nope.py" in missing.stderr


@pytest.mark.integration
def test_exec_options(daemon):
    host = daemon.allowed_dir
    with open(os.path.join(host, "cli.txt"), "w") as fh:
        fh.write("mounted")
    proc = leeward("exec", "--mount", f"{host}:/data", "--timeout", "10", "--memory", "256M",
                   "print(open('/data/cli.txt').read())", socket=daemon.socket_path)
    assert (proc.returncode, proc.stdout) == (0, "mounted\n"), proc.stderr
    proc = leeward("exec", "--mount", f"{host}:/data:rw", "open('/data/cli-rw.txt', 'w').write('x')",
                   socket=daemon.socket_path)
    assert proc.returncode == 0 and os.path.exists(os.path.join(host, "cli-rw.txt")), proc.stderr


@pytest.mark.integration
def test_exec_timeout_exit_status(daemon):
    proc = leeward("exec", "--timeout", "0.5", "while True: pass", socket=daemon.socket_path)
    assert proc.returncode == cli.EXIT_TIMED_OUT and "timed out" in proc.stderr


@pytest.mark.integration
def test_exec_refused_request(daemon):
    proc = leeward("exec", "--mount", "/etc:/data", "print(1)", socket=daemon.socket_path)
    assert proc.returncode == cli.EXIT_LEEWARD_ERROR and re.search(r"E2\d{3}", proc.stderr)


@pytest.mark.integration
def test_status_and_ping(daemon):
    ping = leeward("ping", socket=daemon.socket_path)
    assert ping.returncode == 0 and ping.stdout.startswith("pong")
    status = leeward("status", "--json", socket=daemon.socket_path)
    assert status.returncode == 0 and json.loads(status.stdout)["type"] == "Status"
    human = leeward("status", "--socket", daemon.socket_path)
    assert human.returncode == 0 and "idle" in human.stdout


@pytest.mark.integration
def test_exec_autostarts_a_daemon(tmp_path):
    socket = str(tmp_path / "run" / "leeward.sock")
    proc = leeward("exec", "print('autostarted')", socket=socket, timeout=180)
    pid = None
    try:
        match = re.search(r"pid (\d+)", proc.stderr)
        pid = int(match.group(1)) if match else None
        assert (proc.returncode, proc.stdout) == (0, "autostarted\n"), proc.stderr
        assert pid is not None and os.path.exists(tmp_path / "run" / _autostart.LOG_NAME)
        # Detached: its own session, so the shell's Ctrl-C does not reach it.
        assert os.getsid(pid) == pid
        again = leeward("exec", "print('reused')", socket=socket)
        assert again.stdout == "reused\n" and "started a daemon" not in again.stderr
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                # It is not our child (the CLI was its parent): only watch it go away.
                if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                    break
                time.sleep(0.1)


# ---------------------------------------------------------------- the client and the daemon apart

def test_the_binding_never_imports_the_daemon():
    """Read with ast, imports inside functions included: the client reaches the daemon's
    code only through a child process (`leeward daemon`, `leeward doctor`)."""
    package = Path(cli.__file__).resolve().parent
    found = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "leeward_daemon"]
    assert found == []


def test_doctor_is_the_daemons_doctor(tmp_path):
    """`leeward doctor` runs `leeward-daemon doctor` with the same arguments."""
    socket_path = str(tmp_path / "missing-dir" / "leeward.sock")
    ours = leeward("doctor", "--json", "--socket", socket_path, timeout=300)
    daemons = subprocess.run([sys.executable, "-m", "leeward_daemon", "doctor", "--json", "--socket", socket_path],
                             capture_output=True, text=True, timeout=300)
    assert ours.returncode == daemons.returncode
    names = [check["name"] for check in json.loads(ours.stdout)["checks"]]
    assert names == [check["name"] for check in json.loads(daemons.stdout)["checks"]]
    assert "socket" in names and "config" in names
