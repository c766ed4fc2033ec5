"""The C `leeward` (cli/leeward.c), run as a user runs it, against a scripted fake daemon:
the requests its hot path sends, how it prints replies and Event frames, its exit
statuses, what it refuses, and that every other command line reaches the Python CLI."""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys

import pytest

from cli.build import ensure_built
from leeward import parse_size
from libleeward import protocol
from tests.bindings.fake_daemon import FakeDaemon

V1_PONG = {"type": "Pong", "success": True}


def pong(*features: str) -> dict:
    return {"type": "Pong", "success": True, "version": 2, "features": list(features)}


def result(**fields) -> dict:
    wire = {"exit_code": 0, "stdout": b"", "stderr": b"", "duration_ms": 1.0, "memory_peak": 0, "cpu_time_us": 0,
            "timed_out": False, "oom_killed": False, "stdout_truncated": False, "stderr_truncated": False,
            "denied_syscalls": [], "limits": "cgroup1"}
    return {"type": "Execute", "success": True, "result": {**wire, **fields}}


def refused(code: str, message: str) -> dict:
    return {"type": "Execute", "success": False, "error": {"code": code, "message": message}}


class ScriptedDaemon(FakeDaemon):
    """FakeDaemon whose Execute answer may be preceded by Event frames (`events`), or be
    raw bytes sent as a frame's body as they are (a malformed reply)."""

    def __init__(self, path: str, replies: dict, events: list[dict] = ()):
        self.events = list(events)
        super().__init__(path, replies)

    def _reply(self, conn: socket.socket, request: dict, reply: dict | bytes) -> None:
        if request.get("stream"):
            conn.sendall(b"".join(protocol.encode_frame(e) for e in self.events))
        if isinstance(reply, bytes):
            conn.sendall(len(reply).to_bytes(4, "big") + reply)
        else:
            conn.sendall(protocol.encode_frame(reply))


@pytest.fixture(scope="module")
def binary() -> str:
    return str(ensure_built())


@pytest.fixture
def scripted(tmp_path):
    daemons = []

    def start(replies: dict, events: list[dict] = ()) -> ScriptedDaemon:
        directory = tmp_path / "run"
        directory.mkdir(mode=0o700, exist_ok=True)
        daemons.append(ScriptedDaemon(str(directory / f"fake{len(daemons)}.sock"), replies, events))
        return daemons[-1]

    yield start
    for daemon in daemons:
        daemon.close()


def run_cli(binary: str, *args: str, socket_path: str | None = None, stdin: bytes = b"",
            timeout: float = 60) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}
    if socket_path:
        environ["LEEWARD_SOCKET"] = socket_path
    return subprocess.run([binary, *args], input=stdin, capture_output=True, env=environ, timeout=timeout)


# ---------------------------------------------------------------- requests

def test_exec_sends_every_option_as_the_protocol_names_it(binary, scripted, tmp_path):
    daemon = scripted({"Ping": V1_PONG, "Execute": result(stdout=b"ok\n")})
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\x00\n")
    given = tmp_path / "input.txt"
    given.write_bytes(b"line\n")
    proc = run_cli(binary, "exec", "--mount", "/srv/in:/data", "--mount", "/srv/out:/out:rw", "--timeout", "2.5",
                   "--memory", "1G", "--env", "A=b=c", "--env", "EMPTY=", f"--file=in.csv={data}",
                   "--stdin", str(given), "print('ok')", socket_path=daemon.path)
    assert (proc.returncode, proc.stdout) == (0, b"ok\n"), proc.stderr
    assert daemon.of_type("Execute") == [{
        "type": "Execute", "code": "print('ok')",
        "mounts": [{"host": "/srv/in", "sandbox": "/data", "ro": True},
                   {"host": "/srv/out", "sandbox": "/out", "ro": False}],
        "env": {"A": "b=c", "EMPTY": ""}, "files": {"in.csv": b"a,b\x00\n"}, "stdin": b"line\n",
        "timeout_secs": 2.5, "memory_limit": 1 << 30}]


@pytest.mark.parametrize("size", ["1024", "512k", "256M", "256m", "1G", "1.5GiB", "3KB", "2t", "7b", " 64 M "])
def test_sizes_are_read_as_the_python_binding_reads_them(binary, scripted, size):
    daemon = scripted({"Ping": V1_PONG, "Execute": result()})
    assert run_cli(binary, "exec", "--memory", size, "pass", socket_path=daemon.path).returncode == 0
    assert daemon.of_type("Execute")[0]["memory_limit"] == parse_size(size)


def test_code_from_a_script_or_stdin_and_stdin_from_ours(binary, scripted, tmp_path):
    daemon = scripted({"Ping": V1_PONG, "Execute": result()})
    script = tmp_path / "job.py"
    script.write_text("print(6 * 7)\n")
    assert run_cli(binary, "exec", "-f", str(script), socket_path=daemon.path).returncode == 0
    assert run_cli(binary, "exec", "-", socket_path=daemon.path, stdin=b"print('piped')").returncode == 0
    assert run_cli(binary, "exec", "--stdin", "-", "x", socket_path=daemon.path, stdin=b"in").returncode == 0
    sent = daemon.of_type("Execute")
    assert [r["code"] for r in sent] == ["print(6 * 7)\n", "print('piped')", "x"]
    assert sent[2]["stdin"] == b"in" and "stdin" not in sent[0]


def test_v2_fields_only_when_the_daemon_offers_them(binary, scripted):
    daemon = scripted({"Ping": pong("stream", "cancel"), "Execute": result()})
    assert run_cli(binary, "exec", "pass", socket_path=daemon.path).returncode == 0
    assert run_cli(binary, "exec", "--no-stream", "pass", socket_path=daemon.path).returncode == 0
    streamed, waited = daemon.of_type("Execute")
    assert streamed["stream"] is True and re.fullmatch(r"[0-9a-f]{32}", streamed["execution_id"])
    assert "stream" not in waited and re.fullmatch(r"[0-9a-f]{32}", waited["execution_id"])
    assert streamed["execution_id"] != waited["execution_id"]


def test_run_sends_argv_when_offered(binary, scripted):
    daemon = scripted({"Ping": pong("argv"), "Execute": result(stdout=b"hi\n")})
    proc = run_cli(binary, "run", "--env", "X=1", "--", "sh", "-c", "echo hi", "--not-ours", socket_path=daemon.path)
    assert (proc.returncode, proc.stdout) == (0, b"hi\n"), proc.stderr
    assert daemon.of_type("Execute") == [{"type": "Execute", "argv": ["sh", "-c", "echo hi", "--not-ours"],
                                          "env": {"X": "1"}}]


def test_run_without_argv_in_the_features_sends_nothing(binary, scripted):
    daemon = scripted({"Ping": pong("stream"), "Execute": result()})
    proc = run_cli(binary, "run", "--", "true", socket_path=daemon.path)
    assert proc.returncode == 125 and b"E2010" in proc.stderr and b"argv" in proc.stderr
    assert daemon.of_type("Execute") == []


# ---------------------------------------------------------------- replies

def test_events_are_printed_as_they_come_and_not_again(binary, scripted):
    events = [{"type": "Event", "execution_id": "x", "event": "stdout", "data": b"one "},
              {"type": "Event", "execution_id": "x", "event": "stderr", "data": b"warn\n"},
              {"type": "Event", "execution_id": "x", "event": "display", "data": {"main": True, "data": {}}},
              {"type": "Event", "execution_id": "x", "event": "stdout", "data": b"two\n"}]
    daemon = scripted({"Ping": pong("stream"), "Execute": result(stdout=b"one two\n", stderr=b"warn\n")}, events)
    proc = run_cli(binary, "exec", "pass", socket_path=daemon.path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"one two\n", b"warn\n")


@pytest.mark.parametrize("fields,status,note", [
    ({"exit_code": 3, "stderr": b"bye\n"}, 3, b"bye\n"),
    ({"exit_code": -9}, 128 + 9, b""),
    ({"exit_code": 300}, 300 & 0xFF, b""),
    ({"exit_code": -9, "timed_out": True}, 124, b"leeward: timed out\n"),
    ({"exit_code": -9, "oom_killed": True}, 128 + 9, b"leeward: killed: out of memory\n"),
    ({"exit_code": 0, "stdout_truncated": True}, 0, b"leeward: stdout truncated\n"),
    ({"exit_code": -9, "cancelled": True}, 130, b"leeward: cancelled\n"),
])
def test_exit_status_and_notes_follow_the_python_cli(binary, scripted, fields, status, note):
    daemon = scripted({"Ping": V1_PONG, "Execute": result(**fields)})
    proc = run_cli(binary, "exec", "pass", socket_path=daemon.path)
    assert (proc.returncode, proc.stderr) == (status, note)


def test_an_error_reply_is_leewards_failure(binary, scripted):
    daemon = scripted({"Ping": V1_PONG, "Execute": refused("E2006", "mount source '/etc' is not allowed")})
    proc = run_cli(binary, "exec", "--mount", "/etc:/data", "pass", socket_path=daemon.path)
    assert (proc.returncode, proc.stderr) == (125, b"leeward: E2006: mount source '/etc' is not allowed\n")


@pytest.mark.parametrize("body", [
    b"\xc1",                                   # a tag msgpack never uses
    b"\x80\xc0",                               # a map, then trailing bytes
    b"\x83\xa4type\xa7Execute",                # a map that promises more entries than it has
    b"\x82\xa4type\xa7Execute\xa7success\xc3",  # success without a result
    b"\x83\xa4type\xa7Execute\xa7success\xc3\xa6result\x81\xa6stdout\xc6\xff\xff\xff\xff",  # bin past the end
    b"\x91" * 100_000,                          # nested deeper than any reply
])
def test_a_malformed_reply_fails_cleanly(binary, scripted, body):
    daemon = scripted({"Ping": V1_PONG, "Execute": [body]})
    proc = run_cli(binary, "exec", "pass", socket_path=daemon.path)
    assert proc.returncode == 125 and re.match(rb"leeward: E(1003|4001): ", proc.stderr), proc.stderr


def test_mutated_replies_never_crash_it(binary, scripted):
    """Bytes flipped, cut or inserted anywhere in a valid reply: the reader stays inside
    the frame (a crash would be a negative status: killed by SIGSEGV/SIGABRT)."""
    valid = protocol.encode_frame(result(stdout=b"out", stderr=b"err", denied_syscalls=["ptrace"]))[4:]
    rng = random.Random(14)
    bodies = []
    for _ in range(150):
        body = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body))
            choice = rng.random()
            if choice < 0.6:
                body[at] = rng.randrange(256)
            elif choice < 0.8:
                del body[at:at + rng.randint(1, 8)]
            else:
                body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        bodies.append(bytes(body) or b"\xc0")
    daemon = scripted({"Ping": V1_PONG, "Execute": bodies + [bodies[-1]]})
    for body in bodies:
        proc = run_cli(binary, "exec", "pass", socket_path=daemon.path)
        assert proc.returncode >= 0, body
        if proc.returncode == 125:
            assert proc.stderr.startswith(b"leeward: E"), (body, proc.stderr)


def test_a_request_over_the_frame_limit_is_not_sent(binary, scripted, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (protocol.DEFAULT_MAX_FRAME + 1))
    daemon = scripted({"Ping": V1_PONG, "Execute": result()})
    proc = run_cli(binary, "exec", "--file", f"big={big}", "pass", socket_path=daemon.path)
    assert proc.returncode == 125 and b"E1002" in proc.stderr
    assert daemon.of_type("Execute") == []


def test_an_unreadable_input_names_it(binary, scripted, tmp_path):
    daemon = scripted({"Ping": V1_PONG, "Execute": result()})
    proc = run_cli(binary, "exec", "--stdin", str(tmp_path / "nope.txt"), "pass", socket_path=daemon.path)
    assert proc.returncode == 125 and b"nope.txt" in proc.stderr


# ---------------------------------------------------------------- the hand-over

def test_help_lists_the_new_flags_with_examples(binary):
    for args in (["--help"], ["exec", "--help"], ["run", "--help"]):
        proc = run_cli(binary, *args)
        assert proc.returncode == 0 and b"examples" in proc.stdout, args
    exec_help = run_cli(binary, "exec", "--help").stdout
    for flag in (b"--env", b"--stdin", b"--file NAME=PATH", b"--collect", b"--out", b"--no-stream"):
        assert flag in exec_help
    assert b"-- CMD" in run_cli(binary, "run", "--help").stdout


@pytest.mark.parametrize("args", [
    ["exec", "--memory", "lots", "x"], ["exec", "--timeout", "0", "x"], ["exec", "--mount", "/a:/b:rx", "x"],
    ["exec", "--file", "noequals", "x"], ["exec", "--bogus", "x"], ["exec", "--memory", "0", "x"],
    ["exec", "--memory", "1x", "x"], ["exec", "--memory", "-1", "x"], ["exec", "--timeout", "nan", "x"],
])
def test_usage_errors_are_the_python_clis(binary, args):
    proc = run_cli(binary, *args, "--no-autostart")
    assert proc.returncode == 2 and b"usage" in proc.stderr


def test_code_and_input_both_from_stdin_is_refused(binary):
    proc = run_cli(binary, "exec", "--stdin", "-", "-", "--no-autostart")
    assert proc.returncode != 0 and b"stdin" in proc.stderr


def test_other_commands_reach_the_python_cli(binary, scripted):
    daemon = scripted({"Ping": pong("stream"), "Execute": result(stdout=b"1\n")})
    proc = run_cli(binary, "exec", "--json", "print(1)", socket_path=daemon.path)
    assert proc.returncode == 0 and b'"stdout": "1\\n"' in proc.stdout
    assert run_cli(binary, "ping", socket_path=daemon.path).stdout.startswith(b"pong")


def test_no_daemon_is_the_python_clis_answer(binary, tmp_path):
    proc = run_cli(binary, "exec", "--no-autostart", "print(1)", socket_path=str(tmp_path / "leeward.sock"))
    assert proc.returncode == 125 and b"E1006" in proc.stderr and b"leeward.sock" in proc.stderr


def test_an_untrusted_socket_directory_is_refused(binary, tmp_path):
    """The per-user fallback directory (or any in a world-writable parent) must be ours
    and private: the C path refuses it like the Python client (which the hand-over runs)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(tmp_path, 0o777)
    os.chmod(shared, 0o755)  # group/other may enter: another user could swap the socket
    daemon = FakeDaemon(str(shared / "leeward.sock"), {"Ping": V1_PONG, "Execute": result()})
    try:
        proc = run_cli(binary, "exec", "--no-autostart", "pass", socket_path=daemon.path)
        assert proc.returncode == 125 and b"E1007" in proc.stderr
        assert daemon.of_type("Execute") == []
    finally:
        daemon.close()


def test_the_python_cli_is_the_one_that_built_it(binary):
    proc = run_cli(binary, "daemon", "--help")
    assert proc.returncode == 0 and b"leeward-daemon" in proc.stdout
    assert sys.executable.encode() in open(binary, "rb").read()
