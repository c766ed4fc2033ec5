"""Issue 19 item 9 and issue 11 items 5-6: a client that starts a frame and stalls is
dropped after client_read_timeout_secs; one uid cannot hold more than
max_connections_per_uid; error replies stay small; tiny memory limits are refused."""
import socket
import time

import pytest

from libleeward import protocol
from libleeward.client import LeewardError
from tests.conftest import start_daemon

from . import leaks
from .conftest import status, stop_and_check

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(tmp_path, no_metrics):
    running = start_daemon(str(tmp_path), *no_metrics, "--set", "client_read_timeout_secs=1",
                           "--set", "max_connections_per_uid=4", workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    yield running
    stop_and_check(running, baseline)


def test_a_stalled_frame_is_dropped_but_an_idle_connection_is_not(limited):
    with socket.socket(socket.AF_UNIX) as stalled, socket.socket(socket.AF_UNIX) as idle:
        stalled.settimeout(leaks.WAIT_SECS)
        stalled.connect(limited.socket_path)
        idle.connect(limited.socket_path)
        stalled.sendall(b"\x00\x00")  # half a header, then nothing
        assert stalled.recv(1) == b"", "the daemon kept a stalled connection"
        time.sleep(1.5)  # past the read deadline: an idle connection must still be served
        idle.settimeout(30)
        idle.sendall(protocol.encode_frame({"type": "Ping"}))
        assert protocol.decode_body(idle.recv(4096)[4:])["type"] == "Pong"
    assert status(limited)["dropped_stalled_connections"] == 1


def test_connections_per_uid_are_capped_with_a_busy_error(limited):
    held = [limited.connect() for _ in range(3)]  # the fixture's baseline used none
    try:
        with limited.connect() as fourth:
            assert fourth.ping()["type"] == "Pong"
            with pytest.raises(LeewardError) as busy:
                limited.connect().ping()
            assert busy.value.code == "E3004" and "max_connections_per_uid" in busy.value.message
    finally:
        for conn in held:
            conn.close()
    assert leaks.poll(lambda: status(limited)["connections"] == 1)  # the Status connection itself


def test_error_messages_are_bounded(limited):
    keys = {f"k{i}": 1 for i in range(200_000)}
    with limited.connect() as conn:
        response = conn.raw_request(protocol.encode_frame({"type": "Ping", **keys}))
    error = response["error"]
    assert error["code"] == "E2004" and "and 199995 more" in error["message"]
    assert len(error["message"]) <= protocol.MAX_ERROR_MESSAGE


@pytest.mark.parametrize("memory_limit", [1, 4096, protocol.MIN_MEMORY_LIMIT - 1])
def test_memory_limits_below_the_minimum_are_refused(limited, memory_limit):
    with pytest.raises(LeewardError) as refused:
        limited.execute("print(1)", memory_limit=memory_limit)
    assert refused.value.code == "E2003" and str(protocol.MIN_MEMORY_LIMIT) in refused.value.message


def test_the_minimum_memory_limit_runs_a_job(limited):
    result = limited.execute("print('small')", memory_limit=protocol.MIN_MEMORY_LIMIT)
    assert (result.exit_code, result.stdout, result.oom_killed) == (0, b"small\n", False)
