"""Wall-clock timeout: the whole sandbox tree is killed and the daemon keeps serving."""
import os
import subprocess

import pytest

pytestmark = pytest.mark.integration


def test_infinite_loop_times_out_and_daemon_keeps_serving(daemon):
    result = daemon.execute("while True: pass", timeout_secs=1)
    assert result.timed_out is True
    assert result.exit_code == -9
    assert daemon.execute("print('still here')").stdout == b"still here\n"


def test_timeout_kills_children_too(daemon):
    marker = f"sleep 301.{os.getpid()}"  # unique, so concurrent runs don't interfere
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sh', '-c', {marker!r}])\n"
            "print('started', flush=True)\n"
            "time.sleep(60)")
    result = daemon.execute(code, timeout_secs=1)
    assert result.timed_out and result.stdout == b"started\n"
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout == b""


def test_output_before_the_timeout_is_kept(daemon):
    result = daemon.execute("import sys, time\nprint('partial', flush=True)\nwhile True: pass", timeout_secs=1)
    assert result.timed_out and result.stdout == b"partial\n"
