"""The daemon works when started by an ordinary user (no root anywhere).

Runs Debian's /usr/bin/python3 (readable by everyone, unlike a Python under /root) as
a dedicated system user, with leeward and its dependencies copied to a world-readable
directory on PYTHONPATH.
"""
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from tests.conftest import REPO, start_daemon

pytestmark = pytest.mark.integration
USER = "leeward-test"
PYTHON = "/usr/bin/python3"
MODULES = ["msgpack", "prctl", "_prctl", "pyseccomp", "prometheus_client"]


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def _stage_sources(directory: str) -> None:
    shutil.copytree(os.path.join(REPO, "daemon", "leeward_daemon"), os.path.join(directory, "leeward_daemon"))
    shutil.copytree(os.path.join(REPO, "libleeward"), os.path.join(directory, "libleeward"))
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        if spec.submodule_search_locations:
            shutil.copytree(os.path.dirname(spec.origin), os.path.join(directory, name))
        else:
            shutil.copy(spec.origin, directory)


@pytest.fixture(scope="module")
def user_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged test user")
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"{PYTHON} is not installed")
    user = _ensure_user()
    base = tempfile.mkdtemp(prefix="leeward-unpriv-", dir="/tmp")
    os.chmod(base, 0o755)
    sources = os.path.join(base, "site")
    _stage_sources(sources)
    run_dir = os.path.join(base, "run")
    os.mkdir(run_dir, 0o700)
    os.chown(run_dir, user.pw_uid, user.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": sources, "HOME": run_dir}
    daemon = start_daemon(run_dir, command=[shutil.which("runuser") or "/usr/sbin/runuser", "-u", USER, "--", PYTHON], env=env)
    daemon.extra["uid"] = user.pw_uid
    yield daemon
    daemon.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_daemon_process_is_unprivileged(user_daemon):
    with open(f"/proc/{_daemon_pid(user_daemon)}/status") as fh:
        status = dict(line.split(":", 1) for line in fh)
    assert int(status["Uid"].split()[0]) == user_daemon.extra["uid"]
    assert int(status["CapEff"].strip(), 16) == 0


def test_executes_in_an_isolated_sandbox(user_daemon):
    code = ("import os, socket\n"
            "print(sum(range(100)), os.getpid(), socket.gethostname())\n"
            "print(open('/proc/self/uid_map').read().split())")
    result = user_daemon.execute(code)
    assert result.exit_code == 0, result.stderr
    first, second = result.stdout.decode().splitlines()
    assert first == "4950 1 leeward"
    assert second == str(["1000", "0", "1"])  # nested user ns: 1000 -> the daemon user's ns root


def test_timeout_works_unprivileged(user_daemon):
    result = user_daemon.execute("while True: pass", timeout_secs=1)
    assert result.timed_out
    assert user_daemon.execute("print('ok')").stdout == b"ok\n"


def _daemon_pid(daemon) -> int:
    # runuser forks the daemon as its child
    children = subprocess.run(["pgrep", "-P", str(daemon.process.pid)], capture_output=True, text=True).stdout.split()
    return int(children[0]) if children else daemon.process.pid
