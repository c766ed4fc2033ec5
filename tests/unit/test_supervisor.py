"""The supervisor's reading of a slot's channel and of the kernel's exit status, without
a sandbox: which messages a job may send, and what the reply makes of everything else.
The same rules against real hostile jobs: tests/escapes/test_forged_results.py."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest

from leeward_daemon.ipc import messages
from leeward_daemon.ipc.channel import ChannelClosed
from leeward_daemon.model import Run
from leeward_daemon.pool import supervisor
from leeward_daemon.pool.supervisor import _Conversation


class FakeChannel:
    def __init__(self, messages):
        self._messages = list(messages)

    async def recv(self):
        if not self._messages:
            raise ChannelClosed("EOF")
        return self._messages.pop(0), []


class FakeSlot:
    def __init__(self, messages):
        self.channel = FakeChannel(messages)


def listen(*messages, run: Run = Run("")) -> _Conversation:
    async def go():
        talk = _Conversation()
        await supervisor._listen(FakeSlot(messages), supervisor.DenialWatch(), talk, run)
        return talk
    return asyncio.run(go())


STARTED = {"op": "started", "at": 0.0}
TRACEBACK = {"name": "ValueError", "value": "x", "traceback": "Traceback ...\nValueError: x\n"}


@pytest.mark.parametrize("result", [{"op": "result", "error": None}, {"op": "result", "error": TRACEBACK}])
def test_a_well_formed_result_is_taken_for_its_exception_only(result):
    talk = listen(STARTED, result)
    assert talk.started_at is not None and talk.result_received.is_set() and not talk.over
    assert talk.exception == result["error"]


def test_the_exception_report_is_bounded():
    huge = {"name": "E" * 100_000, "value": "v" * 100_000, "traceback": "t" * 100_000}
    talk = listen(STARTED, {"op": "result", "error": huge})
    assert {len(v) for v in talk.exception.values()} == {messages.FIELD_MAX}


@pytest.mark.parametrize("message", [
    {"op": "failed", "error": "forged: isolation failed"},       # not E3002 once the code runs
    {"op": "started"},                                           # a second start
    {"op": "result", "exit_code": 0, "error": None},             # the fields the job used to fake
    {"op": "result", "error": None, "duration_ms": float("nan")},
    {"op": "result", "error": {"name": "E", "value": 1, "traceback": ""}},
    {"op": "result", "error": {"name": "E"}},
    {"op": "result", "error": "text"},
    {"op": "exited", "status": 0},
    {"op": 7},
    {},
])
def test_anything_else_after_started_is_a_violation_not_a_setup_failure(message):
    talk = listen(STARTED, message, {"op": "result", "error": None})
    assert talk.setup_failure is None
    assert talk.violation is not None and not talk.result_received.is_set()
    report = supervisor._violation_report(talk.violation)
    assert report["name"] == "ResultChannelViolation" and len(report["value"]) < 200


def test_a_second_result_is_a_violation():
    talk = listen(STARTED, {"op": "result", "error": None}, {"op": "result", "error": TRACEBACK})
    assert "after its result" in talk.violation
    assert talk.exception is None  # the first one stands for the exception


def test_failed_before_started_is_a_setup_failure():
    talk = listen({"op": "failed", "error": "PermissionError: mount"})
    assert talk.setup_failure == "PermissionError: mount" and talk.violation is None


def test_a_job_that_closes_its_channel_is_no_violation():
    talk = listen(STARTED)
    assert not talk.over and not talk.result_received.is_set()


def test_the_op_a_job_chose_is_quoted_bounded():
    talk = listen(STARTED, {"op": "x" * 10_000})
    assert len(talk.violation) < 200


def _status_of(child_body) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            child_body()
        finally:
            os._exit(99)
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize("body, expected", [
    (lambda: os._exit(0), 0),
    (lambda: os.kill(os.getpid(), signal.SIGTERM), -signal.SIGTERM),
    (lambda: os.kill(os.getpid(), signal.SIGKILL), -signal.SIGKILL),
])
def test_exit_code_is_the_wait_status_as_a_shell_shows_it(body, expected):
    assert supervisor._exit_code(_status_of(body)) == expected


def test_an_unknown_status_is_reported_as_killed():
    assert supervisor._exit_code(None) == -signal.SIGKILL


def test_duration_is_zero_when_the_code_never_started():
    assert supervisor._duration_ms(_Conversation(), 5.0) == 0.0
    talk = _Conversation(started_at=1.0)
    assert supervisor._duration_ms(talk, 1.25) == 250.0


@pytest.mark.parametrize("said_at, expected", [
    (10.2, 10.2),   # the slot's reading: the daemon read the message 0.8 s later
    (9.0, 10.0),    # never before the job was sent
    (12.0, 11.0),   # never after the daemon read it
])
def test_the_start_is_the_slots_reading_within_what_the_daemon_saw(said_at, expected):
    assert supervisor._start_time(messages.Started(said_at), job_sent_at=10.0, seen_at=11.0) == expected
