"""Escape probes, argv twins: where a compiled program differs from hostile Python.

A program is a child of the sandbox's pid 1, which reports the result (its files) and
ends with the program's status: so pid 1 itself is a target here, as it is not for a
Python job (which *is* pid 1). And a binary can be set-id, or call ptrace directly.
"""
from __future__ import annotations

import os

import pytest

from tests.c_programs import build

from ._probe import probe_argv, wait_until_no_host_pids

pytestmark = pytest.mark.integration

PRELUDE = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
static void say(const char *what, long r) { printf("%s %s\n", what, r == -1 ? strerrorname_np(errno) : "OK"); }
"""

# Set-id root on the host, run from a mount: the kernel must not honour the bit.
SETUID_C = PRELUDE + r"""
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    printf("uids %d %d %d\n", r, e, s);
    say("setuid0", setuid(0));
    say("core_pattern", open("/proc/sys/kernel/core_pattern", O_WRONLY));
    return 0;
}
"""

# ptrace from a native helper: its own child, the sandbox's pid 1, and PTRACE_TRACEME.
PTRACE_C = PRELUDE + r"""
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t child = fork();
    if (child == 0) { pause(); _exit(0); }
    say("attach_child", ptrace(PTRACE_ATTACH, child, 0, 0));
    say("seize_pid1", ptrace(PTRACE_SEIZE, 1, 0, 0));
    char buf[64];
    struct iovec local = {buf, sizeof buf}, remote = {buf, sizeof buf};
    say("vm_readv_pid1", process_vm_readv(1, &local, 1, &remote, 1, 0));
    pid_t tracee = fork();
    if (tracee == 0) { say("traceme", ptrace(PTRACE_TRACEME, 0, 0, 0)); _exit(0); }
    waitpid(tracee, NULL, 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
"""

# Everything a program could use to change what pid 1 reports: its memory, its fds, a
# signal; and whatever fds the program itself was given. Then it exits 5.
PID1_C = PRELUDE + r"""
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    say("mem", open("/proc/1/mem", O_RDWR));
    say("environ", open("/proc/1/environ", O_RDONLY));
    DIR *fds = opendir("/proc/1/fd");
    say("fd_dir", fds ? 0 : -1);
    char target[256];
    say("exe", readlink("/proc/1/exe", target, sizeof target));
    say("kill_pid1", kill(1, SIGKILL));
    say("stop_pid1", kill(1, SIGSTOP));
    printf("own_fds");
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) != -1) printf(" %d", fd);
    printf("\n");
    return 5;
}
"""


def _program(probe_dir: str, name: str, source: str) -> tuple[list[dict], str]:
    """The compiled program, mounted read-only at /opt/probe; (mounts, its sandbox path)."""
    build(probe_dir, name, source)
    return [{"host": probe_dir, "sandbox": "/opt/probe"}], f"/opt/probe/{name}"


def test_a_setuid_root_binary_gains_nothing(daemon, probe_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a set-uid-root binary")
    mounts, path = _program(probe_dir, "suid", SETUID_C)
    os.chown(os.path.join(probe_dir, "suid"), 0, 0)
    os.chmod(os.path.join(probe_dir, "suid"), 0o4755)
    result = probe_argv(daemon, [path], mounts=mounts)
    # setuid(0): EINVAL, not even EPERM: uid 0 is not mapped in the job's user namespace.
    assert result.stdout.decode().splitlines() == ["uids 1000 1000 1000", "setuid0 EINVAL", "core_pattern EACCES"], result
    assert result.exit_code == 0


def test_ptrace_from_a_helper_binary_is_refused_and_reported(daemon, probe_dir):
    mounts, path = _program(probe_dir, "tracer", PTRACE_C)
    result = probe_argv(daemon, [path], mounts=mounts)
    assert result.stdout.decode().splitlines() == [
        "attach_child EPERM", "seize_pid1 EPERM", "vm_readv_pid1 EPERM", "traceme EPERM"], result
    assert result.denied_syscalls == ["ptrace", "process_vm_readv"]


def test_the_program_cannot_reach_the_pid_1_that_reports_its_status(daemon, probe_dir):
    mounts, path = _program(probe_dir, "at_pid1", PID1_C)
    result = probe_argv(daemon, [path], mounts=mounts)
    assert result.stdout.decode().splitlines() == [
        "mem EACCES", "environ EACCES", "fd_dir EACCES", "exe EACCES",
        "kill_pid1 OK", "stop_pid1 OK",  # delivered to nothing: pid 1 of a namespace has no default action
        "own_fds 0 1 2"], result
    assert (result.exit_code, result.error, result.timed_out) == (5, None, False)


def test_a_daemonized_grandchild_does_not_outlive_its_program(daemon):
    marker = f"1000.{int.from_bytes(os.urandom(6), 'big')}"
    script = (f"setsid sh -c \"trap '' HUP TERM INT; exec sleep {marker}\" & "
              f"while ! grep -qs {marker} /proc/[0-9]*/cmdline; do sleep 0.01; done; echo daemonized")
    result = probe_argv(daemon, ["sh", "-c", script], timeout_secs=30)
    assert (result.exit_code, result.stdout) == (0, b"daemonized\n"), result
    assert wait_until_no_host_pids(marker=marker) == []
