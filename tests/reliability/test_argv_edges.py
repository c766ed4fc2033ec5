"""argv jobs at the edges of what exec and the pipes allow: each gets a result or a
stable refusal, never a stuck job or a daemon error, and the daemon serves on."""
from __future__ import annotations

import pytest

from libleeward.client import LeewardError

SECS = 30  # a job's own timeout: far past what these take; a result that timed out failed


def test_a_writer_left_behind_by_the_program_ends_with_it_and_its_output_is_capped(daemon):
    result = daemon.run(["/bin/sh", "-c", "(exec 1>&-; while :; do echo e >&2; done) & "
                         "setsid sh -c 'while :; do echo x; done' & exit 3"], timeout_secs=SECS)
    assert result.exit_code == 3 and not result.timed_out
    assert set(result.stdout.split()) <= {b"x"} and set(result.stderr.split()) <= {b"e"}


def test_a_program_closing_its_stdout_early_runs_on(daemon):
    result = daemon.run(["/bin/sh", "-c", "exec >&-; echo late >&2"], timeout_secs=SECS)
    assert (result.exit_code, result.stdout, result.stderr) == (0, b"", b"late\n")


@pytest.mark.parametrize("program", ["/bin/", "/tmp", "/etc/passwd"])
def test_a_directory_or_a_non_executable_argv0_is_126(daemon, program):
    result = daemon.run([program], timeout_secs=SECS)
    assert result.exit_code == 126 and b"Permission denied" in result.stderr


def test_an_environment_past_the_kernels_limit_is_126_not_a_daemon_error(daemon):
    result = daemon.run(["/bin/true"], env={f"K{n}": "v" * 100_000 for n in range(50)}, timeout_secs=SECS)
    assert result.exit_code == 126 and b"Argument list too long" in result.stderr


@pytest.mark.parametrize("argv, code", [(["/bin/echo", "a" * 3_000_000], "E2003"),
                                        (["/bin/echo"] + ["a"] * 4096, "E2003"),
                                        (["/bin/echo", "a\x00b"], "E2002"), ([""], "E2003")])
def test_argv_past_exec_limits_is_refused_with_a_stable_code(daemon, argv, code):
    with pytest.raises(LeewardError) as refused:
        daemon.run(argv, timeout_secs=SECS)
    assert refused.value.code == code
    assert daemon.run(["/bin/echo", "a"] * 2048, timeout_secs=SECS).exit_code == 0
