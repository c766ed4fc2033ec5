"""A real daemon shared by the session tests, its socket open to every local user
(socket_mode 0o666) so a second uid can be shown another's sessions do not exist."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from libleeward import protocol
from tests.integration import sandbox_processes
from tests.integration.other_user import daemon_for_two_uids
from tests.integration.sandbox_processes import WAIT_SECS


def call(conn, message: dict) -> dict:
    """The daemon's reply, success or not."""
    return conn.raw_request(protocol.encode_frame(message))


def ok(conn, message: dict) -> dict:
    reply = call(conn, message)
    assert reply["success"], reply
    return reply


def open_session(conn, **fields) -> str:
    return ok(conn, {"type": "SessionOpen", **fields})["session"]["id"]


def cell(conn, session_id: str, code: str, **fields) -> dict:
    return ok(conn, {"type": "SessionExecute", "session_id": session_id, "code": code, **fields})["result"]


def session_processes(conn, session_id: str) -> tuple[set[str], set[int]]:
    """The session's limits box directories and host pids, found by a marker file only
    this session's /tmp holds (the sandbox's cgroup namespace hides its own path)."""
    marker = f"marker-{uuid.uuid4().hex}"
    cell(conn, session_id, f"open({marker!r}, 'w').close()")
    return sandbox_processes.find(marker)


def wait_for_end(conn, session_id: str) -> dict:
    """The error a session's next request gets once the daemon ended it by itself
    (watched through SessionList, which does not count as use)."""
    deadline = time.monotonic() + WAIT_SECS
    while time.monotonic() < deadline:
        if session_id not in [s["id"] for s in ok(conn, {"type": "SessionList"})["sessions"]]:
            return call(conn, {"type": "SessionExecute", "session_id": session_id, "code": "pass"})["error"]
        time.sleep(0.1)
    raise AssertionError("the session never ended")


@pytest.fixture(scope="module")
def shared_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root: a second uid and the host's view of the limits boxes")
    with daemon_for_two_uids("--set", "max_sessions=6", "--set", "max_sessions_per_uid=3",
                             "--set", "metrics_port=0") as running:
        yield running
