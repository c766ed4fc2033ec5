"""Sessions on a real daemon (PROTOCOL-V2 "Session rules", issue 13's acceptance list)."""
from __future__ import annotations

import os
import signal
import tempfile

import pytest

from tests.conftest import start_daemon
from tests.integration.other_user import as_other_user
from tests.integration.sandbox_processes import wait_until_gone
from tests.integration.sessions.conftest import call, cell, ok, open_session, session_processes, wait_for_end

pytestmark = pytest.mark.integration


def test_discovery_lists_what_works(shared_daemon):
    with shared_daemon.connect() as conn:
        pong = conn.ping()
        status = conn.status()
    assert pong["version"] == 2 and {"sessions", "files"} <= set(pong["features"])
    assert status["protocol"] == {"version": 2, "features": pong["features"]}
    assert status["sessions"]["max"] == 6 and status["sessions"]["per_uid_max"] == 3


def test_globals_imports_and_files_persist(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        first = cell(conn, sid, "import json\nx = 41\nopen('kept.txt', 'w').write('kept')")
        second = cell(conn, sid, "print(json.dumps(x + 1), open('kept.txt').read())")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert second["stdout"] == b"42 kept\n"
    assert (first["execution_count"], second["execution_count"]) == (1, 2)
    assert second["session"] == {"id": sid, "alive": True}


def test_sessions_and_one_shot_jobs_never_share_state(shared_daemon):
    with shared_daemon.connect() as conn:
        a, b = open_session(conn), open_session(conn)
        cell(conn, a, "secret = 'a'\nopen('/tmp/a.txt', 'w').write('a')")
        seen_by_b = cell(conn, b, "import os\nprint('secret' in globals(), os.path.exists('/tmp/a.txt'))")
        one_shot = conn.execute("import os\nprint('secret' in globals(), os.path.exists('/tmp/a.txt'))")
        cell(conn, b, "secret = 'b'")
        still_a = cell(conn, a, "print(secret)")
        for sid in (a, b):
            ok(conn, {"type": "SessionClose", "session_id": sid})
    assert seen_by_b["stdout"] == b"False False\n"
    assert one_shot.stdout == b"False False\n"
    assert still_a["stdout"] == b"a\n"


def test_a_background_threads_later_output_goes_to_the_next_cell(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        started = cell(conn, sid, "import threading, time\ngo = threading.Event()\n"
                                  "def late():\n    go.wait()\n    print('late', flush=True)\n"
                                  "threading.Thread(target=late).start()\nprint('now')")
        nxt = cell(conn, sid, "go.set()\ntime.sleep(0.5)\nprint('next')")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert started["stdout"] == b"now\n"
    assert sorted(nxt["stdout"].splitlines()) == [b"late", b"next"]


def test_file_requests(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        assert ok(conn, {"type": "FileWrite", "session_id": sid, "path": "d/in.bin", "data": b"\x00\x01abc"})["size"] == 5
        seen = cell(conn, sid, "print(open('/tmp/d/in.bin', 'rb').read())")
        read = ok(conn, {"type": "FileRead", "session_id": sid, "path": "/tmp/d/in.bin"})
        cut = ok(conn, {"type": "FileRead", "session_id": sid, "path": "d/in.bin", "max_bytes": 2})
        listed = ok(conn, {"type": "FileList", "session_id": sid, "path": "d"})
        ok(conn, {"type": "FileRemove", "session_id": sid, "path": "d/in.bin"})
        after = ok(conn, {"type": "FileList", "session_id": sid, "path": "d"})
        refused = [call(conn, {"type": "FileRead", "session_id": sid, "path": path})["error"]["code"]
                   for path in ("../etc/passwd", "/etc/passwd", "d/../../etc/passwd", "/proc/self/environ")]
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert seen["stdout"] == b"b'\\x00\\x01abc'\n"
    assert (read["data"], read["size"], read["truncated"]) == (b"\x00\x01abc", 5, False)
    assert (cut["data"], cut["size"], cut["truncated"]) == (b"\x00\x01", 5, True)
    assert listed["entries"] == [{"name": "in.bin", "type": "file", "size": 5}]
    assert after["entries"] == []
    assert refused == ["E2005"] * 4


def test_a_symlink_planted_by_a_cell_is_never_followed(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "import os\nos.symlink('/etc', 'etc')\nos.symlink('/etc/hostname', 'host')\nos.mkdir('d')\n"
                        "os.symlink('/etc', 'd/up')")
        attempts = {path: call(conn, {"type": kind, "session_id": sid, "path": path, **extra})
                    for kind, path, extra in (("FileRead", "etc/passwd", {}), ("FileRead", "host", {}),
                                              ("FileWrite", "etc/evil", {"data": b"x"}),
                                              ("FileList", "d/up", {}), ("FileWrite", "host", {"data": b"x"}))}
        listed = ok(conn, {"type": "FileList", "session_id": sid, "path": "."})
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert {path: reply["success"] for path, reply in attempts.items()} == dict.fromkeys(attempts, False)
    assert {reply["error"]["code"] for reply in attempts.values()} == {"E2005"}
    types = {e["name"]: e["type"] for e in listed["entries"]}
    assert (types["etc"], types["host"], types["d"]) == ("symlink", "symlink", "dir")


def test_an_interrupted_cell_times_out_and_the_session_lives(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "kept = 1")
        slow = cell(conn, sid, "import time\nwhile True: time.sleep(0.01)", timeout_secs=0.5)
        after = cell(conn, sid, "print(kept)")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert slow["timed_out"] and slow["error"]["name"] == "KeyboardInterrupt"
    assert slow["session"] == {"id": sid, "alive": True}
    assert after["stdout"] == b"1\n"


def test_a_cell_that_ignores_its_interrupt_ends_the_session(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        boxes, pids = session_processes(conn, sid)
        stuck = cell(conn, sid, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
                     timeout_secs=0.5)
        later = call(conn, {"type": "SessionExecute", "session_id": sid, "code": "pass"})
    assert stuck["timed_out"]
    assert stuck["session"] == {"id": sid, "alive": False, "end_reason": "timeout"}
    assert later["error"]["code"] == "E5003" and "timeout" in later["error"]["message"]
    assert boxes and pids
    wait_until_gone(boxes, pids)


def test_out_of_memory_ends_the_session(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn, memory_limit=96 << 20)
        boxes, pids = session_processes(conn, sid)
        hog = cell(conn, sid, "x = bytearray(400 << 20)")
        later = call(conn, {"type": "FileList", "session_id": sid, "path": "."})
    assert hog["oom_killed"] and hog["session"] == {"id": sid, "alive": False, "end_reason": "oom"}
    assert later["error"]["code"] == "E5003" and "oom" in later["error"]["message"]
    wait_until_gone(boxes, pids)


@pytest.mark.parametrize("fields, reason", [({"idle_timeout_secs": 0.5}, "idle_expired"),
                                            ({"max_lifetime_secs": 1}, "lifetime_expired")])
def test_idle_ttl_and_lifetime_end_a_session(shared_daemon, fields, reason):
    with shared_daemon.connect() as conn:
        sid = open_session(conn, **fields)
        boxes, pids = session_processes(conn, sid)
        error = wait_for_end(conn, sid)
        listed = ok(conn, {"type": "SessionList"})["sessions"]
    assert error["code"] == "E5003" and reason in error["message"]
    assert sid not in [s["id"] for s in listed]
    wait_until_gone(boxes, pids)


def test_close_ends_a_session_and_leaves_nothing(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        boxes, pids = session_processes(conn, sid)
        ok(conn, {"type": "SessionClose", "session_id": sid})
        later = call(conn, {"type": "FileRead", "session_id": sid, "path": "x"})
    assert later["error"]["code"] == "E5003" and "closed" in later["error"]["message"]
    assert boxes and pids
    wait_until_gone(boxes, pids)


def test_caps_give_e5004(shared_daemon):
    with shared_daemon.connect() as conn:
        opened = [open_session(conn) for _ in range(3)]
        refused = call(conn, {"type": "SessionOpen"})
        one_shot = conn.execute("print('served')")  # sessions never hold one-shot jobs' sandboxes
        for sid in opened:
            ok(conn, {"type": "SessionClose", "session_id": sid})
    assert refused["error"]["code"] == "E5004"
    assert one_shot.stdout == b"served\n"


def test_unknown_and_malformed_ids_are_e5001(shared_daemon):
    with shared_daemon.connect() as conn:
        codes = [call(conn, {"type": "SessionExecute", "session_id": sid, "code": "pass"})["error"]["code"]
                 for sid in ("A" * 22, "not/an id", "x" * 200)]
    assert codes == ["E5001"] * 3


def test_only_the_owner_sees_a_session(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "mine = 1")
        requests = [{"type": "SessionExecute", "session_id": sid, "code": "print(mine)"},
                    {"type": "SessionClose", "session_id": sid},
                    {"type": "FileWrite", "session_id": sid, "path": "x", "data": b"x"},
                    {"type": "FileRead", "session_id": sid, "path": "x"},
                    {"type": "FileList", "session_id": sid, "path": "."},
                    {"type": "FileRemove", "session_id": sid, "path": "x"},
                    {"type": "SessionExecute", "session_id": "A" * 22, "code": "pass"}]
        replies = as_other_user(shared_daemon.socket_path, requests + [{"type": "SessionList"}])
        still_mine = cell(conn, sid, "print(mine)")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    errors = [reply["error"] for reply in replies[:-1]]
    assert [e["code"] for e in errors] == ["E5001"] * len(requests)
    assert len({e["message"] for e in errors}) == 1  # another's session reads exactly as an unknown one
    assert replies[-1]["sessions"] == []
    assert still_mine["stdout"] == b"1\n"


def test_daemon_stop_ends_every_session():
    if os.geteuid() != 0:
        pytest.skip("needs root for the host's view of the limits boxes")
    directory = tempfile.mkdtemp(prefix="leeward-sessions-stop-")
    daemon = start_daemon(directory, "--set", "metrics_port=0")
    try:
        with daemon.connect() as conn:
            a, b = open_session(conn), open_session(conn)
            found = [session_processes(conn, sid) for sid in (a, b)]
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(60)
    assert daemon.process.returncode == 0
    for boxes, pids in found:
        assert boxes and pids
        wait_until_gone(boxes, pids)
