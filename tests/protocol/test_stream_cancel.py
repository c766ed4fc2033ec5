"""The wire shape of streaming and cancel (PROTOCOL-V2 "Streaming", "New requests"):
`stream` and `execution_id` on Execute and SessionExecute, Cancel, Event frames, and a
v1 request's result without the v2 keys."""
from __future__ import annotations

import pytest

from libleeward.messages import parse_request
from libleeward.protocol import Cancel, Execute, ExecutionResult, ProtocolError, event, execute_to_wire
from libleeward.session_requests import SessionExecute


def test_stream_and_execution_id_parse_on_execute_and_session_execute():
    execute = parse_request({"type": "Execute", "code": "1", "stream": True, "execution_id": "a-B_9"})
    cell = parse_request({"type": "SessionExecute", "session_id": "s", "code": "1", "stream": True,
                          "execution_id": "x" * 64})
    assert isinstance(execute, Execute) and execute.stream and execute.execution_id == "a-B_9"
    assert isinstance(cell, SessionExecute) and cell.stream and cell.execution_id == "x" * 64


def test_only_v2_fields_make_a_v2_execute():
    assert not Execute(code="1", timeout_secs=1.0, env={"A": "b"}, stdin=b"x").is_v2
    assert Execute(code="1", stream=True).is_v2
    assert Execute(code="1", execution_id="id").is_v2
    assert Execute(code="1", display=True).is_v2
    assert Execute(code="1", collect=("*.csv",)).is_v2


def test_execute_to_wire_round_trips_the_new_fields():
    request = Execute(code="1", stream=True, execution_id="job")
    assert parse_request(execute_to_wire(request)) == request
    assert "stream" not in execute_to_wire(Execute(code="1"))


@pytest.mark.parametrize("message, code", [
    ({"type": "Cancel"}, "E2001"),
    ({"type": "Cancel", "execution_id": None}, "E2002"),
    ({"type": "Cancel", "execution_id": b"id"}, "E2002"),
    ({"type": "Cancel", "execution_id": ""}, "E2003"),
    ({"type": "Cancel", "execution_id": "x" * 65}, "E2003"),
    ({"type": "Cancel", "execution_id": "a.b"}, "E2003"),
    ({"type": "Cancel", "execution_id": "ok", "extra": 1}, "E2004"),
    ({"type": "Execute", "code": "1", "stream": "yes"}, "E2002"),
])
def test_malformed_stream_and_cancel_fields(message, code):
    with pytest.raises(ProtocolError) as caught:
        parse_request(message)
    assert caught.value.code.value == code


def test_cancel_parses():
    assert parse_request({"type": "Cancel", "execution_id": "job-1"}) == Cancel("job-1")


def test_a_result_without_an_execution_id_has_no_v2_keys():
    v1 = ExecutionResult(exit_code=0).to_wire()
    v2 = ExecutionResult(exit_code=0, execution_id="job", cancelled=True).to_wire()
    assert "execution_id" not in v1 and "cancelled" not in v1
    assert v2["execution_id"] == "job" and v2["cancelled"] is True
    assert ExecutionResult.from_wire(v2).cancelled is True


def test_event_frames():
    assert event("job", "stdout", b"x") == {"type": "Event", "execution_id": "job", "event": "stdout", "data": b"x"}
