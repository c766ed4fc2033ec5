"""Hostile clients of the v2 surfaces (PROTOCOL-V2 "Streaming", "New requests"): a
streaming client that goes away mid-frame, Cancel storms racing the jobs' ends, one
execution_id on several connections and uids, and a Cancel of a cell still waiting for
its session's turn. Each leaves the daemon serving, with nothing leaked."""
from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import struct
import threading

import pytest

from libleeward import protocol
from tests.conftest import start_daemon
from tests.integration.other_user import as_other_user, daemon_for_two_uids

from . import leaks
from .conftest import back_to_target, status, stop_and_check

JOIN_SECS = 120.0  # bound on a thread's end; not a speed assertion
CELL_TIMEOUT = 100  # far past any wait here
QUEUE_SECS = 60  # session_queue_secs: far past the wait for an answered Cancel
STOP_SECS = 120  # bound on the daemon's exit after SIGTERM; far below LONG_GRACE
LONG_GRACE = 600  # shutdown_grace_secs: a stop that waited for it would fail STOP_SECS
FLOOD = "import sys\nwhile True:\n    sys.stdout.write('x' * 60000)\n"


@pytest.fixture(scope="module")
def hurt():
    if os.geteuid() != 0:
        pytest.skip("needs root: a second uid")
    with daemon_for_two_uids("--set", f"session_queue_secs={QUEUE_SECS}", "--set", "metrics_port=0",
                             workers=1) as running:
        baseline = leaks.Baseline.take(running.process.pid)
        yield running
        assert leaks.poll(lambda: back_to_target(running))
        assert baseline.problems_while_running() == []
        stop_and_check(running, baseline)


def _connect(daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(JOIN_SECS)
    sock.connect(daemon.socket_path)
    return sock


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(protocol.encode_frame(message))


def _frame(sock: socket.socket) -> dict | None:
    """The next frame, Event or response; None at a close."""
    header = sock.recv(4, socket.MSG_WAITALL)
    if len(header) < 4:
        return None
    (length,) = struct.unpack(">I", header)
    return protocol.decode_body(sock.recv(length, socket.MSG_WAITALL))


def _reply(sock: socket.socket) -> dict | None:
    """The response after any Event frames; None at a close."""
    frame = _frame(sock)
    while frame is not None and frame.get("type") == "Event":
        frame = _frame(sock)
    return frame


def _ask(daemon, message: dict) -> dict:
    with _connect(daemon) as sock:
        _send(sock, message)
        return _reply(sock)


def _open_session(daemon) -> str:
    return _ask(daemon, {"type": "SessionOpen"})["session"]["id"]


def test_a_streaming_client_gone_mid_frame_leaves_its_job_ended_and_nothing_else(hurt):
    with _connect(hurt) as sock:
        _send(sock, {"type": "Execute", "code": FLOOD, "stream": True, "timeout_secs": CELL_TIMEOUT})
        assert len(sock.recv(10, socket.MSG_WAITALL)) == 10  # inside the first Event frame
    assert leaks.poll(lambda: back_to_target(hurt))
    assert _ask(hurt, {"type": "Execute", "code": "print('served')"})["result"]["stdout"] == b"served\n"


def test_a_session_outlives_a_streaming_client_gone_mid_frame(hurt):
    sid = _open_session(hurt)
    _ask(hurt, {"type": "SessionExecute", "session_id": sid, "code": "kept = 41"})
    with _connect(hurt) as sock:
        _send(sock, {"type": "SessionExecute", "session_id": sid, "code": FLOOD, "stream": True,
                     "timeout_secs": CELL_TIMEOUT})
        assert len(sock.recv(10, socket.MSG_WAITALL)) == 10
    after = _ask(hurt, {"type": "SessionExecute", "session_id": sid, "code": "print(kept + 1)"})["result"]
    assert after["stdout"] == b"42\n" and after["session"] == {"id": sid, "alive": True}
    assert _ask(hurt, {"type": "SessionClose", "session_id": sid})["success"]


def test_a_cell_cancelled_in_its_sessions_queue_is_answered_while_the_cell_ahead_runs(hurt):
    """Before: the cancelled cell waited for the running one (or session_queue_secs,
    then E5002) before its answer."""
    sid = _open_session(hurt)
    with _connect(hurt) as first:
        _send(first, {"type": "SessionExecute", "session_id": sid, "execution_id": "ahead", "stream": True,
                      "code": "import time\nprint('go', flush=True)\ntime.sleep(600)", "timeout_secs": CELL_TIMEOUT})
        assert _frame(first)["type"] == "Event"  # its first output: it runs
        queued: dict = {}

        def second_cell() -> None:
            queued["reply"] = _ask(hurt, {"type": "SessionExecute", "session_id": sid, "execution_id": "behind",
                                          "code": "open('ran', 'w').close()"})

        waiter = threading.Thread(target=second_cell, daemon=True)
        waiter.start()
        while not _ask(hurt, {"type": "Cancel", "execution_id": "behind"})["found"]:
            pass  # until the second cell's request has arrived
        waiter.join(JOIN_SECS)
        still_running = _ask(hurt, {"type": "SessionList"})["sessions"][0]["busy"]
        assert _ask(hurt, {"type": "Cancel", "execution_id": "ahead"})["found"] is True
        ahead = _reply(first)
    assert queued["reply"]["success"], queued["reply"]
    second = queued["reply"]["result"]
    assert second["cancelled"] is True and second["execution_id"] == "behind"
    assert second["session"] == {"id": sid, "alive": True}
    assert still_running is True and ahead["result"]["cancelled"] is True
    ran = _ask(hurt, {"type": "SessionExecute", "session_id": sid, "code": "import os\nprint(os.path.exists('ran'))"})
    assert ran["result"]["stdout"] == b"False\n"
    assert _ask(hurt, {"type": "SessionClose", "session_id": sid})["success"]


def test_cancel_storms_racing_the_jobs_ends_get_coherent_answers(hurt):
    ids = [f"storm-{n}" for n in range(4)]

    def job(n: int) -> dict:
        return _ask(hurt, {"type": "Execute", "code": "print(1)", "execution_id": ids[n % len(ids)]})

    def cancel(n: int) -> dict:
        return _ask(hurt, {"type": "Cancel", "execution_id": ids[n % len(ids)]})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        jobs = [pool.submit(job, n) for n in range(24)]
        cancels = [pool.submit(cancel, n) for n in range(120)]
        job_replies = [f.result() for f in jobs]
        cancel_replies = [f.result() for f in cancels]
    assert all(reply == {"type": "Cancel", "success": True, "found": reply["found"]} for reply in cancel_replies)
    for reply in job_replies:
        if reply["success"]:
            assert reply["result"]["execution_id"] in ids and isinstance(reply["result"]["cancelled"], bool)
        else:  # the same id already running for this uid
            assert reply["error"]["code"] == "E2003", reply
    assert leaks.poll(lambda: back_to_target(hurt))


def test_one_execution_id_in_two_uids_at_once_is_two_jobs(hurt):
    with _connect(hurt) as mine:
        _send(mine, {"type": "Execute", "execution_id": "shared", "timeout_secs": CELL_TIMEOUT,
                     "code": "import time\nprint('mine', flush=True)\ntime.sleep(600)", "stream": True})
        assert _frame(mine)["type"] == "Event"  # its first output: it runs
        theirs = as_other_user(hurt.socket_path, [
            {"type": "Cancel", "execution_id": "shared"},
            {"type": "Execute", "execution_id": "shared", "code": "print('theirs')"},
            {"type": "Cancel", "execution_id": "shared"}])
        assert theirs[0] == theirs[2] == {"type": "Cancel", "success": True, "found": False}
        assert theirs[1]["result"]["stdout"] == b"theirs\n" and theirs[1]["result"]["cancelled"] is False
        assert _ask(hurt, {"type": "Cancel", "execution_id": "shared"})["found"] is True
        result = _reply(mine)["result"]
    assert result["cancelled"] is True and result["stdout"] == b"mine\n"


def test_streaming_clients_that_never_read_hold_no_sandbox_past_their_jobs(hurt):
    """Each stalls only its own job (until its timeout); the sandbox goes back to the
    pool while the reply still waits for its reader, and others are served meanwhile."""
    readers = []
    try:
        for _ in range(8):
            sock = _connect(hurt)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            _send(sock, {"type": "Execute", "code": FLOOD, "stream": True, "timeout_secs": 2})
            readers.append(sock)
        assert _ask(hurt, {"type": "Execute", "code": "print('served')"})["result"]["stdout"] == b"served\n"
        assert leaks.poll(lambda: back_to_target(hurt))  # no reader has read a byte yet
        with hurt.connect() as conn:
            assert conn.status()["connections"] >= len(readers) + 1
    finally:
        for sock in readers:
            sock.close()
    with hurt.connect() as conn:
        assert leaks.poll(lambda: conn.status()["connections"] == 1)


def test_a_reply_nobody_reads_does_not_hold_the_shutdown(tmp_path):
    """Before: SIGTERM waited shutdown_grace_secs (then 15 s more) for a connection whose
    job was over and whose client never read its reply."""
    running = start_daemon(str(tmp_path), "--set", "metrics_port=0", "--set", f"shutdown_grace_secs={LONG_GRACE}",
                           workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    try:
        with _connect(running) as stuck:
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            _send(stuck, {"type": "Execute", "code": FLOOD, "stream": True, "timeout_secs": 2})
            assert leaks.poll(lambda: back_to_target(running))  # its job is over; its reply waits
            baseline.watch()
            running.process.terminate()
            running.process.wait(STOP_SECS)
    finally:
        running.stop()
    assert running.process.returncode == 0, running.log()[-4000:]
    assert baseline.problems_after_stop(running.socket_path) == []


def test_a_job_cancelled_while_it_waits_for_a_sandbox_is_answered_at_once(tmp_path):
    """Before: the Cancel found the job, but its reply waited until a sandbox was built
    for it (here never: the zygote is stopped) and only then killed it. Now the reply
    comes while nothing can be built, the job never ran, and the sandbox built later is
    served to the next request, not lost."""
    running = start_daemon(str(tmp_path), "--set", "metrics_port=0", workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    zygote, = leaks.children(running.process.pid)
    try:
        assert leaks.poll(lambda: status(running)["pool"]["idle"] == 1)
        os.kill(zygote, signal.SIGSTOP)  # no sandbox can be built: the second job waits
        with _connect(running) as busy, _connect(running) as waiting, _connect(running) as canceller:
            _send(busy, {"type": "Execute", "code": "import time; time.sleep(600)", "execution_id": "busy"})
            assert leaks.poll(lambda: status(running)["pool"]["busy"] == 1)
            _send(waiting, {"type": "Execute", "code": "open('/tmp/ran', 'w')", "execution_id": "queued"})
            assert leaks.poll(lambda: status(running)["pool"]["waiting"] == 1)
            _send(canceller, {"type": "Cancel", "execution_id": "queued"})
            assert _frame(canceller) == {"type": "Cancel", "success": True, "found": True}
            reply = _frame(waiting)  # while the zygote is still stopped
            assert reply["success"] and reply["result"]["cancelled"] is True, reply
            assert reply["result"]["exit_code"] == -signal.SIGKILL and reply["result"]["duration_ms"] == 0
            assert status(running)["pool"]["waiting"] == 0
            os.kill(zygote, signal.SIGCONT)
            _send(canceller, {"type": "Cancel", "execution_id": "busy"})
            assert _frame(canceller)["found"] is True
            assert _frame(busy)["result"]["cancelled"] is True
        assert running.execute("print(2)").stdout == b"2\n"
        assert leaks.poll(lambda: back_to_target(running))
    finally:
        os.kill(zygote, signal.SIGCONT)
        stop_and_check(running, baseline)
