"""`leeward run [opts] -- CMD ARGS...` against a real daemon: argv jobs through the C
`leeward` (exit statuses, stdout/stderr, stdin, files, env, timeout, streaming, Ctrl-C)
and, for --json and --collect, through the Python CLI it hands them to."""
from __future__ import annotations

import json
import os
import signal

import pytest

from tests.cli.test_fast_cli import binary, run_cli  # noqa: F401 - binary is a fixture
from tests.cli.test_fast_cli_daemon import popen_cli

pytestmark = pytest.mark.integration


def test_status_and_both_outputs(binary, daemon):
    proc = run_cli(binary, "run", "--", "sh", "-c", "echo out; echo err >&2; exit 3", socket_path=daemon.socket_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, b"out\n", b"err\n")


def test_inputs_reach_the_command(binary, daemon, tmp_path):
    given = tmp_path / "in.txt"
    given.write_bytes(b"b\na\n")
    proc = run_cli(binary, "run", "--stdin", str(given), "--file", f"copy.txt={given}", "--env", "WHO=x", "--",
                   "sh", "-c", 'sort; cat copy.txt | wc -l; echo "$WHO"', socket_path=daemon.socket_path)
    assert (proc.returncode, proc.stdout) == (0, b"a\nb\n2\nx\n"), proc.stderr


def test_timeout(binary, daemon):
    proc = run_cli(binary, "run", "--timeout", "0.5", "--", "sleep", "100", socket_path=daemon.socket_path)
    assert proc.returncode == 124 and b"leeward: timed out" in proc.stderr


def test_output_streams_and_ctrl_c_cancels(binary, daemon):
    proc = popen_cli(binary, "run", "--timeout", "120", "--", "sh", "-c", "echo started; sleep 120",
                     socket_path=daemon.socket_path)
    try:
        assert proc.stdout.readline() == b"started\n"  # while the command still runs
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and b"leeward: cancelled" in err, err
    finally:
        proc.kill()


def test_json_and_collect_through_the_python_cli(binary, daemon, tmp_path):
    proc = run_cli(binary, "run", "--json", "--", "echo", "hi", socket_path=daemon.socket_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["stdout"] == "hi\n", proc.stderr
    out = tmp_path / "results"
    proc = run_cli(binary, "run", "--collect", "out/*", "--out", str(out), "--", "sh", "-c",
                   "mkdir out && echo x > out/a.txt", socket_path=daemon.socket_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "out" / "a.txt").read_bytes() == b"x\n" and os.listdir(out) == ["out"]
