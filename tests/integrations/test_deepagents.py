"""LeewardSandbox, a deepagents sandbox backend over a session, against a real daemon:
its own methods and the file tools deepagents' BaseSandbox builds on them."""
from __future__ import annotations

import asyncio
import uuid

import pytest

pytest.importorskip("deepagents")

from deepagents.backends.protocol import SandboxBackendProtocol

from leeward import Leeward
from leeward.integrations.deepagents import LeewardSandbox
from tests.integrations.cancelling import cancel_once_running
from tests.integrations.example_scripts import run_example


@pytest.fixture
def sandbox(socket_path):
    with LeewardSandbox(socket_path=socket_path) as sandbox:
        yield sandbox


def test_upload_count_lines_download(sandbox):
    assert isinstance(sandbox, SandboxBackendProtocol)
    [uploaded] = sandbox.upload_files([("/tmp/data.txt", b"one\ntwo\nthree\n")])
    assert uploaded.error is None
    counted = sandbox.execute("wc -l < /tmp/data.txt > /tmp/count.txt && cat /tmp/count.txt")
    assert (counted.exit_code, counted.output.strip(), counted.truncated) == (0, "3", False)
    [count, missing] = sandbox.download_files(["/tmp/count.txt", "/tmp/missing.txt"])
    assert (count.content, count.error) == (b"3\n", None)
    assert (missing.content, missing.error) == (None, "file_not_found")


def test_a_failing_command_is_a_response_with_both_streams_as_written_and_its_exit_code(sandbox):
    # The pause only gives the daemon time to pass the first line on before the second
    # exists; the order is what is checked.
    response = sandbox.execute("echo first >&2; sleep 0.5; echo second; exit 5")
    assert (response.exit_code, response.output) == (5, "first\nsecond\n")


def test_a_command_past_its_timeout_exits_124(sandbox):
    response = sandbox.execute("sleep 30", timeout=1)
    assert response.exit_code == 124 and response.output.endswith("[timed out]")


def test_paths_outside_the_workspace_are_invalid(sandbox):
    [outside] = sandbox.upload_files([("/etc/leeward-test", b"x")])
    assert outside.error == "invalid_path"
    [escape] = sandbox.download_files(["../etc/passwd"])
    assert escape.error == "invalid_path"


def test_base_sandbox_file_tools_work_over_it(sandbox):
    assert sandbox.write("/tmp/notes/a.txt", "alpha\nbeta\n").error is None
    assert sandbox.edit("/tmp/notes/a.txt", "beta", "gamma").error is None
    assert "gamma" in sandbox.read("/tmp/notes/a.txt").file_data["content"]
    assert [entry["path"] for entry in sandbox.ls("/tmp/notes").entries] == ["/tmp/notes/a.txt"]
    assert [match["line"] for match in sandbox.grep("gamma", "/tmp/notes").matches] == [2]


def test_aexecute_and_its_cancellation(sandbox):
    assert asyncio.run(sandbox.aexecute("echo async")).output == "async\n"
    marker = f"deepagents-cancel-{uuid.uuid4().hex}"
    command = f"touch /tmp/{marker} && sleep 30; echo finished > /tmp/finished"
    ended, _, _ = asyncio.run(cancel_once_running(sandbox.aexecute(command), marker))
    assert isinstance(ended, asyncio.CancelledError)
    # A session's command is interrupted (SIGINT) before it finished; the session lives on.
    assert sandbox.execute("echo still here").output == "still here\n"
    assert sandbox.download_files(["/tmp/finished"])[0].error == "file_not_found"


def test_close_ends_the_session(socket_path):
    sandbox = LeewardSandbox(socket_path=socket_path)
    session_id = sandbox.id
    with Leeward(socket_path) as lw:
        assert session_id in {s.id for s in lw.sessions()}
        sandbox.close()
        assert session_id not in {s.id for s in lw.sessions()}


def test_the_example_script(socket_path, tmp_path):
    printed = run_example("deepagents_sandbox.py", socket_path, tmp_path).stdout
    assert printed.startswith("write_file: Updated file /tmp/cities.txt\nexecute: 4\nexecute: Tool result too large")
    assert "saved in the filesystem at this path: /tmp/large_tool_results/call-3" in printed  # not under /
    assert (tmp_path / "sorted.txt").read_text() == "Lima\nLisbon\nOslo\nQuito\n"
