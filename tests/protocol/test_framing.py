import struct

import pytest

from libleeward import protocol
from libleeward.protocol import ErrorCode, ProtocolError


def test_frame_is_big_endian_length_plus_msgpack():
    frame = protocol.encode_frame({"type": "Ping"})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert protocol.decode_body(frame[4:]) == {"type": "Ping"}


@pytest.mark.parametrize("length, code", [(0, ErrorCode.FRAME_EMPTY), (2**32 - 1, ErrorCode.FRAME_TOO_LARGE)])
def test_bad_lengths(length, code):
    with pytest.raises(ProtocolError) as err:
        protocol.parse_header(struct.pack(">I", length))
    assert err.value.code is code


def test_limit_is_configurable():
    assert protocol.parse_header(struct.pack(">I", 10), max_frame=10) == 10
    with pytest.raises(ProtocolError):
        protocol.parse_header(struct.pack(">I", 11), max_frame=10)


@pytest.mark.parametrize("body, code", [
    (b"\xc1", ErrorCode.FRAME_UNDECODABLE),
    (b"\x93\x01\x02\x03", ErrorCode.FRAME_NOT_A_MAP),
    (b"\x81\x01\x02", ErrorCode.FRAME_UNDECODABLE),  # int key
    (b"\x82\xa1a", ErrorCode.FRAME_UNDECODABLE),      # truncated
])
def test_bad_bodies(body, code):
    with pytest.raises(ProtocolError) as err:
        protocol.decode_body(body)
    assert err.value.code is code


def test_result_round_trips_and_ignores_unknown_fields():
    result = protocol.ExecutionResult(exit_code=2, stdout=b"o", stderr=b"e", error={"name": "E", "value": "", "traceback": ""})
    wire = protocol.execute_ok(result)
    assert wire["success"] is True and wire["result"]["stdout"] == b"o"
    back = protocol.ExecutionResult.from_wire({**wire["result"], "future_field": 1})
    assert back == result


def test_error_response_shape():
    error = ProtocolError(ErrorCode.OUT_OF_RANGE, "too big")
    assert protocol.error_response("Execute", error) == {
        "type": "Execute", "success": False, "error": {"code": "E2003", "message": "too big"}}
