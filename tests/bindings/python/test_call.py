"""Leeward.call over leeward_call / leeward_call_stream: any request as JSON, bytes as
{"$bytes": base64}, errors as the binding's exception tree, Event frames to a callback."""
from __future__ import annotations

import ctypes
import os
import socket

import pytest

from leeward import DaemonUnavailable, InvalidRequest, Leeward, LeewardError
from leeward_daemon.frontdoor.handlers import FEATURES, PROTOCOL_VERSION
from libleeward import jsonwire, protocol
from libleeward.abi import VERSION
from tests.bindings.fake_daemon import FakeDaemon


# ---------------------------------------------------------------- a real daemon

@pytest.mark.integration
def test_ping_status_and_execute_through_json(sandbox):
    # A v2 daemon's Pong names its protocol version and the features it offers (PROTOCOL-V2 "Discovery").
    assert sandbox.call({"type": "Ping"}) == {"type": "Pong", "success": True, "version": PROTOCOL_VERSION,
                                              "features": list(FEATURES)}
    status = sandbox.call({"type": "Status"})
    assert status["type"] == "Status" and status["version"] == VERSION

    reply = sandbox.call({"type": "Execute", "code": "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])",
                          "stdin": b"\x00\xffabc", "timeout_secs": 10})
    assert reply["type"] == "Execute" and reply["success"] is True
    assert reply["result"]["stdout"] == b"cba\xff\x00"
    assert reply["result"]["exit_code"] == 0


@pytest.mark.integration
def test_error_reply_raises_with_the_daemons_code(sandbox):
    with pytest.raises(InvalidRequest) as info:
        sandbox.call({"type": "Execute", "code": "print(1)", "timeout_secs": -1})
    assert info.value.code == "E2003"
    with pytest.raises(InvalidRequest) as info:
        sandbox.call({"type": "NoSuchRequest"})
    assert info.value.code == "E1005"
    assert sandbox.call({"type": "Ping"})["success"] is True  # the handle is still usable


@pytest.mark.integration
def test_a_daemon_that_does_not_stream_never_calls_on_event(sandbox):
    events = []
    reply = sandbox.call({"type": "Execute", "code": "print('no events')"}, on_event=events.append)
    assert reply["result"]["stdout"] == b"no events\n"
    assert events == []


@pytest.mark.integration
def test_closed_client_is_daemon_unavailable(daemon):
    sandbox = Leeward(daemon.socket_path)
    sandbox.close()
    with pytest.raises(DaemonUnavailable) as info:
        sandbox.call({"type": "Ping"})
    assert info.value.code == "E1006"


# ---------------------------------------------------------------- a fake daemon that streams

class FramesDaemon(FakeDaemon):
    """Answers every request with the same frames, in order (a streaming daemon's shape);
    records the requests as the table-driven fake does."""

    def __init__(self, path: str, frames: list[dict]):
        self.frames = frames  # before the base class starts serving
        super().__init__(path, {})

    def _reply(self, conn: socket.socket, request: dict, reply: dict) -> None:
        conn.sendall(b"".join(protocol.encode_frame(frame) for frame in self.frames))


@pytest.fixture
def socket_dir(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


def _events(execution_id: str) -> list[dict]:
    return [{"type": "Event", "execution_id": execution_id, "event": "stdout", "data": b"hel"},
            {"type": "Event", "execution_id": execution_id, "event": "stdout", "data": b"lo\n"}]


def test_events_reach_on_event_in_order_before_the_reply(socket_dir):
    final = {"type": "Execute", "success": True, "result": {"exit_code": 0, "stdout": b"hello\n"}}
    fake = FramesDaemon(str(socket_dir / "fake.sock"), _events("x1") + [final])
    seen = []
    try:
        with Leeward(fake.path) as sandbox:
            reply = sandbox.call({"type": "Execute", "code": "print('hello')", "stream": True},
                                 on_event=lambda event: seen.append((event, len(fake.requests))))
            # The connection is back in step: a second request gets its own frames.
            again = sandbox.call({"type": "Execute", "code": "print('hello')", "stream": True})
    finally:
        fake.close()
    assert [event for event, _ in seen] == _events("x1")
    assert reply == final and again == final
    assert fake.requests[0] == {"type": "Execute", "code": "print('hello')", "stream": True}
    assert b"".join(event["data"] for event, _ in seen) == reply["result"]["stdout"]


def test_events_before_an_error_reply(socket_dir):
    error = {"type": "Execute", "success": False, "error": {"code": "E3002", "message": "sandbox failed"}}
    fake = FramesDaemon(str(socket_dir / "fake.sock"), _events("x2") + [error])
    seen = []
    try:
        with Leeward(fake.path) as sandbox, pytest.raises(LeewardError) as info:
            sandbox.call({"type": "Execute", "code": "1", "stream": True}, on_event=seen.append)
    finally:
        fake.close()
    assert info.value.code == "E3002" and len(seen) == 2


def test_an_exception_in_on_event_is_raised_after_the_reply(socket_dir):
    final = {"type": "Execute", "success": True, "result": {"exit_code": 0}}
    fake = FramesDaemon(str(socket_dir / "fake.sock"), _events("x3") + [final])

    def refuse(event):
        raise KeyError(event["execution_id"])

    try:
        with Leeward(fake.path) as sandbox:
            with pytest.raises(KeyError, match="x3"):
                sandbox.call({"type": "Execute", "code": "1", "stream": True}, on_event=refuse)
            assert sandbox.call({"type": "Ping"}) == final  # the whole reply was read
    finally:
        fake.close()


# ---------------------------------------------------------------- refused before sending

@pytest.mark.parametrize("request_json,code", [
    (b"{not json", "E1003"),
    (b"\xff\xfe", "E1003"),
    (b"NaN", "E1003"),
    (b"[1, 2]", "E1004"),
    (b'"Ping"', "E1004"),
    (b'{"type": "Execute", "stdin": {"$bytes": "not base64!"}}', "E2002"),
    (b'{"type": "Execute", "stdin": {"$bytes": "AA==", "more": 1}}', "E2002"),
    (b'{"type": "Execute", "memory_limit": 36893488147419103232}', "E2003"),
])
def test_malformed_request_json_is_a_clean_error(socket_dir, request_json, code):
    fake = FramesDaemon(str(socket_dir / "fake.sock"), [{"type": "Pong", "success": True}])
    try:
        with Leeward(fake.path) as sandbox:
            ll = sandbox._ll
            reply = ctypes.POINTER(ctypes.c_char)(ctypes.c_char(b"x"))
            assert ll.leeward_call(sandbox._live_handle(), request_json, ctypes.byref(reply)) == -1
            assert ll.leeward_last_error_code() == code.encode()
            assert not reply  # *reply_json is NULL on failure
            assert sandbox.call({"type": "Ping"}) == {"type": "Pong", "success": True}
    finally:
        fake.close()
    assert fake.requests == [{"type": "Ping"}]  # nothing malformed was sent


def test_reply_json_is_ascii_and_bytes_are_tagged():
    text = jsonwire.dumps({"stdout": b"\x00\xff", "text": "é", "nested": [{"data": b"a"}]})
    assert text.isascii()
    assert jsonwire.loads(text) == {"stdout": b"\x00\xff", "text": "é", "nested": [{"data": b"a"}]}
    assert '{"$bytes": "AP8="}' in text


def test_no_daemon_is_daemon_unavailable(tmp_path):
    with pytest.raises(DaemonUnavailable):
        Leeward(os.fspath(tmp_path / "nobody.sock"))
