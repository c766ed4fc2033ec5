"""Property-based protocol fuzzing: any bytes, any msgpack map, get a structured error
(a stable code, a bounded message) or a clean close, and never a crash. Bounded to
seconds here; `make fuzz` runs it longer (LEEWARD_FUZZ_EXAMPLES)."""
import os
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from libleeward import messages, protocol
from libleeward.protocol import ErrorCode, ProtocolError
from tests.conftest import start_daemon

from . import leaks
from .conftest import stop_and_check

EXAMPLES = int(os.environ.get("LEEWARD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CODES = {code.value for code in ErrorCode}
FIELDS = ["type", "code", "mounts", "files", "timeout_secs", "memory_limit", "env", "stdin", "host", "sandbox", "ro"]

scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=40) \
    | st.binary(max_size=40)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)
keys = st.sampled_from(FIELDS) | st.text(max_size=20)
requests = st.fixed_dictionaries({"type": st.sampled_from(["Ping", "Status", "Execute", "Nope"]) | values},
                                 optional={"code": st.text(max_size=50) | values}) \
    .flatmap(lambda base: st.dictionaries(keys, values, max_size=8).map(lambda extra: {**extra, **base}))


def _check(error: ProtocolError) -> None:
    wire = error.to_wire()
    assert wire["code"] in CODES and len(wire["message"]) <= protocol.MAX_ERROR_MESSAGE + 64


@FUZZ
@given(requests)
def test_any_request_map_validates_or_raises_a_protocol_error(message):
    try:
        messages.parse_request(message)
    except ProtocolError as exc:
        _check(exc)


@FUZZ
@given(st.binary(max_size=200))
def test_any_body_decodes_or_raises_a_protocol_error(body):
    try:
        protocol.decode_body(body)
    except ProtocolError as exc:
        _check(exc)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    running = start_daemon(str(tmp_path_factory.mktemp("fuzz")), "--metrics-port", "0", workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    yield running
    stop_and_check(running, baseline)


def _exchange(path: str, raw: bytes) -> dict | None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(60)
        sock.connect(path)
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # a short frame ends here instead of stalling
        header = sock.recv(4, socket.MSG_WAITALL)
        if len(header) < 4:
            return None
        (length,) = struct.unpack(">I", header)
        return protocol.decode_body(sock.recv(length, socket.MSG_WAITALL))


frames = (requests.filter(lambda m: m.get("type") != "Execute").map(protocol.encode_frame)
          | st.binary(max_size=64).map(lambda body: struct.pack(">I", len(body)) + body)
          | st.binary(max_size=16))


@pytest.mark.integration
@FUZZ
@given(frames)
def test_the_daemon_answers_any_frame_with_a_structured_error_or_a_close(fuzzed, raw):
    response = _exchange(fuzzed.socket_path, raw)
    if response is not None and not response.get("success"):
        assert response["error"]["code"] in CODES
        assert len(response["error"]["message"]) <= protocol.MAX_ERROR_MESSAGE + 64
    assert fuzzed.process.poll() is None


@pytest.mark.integration
def test_the_daemon_still_runs_jobs_after_the_fuzzing(fuzzed):
    assert fuzzed.execute("print('still')").stdout == b"still\n"


# Execute / SessionExecute with the v2 fields (argv, stream, execution_id, display,
# collect): each either runs (bounded by its own short timeout) or is refused with a
# stable code; a streamed job's Event frames precede exactly one response.
OPEN_SESSION = "<the fixture's session>"
ids = st.text(alphabet="Aa0_-/. \x00ä", max_size=70) | values
argvs = st.lists(st.sampled_from(["/bin/echo", "echo", "/bin/", "/etc/passwd", "", "\x00", "-"])
                 | st.text(max_size=12), max_size=6) | values
v2_fields = st.fixed_dictionaries({}, optional={
    "argv": argvs, "code": st.just("print('fuzz')") | values, "stream": st.booleans() | values,
    "execution_id": ids, "display": st.booleans() | values,
    "collect": st.lists(st.text(max_size=12), max_size=3) | values, "stdin": st.binary(max_size=8) | values})
v2_requests = st.tuples(st.sampled_from(["Execute", "SessionExecute"]),
                        st.sampled_from([OPEN_SESSION, "nope"]) | values, v2_fields).map(
    lambda parts: {**parts[2], "type": parts[0], "timeout_secs": 2,
                   **({"session_id": parts[1]} if parts[0] == "SessionExecute" else {})})


@pytest.fixture(scope="module")
def fuzzed_session(fuzzed) -> str:
    with fuzzed.connect() as conn:
        return conn.request({"type": "SessionOpen"})["session"]["id"]


def _frames_until_response(path: str, message: dict) -> tuple[list[dict], dict | None]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(60)
        sock.connect(path)
        sock.sendall(protocol.encode_frame(message))
        events = []
        while True:
            header = sock.recv(4, socket.MSG_WAITALL)
            if len(header) < 4:
                return events, None
            (length,) = struct.unpack(">I", header)
            frame = protocol.decode_body(sock.recv(length, socket.MSG_WAITALL))
            if frame.get("type") != "Event":
                return events, frame
            events.append(frame)


@pytest.mark.integration
@FUZZ
@given(v2_requests)
def test_v2_execute_fields_run_or_get_a_stable_code(fuzzed, fuzzed_session, message):
    if message.get("session_id") == OPEN_SESSION:
        message["session_id"] = fuzzed_session
    events, response = _frames_until_response(fuzzed.socket_path, message)
    assert response is not None and response["type"] == message["type"]
    if response["success"]:
        result = response["result"]
        assert all(e["execution_id"] == result["execution_id"] for e in events)
        if message.get("stream") is True:
            assert b"".join(e["data"] for e in events if e["event"] == "stdout") == result["stdout"]
        else:
            assert events == []
    else:
        assert response["error"]["code"] in CODES, response
        assert len(response["error"]["message"]) <= protocol.MAX_ERROR_MESSAGE + 64
        assert events == []
    assert fuzzed.process.poll() is None
