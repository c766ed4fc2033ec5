"""LeewardExecutor under a real smolagents CodeAgent, driven by a scripted model (no LLM)
against a real daemon."""
from __future__ import annotations

import pytest

pytest.importorskip("smolagents")

from smolagents import CodeAgent
from smolagents.local_python_executor import CodeOutput
from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.monitoring import AgentLogger, LogLevel
from smolagents.utils import AgentError

from leeward import Leeward
from leeward.integrations.smolagents import LeewardExecutor
from tests.integrations.example_scripts import run_example


class ScriptedModel(Model):
    """Answers each generate() with the next canned step."""

    def __init__(self, steps: list[str]):
        super().__init__(model_id="scripted")
        self.steps = list(steps)

    def generate(self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kwargs):
        code = self.steps.pop(0)
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"Thought: next step.\n<code>\n{code}\n</code>")


class CountingExecutor(LeewardExecutor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cells: list[str] = []

    def run_code_raise_errors(self, code: str) -> CodeOutput:
        self.cells.append(code)
        return super().run_code_raise_errors(code)


def quiet() -> AgentLogger:
    return AgentLogger(LogLevel.OFF)


def open_sessions(socket_path: str) -> list[str]:
    with Leeward(socket_path) as lw:
        return [s.id for s in lw.sessions()]


def test_code_agent_keeps_state_between_steps_and_returns_the_final_answer(socket_path):
    executor = CountingExecutor([], quiet(), socket_path=socket_path)
    model = ScriptedModel(["total = sum(range(10))", "final_answer(total * 2)"])
    agent = CodeAgent(tools=[], model=model, executor=executor, verbosity_level=LogLevel.OFF)
    try:
        assert agent.run("step 1: total = sum(range(10)); step 2: final_answer(total * 2)") == 90
        assert len(executor.cells) == 3  # the tool stubs, then the two steps (no variables to send)
        session_id = executor.session.id
        assert session_id in open_sessions(socket_path)
    finally:
        agent.cleanup()
    assert session_id not in open_sessions(socket_path)


def test_additional_args_reach_the_sandbox_as_variables(socket_path):
    executor = LeewardExecutor([], quiet(), socket_path=socket_path)
    agent = CodeAgent(tools=[], model=ScriptedModel(["final_answer(n * 10)"]), executor=executor,
                      verbosity_level=LogLevel.OFF)
    try:
        assert agent.run("multiply", additional_args={"n": 4}) == 40
    finally:
        agent.cleanup()


def test_a_step_error_is_an_agent_error_with_the_traceback_and_the_run_goes_on(socket_path):
    executor = LeewardExecutor([], quiet(), socket_path=socket_path)
    model = ScriptedModel(["print('before')\n1/0", "final_answer('recovered')"])
    agent = CodeAgent(tools=[], model=model, executor=executor, verbosity_level=LogLevel.OFF)
    try:
        assert agent.run("divide") == "recovered"
        failed = agent.memory.steps[1].error
        assert failed is not None and "ZeroDivisionError" in str(failed) and "before" in str(failed)
    finally:
        agent.cleanup()


def test_direct_calls_output_logs_and_errors(socket_path):
    executor = LeewardExecutor([], quiet(), socket_path=socket_path)
    try:
        shown = executor("print('hi')\n6 * 7")
        assert (shown.output, shown.logs, shown.is_final_answer) == ("42", "hi\n", False)
        with pytest.raises(AgentError, match="NameError"):
            executor("undefined_name")
    finally:
        executor.cleanup()


def test_an_image_as_the_last_value_is_a_pil_image(socket_path):
    pytest.importorskip("PIL")
    executor = LeewardExecutor([], quiet(), socket_path=socket_path)
    try:
        output = executor("from PIL import Image\nImage.new('RGB', (4, 3), 'red')").output
        assert (output.format, output.size, output.getpixel((0, 0))) == ("PNG", (4, 3), (255, 0, 0))
    finally:
        executor.cleanup()


def test_install_packages_reports_what_the_sandbox_lacks_without_pip(socket_path):
    executor = LeewardExecutor(["json", "no_such_package_xyz", "numpy.*", "*"], quiet(), socket_path=socket_path)
    try:
        assert executor.missing_packages == ["no_such_package_xyz"]
        assert executor.installed_packages == ["json", "numpy"]
    finally:
        executor.cleanup()


def test_a_step_that_ends_the_session_is_reported_and_the_next_step_gets_a_new_one(socket_path):
    executor = LeewardExecutor([], quiet(), socket_path=socket_path, timeout=1)
    ignores_interrupt = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(30)"
    model = ScriptedModel(["x = 1", ignores_interrupt, "final_answer('x' in globals())"])
    agent = CodeAgent(tools=[], model=model, executor=executor, verbosity_level=LogLevel.OFF)
    try:
        first = executor.session.id
        assert agent.run("lose the sandbox") is False  # a new session: x is gone, final_answer works again
        assert "The sandbox ended (timeout)" in str(agent.memory.steps[2].error)
        assert executor.session.id != first
    finally:
        agent.cleanup()


def test_the_example_script(socket_path, tmp_path):
    printed = run_example("smolagents_agent.py", socket_path, tmp_path).stdout
    assert printed.startswith("answer: total=285 chart_bytes=")
    assert (tmp_path / "squares.png").read_bytes().startswith(b"\x89PNG")
