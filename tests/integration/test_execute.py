"""End to end through the real daemon: what a job gets back."""
import pytest

pytestmark = pytest.mark.integration


def test_sum_prints_4950(daemon):
    result = daemon.execute("print(sum(range(100)))")
    assert result.stdout == b"4950\n"
    assert result.exit_code == 0
    assert result.timed_out is False
    assert result.duration_ms > 0


def test_exit_status_is_the_codes(daemon):
    assert daemon.execute("import sys; sys.exit(3)").exit_code == 3
    assert daemon.execute("raise SystemExit('bye')").exit_code == 1


def test_uncaught_exception_is_reported_with_traceback(daemon):
    result = daemon.execute("x = 1\nraise ValueError('boom')")
    assert result.exit_code == 1
    assert result.error["name"] == "ValueError"
    assert result.error["value"] == "boom"
    assert 'File "<leeward>", line 2' in result.error["traceback"]
    assert b"ValueError: boom" in result.stderr
    assert b"leeward_daemon" not in result.stderr  # leeward's own frames are not shown


def test_code_runs_as_main_in_fresh_globals(daemon):
    result = daemon.execute("print(__name__, sorted(k for k in globals() if not k.startswith('__')))")
    assert result.stdout == b"__main__ []\n"


def test_stdin_files_and_env_reach_the_code(daemon):
    code = ("import os, sys\n"
            "print(sys.stdin.read().upper())\n"
            "print(open('data/in.txt').read())\n"
            "print(os.environ['GREETING'], os.getcwd())\n")
    result = daemon.execute(code, stdin=b"hello", files={"data/in.txt": b"file-content"},
                            env={"GREETING": "hi"})
    assert result.stdout == b"HELLO\nfile-content\nhi /tmp\n", result.stderr


def test_environment_is_only_the_request_and_a_safe_set(daemon):
    result = daemon.execute("import os; print(sorted(os.environ))", env={"A": "1"})
    assert result.stdout == b"['A', 'HOME', 'LANG', 'PATH', 'TMPDIR', 'USER']\n"


def test_stderr_and_stdout_are_separate(daemon):
    result = daemon.execute("import sys; print('out'); print('err', file=sys.stderr)")
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")


def test_subprocess_output_is_captured(daemon):
    result = daemon.execute("import subprocess; subprocess.run(['echo', 'from-child'], check=True)")
    assert result.stdout == b"from-child\n", result.stderr


def test_many_requests_share_one_connection(daemon):
    with daemon.connect() as conn:
        outputs = [conn.execute(f"print({i} * 2)").stdout for i in range(5)]
        assert conn.ping()["type"] == "Pong"
    assert outputs == [f"{i * 2}\n".encode() for i in range(5)]


def test_status_reports_the_pool(daemon):
    with daemon.connect() as conn:
        status = conn.status()
    assert status["pool"]["target"] == 2
    assert status["executions"] >= 0


def test_the_sandbox_python_can_start_a_python_child(daemon):
    result = daemon.execute("import subprocess, sys\n"
                            "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout)")
    assert result.stdout == b"42\n\n", result.stderr


def test_job_that_closes_its_own_stdio_still_reports(daemon):
    result = daemon.execute("import os\nprint('bye', flush=True)\nos.close(1)\nos.close(2)\n")
    assert (result.exit_code, result.stdout, result.error) == (0, b"bye\n", None)


def test_objects_inherited_from_the_zygote_are_frozen_for_the_gc(daemon):
    # A full collection would otherwise walk (and copy-on-write) every inherited page.
    result = daemon.execute("import gc; print(gc.get_freeze_count() > 10000)")
    assert result.stdout == b"True\n"
