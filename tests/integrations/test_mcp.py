"""leeward-mcp through the MCP SDK's own client, against a real daemon: in-process, over
stdio (the server a child process, as a desktop client runs it) and over streamable HTTP
on 127.0.0.1. Each way lists the tools, runs code, gets a plot as an image, keeps state
through session_id, and gets a user's `1/0` back as an is_error result with its traceback."""
from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import ImageContent, TextContent

from leeward.integrations.mcp import build_server
from tests.host import host_pids

pytestmark = pytest.mark.integration

SERVER = [sys.executable, "-m", "leeward.integrations.mcp"]
TOOLS = {"run_python", "run_command", "session_open", "session_close", "session_list",
         "file_read", "file_write", "file_list"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
START_WAIT_SECS = 60.0  # bound on waiting for the HTTP server, not a speed assertion


def child_env(**extra: str) -> dict[str, str]:
    """The server child's environment: ours (PYTHONPATH of a worktree included) without
    LEEWARD_* settings, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}, **extra}


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def exercise(client: Client) -> None:
    """The acceptance scenario, the same over every transport."""
    listed = await client.list_tools()
    assert TOOLS <= {tool.name for tool in listed.tools}
    run_python = next(tool for tool in listed.tools if tool.name == "run_python")
    assert {"code", "timeout_secs", "session_id"} <= set(run_python.input_schema["properties"])

    ran = await client.call_tool("run_python", {"code": "print('hello')\n6 * 7"})
    assert not ran.is_error, text_of(ran)
    assert ran.structured_content["stdout"] == "hello\n" and ran.structured_content["result"] == "42"
    assert "hello" in text_of(ran) and "42" in text_of(ran)

    plot = await client.call_tool("run_python", {
        "code": "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares');"})
    images = [block for block in plot.content if isinstance(block, ImageContent)]
    assert not plot.is_error, text_of(plot)
    assert len(images) == 1 and images[0].mime_type == "image/png"
    assert base64.b64decode(images[0].data).startswith(PNG_MAGIC)
    assert plot.structured_content["images"] == 1

    opened = await client.call_tool("session_open", {})
    session_id = opened.structured_content["session_id"]
    try:
        first = await client.call_tool("run_python", {"code": "total = sum(range(10))", "session_id": session_id})
        assert not first.is_error, text_of(first)
        second = await client.call_tool("run_python", {"code": "total * 2", "session_id": session_id})
        assert second.structured_content["result"] == "90"
        assert second.structured_content["execution_count"] == 2
        # A fresh sandbox without the session_id does not see it.
        apart = await client.call_tool("run_python", {"code": "total"})
        assert apart.is_error and "NameError" in text_of(apart)
    finally:
        closed = await client.call_tool("session_close", {"session_id": session_id})
        assert closed.structured_content == {"closed": session_id}

    failed = await client.call_tool("run_python", {"code": "x = 1\n1/0"})
    assert failed.is_error
    assert "Traceback (most recent call last)" in text_of(failed)
    assert "ZeroDivisionError: division by zero" in text_of(failed)


def test_in_process(daemon):
    async def scenario():
        async with Client(build_server(daemon.socket_path)) as client:
            await exercise(client)

    asyncio.run(scenario())


def test_stdio(daemon):
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "--socket", daemon.socket_path],
                                   env=child_env())

    async def scenario():
        async with Client(params) as client:
            await exercise(client)

    asyncio.run(scenario())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_WAIT_SECS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"leeward-mcp http exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"leeward-mcp http did not listen on port {port} within {START_WAIT_SECS}s")


@pytest.fixture
def http_server(daemon, tmp_path):
    port = free_port()
    with open(tmp_path / "mcp-http.log", "wb") as log:
        process = subprocess.Popen([*SERVER, "--socket", daemon.socket_path, "http", "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=child_env())
    try:
        wait_for_port(process, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(30)


def test_streamable_http_on_loopback(http_server):
    async def scenario():
        async with Client(http_server) as client:
            await exercise(client)

    asyncio.run(scenario())


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* writes them) listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in list(fh)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: TCP_LISTEN
                    found.append(address)
    return found


def test_http_binds_loopback_by_default(http_server):
    port = int(http_server.rsplit(":", 1)[1].split("/")[0])
    assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, little-endian: nothing else


def test_http_refuses_other_hosts_and_origins(http_server):
    """A web page the user visits must not drive the local server (DNS rebinding, a
    cross-origin POST): only loopback Host and Origin headers are served."""
    port = int(http_server.rsplit(":", 1)[1].split("/")[0])
    initialize = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})

    def post(**headers: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/mcp", body=initialize, headers={
                "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
            return connection.getresponse().status
        finally:
            connection.close()

    assert post() == 200
    assert post(Host="attacker.example") == 421
    assert post(Origin="http://attacker.example") == 403


def test_a_timeout_and_daemon_refusals_are_error_results(daemon):
    async def scenario():
        async with Client(build_server(daemon.socket_path)) as client:
            slow = await client.call_tool("run_python", {"code": "while True: pass", "timeout_secs": 1})
            assert slow.is_error and slow.structured_content["timed_out"]
            assert "[timed out]" in text_of(slow)
            unknown = await client.call_tool("run_python", {"code": "1", "session_id": "no-such-session"})
            assert unknown.is_error and "E5001" in text_of(unknown)
            escape = await client.call_tool("file_list", {"session_id": "no-such-session", "path": "../etc"})
            assert escape.is_error

    asyncio.run(scenario())


def test_session_files_round_trip(daemon):
    async def scenario():
        async with Client(build_server(daemon.socket_path)) as client:
            session_id = (await client.call_tool("session_open", {})).structured_content["session_id"]
            try:
                written = await client.call_tool("file_write", {"session_id": session_id, "path": "in.csv",
                                                                "content": "a,b\n1,2\n"})
                assert written.structured_content == {"path": "in.csv", "size": 8}
                binary = base64.b64encode(b"\x00\xff\x01").decode()
                await client.call_tool("file_write", {"session_id": session_id, "path": "blob.bin",
                                                      "content": binary, "encoding": "base64"})
                ran = await client.call_tool("run_python", {
                    "session_id": session_id,
                    "code": "open('out.txt', 'w').write(open('in.csv').read().upper())"})
                assert not ran.is_error, text_of(ran)
                listing = await client.call_tool("file_list", {"session_id": session_id})
                names = {entry["name"] for entry in listing.structured_content["entries"]}
                assert {"in.csv", "blob.bin", "out.txt"} <= names
                out = await client.call_tool("file_read", {"session_id": session_id, "path": "out.txt"})
                assert out.structured_content["content"] == "A,B\n1,2\n"
                blob = await client.call_tool("file_read", {"session_id": session_id, "path": "blob.bin"})
                assert blob.structured_content["encoding"] == "base64"
                assert base64.b64decode(blob.structured_content["content"]) == b"\x00\xff\x01"
                sessions = await client.call_tool("session_list", {})
                assert session_id in {s["session_id"] for s in sessions.structured_content["sessions"]}
            finally:
                await client.call_tool("session_close", {"session_id": session_id})
            gone = await client.call_tool("session_list", {})
            assert session_id not in {s["session_id"] for s in gone.structured_content["sessions"]}

    asyncio.run(scenario())


def test_stdio_starts_a_daemon_when_none_answers(tmp_path):
    sock = str(tmp_path / "run" / "leeward.sock")
    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:],
                                   env=child_env(LEEWARD_SOCKET=sock, LEEWARD_AUTOSTART_TIMEOUT="120"))

    async def scenario():
        async with Client(params) as client:
            ran = await client.call_tool("run_python", {"code": "print('autostarted')"})
            assert not ran.is_error and ran.structured_content["stdout"] == "autostarted\n", text_of(ran)

    try:
        asyncio.run(scenario())
        assert os.path.exists(sock)
    finally:
        for pid in host_pids(marker=f"--socket {sock}"):
            os.kill(pid, signal.SIGTERM)


def test_run_command(daemon):
    async def scenario():
        async with Client(build_server(daemon.socket_path)) as client:
            # A daemon that runs no programs (no "argv" in its features) is refused with E2010.
            probe = await client.call_tool("run_command", {"argv": ["true"]})
            if probe.is_error and "E2010" in text_of(probe):
                pytest.skip("the daemon does not offer argv jobs")
            assert not probe.is_error, text_of(probe)

            failing = await client.call_tool("run_command", {"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
            assert failing.is_error and failing.structured_content["exit_code"] == 3
            assert failing.structured_content["stdout"] == "out\n" and "err" in text_of(failing)
            assert "[exit code 3]" in text_of(failing)

            counted = await client.call_tool("run_command", {"command": "wc -l", "stdin": "a\nb\nc\n"})
            assert counted.structured_content["stdout"].strip() == "3"

            both = await client.call_tool("run_command", {"argv": ["true"], "command": "true"})
            assert both.is_error and "exactly one" in text_of(both)

            session_id = (await client.call_tool("session_open", {})).structured_content["session_id"]
            try:
                await client.call_tool("run_python", {"session_id": session_id,
                                                      "code": "open('made.txt', 'w').write('by python\\n')"})
                shown = await client.call_tool("run_command", {"session_id": session_id, "command": "cat made.txt"})
                assert shown.structured_content["stdout"] == "by python\n", text_of(shown)
            finally:
                await client.call_tool("session_close", {"session_id": session_id})

    asyncio.run(scenario())


def test_a_cancelled_call_interrupts_its_cell(patient_daemon):
    """The client gives up on a call: the cell is interrupted in the daemon (it never
    reaches its last line) and the session is free at once for the next call, instead of
    busy until the abandoned cell ends."""
    async def scenario():
        async with Client(build_server(patient_daemon.socket_path)) as client:
            session_id = (await client.call_tool("session_open", {})).structured_content["session_id"]
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(client.call_tool, "run_python", {
                        "session_id": session_id, "timeout_secs": 120,
                        "code": "import time\ntime.sleep(60)\nfinished = True"})
                    await wait_until_busy(client, session_id)
                    group.cancel_scope.cancel()
                after = await client.call_tool("run_python", {"session_id": session_id,
                                                              "code": "'finished' in globals()"})
                assert not after.is_error, text_of(after)
                assert after.structured_content["result"] == "False"
            finally:
                await client.call_tool("session_close", {"session_id": session_id})

    asyncio.run(scenario())


async def wait_until_busy(client: Client, session_id: str) -> None:
    deadline = time.monotonic() + START_WAIT_SECS
    while time.monotonic() < deadline:
        listed = (await client.call_tool("session_list", {})).structured_content["sessions"]
        if any(s["session_id"] == session_id and s["busy"] for s in listed):
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"the session was not busy within {START_WAIT_SECS}s")
