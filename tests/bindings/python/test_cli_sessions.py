"""`leeward session open|run|close|list`, `exec --display`, `--collect GLOB --out DIR` and
`--json`, run as a user would (a child process) against a scripted fake daemon; then
against a real daemon once it lists "sessions" in Pong.features."""
from __future__ import annotations

import json
import os

import pytest

from leeward import Leeward, cli
from leeward._outdir import UnsafeName, check_name, write_files
from tests.bindings.python.test_cli import leeward
from tests.bindings.python.test_binding_sessions import OPENED, PNG, SID, cell, failed, ok, v2


def one_shot(**result) -> dict:
    wire = cell(1, **result)["result"]
    del wire["execution_count"], wire["session"]
    return ok("Execute", result=wire)


# ---------------------------------------------------------------- sessions

def test_session_open_prints_the_id_and_sends_the_options(fake):
    daemon = fake({"SessionOpen": OPENED})
    proc = leeward("session", "open", "--mount", "/srv:/srv:rw", "--env", "A=b=c", "--memory", "1G",
                   "--idle-timeout", "30", "--max-lifetime", "90", "--no-autostart", socket=daemon.path)
    assert (proc.returncode, proc.stdout) == (0, SID + "\n"), proc.stderr
    assert daemon.requests == [{"type": "SessionOpen", "mounts": [{"host": "/srv", "sandbox": "/srv", "ro": False}],
                                "env": {"A": "b=c"}, "memory_limit": 1 << 30, "idle_timeout_secs": 30.0,
                                "max_lifetime_secs": 90.0}]
    opened = json.loads(leeward("session", "open", "--json", socket=daemon.path).stdout)
    assert opened == {"id": SID, "idle_timeout_secs": 300, "max_lifetime_secs": 3600}
    assert not any(r["type"] == "SessionClose" for r in daemon.requests)  # it outlives the CLI


def test_session_run_prints_output_then_the_value(fake, tmp_path):
    daemon = fake(v2(SessionExecute=[cell(2, stdout=b"out\n", stderr=b"err\n", results=[
        {"main": False, "data": {"image/png": PNG}}, {"main": True, "data": {"text/plain": "2"}}]),
        cell(3, exit_code=3)]))
    proc = leeward("session", "run", "--session", SID, "x + 1", socket=daemon.path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out\n[image/png]\n2\n", "err\n")
    script = tmp_path / "cell.py"
    script.write_text("import sys; sys.exit(3)")
    proc = leeward("session", "run", "--session", SID, "--no-display", "--timeout", "2", "-f", str(script),
                   socket=daemon.path)
    assert proc.returncode == 3
    assert daemon.of_type("SessionExecute") == [
        {"type": "SessionExecute", "session_id": SID, "code": "x + 1", "display": True},
        {"type": "SessionExecute", "session_id": SID, "code": "import sys; sys.exit(3)", "timeout_secs": 2.0}]


def test_session_run_json_and_an_ended_session(fake):
    ended = cell(4, timed_out=True, session={"id": SID, "alive": False, "end_reason": "timeout"})
    daemon = fake(v2(SessionExecute=[ended, failed("SessionExecute", "E5003", "session ended: timeout")]))
    proc = leeward("session", "run", "--session", SID, "--json", "while True: pass", socket=daemon.path)
    assert proc.returncode == cli.EXIT_TIMED_OUT
    assert json.loads(proc.stdout)["session"] == {"id": SID, "alive": False, "end_reason": "timeout"}
    proc = leeward("session", "run", "--session", SID, "1", socket=daemon.path)
    assert proc.returncode == cli.EXIT_LEEWARD_ERROR and "E5003" in proc.stderr and "timeout" in proc.stderr


def test_session_close_and_list(fake):
    summary = {"id": SID, "created_at": 1.0, "last_used_at": 2.0, "executions": 5, "busy": True, "expires_at": 3.0}
    daemon = fake({"SessionClose": ok("SessionClose"), "SessionList": ok("SessionList", sessions=[summary])})
    assert leeward("session", "close", "--session", SID, socket=daemon.path).returncode == 0
    assert json.loads(leeward("session", "close", "--session", SID, "--json", socket=daemon.path).stdout) == {
        "closed": SID}
    listed = leeward("session", "list", socket=daemon.path)
    assert listed.returncode == 0 and listed.stdout.startswith(f"{SID}  5 cell(s)  busy")
    assert json.loads(leeward("session", "list", "--json", socket=daemon.path).stdout) == [summary]
    assert [r["type"] for r in daemon.requests] == ["SessionClose", "SessionClose", "SessionList", "SessionList"]


def test_session_run_needs_a_session_id():
    proc = leeward("session", "run", "1")
    assert proc.returncode == 2 and "--session" in proc.stderr


# ---------------------------------------------------------------- exec --display, --collect, --json

def test_exec_display_sends_display_and_prints_results(fake):
    daemon = fake({"Execute": one_shot(stdout=b"hi\n", results=[{"main": True, "data": {"text/plain": "42"}}])})
    proc = leeward("exec", "--display", "--no-autostart", "print('hi'); 42", socket=daemon.path)
    assert (proc.returncode, proc.stdout) == (0, "hi\n42\n"), proc.stderr
    assert daemon.requests == [{"type": "Execute", "code": "print('hi'); 42", "display": True}]


def test_exec_collect_writes_files_under_out(fake, tmp_path):
    daemon = fake({"Execute": one_shot(files={"a.csv": b"\x00,1\n", "sub/dir/b.csv": b"b"})})
    out = tmp_path / "out"
    proc = leeward("exec", "--collect", "*.csv", "--collect", "sub/**", "--out", str(out), "x", socket=daemon.path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "a.csv").read_bytes() == b"\x00,1\n" and (out / "sub" / "dir" / "b.csv").read_bytes() == b"b"
    assert daemon.requests[0]["collect"] == ["*.csv", "sub/**"]
    proc = leeward("exec", "--collect", "*.csv", "--json", "x", socket=daemon.path)
    assert json.loads(proc.stdout)["files"]["a.csv"] == {"$bytes": "ACwxCg=="}


@pytest.mark.parametrize("name", ["../escape.txt", "/tmp/abs.txt", "a/../../b", "a//b", "./a", ""])
def test_exec_collect_refuses_names_outside_out(fake, tmp_path, name):
    daemon = fake({"Execute": one_shot(files={"fine.txt": b"ok", name: b"evil"})})
    out = tmp_path / "deep" / "out"
    proc = leeward("exec", "--collect", "*", "--out", str(out), "x", socket=daemon.path)
    assert proc.returncode == cli.EXIT_LEEWARD_ERROR and "refusing" in proc.stderr
    assert not (tmp_path / "deep" / "escape.txt").exists() and not (out / "fine.txt").exists()


def test_exec_collect_needs_out_or_json():
    proc = leeward("exec", "--collect", "*.csv", "x", "--no-autostart")
    assert proc.returncode != 0 and "--out" in proc.stderr


def test_collected_files_never_follow_a_symlink_out(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside)
    (out / "file").symlink_to(outside / "target")
    with pytest.raises(OSError):
        write_files({"link/x": b"evil"}, str(out))
    with pytest.raises(OSError):
        write_files({"file": b"evil"}, str(out))
    assert list(outside.iterdir()) == []
    assert write_files({"ok/y": b"fine"}, str(out)) == [os.path.join(str(out), "ok", "y")]


@pytest.mark.parametrize("name", ["..", "a/..", "/x", "a\x00b", "a/", "."])
def test_unsafe_names(name):
    with pytest.raises(UnsafeName):
        check_name(name)


def test_ping_json_shows_the_features(fake):
    daemon = fake({"Ping": {"type": "Pong", "success": True, "version": 2, "features": ["sessions"]}})
    pong = json.loads(leeward("ping", "--json", socket=daemon.path).stdout)
    assert pong["features"] == ["sessions"] and pong["version"] == 2 and pong["elapsed_ms"] >= 0


# ---------------------------------------------------------------- a real daemon

@pytest.mark.integration
def test_session_commands_against_the_daemon(daemon):
    with Leeward(daemon.socket_path) as sandbox:
        if not {"sessions", "display"} <= set(sandbox.features()):
            pytest.skip("the daemon does not list sessions and display in Pong.features (issue 13, S1/S2)")
    opened = leeward("session", "open", socket=daemon.socket_path)
    assert opened.returncode == 0, opened.stderr
    session_id = opened.stdout.strip()
    try:
        assert leeward("session", "run", "--session", session_id, "x = 41", socket=daemon.socket_path).stdout == ""
        proc = leeward("session", "run", "--session", session_id, "x + 1", socket=daemon.socket_path)
        assert (proc.returncode, proc.stdout) == (0, "42\n"), proc.stderr
        listed = json.loads(leeward("session", "list", "--json", socket=daemon.socket_path).stdout)
        assert [s["executions"] for s in listed if s["id"] == session_id] == [2]
    finally:
        assert leeward("session", "close", "--session", session_id, socket=daemon.socket_path).returncode == 0
    proc = leeward("session", "run", "--session", session_id, "x", socket=daemon.socket_path)
    assert proc.returncode == cli.EXIT_LEEWARD_ERROR and "E5003" in proc.stderr
