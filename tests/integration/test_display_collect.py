"""One-shot Execute with `display` and `collect` on a real daemon (PROTOCOL-V2 "Execute:
new optional fields", issue 13's display and files acceptance)."""
from __future__ import annotations

import pytest

from libleeward import protocol
from tests.conftest import start_daemon

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
V1_RESULT_KEYS = {"exit_code", "stdout", "stderr", "duration_ms", "memory_peak", "cpu_time_us", "timed_out",
                  "oom_killed", "stdout_truncated", "stderr_truncated", "denied_syscalls", "limits"}
RICH_KEYS = {"results", "results_truncated", "files", "files_truncated"}
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 1, 9])\nplt.show()\n"


def execute(daemon, code: str, **fields) -> dict:
    with daemon.connect() as conn:
        reply = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": code, **fields}))
    assert reply["success"], reply
    return reply["result"]


def shown(daemon, code: str) -> list[dict]:
    result = execute(daemon, code, display=True)
    assert result["exit_code"] == 0 and "error" not in result, result
    assert result["results_truncated"] is False
    return result["results"]


@pytest.fixture(scope="module")
def small_caps_daemon(tmp_path_factory):
    running = start_daemon(str(tmp_path_factory.mktemp("capped")), "--set", "collect_files_max=2",
                           "--set", "collect_max=4096", "--set", "results_max=65536", workers=1)
    yield running
    running.stop()


def test_the_pong_lists_display_and_collect(daemon):
    with daemon.connect() as conn:
        assert {"display", "collect"} <= set(conn.ping()["features"])


def test_the_final_expression_is_the_main_result(daemon):
    assert shown(daemon, "x = 1\nx + 1") == [{"main": True, "data": {"text/plain": "2"}}]


def test_a_dataframe_is_an_html_table(daemon):
    [result] = shown(daemon, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    assert "<table" in result["data"]["text/html"] and "text/plain" in result["data"]


def test_a_plot_is_a_png_and_the_job_stays_clean(daemon):
    result = execute(daemon, PLOT, display=True)
    assert result["exit_code"] == 0 and result["stderr"] == b"", result["stderr"]
    assert result["denied_syscalls"] == []
    [figure] = result["results"]
    assert figure["main"] is False and figure["data"]["image/png"].startswith(PNG_SIGNATURE)


def test_a_semicolon_suppresses_the_main_result(daemon):
    assert shown(daemon, "x = 1\nx + 1;") == []


def test_display_adds_one_result_per_object(daemon):
    assert shown(daemon, "display(1, 'two')") == [{"main": False, "data": {"text/plain": "1"}},
                                                  {"main": False, "data": {"text/plain": "'two'"}}]


def test_collect_returns_the_exact_bytes_including_files_written_at_exit(daemon):
    payload = bytes(range(256)) * 40
    code = ("import atexit, os\nos.mkdir('out')\n"
            f"open('out/data.bin', 'wb').write({payload!r})\n"
            "open('out/skip.log', 'w').write('not asked')\n"
            "atexit.register(lambda: open('out/late.bin', 'wb').write(b'\\x00late'))\n")
    result = execute(daemon, code, collect=["out/*.bin"])
    assert result["files"] == {"out/data.bin": payload, "out/late.bin": b"\x00late"}
    assert result["files_truncated"] is False
    assert "results" not in result  # only what was asked for


def test_collect_never_follows_a_planted_symlink(daemon):
    code = ("import os\nopen('real.txt', 'w').write('mine')\n"
            "os.symlink('/etc/hostname', 'link.txt')\nos.symlink('/usr/lib', 'tree')\n")
    result = execute(daemon, code, collect=["*.txt", "tree/*", "tree/**/*"])
    assert result["files"] == {"real.txt": b"mine"} and result["files_truncated"] is False


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../x", "a/../../b"])
def test_a_pattern_leaving_the_workdir_is_refused(daemon, pattern):
    with daemon.connect() as conn:
        reply = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": "pass", "collect": [pattern]}))
    assert reply["success"] is False and reply["error"]["code"] == "E2005"


def test_a_v1_request_gets_none_of_the_new_keys(daemon):
    result = execute(daemon, "print(1)")
    assert set(result) == V1_RESULT_KEYS and not RICH_KEYS & set(result)


def test_too_many_files_are_truncated(small_caps_daemon):
    code = "for name in 'abc':\n    open(name + '.txt', 'w').write(name)\n"
    result = execute(small_caps_daemon, code, collect=["*.txt"])
    assert result["files"] == {"a.txt": b"a", "b.txt": b"b"} and result["files_truncated"] is True


def test_too_many_bytes_are_truncated(small_caps_daemon):
    code = "open('big.bin', 'wb').write(b'x' * 5000)\nopen('small.bin', 'wb').write(b'y')\n"
    result = execute(small_caps_daemon, code, collect=["small.bin", "big.bin"])
    assert result["files"] == {"small.bin": b"y"} and result["files_truncated"] is True


def test_results_past_results_max_are_dropped(small_caps_daemon):
    result = execute(small_caps_daemon, "display(*['x' * 30000] * 3)", display=True)
    assert len(result["results"]) == 2 and result["results_truncated"] is True
