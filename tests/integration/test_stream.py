"""Streaming on a real daemon (PROTOCOL-V2 "Streaming", issue 14 item 2): Event frames
arrive while the job runs, concatenate to exactly the result's outputs (caps and
*_truncated included), never come unasked, and a client that does not read stalls its
own job instead of growing the daemon's memory."""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import struct
import termios
import time
import uuid

import pytest

from libleeward import protocol
from libleeward.client import MAX_RESPONSE_FRAME
from tests.conftest import start_daemon

pytestmark = pytest.mark.integration

GATE_WAIT_SECS = 60  # how long a job waits for the test to open its gate; not a speed assertion
V1_RESULT_KEYS = {"exit_code", "stdout", "stderr", "duration_ms", "memory_peak", "cpu_time_us", "timed_out",
                  "oom_killed", "stdout_truncated", "stderr_truncated", "denied_syscalls", "limits"}


def streamed(daemon, code: str, on_event=None, **fields) -> tuple[list[dict], dict]:
    """(events, result) of one streaming Execute."""
    events: list[dict] = []

    def seen(event: dict) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    with daemon.connect() as conn:
        reply = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": code, "stream": True, **fields}),
                                 seen)
    assert reply["success"], reply
    return events, reply["result"]


def joined(events: list[dict], kind: str) -> bytes:
    return b"".join(e["data"] for e in events if e["event"] == kind)


def gated_job(gate: str) -> str:
    """Prints, then waits until the test opens the gate file (on seeing that print),
    then prints again: it ends normally only if its first output reached the client
    while it ran."""
    return (f"import os, sys, time\nprint('before the gate', flush=True)\n"
            f"deadline = time.monotonic() + {GATE_WAIT_SECS}\n"
            f"while not os.path.exists({gate!r}) and time.monotonic() < deadline:\n    time.sleep(0.01)\n"
            f"print('through' if os.path.exists({gate!r}) else 'never opened')\n")


def test_output_arrives_while_the_job_runs(daemon):
    name = f"gate-{uuid.uuid4().hex}"
    host_gate = os.path.join(daemon.allowed_dir, name)
    order: list[str] = []

    def open_gate(event: dict) -> None:
        order.append(event["event"])
        if not os.path.exists(host_gate):
            open(host_gate, "w").close()

    events, result = streamed(daemon, gated_job(f"/gate/{name}"), open_gate,
                              mounts=[{"host": daemon.allowed_dir, "sandbox": "/gate", "ro": True}])
    assert result["stdout"] == b"before the gate\nthrough\n", result
    assert events[0]["data"] == b"before the gate\n"  # the event that opened the gate came first
    assert joined(events, "stdout") == result["stdout"]


def test_chunks_concatenate_to_exactly_the_result(daemon):
    code = ("import sys\nfor i in range(2000):\n    sys.stdout.write(f'{i} ' * 50 + '\\n')\n"
            "    sys.stderr.write(f'e{i}\\n')\n    sys.stdout.flush()\nsys.stdout.buffer.write(bytes(range(256)))\n")
    events, result = streamed(daemon, code)
    assert result["exit_code"] == 0, result
    assert {e["event"] for e in events} == {"stdout", "stderr"}
    assert joined(events, "stdout") == result["stdout"] and len(result["stdout"]) > 200_000
    assert joined(events, "stderr") == result["stderr"] and result["stderr"].endswith(b"e1999\n")
    assert result["stdout_truncated"] is False and result["stderr_truncated"] is False


def test_caps_cut_the_events_as_they_cut_the_result(daemon):
    events, result = streamed(daemon, "import sys\nwhile True:\n    sys.stdout.write('x' * 10000)\n")
    assert result["stdout_truncated"] is True
    assert joined(events, "stdout") == result["stdout"] and len(result["stdout"]) == 1 << 20  # stdout_max


def test_every_event_names_the_execution_and_the_result_echoes_it(daemon):
    events, result = streamed(daemon, "print(1)\nimport sys; print(2, file=sys.stderr)", execution_id="my-job_1")
    assert events and {e["execution_id"] for e in events} == {"my-job_1"}
    assert all(e["type"] == "Event" for e in events)
    assert result["execution_id"] == "my-job_1" and result["cancelled"] is False


def test_the_daemon_makes_an_unguessable_id_when_none_is_given(daemon):
    ids = [streamed(daemon, "print(1)")[1]["execution_id"] for _ in range(2)]
    assert ids[0] != ids[1]
    assert all(len(i) == 22 and set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
               for i in ids)


def test_display_results_come_as_events_before_the_response(daemon):
    events, result = streamed(daemon, "display(1)\nprint('out')\n41 + 1", display=True)
    shown = [e["data"] for e in events if e["event"] == "display"]
    assert shown == result["results"] and [r["main"] for r in shown] == [False, True]
    assert events[-1]["event"] == "display"  # known at the end: the last frames before the response


def test_a_client_that_never_asks_never_sees_an_event(daemon):
    events: list[dict] = []
    with daemon.connect() as conn:
        v1 = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": "print('x' * 100000)"}),
                              events.append)
        v2 = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": "print(1)\n1", "display": True}),
                              events.append)
    assert events == []
    assert set(v1["result"]) == V1_RESULT_KEYS  # a v1 request's reply stays v1: no execution_id
    assert v2["result"]["execution_id"] and v2["result"]["cancelled"] is False


@pytest.mark.parametrize("bad, code", [(7, "E2002"), ("", "E2003"), ("a" * 65, "E2003"), ("a/b", "E2003"),
                                       ("é", "E2003")])
def test_an_execution_id_is_at_most_64_url_safe_characters(daemon, bad, code):
    with daemon.connect() as conn:
        reply = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": "1", "execution_id": bad}))
    assert reply["error"]["code"] == code


def test_stream_must_be_a_boolean(daemon):
    with daemon.connect() as conn:
        reply = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": "1", "stream": 1}))
    assert reply["error"]["code"] == "E2002"


# ---------------------------------------------------------------- a client that does not read

WRITTEN = 200 << 20
RSS_BOUND = 64 << 20  # growth of the daemon's RSS allowed while its client does not read
SAMPLES = 40
FILLED_SAMPLES = 5  # equal readings of our socket's queue: the pipeline up to the job is full


@pytest.fixture(scope="module")
def big_output_daemon(tmp_path_factory):
    # stdout_max above what the job writes: only backpressure can bound the daemon's memory.
    running = start_daemon(str(tmp_path_factory.mktemp("bigout")), "--set", "stdout_max=268435456",
                           "--set", "metrics_port=0", workers=1)
    yield running
    running.stop()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _queued(sock: socket.socket) -> int:
    """Bytes waiting in our receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _recv_frame(sock: socket.socket) -> dict:
    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
            assert chunk, "daemon closed the connection"
            buf += chunk
        return bytes(buf)

    return protocol.decode_body(exactly(protocol.parse_header(exactly(protocol.HEADER.size), MAX_RESPONSE_FRAME)))


def test_a_client_that_does_not_read_stalls_its_job_not_the_daemons_memory(big_output_daemon):
    daemon_pid = big_output_daemon.process.pid
    code = f"import sys\nblock = b'z' * 65536\nfor _ in range({WRITTEN // 65536}):\n    sys.stdout.buffer.write(block)\n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(big_output_daemon.socket_path)
    try:
        before = _rss(daemon_pid)
        sock.sendall(protocol.encode_frame({"type": "Execute", "code": code, "stream": True, "timeout_secs": 300}))
        # Not reading: wait until output reaches us and our queue stops growing (the
        # socket is full; only the daemon's own buffering could take more now).
        last, same = -1, 0
        while same < FILLED_SAMPLES:
            queued = _queued(sock)
            same = same + 1 if queued == last and queued > 0 else 0
            last = queued
            time.sleep(0.05)
        peak = before
        for _ in range(SAMPLES):
            peak = max(peak, _rss(daemon_pid))
            time.sleep(0.05)
        assert peak - before < RSS_BOUND, f"the daemon grew by {(peak - before) >> 20} MiB for a client that reads nothing"
        # Now read: everything arrives, in order, and matches the result.
        digest, streamed_bytes = hashlib.sha256(), 0
        while True:
            frame = _recv_frame(sock)
            if frame["type"] != "Event":
                break
            digest.update(frame["data"])
            streamed_bytes += len(frame["data"])
        result = frame["result"]
    finally:
        sock.close()
    assert result["exit_code"] == 0 and result["timed_out"] is False, {k: v for k, v in result.items() if k != "stdout"}
    assert streamed_bytes == len(result["stdout"]) == WRITTEN
    assert digest.digest() == hashlib.sha256(result["stdout"]).digest()


def test_the_python_client_streams_through_on_event(daemon):
    events: list[dict] = []
    with daemon.connect() as conn:
        result = conn.execute("print('a')\nimport sys; print('b', file=sys.stderr)", execution_id="client-1",
                              on_event=events.append)
    assert joined(events, "stdout") == result.stdout == b"a\n" and joined(events, "stderr") == result.stderr
    assert result.execution_id == "client-1" and result.cancelled is False
