"""The `leeward` Python package over libleeward.so: high-level API and typed errors."""
from __future__ import annotations

import os
import threading

import pytest

import leeward
from leeward import DaemonUnavailable, InvalidRequest, Leeward, LeewardError, Mount, parse_size
from leeward._results import OPTIONAL_KEYS
from libleeward.protocol import ExecutionResult as WireResult


# ---------------------------------------------------------------- no daemon

@pytest.mark.parametrize("text,expected", [
    ("256M", 256 << 20), ("1G", 1 << 30), ("512k", 512 << 10), ("1.5GiB", 3 << 29),
    ("4096", 4096), (123, 123), ("2 MB", 2 << 20),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "12Q", "-1G", "1.2.3", True])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_no_daemon_is_daemon_unavailable(tmp_path):
    with pytest.raises(DaemonUnavailable) as info:
        Leeward(str(tmp_path / "nobody.sock"))
    assert info.value.code == "E1006" and "nobody.sock" in info.value.message
    assert isinstance(info.value, LeewardError)


def test_result_map_has_every_wire_field():
    result = leeward.ExecutionResult(exit_code=0, stdout_bytes=b"\xffok", stderr_bytes=b"", duration_ms=1.0,
                                     memory_peak=1, cpu_time_us=1, timed_out=False, oom_killed=False)
    wire = result.to_dict()
    # v2 keys (results, files, session, ...) come only when asked for: a v1 result keeps the v1 shape
    # every key of a v1 reply (the v2 keys, results and files, come only when asked for)
    assert set(wire) == set(WireResult(exit_code=0).to_wire()) - set(OPTIONAL_KEYS)
    assert wire["stdout"] == "\ufffdok"


# ---------------------------------------------------------------- live daemon

@pytest.mark.integration
def test_readme_example(daemon):
    with Leeward(daemon.socket_path) as sandbox:
        result = sandbox.execute("print(sum(range(100)))")
    assert result.stdout == "4950\n"
    assert result.exit_code == 0 and result.ok
    assert not result.timed_out and not result.oom_killed
    assert result.duration_ms > 0 and result.limits in ("cgroup2", "cgroup1", "rlimit")
    assert sandbox.closed


@pytest.mark.integration
def test_default_socket_from_env(daemon, monkeypatch):
    monkeypatch.setenv("LEEWARD_SOCKET", daemon.socket_path)
    with Leeward() as sandbox:
        assert sandbox.execute("print('env')").stdout == "env\n"


@pytest.mark.integration
def test_exit_code_stderr_and_exception(sandbox):
    result = sandbox.execute("import sys; print('e', file=sys.stderr); sys.exit(3)")
    assert result.exit_code == 3 and result.stderr == "e\n" and not result.ok
    raised = sandbox.execute("raise ValueError('boom')")
    assert raised.exit_code != 0
    assert raised.error["name"] == "ValueError" and raised.error["value"] == "boom"
    assert "ValueError" in raised.to_dict()["error"]["traceback"]


@pytest.mark.integration
def test_binary_and_unicode_output(sandbox):
    result = sandbox.execute("import sys; print('ação ✓'); sys.stdout.flush(); sys.stdout.buffer.write(b'\\x00\\xff')")
    assert result.stdout_bytes == "ação ✓\n".encode() + b"\x00\xff"
    assert result.stdout.startswith("ação ✓\n\x00")


@pytest.mark.integration
def test_timeout(sandbox):
    result = sandbox.execute("while True: pass", timeout=0.5)
    assert result.timed_out and not result.ok


@pytest.mark.integration
def test_memory_option_is_sent(sandbox):
    assert sandbox.execute("print(1)", memory="256M").exit_code == 0
    with pytest.raises(InvalidRequest) as info:
        sandbox.execute("print(1)", memory="1T")  # beyond any daemon maximum
    assert info.value.code == "E2003"


@pytest.mark.integration
def test_mounts(daemon, sandbox):
    host = daemon.allowed_dir
    with open(os.path.join(host, "input.txt"), "w") as fh:
        fh.write("from the host")
    read = sandbox.execute("print(open('/data/input.txt').read())", mounts=[Mount(host, "/data")])
    assert read.stdout == "from the host\n", read.stderr
    denied = sandbox.execute("open('/data/x', 'w').write('no')", mounts=[(host, "/data")])
    assert denied.exit_code != 0 and not os.path.exists(os.path.join(host, "x"))
    wrote = sandbox.execute("open('/data/out.txt', 'w').write('yes')",
                            mounts=[{"host": host, "sandbox": "/data", "ro": False}])
    assert wrote.exit_code == 0, wrote.stderr
    with open(os.path.join(host, "out.txt")) as fh:
        assert fh.read() == "yes"


@pytest.mark.integration
def test_typed_errors(sandbox):
    with pytest.raises(InvalidRequest) as info:
        sandbox.execute("print(1)", mounts=[Mount("/etc", "/data")])
    assert info.value.code.startswith("E2")
    with pytest.raises(InvalidRequest, match="NUL"):
        sandbox.execute("print(1)\0print(2)")
    with pytest.raises(InvalidRequest) as info:
        sandbox.execute("print(1)", timeout=1e9)
    assert info.value.code == "E2003"
    with pytest.raises(ValueError):
        sandbox.execute("print(1)", timeout=0)
    assert sandbox.execute("print('ok')").stdout == "ok\n"


@pytest.mark.integration
def test_ping_and_status(sandbox):
    sandbox.ping()
    status = sandbox.status()
    assert status["type"] == "Status" and status["success"] is True


@pytest.mark.integration
def test_closed_handle(daemon):
    sandbox = Leeward(daemon.socket_path)
    sandbox.close()
    sandbox.close()
    with pytest.raises(LeewardError):
        sandbox.execute("print(1)")


@pytest.mark.integration
def test_shared_between_threads(sandbox):
    errors, outputs = [], {}

    def work(n: int) -> None:
        try:
            for i in range(5):
                outputs[(n, i)] = sandbox.execute(f"print({n * 100 + i})").stdout
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert outputs == {(n, i): f"{n * 100 + i}\n" for n in range(4) for i in range(5)}
