"""LeewardCodeExecutor under AutoGen's own CodeExecutorAgent and PythonCodeExecutionTool,
against a real daemon."""
from __future__ import annotations

import asyncio
import uuid
import warnings

import pytest

pytest.importorskip("autogen_core")
pytest.importorskip("autogen_agentchat")

from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor
from autogen_ext.tools.code_execution import PythonCodeExecutionTool

from leeward import Leeward
from leeward.integrations.autogen import LeewardCodeExecutor
from tests.integration import sandbox_processes
from tests.integrations.cancelling import alive, cancel_once_running, marked_sleep
from tests.integrations.example_scripts import run_example

def run(coroutine):
    return asyncio.run(coroutine)


def python(code: str) -> CodeBlock:
    return CodeBlock(code=code, language="python")


async def execute(executor: LeewardCodeExecutor, *blocks: CodeBlock):
    return await executor.execute_code_blocks(list(blocks), CancellationToken())


def test_python_blocks_run_in_order_and_stop_at_the_first_failure(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as executor:
            return await execute(executor, python("print('one')"), python("print('two')\n1/0"),
                                 python("print('never')"))
    result = run(scenario())
    assert result.exit_code == 1
    assert result.output.startswith("one\ntwo\nTraceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in result.output and "never" not in result.output


def test_stateless_blocks_share_nothing_and_a_stateful_executor_keeps_state_until_restart(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as stateless:
            fresh = await execute(stateless, python("x = 1"), python("print(x)"))
        async with LeewardCodeExecutor(socket_path=socket_path, stateful=True) as stateful:
            kept = await execute(stateful, python("x = 1"), python("x + 1"))
            again = await execute(stateful, python("print(x * 10)"))
            session_id = stateful.session.id
            await stateful.restart()
            restarted = await execute(stateful, python("x"))
            return fresh, kept, again, restarted, session_id, stateful.session.id
    fresh, kept, again, restarted, first, second = run(scenario())
    assert fresh.exit_code == 1 and "NameError" in fresh.output
    assert (kept.exit_code, kept.output) == (0, "2\n")  # the last line's value, as Jupyter shows it
    assert (again.exit_code, again.output) == (0, "10\n")
    assert restarted.exit_code == 1 and "NameError" in restarted.output and first != second
    with Leeward(socket_path) as lw:
        assert not {first, second} & {s.id for s in lw.sessions()}  # stop() and restart() closed them


def test_code_executor_agent_runs_a_python_block_and_an_sh_block(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as executor:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "no approval function": none is needed here
                agent = CodeExecutorAgent("runner", code_executor=executor)
            message = TextMessage(content="```python\nprint(6*7)\n```\n```sh\necho from-sh\n```", source="user")
            return await agent.on_messages([message], CancellationToken())
    assert run(scenario()).chat_message.content == "42\nfrom-sh\n"


def test_shell_blocks_exit_codes_and_a_stateful_session_s_files(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as stateless:
            failed = await execute(stateless, CodeBlock("echo err >&2; sleep 0.5; echo out; exit 3", "bash"),
                                   CodeBlock("echo never", "sh"))
        async with LeewardCodeExecutor(socket_path=socket_path, stateful=True) as stateful:
            shared = await execute(stateful, python("open('note.txt', 'w').write('from python')"),
                                   CodeBlock("cat /tmp/note.txt", "shell"))
        return failed, shared
    failed, shared = run(scenario())
    assert (failed.exit_code, failed.output) == (3, "err\nout\n")  # as written (the pause: see deepagents' test)
    assert (shared.exit_code, shared.output) == (0, "11\nfrom python")  # write()'s value, then cat


def test_python_code_execution_tool(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as executor:
            tool = PythonCodeExecutionTool(executor)
            ok = await tool.run_json({"code": "print('tool ok')"}, CancellationToken())
            failed = await tool.run_json({"code": "raise ValueError('no')"}, CancellationToken())
            return ok, failed
    ok, failed = run(scenario())
    assert (ok.success, ok.output) == (True, "tool ok\n")
    assert failed.success is False and "ValueError: no" in failed.output


def test_a_block_past_its_timeout_exits_124(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path, timeout=1) as executor:
            return await execute(executor, python("import time\ntime.sleep(30)"), python("print('never')"))
    result = run(scenario())
    assert result.exit_code == 124 and result.output.endswith("\n Timeout") and "never" not in result.output


def test_figures_are_saved_as_output_files(socket_path, tmp_path):
    pytest.importorskip("matplotlib")

    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path, output_dir=tmp_path / "figures") as executor:
            return await execute(executor, python("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\n"
                                                  "plt.show()\nprint('drawn')"))
    result = run(scenario())
    assert result.exit_code == 0 and result.output == "drawn\n"
    assert len(result.output_files) == 1 and result.output_files[0].parent == tmp_path / "figures"
    assert result.output_files[0].read_bytes().startswith(b"\x89PNG")


def test_an_unknown_language_is_a_failed_block(socket_path):
    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as executor:
            return await execute(executor, CodeBlock(code="puts 1", language="ruby"))
    result = run(scenario())
    assert (result.exit_code, result.output) == (1, "unknown language ruby\n")


def test_config_round_trip(socket_path, tmp_path):
    executor = LeewardCodeExecutor(socket_path=socket_path, timeout=7, stateful=True, memory_limit="256M",
                                   output_dir=tmp_path)
    dumped = executor.dump_component()
    assert dumped.provider == "leeward.integrations.autogen.LeewardCodeExecutor"
    loaded = CodeExecutor.load_component(dumped)
    assert isinstance(loaded, LeewardCodeExecutor)
    assert loaded.dump_component().model_dump() == dumped.model_dump()

    async def scenario():
        async with loaded:
            return await execute(loaded, python("x = 6"), python("print(x * 7)"))
    assert run(scenario()).output == "42\n"
    tool = PythonCodeExecutionTool.load_component(PythonCodeExecutionTool(loaded).dump_component())
    assert tool._executor.dump_component().model_dump() == dumped.model_dump()


def test_cancelling_a_block_ends_it_and_its_sandbox(socket_path):
    marker = f"autogen-cancel-{uuid.uuid4().hex}"

    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path) as executor:
            token = CancellationToken()
            return await cancel_once_running(executor.execute_code_blocks([python(marked_sleep(marker))], token),
                                             marker, token.cancel)
    ended, boxes, pids = run(scenario())
    assert isinstance(ended, asyncio.CancelledError)
    # The executor waited for the job's end before raising: its processes are gone already.
    assert not alive(pids)
    sandbox_processes.wait_until_gone(boxes, pids)


def test_cancelling_a_stateful_block_interrupts_it_and_the_session_lives_on(socket_path):
    marker = f"autogen-cancel-{uuid.uuid4().hex}"

    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path, stateful=True) as executor:
            token = CancellationToken()
            ended, _, _ = await cancel_once_running(
                executor.execute_code_blocks([python(marked_sleep(marker))], token), marker, token.cancel)
            after = await execute(executor, python("print(x, interrupted)"))
            return ended, after
    ended, after = run(scenario())
    assert isinstance(ended, asyncio.CancelledError)
    assert (after.exit_code, after.output) == (0, "kept True\n")


def test_the_example_script(socket_path, tmp_path):
    printed = run_example("autogen_team.py", socket_path, tmp_path).stdout
    assert printed.startswith("executor: wrote 20 rows\nexecutor: 20\nlargest: 4.472\n")
    [figure] = (tmp_path / "figures").iterdir()
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "values.csv").read_text().splitlines()[0] == "1,1.0"


def test_a_stateful_executor_replaces_an_ended_session_and_says_so(socket_path):
    ignores_interrupt = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(30)"

    async def scenario():
        async with LeewardCodeExecutor(socket_path=socket_path, stateful=True, timeout=1) as executor:
            await execute(executor, python("x = 1"))
            first = executor.session.id
            with Leeward(socket_path) as other:  # as the daemon's idle expiry would
                other.attach(first).close()
            replaced = await execute(executor, python("print('x' in globals())"))
            second = executor.session.id
            killed = await execute(executor, python(ignores_interrupt))
            after = await execute(executor, python("print('after')"))
            return first, replaced, second, killed, after, executor.session.id
    first, replaced, second, killed, after, third = run(scenario())
    assert replaced.output == ("[the session had ended (closed); this block ran in a new one, without its state]\n"
                               "False\n")
    assert killed.exit_code == 124 and "The session ended (timeout): its state is lost" in killed.output
    assert (after.exit_code, after.output) == (0, "after\n")
    assert len({first, second, third}) == 3
