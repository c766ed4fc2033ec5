"""The daemon works when started by an ordinary user (no root anywhere).

Runs Debian's /usr/bin/python3 (readable by everyone, unlike a Python under /root) as
a dedicated system user, with leeward and its dependencies copied to a world-readable
directory on PYTHONPATH. One user has no subordinate ids (jobs run as its own uid),
another has a range in /etc/subuid and /etc/subgid (each job its own uid of it).
"""
import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from tests.conftest import REPO, start_daemon

pytestmark = pytest.mark.integration
USER = "leeward-test"
SUBID_USER = "leeward-subid"
SUBID_FIRST, SUBID_COUNT = 1_800_000_000, 4096  # far from any real user's range and from the root daemon's
PYTHON = "/usr/bin/python3"
MODULES = ["msgpack", "prctl", "_prctl", "pyseccomp", "prometheus_client"]


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name)


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


@contextlib.contextmanager
def _unprivileged_daemon(user: pwd.struct_passwd, *args: str):
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"{PYTHON} is not installed")
    base = tempfile.mkdtemp(prefix="leeward-unpriv-", dir="/tmp")
    os.chmod(base, 0o755)
    sources = os.path.join(base, "site")
    _stage_sources(sources)
    run_dir = os.path.join(base, "run")
    os.mkdir(run_dir, 0o700)
    os.chown(run_dir, user.pw_uid, user.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": sources, "HOME": run_dir}
    command = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", user.pw_name, "--", PYTHON]
    daemon = start_daemon(run_dir, *args, command=command, env=env)
    daemon.extra["uid"] = user.pw_uid
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def user_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged test user")
    with _unprivileged_daemon(_ensure_user(USER)) as daemon:
        yield daemon


@contextlib.contextmanager
def _subid_entries(name: str):
    """Appends `name`'s range to /etc/subuid and /etc/subgid; restores both files after."""
    saved = {}
    for path in ("/etc/subuid", "/etc/subgid"):
        saved[path] = open(path).read() if os.path.exists(path) else None
        with open(path, "a") as fh:
            fh.write(f"{name}:{SUBID_FIRST}:{SUBID_COUNT}\n")
    try:
        yield
    finally:
        for path, text in saved.items():
            if text is None:
                os.unlink(path)
            else:
                with open(path, "w") as fh:
                    fh.write(text)


@pytest.fixture(scope="module")
def subid_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged test user and its subordinate ids")
    if not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        pytest.skip("newuidmap/newgidmap missing: apt-get install uidmap")
    user = _ensure_user(SUBID_USER)
    shared = tempfile.mkdtemp(prefix="leeward-subid-shared-", dir="/tmp")  # reachable by the daemon's user
    os.chmod(shared, 0o777)  # a job is a subordinate uid: "other" to every host file
    with _subid_entries(SUBID_USER), _unprivileged_daemon(user, "--allow-path", os.path.realpath(shared)) as daemon:
        daemon.allowed_dir = os.path.realpath(shared)
        yield daemon
    shutil.rmtree(shared, ignore_errors=True)
    shutil.rmtree(f"/tmp/leeward-{user.pw_uid}", ignore_errors=True)  # its uid lock directory

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


def test_programs_run_unprivileged_and_cannot_reach_the_pid_1_reporting_them(user_daemon):
    # The program has the daemon's own uid here, as pid 1 has: non-dumpable pid 1 is what
    # keeps the program out of its /proc files (sandbox/runner.py).
    result = user_daemon.run(["sh", "-c", "id -u; cat /proc/1/environ; kill -TERM $$"])
    assert result.stdout == b"1000\n" and b"/proc/1/environ: Permission denied" in result.stderr, result
    assert result.exit_code == 128 + 15


def _daemon_pid(daemon) -> int:
    # runuser forks the daemon as its child
    children = subprocess.run(["pgrep", "-P", str(daemon.process.pid)], capture_output=True, text=True).stdout.split()
    return int(children[0]) if children else daemon.process.pid


# ---------------------------------------------------------------- subordinate ids

def _host_uid_of_a_job(daemon, hold_secs: float = 0.0) -> int:
    """The host uid of a job, from the owner of a file it created in a rw mount."""
    name = f"owner-{os.urandom(4).hex()}"
    mount = {"host": daemon.allowed_dir, "sandbox": "/shared", "ro": False}
    code = f"import time; open('/shared/{name}', 'w').close(); time.sleep({hold_secs})"
    result = daemon.execute(code, mounts=[mount])
    assert result.exit_code == 0, result.stderr
    return os.stat(os.path.join(daemon.allowed_dir, name)).st_uid


def test_jobs_run_as_distinct_subordinate_uids(subid_daemon):
    uids = []
    threads = [threading.Thread(target=lambda: uids.append(_host_uid_of_a_job(subid_daemon, 1.0)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(uids) == 3 and len(set(uids)) == 3  # three sandboxes alive together: three uids
    assert all(SUBID_FIRST <= uid < SUBID_FIRST + SUBID_COUNT for uid in uids)
    assert subid_daemon.extra["uid"] not in uids


def test_the_daemon_says_which_uids_its_jobs_get(subid_daemon, user_daemon):
    assert f"subordinate uid from {SUBID_FIRST}-" in subid_daemon.log()
    assert "jobs run as your own uid" in user_daemon.log()


# A budget the kernel keeps per host uid (the user_struct): pipe buffer pages. Past
# fs.pipe-user-pages-soft a user may not grow a pipe any more (F_SETPIPE_SZ: EPERM).
_HOLD_PIPES = """
import fcntl, os, time
pipes = []
while True:
    r, w = os.pipe()
    pipes.append((r, w))
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    except PermissionError:
        break  # this uid's budget is used up
open('/shared/{ready}', 'w').close()
deadline = time.monotonic() + 60
while not os.path.exists('/shared/{done}') and time.monotonic() < deadline:
    time.sleep(0.05)
print(len(pipes))
"""
_GROW_A_PIPE = """
import fcntl, os
r, w = os.pipe()
try:
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    print("grown")
except PermissionError:
    print("refused")
"""


def test_a_job_exhausting_a_per_user_budget_leaves_the_daemons_user_and_other_jobs_alone(subid_daemon):
    ready, done = f"ready-{os.urandom(4).hex()}", f"done-{os.urandom(4).hex()}"
    mount = {"host": subid_daemon.allowed_dir, "sandbox": "/shared", "ro": False}
    results = []
    holder = threading.Thread(target=lambda: results.append(subid_daemon.execute(
        _HOLD_PIPES.format(ready=ready, done=done), mounts=[mount], timeout_secs=120)))
    holder.start()
    try:
        deadline = time.monotonic() + 90
        while not os.path.exists(os.path.join(subid_daemon.allowed_dir, ready)):
            assert holder.is_alive() and time.monotonic() < deadline, results
            time.sleep(0.05)
        as_daemon_user = subprocess.run(["runuser", "-u", SUBID_USER, "--", PYTHON, "-c", _GROW_A_PIPE],
                                        capture_output=True, text=True, check=True).stdout
        other_job = subid_daemon.execute(_GROW_A_PIPE)
    finally:
        open(os.path.join(subid_daemon.allowed_dir, done), "w").close()
        holder.join()
    assert results[0].exit_code == 0, results[0].stderr
    assert int(results[0].stdout) > 1  # it did use up its own budget
    assert as_daemon_user == "grown\n"
    assert other_job.stdout == b"grown\n", other_job.stderr
