"""What the code inside a sandbox can see and touch (DESIGN.md section 3)."""
import os
import socket

import pytest

pytestmark = pytest.mark.integration


def run_ok(daemon, code, **options):
    result = daemon.execute(code, **options)
    assert result.exit_code == 0, result.stderr.decode()
    return result.stdout.decode()


def test_own_pid_namespace(daemon):
    out = run_ok(daemon, "import os; print(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert out == "1 [1]\n"


def test_proc_shows_only_the_sandbox_processes(daemon):
    code = ("import subprocess, os\n"
            "p = subprocess.Popen(['sleep', '30'])\n"
            "print(sorted(int(x) for x in os.listdir('/proc') if x.isdigit()))\n"
            "p.kill()")
    pids = eval(run_ok(daemon, code))
    assert pids[0] == 1 and len(pids) == 2 and max(pids) < 10


def test_no_network_but_loopback_and_no_route(daemon):
    out = run_ok(daemon, "print(open('/proc/net/dev').read()); print('ROUTES', open('/proc/net/route').read().splitlines()[1:])")
    interfaces = [line.split(":")[0].strip() for line in out.splitlines() if ":" in line and "|" not in line]
    assert interfaces == ["lo"]
    assert "ROUTES []" in out


def test_cannot_connect_out(daemon):
    code = ("import socket\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', 22), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as e:\n"
            "    print('refused', e.errno)\n")
    assert run_ok(daemon, code).startswith("refused")


@pytest.mark.parametrize("path", ["/etc/shadow", "/root", "/home", "/run", "/sys", "/oldroot", "/var"])
def test_host_secrets_are_absent(daemon, path):
    assert run_ok(daemon, f"import os; print(os.path.exists({path!r}))") == "False\n"


def test_daemon_socket_is_unreachable(daemon):
    code = ("import socket, os\n"
            f"print(os.path.exists({daemon.socket_path!r}))\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({daemon.socket_path!r}); print('reached')\n"
            "except OSError: print('unreachable')\n")
    assert run_ok(daemon, code) == "False\nunreachable\n"


def test_passwd_is_synthetic(daemon):
    out = run_ok(daemon, "print(open('/etc/passwd').read())")
    assert "sandbox:x:1000" in out
    host_users = {line.split(":")[0] for line in open("/etc/passwd")} - {"root", "nobody"}
    assert not any(f"\n{user}:" in "\n" + out for user in host_users)


@pytest.mark.parametrize("path", ["/newfile", "/usr/lib/evil", "/etc/passwd", "/bin/evil", "/proc/sys/kernel/core_pattern"])
def test_writes_outside_tmp_fail(daemon, path):
    code = (f"try:\n    open({path!r}, 'w').write('x'); print('written')\n"
            "except OSError as e:\n    print('denied')\n")
    assert run_ok(daemon, code) == "denied\n"


def test_tmp_is_writable(daemon):
    assert run_ok(daemon, "open('/tmp/f', 'w').write('x'); print(open('/tmp/f').read())") == "x\n"


def test_hostname_is_not_the_hosts(daemon):
    out = run_ok(daemon, "import socket; print(socket.gethostname())").strip()
    assert out == "leeward" and out != socket.gethostname()


def test_never_host_root(daemon):
    out = run_ok(daemon, "import os; print(os.getuid(), open('/proc/self/uid_map').read().split())")
    inside, mapping = out.split(" ", 1)
    assert inside == "1000"
    outside_uid = int(eval(mapping)[1])
    assert outside_uid != 0
    if os.geteuid() == 0:
        assert outside_uid >= 1_000_000  # the configured unused range, never a real user
