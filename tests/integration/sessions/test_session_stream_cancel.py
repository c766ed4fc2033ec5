"""Streaming and Cancel in session cells (PROTOCOL-V2 "Streaming", "New requests"): a
cell's output arrives while it runs; Cancel interrupts it (KeyboardInterrupt) and the
session lives on; a cell that ignores the interrupt is killed and ends the session."""
from __future__ import annotations

import threading

from libleeward import protocol
from tests.integration.other_user import as_other_user
from tests.integration.sandbox_processes import wait_until_gone
from tests.integration.sessions.conftest import call, cell, ok, open_session, session_processes

JOIN_SECS = 120.0  # bound on a cell thread's end; not a speed assertion
CELL_TIMEOUT = 100  # far past any wait here: a result that timed out means no Cancel came


def _cancelled_on_first_event(daemon, session_id: str, code: str, execution_id: str,
                              other_uid_first: bool = False) -> tuple[list[dict], dict]:
    """Runs a streaming cell; on its first event another connection cancels it (after
    another uid tried, if asked). Returns (events, reply)."""
    events: list[dict] = []
    tried: list[list[dict]] = []

    def on_event(event: dict) -> None:
        events.append(event)
        if len(events) == 1:
            if other_uid_first:
                tried.append(as_other_user(daemon.socket_path, [{"type": "Cancel", "execution_id": execution_id}]))
            with daemon.connect() as other:
                assert ok(other, {"type": "Cancel", "execution_id": execution_id})["found"] is True

    with daemon.connect() as conn:
        reply = conn.raw_request(protocol.encode_frame(
            {"type": "SessionExecute", "session_id": session_id, "code": code, "stream": True,
             "execution_id": execution_id, "timeout_secs": CELL_TIMEOUT}), on_event)
    if other_uid_first:
        assert tried == [[{"type": "Cancel", "success": True, "found": False}]]
    return events, reply


def test_cancel_interrupts_a_streaming_cell_and_the_session_lives(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "kept = 41")
        code = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"
        events, reply = _cancelled_on_first_event(shared_daemon, sid, code, "cell-1", other_uid_first=True)
        assert reply["success"], reply
        result = reply["result"]
        assert result["cancelled"] is True and result["timed_out"] is False
        assert result["error"]["name"] == "KeyboardInterrupt"
        assert result["session"] == {"id": sid, "alive": True}
        assert result["execution_id"] == "cell-1"
        assert b"".join(e["data"] for e in events if e["event"] == "stdout") == result["stdout"] == b"started\n"
        after = cell(conn, sid, "print(kept + 1)")
        assert after["stdout"] == b"42\n" and after["cancelled"] is False
        ok(conn, {"type": "SessionClose", "session_id": sid})


def test_a_cell_that_ignores_the_interrupt_is_killed_and_ends_the_session(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        boxes, pids = session_processes(conn, sid)
        code = ("import signal, time\nsignal.signal(signal.SIGINT, lambda *_: None)\n"
                "print('stubborn', flush=True)\nwhile True:\n    time.sleep(600)\n")
        _, reply = _cancelled_on_first_event(shared_daemon, sid, code, "cell-2")
        result = reply["result"]
        assert result["cancelled"] is True
        assert result["session"] == {"id": sid, "alive": False, "end_reason": "cancelled"}
        wait_until_gone(boxes, pids)
        after = call(conn, {"type": "SessionExecute", "session_id": sid, "code": "pass"})
        assert after["error"]["code"] == "E5003" and "cancelled" in after["error"]["message"]


def test_a_cell_cancelled_while_it_waits_its_turn_never_runs(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        queued: dict = {}

        def second_cell() -> None:
            with shared_daemon.connect() as other:
                queued["reply"] = call(other, {"type": "SessionExecute", "session_id": sid, "execution_id": "queued",
                                               "code": "open('ran', 'w').close()"})

        def on_event(_event: dict) -> None:
            if waiter.ident is not None:
                return  # a later event of the first cell (its KeyboardInterrupt's report)
            # The first cell is running; the second is sent and waits behind it.
            waiter.start()
            with shared_daemon.connect() as other:
                while not ok(other, {"type": "Cancel", "execution_id": "queued"})["found"]:
                    pass  # until the second cell's request has arrived
                ok(other, {"type": "Cancel", "execution_id": "first"})

        waiter = threading.Thread(target=second_cell, daemon=True)
        first = conn.raw_request(protocol.encode_frame(
            {"type": "SessionExecute", "session_id": sid, "execution_id": "first", "stream": True,
             "code": "import time\nprint('go', flush=True)\ntime.sleep(600)", "timeout_secs": CELL_TIMEOUT}),
            on_event)
        waiter.join(JOIN_SECS)
        assert first["result"]["cancelled"] is True
        second = queued["reply"]["result"]
        assert second["cancelled"] is True and second["execution_id"] == "queued"
        assert cell(conn, sid, "import os\nprint(os.path.exists('ran'))")["stdout"] == b"False\n"
        ok(conn, {"type": "SessionClose", "session_id": sid})
