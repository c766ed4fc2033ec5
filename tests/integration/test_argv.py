"""argv jobs end to end (PROTOCOL-V2 `argv`): a program instead of Python, in the same
sandbox, with the same limits, timeouts, accounting and denial reporting."""
from __future__ import annotations

import os
import shutil

import pytest

from libleeward.client import LeewardError
from tests.c_programs import build
from tests.escapes._probe import probe_argv, wait_until_no_host_pids

pytestmark = pytest.mark.integration

MiB = 1 << 20
PIDS_MAX = 64  # the daemon's default pids_max

# What a C program brought along in a mount does: echo its arguments, upper-case its
# stdin, say something on stderr, exit with the status its first argument names.
ECHO_C = r"""
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("%s%s", i ? " " : "", argv[i]);
    printf("\n");
    int c;
    while ((c = getchar()) != EOF) putchar(toupper(c));
    fprintf(stderr, "to stderr\n");
    return argc > 1 ? atoi(argv[1]) : 0;
}
"""

# The command-line tools agents use, the workload the seccomp policy was measured on
# (strace -f of sh, coreutils, grep, sed, tar, gzip, python3, node): every one must run
# without a single refused syscall.
TOOLS_WORKLOAD = r"""
set -e
echo hello > a.txt; printf 'b\na\nc\na\n' > b.txt
cat a.txt b.txt | sort | uniq -c | wc -l
ls -la . > /dev/null; cp a.txt c.txt; mv c.txt d.txt; ln -s d.txt e.txt; readlink e.txt
mkdir -p x/y; touch x/y/t; chmod 600 x/y/t; stat -c %a x/y/t; rm -rf x
head -n1 b.txt; tail -n1 b.txt; tr a-z A-Z < a.txt; cut -c1-3 a.txt; id -u; seq 3 | sort -rn | head -1
find . -name '*.txt' | xargs wc -c > /dev/null; du -s . > /dev/null; md5sum a.txt > /dev/null; yes | head -1
grep -c a b.txt; grep -E 'a|c' b.txt | wc -l; sed -e 's/a/A/g' b.txt | tr -d '\n'; echo; sed -i 's/b/B/' b.txt
awk '{n++} END {print n}' b.txt; which sh
tar czf t.tgz a.txt b.txt; tar tzf t.tgz | wc -l; mkdir u; tar xzf t.tgz -C u; ls u | wc -l
gzip -k a.txt; gunzip -c a.txt.gz; zcat t.tgz > /dev/null
python3 -c 'import json, subprocess, threading; t = threading.Thread(target=print, args=("thread",)); t.start(); t.join(); subprocess.run(["true"], check=True); print(json.dumps([1]))'
python3 -c 'import multiprocessing as m; p = m.Pool(2); print(p.map(abs, [-1, -2])); p.close(); p.join()'
if command -v node > /dev/null; then node -e 'require("child_process").execSync("true"); console.log("node", 6 * 7)'; else echo node 42; fi
echo done
"""
TOOLS_OUTPUT = (b"4\nd.txt\n600\nb\na\nHELLO\nhel\n1000\n3\ny\n2\n3\nbAcA\n4\n/usr/bin/sh\n2\n2\nhello\n"
                b"thread\n[1]\n[1, 2]\nnode 42\ndone\n")


@pytest.fixture(scope="module")
def tools_dir(daemon) -> str:
    """A directory under the daemon's allowed paths holding the compiled ECHO_C."""
    path = os.path.join(daemon.allowed_dir, f"argv-tools-{os.urandom(4).hex()}")
    os.mkdir(path)
    build(path, "echo-upper", ECHO_C)
    return path


def test_exit_status_stdout_and_stderr_are_the_programs(daemon):
    result = daemon.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (result.exit_code, result.stdout, result.stderr) == (7, b"out\n", b"err\n")
    assert (result.timed_out, result.oom_killed, result.error, result.denied_syscalls) == (False, False, None, [])
    assert daemon.run(["true"]).exit_code == 0
    assert daemon.run(["false"]).exit_code == 1


def test_death_by_a_signal_is_reported_as_a_shell_does(daemon):
    # 128 + N: the program's status passes through the sandbox's pid 1 (sandbox/runner.py).
    assert daemon.run(["sh", "-c", "kill -TERM $$"]).exit_code == 128 + 15
    assert daemon.run(["python3", "-c", "import os; os.abort()"]).exit_code == 128 + 6


def test_a_program_that_cannot_be_started_is_127_or_126(daemon):
    missing = daemon.run(["no-such-program-here", "x"])
    assert missing.exit_code == 127
    assert missing.stderr == b"leeward: no-such-program-here: No such file or directory\n"
    not_executable = daemon.run(["./script.sh"], files={"script.sh": b"#!/bin/sh\necho never\n"})
    assert not_executable.exit_code == 126 and b"Permission denied" in not_executable.stderr
    assert not_executable.stdout == b""


def test_stdin_files_env_and_workdir_reach_the_program(daemon):
    result = daemon.run(["sh", "-c", 'tr a-z A-Z; cat data/in.txt; echo "$GREETING $(pwd)"; env | sort | cut -d= -f1'],
                        stdin=b"hello\n", files={"data/in.txt": b"file-content\n"}, env={"GREETING": "hi"})
    assert result.stdout == (b"HELLO\nfile-content\nhi /tmp\n"
                             b"GREETING\nHOME\nLANG\nPATH\nPWD\nTMPDIR\nUSER\n"), result.stderr


def test_argv_is_passed_verbatim_without_a_shell(daemon):
    args = ["$HOME", "a b", "'quoted'", "*", "", "ünï", "-n"]
    result = daemon.run(["python3", "-c", "import sys; print(sys.argv[1:])", *args])
    assert result.stdout == f"{args}\n".encode(), result.stderr


def test_argv0_is_looked_up_on_the_sandboxs_path(daemon, tools_dir):
    mounts = [{"host": tools_dir, "sandbox": "/opt/tools"}]
    found = daemon.run(["echo-upper", "3"], mounts=mounts, env={"PATH": "/opt/tools:/usr/bin"}, stdin=b"abc\n")
    assert (found.exit_code, found.stdout, found.stderr) == (3, b"echo-upper 3\nABC\n", b"to stderr\n")
    assert daemon.run(["echo-upper"], mounts=mounts).exit_code == 127  # not on the default PATH


def test_a_compiled_program_from_a_read_only_mount_runs(daemon, tools_dir):
    result = daemon.run(["/opt/tools/echo-upper", "0", "x y"], mounts=[{"host": tools_dir, "sandbox": "/opt/tools"}],
                        stdin=b"from stdin")
    assert (result.exit_code, result.stdout, result.stderr) == (0, b"/opt/tools/echo-upper 0 x y\nFROM STDIN",
                                                                b"to stderr\n")


def test_common_tools_run_without_a_refused_syscall(daemon):
    result = daemon.run(["sh", "-c", TOOLS_WORKLOAD], timeout_secs=120)
    assert result.stderr == b"" and result.exit_code == 0, result.stderr.decode(errors="replace")[-3000:]
    assert result.denied_syscalls == []
    assert result.stdout == TOOLS_OUTPUT


@pytest.mark.parametrize("argv", [
    ["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
    ["curl", "-sS", "--max-time", "5", "http://127.0.0.1:9/"],
])
def test_network_is_refused_and_reported(daemon, argv):
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed (scripts/install-system-packages.sh installs curl)")
    result = daemon.run(argv)
    assert result.exit_code != 0
    assert "socket" in result.denied_syscalls
    assert b"not permitted" in result.stderr.lower() or b"couldn't" in result.stderr.lower(), result.stderr


def test_sleep_past_its_timeout_is_killed_with_the_sandbox(daemon):
    marker = f"100.{os.getpid()}"  # GNU sleep takes fractions; unique among concurrent runs
    result = daemon.run(["sleep", marker], timeout_secs=1)
    assert result.timed_out is True and result.exit_code == -9
    assert wait_until_no_host_pids(marker=f"sleep {marker}") == []
    assert daemon.run(["echo", "still here"]).stdout == b"still here\n"


def test_a_fork_bomb_in_sh_is_stopped_by_the_pids_limit(daemon):
    marker = f"bomb{os.getpid()}"
    bomb = f": {marker}; b() {{ b | b & }}; b; sleep 2; echo survived"
    result = probe_argv(daemon, ["sh", "-c", bomb], timeout_secs=10)
    assert b"Cannot fork" in result.stderr  # dash's word for fork's EAGAIN at pids.max
    assert wait_until_no_host_pids(marker=marker) == []


def test_memory_and_cpu_are_the_kernels_measurement(daemon):
    burn = "x = b'x' * (64 << 20); sum(range(3 * 10**6))"
    result = daemon.run(["python3", "-c", burn])
    assert result.exit_code == 0, result.stderr
    assert result.memory_peak >= 64 * MiB  # the program's own pages, counted by the box
    assert result.cpu_time_us > 0


def test_a_program_over_its_memory_limit_is_oom_killed(daemon):
    result = daemon.run(["python3", "-c", "x = b'x' * (512 << 20); print('survived')"], memory_limit=128 * MiB)
    assert result.stdout == b""
    if result.limits == "rlimit":  # RLIMIT_AS: the allocation fails inside the program
        assert b"MemoryError" in result.stderr, result
    else:  # a cgroup: the kernel's OOM killer ends it
        assert result.oom_killed is True and result.exit_code == 128 + 9, result


def test_collect_returns_what_the_program_wrote(daemon):
    result = daemon.run(["sh", "-c", "mkdir out; echo 1 > out/a.txt; printf 2 > out/b.txt"], collect=["out/*.txt"])
    assert result.files == {"out/a.txt": b"1\n", "out/b.txt": b"2"} and result.files_truncated is False


def test_an_argv_result_is_a_v2_reply(daemon):
    with daemon.connect() as conn:
        reply = conn.request({"type": "Execute", "argv": ["true"], "execution_id": "argv-reply-1"})
    assert reply["result"]["execution_id"] == "argv-reply-1" and reply["result"]["cancelled"] is False


@pytest.mark.parametrize("fields", [{}, {"code": "print(1)", "argv": ["true"]}])
def test_both_or_neither_of_code_and_argv_is_e2009(daemon, fields):
    with daemon.connect() as conn, pytest.raises(LeewardError) as info:
        conn.request({"type": "Execute", **fields})
    assert info.value.code == "E2009"
    assert daemon.run(["true"]).exit_code == 0  # the daemon serves on
