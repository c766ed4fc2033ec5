"""argv jobs in the Python binding: Leeward.run(argv) and Session.run([...]), the request
shapes they send (against a scripted fake daemon), then a real daemon."""
from __future__ import annotations

import pytest

from leeward import InvalidRequest, Leeward, Mount

SID = "k3J9x-AbCdEfGhIjKlMnOp"
FEATURES = ["sessions", "display", "collect", "files", "argv", "cancel"]
RESULT = {"exit_code": 0, "stdout": b"hi\n", "stderr": b"", "duration_ms": 1.0, "memory_peak": 1 << 20,
          "cpu_time_us": 10, "timed_out": False, "oom_killed": False, "stdout_truncated": False,
          "stderr_truncated": False, "denied_syscalls": [], "limits": "cgroup1", "execution_id": "e1",
          "cancelled": False}


def pong(features: list[str]) -> dict:
    return {"type": "Pong", "success": True, "version": 2, "features": features}


def test_run_sends_argv_and_its_inputs(fake):
    daemon = fake({"Ping": pong(FEATURES), "Execute": {"type": "Execute", "success": True, "result": RESULT}})
    with Leeward(daemon.path) as lw:
        result = lw.run(["sh", "-c", "echo hi"], mounts=[Mount("/srv/tools", "/opt/tools")], timeout=5,
                        memory="256M", stdin="in", env={"A": "1"}, files={"f.txt": "x"}, collect=["*.txt"],
                        execution_id="job-1")
    assert result.stdout == "hi\n" and result.exit_code == 0
    assert daemon.of_type("Execute") == [{
        "type": "Execute", "argv": ["sh", "-c", "echo hi"],
        "mounts": [{"host": "/srv/tools", "sandbox": "/opt/tools", "ro": True}], "memory_limit": 256 << 20,
        "timeout_secs": 5.0, "collect": ["*.txt"], "stdin": b"in", "env": {"A": "1"}, "files": {"f.txt": b"x"},
        "execution_id": "job-1"}]


def test_session_run_takes_code_or_an_argv_list(fake):
    cell = {"type": "SessionExecute", "success": True,
            "result": {**RESULT, "execution_count": 1, "session": {"id": SID, "alive": True}}}
    daemon = fake({"Ping": pong(FEATURES), "SessionExecute": cell})
    with Leeward(daemon.path) as lw:
        session = lw.attach(SID)
        session.run(["ls", "-l"], timeout=2)
        session.run("x = 1")
    sent = [{k: v for k, v in r.items() if k != "execution_id"} for r in daemon.of_type("SessionExecute")]
    assert sent == [
        {"type": "SessionExecute", "session_id": SID, "argv": ["ls", "-l"], "timeout_secs": 2.0},  # no display
        {"type": "SessionExecute", "session_id": SID, "code": "x = 1", "display": True}]


@pytest.mark.parametrize("argv", ["sh -c 'echo hi'", b"ls", [], ["sh", 1]])
def test_a_string_or_a_malformed_argv_is_refused_before_sending(fake, argv):
    daemon = fake({"Ping": pong(FEATURES)})
    with Leeward(daemon.path) as lw, pytest.raises(TypeError):
        lw.run(argv)
    assert daemon.of_type("Execute") == []


def test_a_daemon_without_argv_is_told_apart(fake):
    daemon = fake({"Ping": pong(["sessions"])})
    with Leeward(daemon.path) as lw, pytest.raises(InvalidRequest) as info:
        lw.run(["true"])
    assert info.value.code == "E2010"
    assert daemon.of_type("Execute") == []


# ---------------------------------------------------------------- a real daemon

def test_run_a_program(sandbox):
    result = sandbox.run(["sh", "-c", "tr a-z A-Z; echo err >&2; exit 3"], stdin="quiet\n", timeout=30)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "QUIET\n", "err\n")


def test_run_streams_a_programs_output(sandbox):
    chunks: list[bytes] = []
    result = sandbox.run(["sh", "-c", "echo one; echo two"], on_stdout=chunks.append)
    assert b"".join(chunks) == result.stdout_bytes == b"one\ntwo\n"


def test_a_session_runs_programs_beside_its_python(sandbox):
    with sandbox.session() as session:
        session.run("open('made_by_python.txt', 'w').write('py')")
        listed = session.run(["cat", "made_by_python.txt"])
        counted = session.run(["wc", "-c"], stdin=b"12345")
    assert (listed.exit_code, listed.stdout) == (0, "py")
    assert counted.stdout.strip() == "5"
