"""LeewardPythonTool through langchain-core's own invoke/ainvoke, against a real daemon."""
from __future__ import annotations

import asyncio
import uuid

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException

from leeward import Leeward
from leeward.integrations.langchain import LeewardPythonTool
from tests.integration import sandbox_processes
from tests.integrations.cancelling import alive, cancel_once_running, marked_sleep
from tests.integrations.example_scripts import run_example


def thread(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}


def open_sessions(socket_path: str) -> set[str]:
    with Leeward(socket_path) as lw:
        return {s.id for s in lw.sessions()}


@pytest.fixture
def tool(socket_path):
    tool = LeewardPythonTool(socket_path=socket_path)
    yield tool
    tool.close()


def test_invoke_returns_the_last_value(tool):
    assert "42" in tool.invoke({"code": "x = 2\nx * 21"})


def test_ainvoke_returns_output_and_value(tool):
    assert asyncio.run(tool.ainvoke({"code": "print('hi')\n6 * 7"})) == "hi\n42"


def test_calls_without_a_thread_share_nothing(tool):
    tool.invoke({"code": "x = 2"})
    assert "NameError" in tool.invoke({"code": "x"})
    assert tool.thread_sessions == {}


def test_a_thread_keeps_its_state_and_another_thread_does_not_see_it(tool, socket_path):
    tool.invoke({"code": "x = 2"}, thread("one"))
    assert tool.invoke({"code": "x * 21"}, thread("one")) == "42"
    assert "NameError: name 'x' is not defined" in tool.invoke({"code": "x"}, thread("two"))
    sessions = tool.thread_sessions
    assert set(sessions) == {"one", "two"} and sessions["one"] != sessions["two"]
    assert set(sessions.values()) <= open_sessions(socket_path)
    tool.close("one")
    assert set(tool.thread_sessions) == {"two"}
    assert sessions["one"] not in open_sessions(socket_path)


def test_a_code_error_is_an_answer_with_the_traceback_not_an_exception(tool):
    message = tool.invoke({"type": "tool_call", "id": "call-1", "name": tool.name,
                           "args": {"code": "print('before')\n1/0"}})
    assert isinstance(message, ToolMessage)
    assert message.content.startswith("before\n") and "ZeroDivisionError: division by zero" in message.content
    assert message.artifact["error"]["name"] == "ZeroDivisionError" and message.artifact["exit_code"] == 1


def test_a_figure_comes_back_in_the_artifact(tool):
    pytest.importorskip("matplotlib")
    message = tool.invoke({"type": "tool_call", "id": "call-2", "name": tool.name,
                           "args": {"code": "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9]);"}})
    assert message.content == "[1 figure captured]"
    pngs = [shown["data"]["image/png"] for shown in message.artifact["results"] if "image/png" in shown["data"]]
    assert len(pngs) == 1 and pngs[0].startswith(b"\x89PNG")


def test_a_call_that_ends_the_session_is_reported_and_the_thread_gets_a_new_one(socket_path):
    tool = LeewardPythonTool(socket_path=socket_path, timeout=1)
    try:
        tool.invoke({"code": "x = 1"}, thread("t"))
        first = tool.thread_sessions["t"]
        ended = tool.invoke({"code": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                     "time.sleep(30)"}, thread("t"))
        assert "[the sandbox ended (timeout): its state is lost]" in ended
        assert tool.thread_sessions == {}
        assert "NameError" in tool.invoke({"code": "x"}, thread("t"))
        assert tool.thread_sessions["t"] != first
    finally:
        tool.close()


def test_a_session_ended_between_calls_is_replaced_and_the_model_told(tool, socket_path):
    tool.invoke({"code": "x = 1"}, thread("t"))
    first = tool.thread_sessions["t"]
    with Leeward(socket_path) as other:  # as the daemon's idle expiry would
        other.attach(first).close()
    answer = tool.invoke({"code": "print('ran')"}, thread("t"))
    assert answer.startswith("[this conversation's sandbox had ended (closed); this ran in a new one")
    assert answer.endswith("\nran")
    assert tool.thread_sessions["t"] != first


def test_cancelling_ainvoke_ends_the_job_and_its_sandbox(tool):
    marker = f"langchain-cancel-{uuid.uuid4().hex}"
    ended, boxes, pids = asyncio.run(cancel_once_running(tool.ainvoke({"code": marked_sleep(marker)}), marker))
    assert isinstance(ended, asyncio.CancelledError)
    assert not alive(pids)  # the tool waited for the job's end before raising
    sandbox_processes.wait_until_gone(boxes, pids)


def test_cancelling_ainvoke_in_a_thread_interrupts_the_cell_and_the_session_lives_on(tool):
    marker = f"langchain-cancel-{uuid.uuid4().hex}"
    ended, _, _ = asyncio.run(cancel_once_running(
        tool.ainvoke({"code": marked_sleep(marker)}, thread("t")), marker))
    assert isinstance(ended, asyncio.CancelledError)
    assert tool.invoke({"code": "print(x, interrupted)"}, thread("t")) == "kept True"


def test_the_example_script(socket_path, tmp_path):
    printed = run_example("langchain_agent.py", socket_path, tmp_path).stdout
    assert printed.startswith("tool: [1 figure captured]\n'thu'\ntool: days: 5\nmean: 20.84\n")
    assert (tmp_path / "temperatures.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "report.txt").read_text() == "days: 5\nmean: 20.84\n"


def test_a_daemon_refusal_is_a_tool_exception_the_model_can_be_shown(socket_path, tmp_path):
    gone = str(tmp_path / "no-daemon.sock")
    with pytest.raises(ToolException, match="leeward: E1006"):
        LeewardPythonTool(socket_path=gone).invoke({"code": "1"})
    shown = LeewardPythonTool(socket_path=gone, handle_tool_error=True).invoke({"code": "1"})
    assert shown.startswith("leeward: E1006")
