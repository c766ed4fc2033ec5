"""Malformed frames get a structured error or a clean close; the daemon never dies."""
import socket
import struct

import msgpack
import pytest

from libleeward import protocol

pytestmark = pytest.mark.integration


def exchange(daemon, raw: bytes) -> dict | None:
    """Sends raw bytes; returns the decoded response, or None if the daemon just closed."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(60)
        sock.connect(daemon.socket_path)
        sock.sendall(raw)
        header = sock.recv(4, socket.MSG_WAITALL)
        if len(header) < 4:
            return None
        (length,) = struct.unpack(">I", header)
        return protocol.decode_body(sock.recv(length, socket.MSG_WAITALL))


@pytest.mark.parametrize("raw, code", [
    (b"\x00\x00\x00\x00", "E1001"),
    (b"\xff\xff\xff\xff", "E1002"),
    (struct.pack(">I", 16 * 1024 * 1024 + 1), "E1002"),
])
def test_bad_lengths_are_refused_without_allocating(daemon, raw, code):
    response = exchange(daemon, raw)
    assert response == {"type": "Error", "success": False, "error": {"code": code, "message": response["error"]["message"]}}
    assert daemon.alive()


@pytest.mark.parametrize("body, code", [
    (b"\xc1\xc1\xc1", "E1003"),                          # not msgpack
    (msgpack.packb([1, 2, 3]), "E1004"),                 # not a map
    (msgpack.packb({"type": "Nope"}), "E1005"),
    (msgpack.packb({"no": "type"}), "E1005"),
    (msgpack.packb({1: 2}), "E1003"),                    # non-string keys
])
def test_undecodable_requests_get_structured_errors(daemon, body, code):
    response = exchange(daemon, struct.pack(">I", len(body)) + body)
    assert response["type"] == "Error" and response["success"] is False
    assert response["error"]["code"] == code
    assert daemon.alive()


@pytest.mark.parametrize("request_, code", [
    ({"type": "Execute"}, "E2009"),  # neither code nor argv
    ({"type": "Execute", "code": 5}, "E2002"),
    ({"type": "Execute", "code": "1", "timeout_secs": "10"}, "E2002"),
    ({"type": "Execute", "code": "1", "timeout_secs": -1}, "E2003"),
    ({"type": "Execute", "code": "1", "timeout_secs": float("nan")}, "E2003"),
    ({"type": "Execute", "code": "1", "timeout_secs": 0}, "E2003"),
    ({"type": "Execute", "code": "1", "timeout_secs": 1e300}, "E2003"),
    ({"type": "Execute", "code": "1", "memory_limit": 0}, "E2003"),
    ({"type": "Execute", "code": "1", "memory_limit": 2**63}, "E2003"),
    ({"type": "Execute", "code": "1", "memory_limit": True}, "E2002"),
    ({"type": "Execute", "code": "1", "mounts": "x"}, "E2002"),
    ({"type": "Execute", "code": "1", "mounts": [{"host": "/tmp"}]}, "E2001"),
    ({"type": "Execute", "code": "1", "env": {"A": 1}}, "E2002"),
    ({"type": "Execute", "code": "1", "files": {"/etc/x": b""}}, "E2005"),
    ({"type": "Execute", "code": "1", "bogus": 1}, "E2004"),
])
def test_invalid_execute_requests_get_validation_errors(daemon, request_, code):
    response = exchange(daemon, protocol.encode_frame(request_))
    assert response["type"] == "Execute" and response["success"] is False
    assert response["error"]["code"] == code, response
    assert daemon.alive()


def test_connection_survives_a_validation_error(daemon):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(60)
        sock.connect(daemon.socket_path)
        sock.sendall(protocol.encode_frame({"type": "Execute", "code": 5}) + protocol.encode_frame({"type": "Ping"}))
        responses = []
        for _ in range(2):
            (length,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
            responses.append(protocol.decode_body(sock.recv(length, socket.MSG_WAITALL)))
    assert [r["type"] for r in responses] == ["Execute", "Pong"]


def test_client_vanishing_mid_frame_and_mid_job_is_harmless(daemon):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(daemon.socket_path)
        sock.sendall(struct.pack(">I", 100) + b"\x81")  # promises 100 bytes, sends 1, leaves
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(daemon.socket_path)
        sock.sendall(protocol.encode_frame({"type": "Execute", "code": "import time; time.sleep(1)"}))
    assert daemon.execute("print('ok')").stdout == b"ok\n"
