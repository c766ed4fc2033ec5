"""The C `leeward` against a real daemon: output streamed while the job runs, Ctrl-C
cancelling the remote job, inputs reaching the sandbox, and a daemon started when none
answers (through the hand-over to the Python CLI)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from tests.cli.test_fast_cli import binary, run_cli  # noqa: F401 - binary is a fixture

pytestmark = pytest.mark.integration

WAIT_FOR_GO = """
import os, time
print('first', flush=True)
while not os.path.exists('/data/go'):
    time.sleep(0.01)
print('second')
"""


def popen_cli(binary: str, *args: str, socket_path: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}
    environ["LEEWARD_SOCKET"] = socket_path
    return subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)


def test_exec_prints_and_exits_with_the_code_status(binary, daemon):
    proc = run_cli(binary, "exec", "print('hello')", socket_path=daemon.socket_path)
    assert (proc.returncode, proc.stdout) == (0, b"hello\n"), proc.stderr
    proc = run_cli(binary, "exec", "import sys; print('bye', file=sys.stderr); sys.exit(3)",
                   socket_path=daemon.socket_path)
    assert (proc.returncode, proc.stderr) == (3, b"bye\n")


def test_inputs_reach_the_sandbox(binary, daemon, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("k,v\n1,2\n")
    given = tmp_path / "stdin.txt"
    given.write_text("from stdin")
    code = "import os, sys; print(os.environ['MODE'], open('in.csv').read().splitlines()[1], sys.stdin.read())"
    proc = run_cli(binary, "exec", "--env", "MODE=fast", "--file", f"in.csv={data}", "--stdin", str(given), code,
                   socket_path=daemon.socket_path)
    assert (proc.returncode, proc.stdout) == (0, b"fast 1,2 from stdin\n"), proc.stderr


def test_output_arrives_while_the_job_runs(binary, daemon):
    go = os.path.join(daemon.allowed_dir, "go")
    if os.path.exists(go):
        os.unlink(go)
    proc = popen_cli(binary, "exec", "--mount", f"{daemon.allowed_dir}:/data", "--timeout", "60", WAIT_FOR_GO,
                     socket_path=daemon.socket_path)
    try:
        assert proc.stdout.readline() == b"first\n"
        assert proc.poll() is None  # the job is still waiting for /data/go
        open(go, "w").close()
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, out) == (0, b"second\n"), err
    finally:
        proc.kill()
        if os.path.exists(go):
            os.unlink(go)


def test_ctrl_c_cancels_the_remote_job(binary, daemon):
    proc = popen_cli(binary, "exec", "--timeout", "120", "import time; print('started', flush=True); time.sleep(120)",
                     socket_path=daemon.socket_path)
    try:
        assert proc.stdout.readline() == b"started\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # not the job's 120 s: it was cancelled
        assert proc.returncode == 130 and b"leeward: cancelled" in err, err
    finally:
        proc.kill()
    with daemon.connect() as conn:  # nothing left running: the pool has no busy sandbox
        deadline = time.monotonic() + 30
        while conn.status()["pool"]["busy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.status()["pool"]["busy"] == 0


def test_a_pandas_job(binary, daemon):
    code = ("import pandas as pd; df = pd.DataFrame({'k': [1, 1, 2], 'v': [1, 2, 3]}); "
            "print(df.groupby('k')['v'].sum().to_dict())")
    proc = run_cli(binary, "exec", code, socket_path=daemon.socket_path)
    assert (proc.returncode, proc.stdout) == (0, b"{1: 3, 2: 3}\n"), proc.stderr


def test_exec_autostarts_a_daemon(binary, tmp_path):
    socket_path = str(tmp_path / "run" / "leeward.sock")
    proc = run_cli(binary, "exec", "print('autostarted')", socket_path=socket_path, timeout=180)
    match = re.search(rb"pid (\d+)", proc.stderr)
    pid = int(match.group(1)) if match else None
    try:
        assert (proc.returncode, proc.stdout) == (0, b"autostarted\n"), proc.stderr
        again = run_cli(binary, "exec", "print('reused')", socket_path=socket_path)
        assert again.stdout == b"reused\n" and b"started a daemon" not in again.stderr
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)
