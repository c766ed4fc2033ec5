"""The Python CLI (`python -m leeward`, where the C `leeward` hands everything off its hot
path): the job inputs (--env, --stdin, --file NAME=PATH), `run -- CMD ARGS`, and session
cells streamed and cancelled."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from leeward import Leeward
from tests.bindings.python.test_cli import leeward
from tests.cli.test_fast_cli import pong, result, scripted  # noqa: F401 - scripted is a fixture


def test_exec_inputs_as_the_protocol_names_them(scripted, tmp_path):
    daemon = scripted({"Execute": result(stdout=b"ok\n")})
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00\x01")
    given = tmp_path / "stdin.txt"
    given.write_bytes(b"in\n")
    proc = leeward("exec", "--env", "A=b=c", "--file", f"d.bin={data}", "--stdin", str(given), "--json", "x",
                   socket=daemon.path)
    assert proc.returncode == 0, proc.stderr
    assert daemon.requests == [{"type": "Execute", "code": "x", "env": {"A": "b=c"}, "files": {"d.bin": b"\x00\x01"},
                                "stdin": b"in\n"}]
    script = tmp_path / "job.py"
    script.write_text("print(1)")
    assert leeward("exec", "--script", str(script), "--json", socket=daemon.path).returncode == 0
    assert daemon.requests[-1] == {"type": "Execute", "code": "print(1)"}


def test_run_sends_argv_once_offered(scripted):
    daemon = scripted({"Ping": pong("argv"), "Execute": result(stdout=b"hi\n", exit_code=4)})
    proc = leeward("run", "--timeout", "5", "--", "sh", "-c", "echo hi; exit 4", "--x", socket=daemon.path)
    assert (proc.returncode, proc.stdout) == (4, "hi\n"), proc.stderr
    assert daemon.of_type("Execute") == [{"type": "Execute", "argv": ["sh", "-c", "echo hi; exit 4", "--x"],
                                          "timeout_secs": 5.0}]


def test_run_streams_and_names_the_job_when_offered(scripted, tmp_path):
    events = [{"type": "Event", "execution_id": "x", "event": "stdout", "data": b"a\n"}]
    daemon = scripted({"Ping": pong("argv", "stream", "cancel"),
                       "Execute": result(stdout=b"a\n", files={"a.txt": b"a"})}, events)
    proc = leeward("run", "--collect", "*.txt", "--out", str(tmp_path / "out"), "--", "echo", "a", socket=daemon.path)
    assert (proc.returncode, proc.stdout) == (0, "a\n"), proc.stderr  # printed once, from the event
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a"
    sent, = daemon.of_type("Execute")
    assert sent["stream"] is True and re.fullmatch(r"[0-9a-f]{32}", sent["execution_id"])


@pytest.mark.parametrize("replies,code", [({"Ping": pong("stream")}, "E2010"), ({}, "E1005")])
def test_run_refused_without_argv(scripted, replies, code):
    daemon = scripted({**replies, "Execute": result()})
    proc = leeward("run", "--", "true", socket=daemon.path)
    assert proc.returncode == 125 and code in proc.stderr and daemon.of_type("Execute") == []


def test_run_needs_a_command():
    proc = leeward("run", "--no-autostart")
    assert proc.returncode != 0 and "no command" in proc.stderr


def test_session_run_streams_and_sends_stdin(scripted):
    events = [{"type": "Event", "execution_id": "x", "event": "stdout", "data": b"out\n"}]
    cell = {"type": "SessionExecute", "success": True,
            "result": {**result(stdout=b"out\n")["result"], "execution_count": 1,
                       "session": {"id": "s", "alive": True}}}
    daemon = scripted({"Ping": pong("sessions", "stream"), "SessionExecute": cell}, events)
    proc = leeward("session", "run", "--session", "s", "--stdin", "-", "print(input())", stdin="in",
                   socket=daemon.path)
    assert (proc.returncode, proc.stdout) == (0, "out\n"), proc.stderr  # printed once, from the event
    assert daemon.of_type("SessionExecute") == [{"type": "SessionExecute", "session_id": "s",
                                                 "code": "print(input())", "stdin": b"in", "stream": True}]


@pytest.mark.integration
def test_ctrl_c_cancels_a_session_cell(daemon):
    with Leeward(daemon.socket_path) as sandbox:
        if not {"sessions", "cancel"} <= set(sandbox.features()):
            pytest.skip("the daemon offers no sessions or no cancel")
        session = sandbox.session()
        environ = {**os.environ, "LEEWARD_SOCKET": daemon.socket_path}
        proc = subprocess.Popen([sys.executable, "-m", "leeward", "session", "run", "--session", session.id,
                                 "import time; print('started', flush=True); time.sleep(120)"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
        try:
            assert proc.stdout.readline() == b"started\n"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)  # not the cell's 120 s
            assert proc.returncode == 130 and b"cancelled" in err, err
            assert session.run("1 + 1").text == "2"  # an interrupted cell leaves the session alive
        finally:
            proc.kill()
            session.close()
