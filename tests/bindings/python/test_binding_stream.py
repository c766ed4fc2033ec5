"""Streaming and cancel in the Python binding: Leeward.stream() / Session.stream()
(an Execution: events, result, cancel), on_stdout/on_stderr callbacks, Leeward.cancel(),
against a real daemon; and a daemon that does not stream, against the fake."""
from __future__ import annotations

import os
import uuid

import pytest

from leeward import DisplayResult, Event, Execution, Leeward

JOB = "import sys\nprint('out 1', flush=True)\nprint('err', file=sys.stderr, flush=True)\nprint('out 2')\n"


def test_callbacks_get_the_output_as_it_arrives(sandbox):
    out, err = [], []
    result = sandbox.execute(JOB, on_stdout=out.append, on_stderr=err.append)
    assert b"".join(out) == result.stdout_bytes == b"out 1\nout 2\n"
    assert b"".join(err) == result.stderr_bytes == b"err\n"
    assert result.execution_id and result.cancelled is False


def test_stream_yields_events_then_the_result(sandbox):
    run = sandbox.stream(JOB + "7 * 6", display=True, execution_id="py-1")
    assert isinstance(run, Execution) and run.execution_id == "py-1"
    events = list(run)
    result = run.result()
    assert all(isinstance(e, Event) and e.execution_id == "py-1" for e in events)
    assert "".join(e.text for e in events if e.kind == "stdout") == result.stdout == "out 1\nout 2\n"
    assert [e.data for e in events if e.kind == "display"] == [DisplayResult(True, {"text/plain": "42"})]
    assert result.execution_id == "py-1"


def test_cancel_stops_a_streaming_job_from_the_iterating_thread(daemon):
    with Leeward(daemon.socket_path) as lw:
        run = lw.stream("import time\nprint('started', flush=True)\ntime.sleep(600)", timeout=120)
        for event in run:
            assert event.text == "started\n"
            assert run.cancel() is True  # e.g. on KeyboardInterrupt
        result = run.result()
        assert result.cancelled is True and result.exit_code < 0
        assert lw.cancel(run.execution_id) is False  # over
        assert lw.execute("print('usable')").stdout == "usable\n"


def test_a_with_block_left_early_cancels_the_job(daemon):
    with Leeward(daemon.socket_path) as lw:
        with pytest.raises(RuntimeError):
            with lw.stream("import time\nprint('x', flush=True)\ntime.sleep(600)", timeout=120) as run:
                next(iter(run))
                raise RuntimeError("the caller gave up")
        assert run.result().cancelled is True


def test_a_session_cell_cancelled_gets_keyboard_interrupt_and_the_session_lives(daemon):
    with Leeward(daemon.socket_path) as lw, lw.session() as session:
        session.run("kept = 1")
        run = session.stream("import time\nprint('in', flush=True)\ntime.sleep(600)", timeout=120)
        next(iter(run))
        assert run.cancel() is True
        result = run.result()
        assert result.cancelled is True and result.error["name"] == "KeyboardInterrupt"
        assert result.session.alive is True
        out = []
        assert session.run("print(kept)", on_stdout=out.append).stdout == "1\n" and out == [b"1\n"]


def test_cancel_from_a_callback_while_execute_blocks_on_the_same_leeward(daemon):
    gate = f"/tmp/never-{uuid.uuid4().hex}"
    with Leeward(daemon.socket_path) as lw:
        seen: list[bytes] = []

        def on_stdout(chunk: bytes) -> None:
            seen.append(chunk)
            assert lw.cancel("blocking") is True  # the same Leeward, busy with this job

        result = lw.execute(f"import os, time\nprint('go', flush=True)\nwhile not os.path.exists({gate!r}): "
                            "time.sleep(0.01)", on_stdout=on_stdout, execution_id="blocking", timeout=120)
    assert seen == [b"go\n"] and result.cancelled is True
    assert not os.path.exists(gate)


# ---------------------------------------------------------------- a daemon that does not stream

V1_RESULT = {"exit_code": 0, "stdout": b"all at once\n", "stderr": b"e", "duration_ms": 1.0, "memory_peak": 1,
             "cpu_time_us": 1, "timed_out": False, "oom_killed": False, "stdout_truncated": False,
             "stderr_truncated": False, "denied_syscalls": [], "limits": "rlimit"}


def test_a_daemon_without_stream_replays_the_output_at_the_end(fake):
    daemon = fake({"Ping": {"type": "Pong", "success": True, "version": 2, "features": ["display"]},
                   "Execute": {"type": "Execute", "success": True, "result": V1_RESULT}})
    with Leeward(daemon.path) as lw:
        out, err = [], []
        result = lw.execute("print(1)", on_stdout=out.append, on_stderr=err.append)
        run = lw.stream("print(1)")
        events = [(e.kind, e.data) for e in run]
        assert run.result().stdout == "all at once\n" and run.cancel() is False
    assert out == [b"all at once\n"] and err == [b"e"] and result.execution_id is None
    assert events == [("stdout", b"all at once\n"), ("stderr", b"e")]
    sent = daemon.of_type("Execute")
    assert all("stream" not in r and "execution_id" not in r for r in sent)  # never a field it does not know


def test_cancel_right_after_start_still_finds_the_job(daemon):
    with Leeward(daemon.socket_path) as lw:
        run = lw.stream("import time\ntime.sleep(600)", timeout=120)
        assert run.cancel() is True  # asked again until the request has arrived
        assert run.result().cancelled is True
