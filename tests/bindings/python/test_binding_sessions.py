"""Sessions, rich results and files in the Python binding: the request shapes it sends and
how it decodes replies (against a scripted fake daemon), then the same API against a real
daemon, which runs once that daemon lists the feature in Pong's `features`."""
from __future__ import annotations

import pytest

from leeward import (
    DisplayResult,
    ExecutionResult,
    FileEntry,
    InvalidRequest,
    Leeward,
    LeewardError,
    Mount,
    SessionBusy,
    SessionEnded,
    SessionError,
    SessionLimit,
    SessionNotFound,
    SessionState,
    SessionSummary,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
SID = "k3J9x-AbCdEfGhIjKlMnOp"


def ok(kind: str, **fields) -> dict:
    return {"type": kind, "success": True, **fields}


def failed(kind: str, code: str, message: str) -> dict:
    return {"type": kind, "success": False, "error": {"code": code, "message": message}}


def cell(count: int, **result) -> dict:
    return ok("SessionExecute", result={
        "exit_code": 0, "stdout": b"", "stderr": b"", "duration_ms": 0.4, "memory_peak": 1 << 20,
        "cpu_time_us": 120, "timed_out": False, "oom_killed": False, "stdout_truncated": False,
        "stderr_truncated": False, "denied_syscalls": [], "limits": "cgroup", "execution_id": f"e{count}",
        "execution_count": count, "session": {"id": SID, "alive": True}, **result})


OPENED = ok("SessionOpen", session={"id": SID, "idle_timeout_secs": 300, "max_lifetime_secs": 3600})
FEATURES = ["sessions", "display", "collect", "files"]


def v2(**replies) -> dict:
    """A v2 daemon's replies: Pong lists the features (the binding asks before a cell
    that leaves display to it)."""
    return {"Ping": {"type": "Pong", "success": True, "version": 2, "features": FEATURES}, **replies}


# ---------------------------------------------------------------- a fake daemon: requests and decoding

def test_session_open_run_close_request_shapes(fake):
    daemon = fake(v2(SessionOpen=OPENED, SessionExecute=[cell(1), cell(2, results=[
        {"main": True, "data": {"text/plain": "2"}}])], SessionClose=ok("SessionClose")))
    with Leeward(daemon.path) as lw:
        with lw.session(mounts=[Mount("/srv/data", "/data")], env={"A": "1"}, memory_limit="512M",
                        idle_timeout=60, max_lifetime=600, files={"in.txt": "hi"}) as session:
            assert (session.id, session.idle_timeout_secs, session.max_lifetime_secs) == (SID, 300, 3600)
            first = session.run("x = 1")
            second = session.run("x + 1", timeout=5, stdin=b"\x00in", collect="*.csv")
        assert session.closed
    assert daemon.of_type("SessionOpen") == [{
        "type": "SessionOpen", "mounts": [{"host": "/srv/data", "sandbox": "/data", "ro": True}],
        "files": {"in.txt": b"hi"}, "env": {"A": "1"}, "memory_limit": 512 << 20,
        "idle_timeout_secs": 60.0, "max_lifetime_secs": 600.0}]
    assert daemon.of_type("SessionExecute") == [
        {"type": "SessionExecute", "session_id": SID, "code": "x = 1", "display": True},
        {"type": "SessionExecute", "session_id": SID, "code": "x + 1", "display": True, "timeout_secs": 5.0,
         "stdin": b"\x00in", "collect": ["*.csv"]}]
    assert daemon.of_type("SessionClose") == [{"type": "SessionClose", "session_id": SID}]
    assert first.text is None and first.results == [] and first.execution_count == 1
    assert second.text == "2" and second.execution_count == 2
    assert second.session == SessionState(id=SID, alive=True)


def test_a_session_with_defaults_sends_only_its_type(fake):
    # A daemon with sessions but without display: a v2 field is sent only when offered.
    daemon = fake({"Ping": {"type": "Pong", "success": True, "version": 2, "features": ["sessions"]},
                   "SessionOpen": OPENED, "SessionExecute": cell(1), "SessionClose": ok("SessionClose")})
    with Leeward(daemon.path) as lw, lw.session() as session:
        session.run("pass")
        session.run("pass")
    assert daemon.of_type("SessionOpen") == [{"type": "SessionOpen"}]
    assert daemon.of_type("SessionExecute") == [{"type": "SessionExecute", "session_id": SID, "code": "pass"}] * 2
    assert len(daemon.of_type("Ping")) == 1  # asked once per connection


def test_rich_results_decode_to_typed_values(fake):
    figure = {"main": False, "data": {"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}}
    table = {"main": True, "data": {"text/plain": "   a\n0  1", "text/html": "<table><tr><td>1</td></tr></table>",
                                    "application/json": {"a": [1]}}}
    shown = {"main": False, "data": {"text/plain": "'shown'", "text/markdown": "**b**"}}
    daemon = fake(v2(SessionOpen=OPENED, SessionClose=ok("SessionClose"), SessionExecute=cell(
        3, stdout=b"out\xff", results=[shown, figure, table], results_truncated=True,
        files={"out/a.csv": b"a\n1\n", "b.bin": b"\x00\xff"}, files_truncated=False)))
    with Leeward(daemon.path) as lw, lw.session() as session:
        result = session.run("df")
    assert isinstance(result, ExecutionResult)
    assert result.results == [DisplayResult(False, shown["data"]), DisplayResult(False, figure["data"]),
                              DisplayResult(True, table["data"])]
    assert result.main == result.results[2]
    assert result.text == "   a\n0  1" and result.html.startswith("<table>")
    assert result.png == PNG and isinstance(result.png, bytes)  # a figure is not the main result
    assert result.results[0].markdown == "**b**" and result.results[2].json == {"a": [1]}
    assert result.results_truncated is True
    assert result.files == {"out/a.csv": b"a\n1\n", "b.bin": b"\x00\xff"}
    assert result.stdout_bytes == b"out\xff" and result.stdout == "out\ufffd"
    wire = result.to_dict()
    assert wire["results"][1] == figure and wire["files"]["b.bin"] == b"\x00\xff"
    assert wire["execution_count"] == 3 and wire["session"] == {"id": SID, "alive": True, "end_reason": None}


def test_a_cell_that_ended_its_session(fake):
    daemon = fake(v2(SessionOpen=OPENED, SessionClose=failed("SessionClose", "E5003", "session ended: timeout"),
                     SessionExecute=cell(1, timed_out=True, exit_code=-9,
                                         session={"id": SID, "alive": False, "end_reason": "timeout"})))
    with Leeward(daemon.path) as lw, lw.session() as session:
        result = session.run("while True: pass", timeout=1)
    assert result.timed_out and result.session == SessionState(SID, False, "timeout")
    assert session.closed  # closing an ended session is not an error
    assert len(daemon.of_type("SessionClose")) == 1


def test_files_requests_and_replies(fake):
    daemon = fake({
        "SessionOpen": OPENED, "SessionClose": ok("SessionClose"),
        "FileWrite": ok("FileWrite", size=3),
        "FileRead": [ok("FileRead", data=b"\x00\xffz", size=3, truncated=False),
                     ok("FileRead", data=b"\x00", size=3, truncated=True)],
        "FileList": ok("FileList", entries=[{"name": "a.bin", "type": "file", "size": 3},
                                            {"name": "d", "type": "dir", "size": 0}]),
        "FileRemove": ok("FileRemove"),
    })
    with Leeward(daemon.path) as lw, lw.session() as session:
        assert session.files.write("a.bin", b"\x00\xffz") == 3
        whole = session.files.read("a.bin")
        part = session.files.read("a.bin", max_bytes=1)
        entries = session.files.list()
        session.files.remove("a.bin")
        session.files.write("t.txt", "é")
    assert whole == b"\x00\xffz" and (whole.size, whole.truncated) == (3, False)
    assert part == b"\x00" and (part.size, part.truncated) == (3, True)
    assert entries == [FileEntry("a.bin", "file", 3), FileEntry("d", "dir", 0)]
    requests = [r for r in daemon.requests if r["type"].startswith("File")]
    assert requests == [
        {"type": "FileWrite", "session_id": SID, "path": "a.bin", "data": b"\x00\xffz"},
        {"type": "FileRead", "session_id": SID, "path": "a.bin"},
        {"type": "FileRead", "session_id": SID, "path": "a.bin", "max_bytes": 1},
        {"type": "FileList", "session_id": SID, "path": "."},
        {"type": "FileRemove", "session_id": SID, "path": "a.bin"},
        {"type": "FileWrite", "session_id": SID, "path": "t.txt", "data": "é".encode()},
    ]


def test_session_list_and_attach(fake):
    summary = {"id": SID, "created_at": 1700000000.5, "last_used_at": 1700000001.0, "executions": 2,
               "busy": False, "expires_at": 1700000300.0}
    daemon = fake(v2(SessionList=ok("SessionList", sessions=[summary]), SessionExecute=cell(3)))
    with Leeward(daemon.path) as lw:
        assert lw.sessions() == [SessionSummary(SID, 1700000000.5, 1700000001.0, 2, False, 1700000300.0)]
        assert lw.attach(SID).run("1").execution_count == 3
    assert daemon.requests[0] == {"type": "SessionList"}
    assert daemon.of_type("SessionExecute")[0]["session_id"] == SID


def test_execute_with_display_and_collect_goes_through_call(fake):
    result = cell(1, results=[{"main": True, "data": {"text/plain": "2"}}], files={"o.txt": b"x"})["result"]
    del result["execution_count"], result["session"]
    daemon = fake({"Execute": ok("Execute", result=result)})
    with Leeward(daemon.path) as lw:
        answer = lw.execute("x = 1\nx + 1", display=True, collect=["*.txt"], timeout=3, memory="64M",
                            mounts=[("/srv", "/srv", False)])
    assert daemon.requests == [{"type": "Execute", "code": "x = 1\nx + 1", "display": True, "collect": ["*.txt"],
                                "timeout_secs": 3.0, "memory_limit": 64 << 20,
                                "mounts": [{"host": "/srv", "sandbox": "/srv", "ro": False}]}]
    assert answer.text == "2" and answer.files == {"o.txt": b"x"} and answer.execution_count is None


def test_plain_execute_sends_no_v2_field(fake):
    daemon = fake({"Execute": ok("Execute", result={"exit_code": 0, "stdout": b"1\n"})})
    with Leeward(daemon.path) as lw:
        assert lw.execute("print(1)").stdout == "1\n"
    assert not {"display", "collect"} & set(daemon.requests[0])


def test_features_of_a_v1_and_a_v2_daemon(fake):
    v1 = fake({"Ping": {"type": "Pong", "success": True, "version": 1}})
    v2 = fake({"Ping": {"type": "Pong", "success": True, "version": 2, "features": ["sessions", "display"]}})
    with Leeward(v1.path) as old, Leeward(v2.path) as new:
        assert old.features() == [] and new.features() == ["sessions", "display"]


@pytest.mark.parametrize("code,message,kind,retryable", [
    ("E5001", "no such session", SessionNotFound, False),
    ("E5002", "session busy", SessionBusy, True),
    ("E5003", "session ended: idle_expired", SessionEnded, False),
    ("E5004", "max_sessions_per_uid (4) reached", SessionLimit, False),
    ("E5999", "a newer session failure", SessionError, False),
    ("E2009", "give exactly one of code and argv", InvalidRequest, False),
    ("E2010", "feature 'collect' is disabled by config", InvalidRequest, False),
])
def test_session_error_codes_map_to_the_tree(fake, code, message, kind, retryable):
    daemon = fake(v2(SessionExecute=failed("SessionExecute", code, message)))
    with Leeward(daemon.path) as lw, pytest.raises(LeewardError) as info:
        lw.attach(SID).run("1")
    assert type(info.value) is kind and info.value.code == code and info.value.message == message
    assert info.value.retryable is retryable


@pytest.mark.parametrize("message,reason", [
    ("session ended: closed", "closed"), ("session k3J9 ended (lifetime_expired)", "lifetime_expired"),
    ("session ended: oom", "oom"), ("session ended", None),
])
def test_session_ended_names_its_reason(message, reason):
    assert SessionEnded("E5003", message).reason == reason


@pytest.mark.parametrize("kwargs", [{"idle_timeout": 0}, {"max_lifetime": -1}, {"memory_limit": "lots"}])
def test_bad_session_options_are_refused_before_sending(fake, kwargs):
    daemon = fake({"SessionOpen": OPENED})
    with Leeward(daemon.path) as lw, pytest.raises(ValueError):
        lw.session(**kwargs)
    assert daemon.requests == []


# ---------------------------------------------------------------- a real daemon

def _needs(sandbox: Leeward, *features: str) -> None:
    missing = [f for f in features if f not in sandbox.features()]
    if missing:
        pytest.skip(f"the daemon does not list {', '.join(missing)} in Pong.features (sessions are issue 13, S1/S2)")


@pytest.mark.integration
def test_state_persists_between_cells(sandbox):
    _needs(sandbox, "sessions", "display")
    with sandbox.session() as session:
        assert session.run("x = 1").text is None
        result = session.run("import math\nx + 1")
        assert result.text == "2" and result.execution_count == 2
        assert result.session.id == session.id and result.session.alive
        assert session.run("print(math.pi > 3, x)").stdout == "True 1\n"
        assert session.id in [s.id for s in sandbox.sessions()]
    with pytest.raises(SessionEnded) as info:
        sandbox.attach(session.id).run("x")
    assert info.value.reason == "closed"
    assert session.id not in [s.id for s in sandbox.sessions()]


@pytest.mark.integration
def test_two_sessions_do_not_share_state(sandbox):
    _needs(sandbox, "sessions")
    with sandbox.session() as a, sandbox.session() as b:
        a.run("secret = 41", display=False)
        seen = b.run("print('secret' in globals())", display=False)
    assert seen.stdout == "False\n"


@pytest.mark.integration
def test_files_in_and_out_of_a_session(sandbox):
    _needs(sandbox, "sessions", "files")
    with sandbox.session() as session:
        assert session.files.write("in.bin", b"\x00\xff" * 10) == 20
        assert session.run("print(len(open('in.bin', 'rb').read()))", display=False).stdout == "20\n"
        session.run("open('out.txt', 'w').write('made here')", display=False)
        assert session.files.read("out.txt") == b"made here"
        part = session.files.read("in.bin", max_bytes=4)
        assert part == b"\x00\xff\x00\xff" and part.truncated and part.size == 20
        assert {"in.bin", "out.txt"} <= {e.name for e in session.files.list()}
        session.files.remove("out.txt")
        assert "out.txt" not in {e.name for e in session.files.list(".")}
        with pytest.raises(InvalidRequest) as info:
            session.files.read("../etc/passwd")
        assert info.value.code == "E2005"


@pytest.mark.integration
def test_unknown_session_is_not_found(sandbox):
    _needs(sandbox, "sessions")
    with pytest.raises(SessionNotFound):
        sandbox.attach("no-such-session").run("1")


@pytest.mark.integration
def test_one_shot_display(sandbox):
    _needs(sandbox, "display")
    result = sandbox.execute("x = 20\ndisplay('a')\nx + 22", display=True)
    assert result.text == "42" and [r.main for r in result.results] == [False, True]
    assert sandbox.execute("1 + 1;", display=True).results == []


@pytest.mark.integration
def test_one_shot_collect(sandbox):
    _needs(sandbox, "collect")
    result = sandbox.execute("open('a.csv', 'wb').write(b'\\x00,1\\n'); open('b.txt', 'w').write('no')",
                             collect=["*.csv"])
    assert result.files == {"a.csv": b"\x00,1\n"}
