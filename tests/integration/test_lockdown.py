"""The lock-down layers as a job sees them, and the daemon's refusal to serve without
a layer the configuration requires (DESIGN.md "Fail closed")."""
import contextlib
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import start_daemon

pytestmark = pytest.mark.integration

# Run the daemon under a seccomp filter that answers like a kernel without the feature:
# landlock_create_ruleset(2) -> ENOSYS; seccomp(SECCOMP_GET_NOTIF_SIZES, ...) -> EINVAL,
# the unknown-operation answer of a kernel without user notification (Linux < 5.0).
_WRAPPER = textwrap.dedent("""
    import errno, os, sys
    import pyseccomp as sc
    f = sc.SyscallFilter(sc.ALLOW)
    {rule}
    f.load()
    os.execv(sys.executable, [sys.executable] + sys.argv[1:])
""")
WITHOUT_LANDLOCK = _WRAPPER.format(rule='f.add_rule(sc.ERRNO(errno.ENOSYS), "landlock_create_ruleset")')
WITHOUT_NOTIFY = _WRAPPER.format(rule='f.add_rule(sc.ERRNO(errno.EINVAL), "seccomp", sc.Arg(0, sc.EQ, 3))')


def test_inet_socket_is_refused_and_reported(daemon):
    code = ("import socket\n"
            "try:\n"
            "    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            "except OSError as e:\n"
            "    print(e.errno)\n")
    result = daemon.execute(code)
    assert result.stdout == b"1\n"  # EPERM
    assert result.denied_syscalls == ["socket"]


def test_a_clean_job_reports_no_denials(daemon):
    result = daemon.execute("import threading, subprocess\n"
                            "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
                            "print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout, end='')")
    assert (result.exit_code, result.stdout, result.denied_syscalls) == (0, b"thread\nchild\n", [])


def test_each_denied_syscall_is_named_once_in_order(daemon):
    code = ("import ctypes, os, socket\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "for _ in range(3):\n"
            "    try: socket.socket(socket.AF_INET6)\n"
            "    except OSError: pass\n"
            "print(libc.unshare(0x10000000), ctypes.get_errno())\n")  # CLONE_NEWUSER
    result = daemon.execute(code)
    assert result.stdout == b"-1 1\n"
    assert result.denied_syscalls == ["socket", "unshare"]


def test_job_runs_with_every_lockdown_layer(daemon):
    code = ("status = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
            "print([status[k] for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp')])\n")
    result = daemon.execute(code)
    assert result.stdout.decode() == str(["0000000000000000"] * 5 + ["1", "2"]) + "\n"


def test_landlock_confines_writes_to_tmp(daemon):
    # /dev is a read-only tmpfs anyway; /proc/self/attr would be writable by the
    # job's own uid without Landlock.
    code = ("import os\n"
            "for path in ('/proc/self/attr/current', '/proc/self/comm'):\n"
            "    try:\n"
            "        with open(path, 'w') as f: f.write('x')\n"
            "        print(path, 'written')\n"
            "    except OSError as e:\n"
            "        print(path, e.errno)\n")
    result = daemon.execute(code)
    assert result.stdout == b"/proc/self/attr/current 13\n/proc/self/comm 13\n"  # EACCES from Landlock



def test_daemon_refuses_to_serve_without_a_required_layer(tmp_path):
    socket_path = str(tmp_path / "s.sock")
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_LANDLOCK, "-m", "leeward_daemon", "--socket", socket_path, "--workers", "1"],
        capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode != 0
    assert "required isolation layer 'landlock' is not available" in proc.stderr
    assert not os.path.exists(socket_path)


@contextlib.contextmanager
def _daemon_lacking(tmp_path, layer: str, wrapper: str):
    """A daemon whose kernel (as the wrapper fakes it) lacks `layer`, allowed to do
    without it; yields it with its Status "isolation" map."""
    config = tmp_path / "leeward.toml"
    config.write_text(f'optional_layers = ["{layer}"]\n')
    running = start_daemon(str(tmp_path), "--config", str(config), workers=1,
                           command=[sys.executable, "-c", wrapper])
    try:
        with running.connect() as conn:
            yield running, conn.request({"type": "Status"})["isolation"]
    finally:
        running.stop()


def test_optional_layer_lets_the_daemon_serve_without_it(tmp_path):
    with _daemon_lacking(tmp_path, "landlock", WITHOUT_LANDLOCK) as (running, isolation):
        assert isolation["landlock_abi"] == 0 and "landlock" not in isolation["layers"]
        assert "seccomp" in isolation["layers"]
        result = running.execute("import os; print(os.getuid())")
        assert (result.exit_code, result.stdout) == (0, b"1000\n")


def test_no_inherited_variable_in_the_exec_time_environment(daemon):
    # /proc/self/environ shows the memory of the last exec, not os.environ: the zygote
    # blanks it, so neither its variables nor the daemon's show up there.
    code = "print(open('/proc/self/environ', 'rb').read().strip(b'\\0'), open('/proc/1/environ', 'rb').read().strip(b'\\0'))"
    result = daemon.execute(code, env={"ONLY": "this"})
    assert result.stdout == b"b'' b''\n"


def test_job_leads_its_own_session_without_a_terminal(daemon):
    code = ("import os\n"
            "try:\n"
            "    os.open('/dev/tty', os.O_RDWR); tty = 'open'\n"
            "except OSError as e:\n"
            "    tty = e.errno\n"
            "print(os.getsid(0), os.getpgrp(), tty)\n")
    result = daemon.execute(code)
    assert result.stdout == b"1 1 2\n"  # session and group leader; /dev/tty: ENOENT


def test_without_user_notification_denials_still_fail_unreported(tmp_path):
    with _daemon_lacking(tmp_path, "seccomp_notify", WITHOUT_NOTIFY) as (running, isolation):
        assert isolation["seccomp"] == "errno"
        result = running.execute("import socket\n"
                                 "try: socket.socket(socket.AF_INET)\n"
                                 "except OSError as e: print(e.errno)\n")
        assert (result.stdout, result.denied_syscalls) == (b"1\n", [])


def test_the_sandbox_root_can_be_listed(daemon):
    result = daemon.execute("import os; print(sorted(os.listdir('/')))")
    listing = eval(result.stdout)
    assert {"usr", "etc", "proc", "dev", "tmp"} <= set(listing) and "oldroot" not in listing
