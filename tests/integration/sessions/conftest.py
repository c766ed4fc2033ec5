"""A real daemon shared by the session tests, its socket open to every local user
(socket_mode 0o666) so a second uid can be shown another's sessions do not exist."""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
import uuid

import pytest

from libleeward import protocol
from tests.conftest import start_daemon

WAIT_SECS = 60.0  # bound on waiting for an end the daemon reaches by itself; not a speed assertion


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
    boxes, pids = set(), set()
    for procs in glob.glob("/sys/fs/cgroup/*/leeward/*/cgroup.procs"):
        try:
            with open(procs) as fh:
                members = {int(line) for line in fh if line.strip()}
        except FileNotFoundError:
            continue  # another sandbox's box, removed since the glob
        for pid in members:
            if os.path.exists(f"/proc/{pid}/root/tmp/{marker}"):
                boxes.add(os.path.dirname(procs))
                pids |= members
    return boxes, pids


def wait_until_gone(boxes: set[str], pids: set[int]) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while time.monotonic() < deadline:
        if not any(os.path.exists(b) for b in boxes) and not any(os.path.exists(f"/proc/{p}") for p in pids):
            return
        time.sleep(0.05)
    raise AssertionError(f"left behind: boxes {[b for b in boxes if os.path.exists(b)]}, "
                         f"pids {[p for p in pids if os.path.exists(f'/proc/{p}')]}")


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
    # /run is not writable by others: the daemon accepts a socket directory that is not private.
    directory = tempfile.mkdtemp(prefix="leeward-sessions-", dir="/run")
    os.chmod(directory, 0o755)
    running = start_daemon(directory, "--set", "socket_mode=0o666", "--set", "max_sessions=6",
                           "--set", "max_sessions_per_uid=3", "--set", "metrics_port=0")
    yield running
    running.stop()
    shutil.rmtree(directory, ignore_errors=True)
