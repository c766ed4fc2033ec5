"""Escape probes: mount TARGETS a job prepared. A job with a rw mount plants symlinks in
it; a later request mounts that directory and nests another mount under the symlink. The
sandbox must never create the mount point through the link: not on the host tree (still
attached while sources are opened), not anywhere outside the sandbox's own view.

Run against a root daemon and an unprivileged one, for file and directory targets under
read-only and read-write parents.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from libleeward.client import LeewardError

from tests.conftest import start_daemon
from tests.integration.test_unprivileged import PYTHON, USER, _ensure_user, _stage_sources

from ._probe import lines, probe

pytestmark = pytest.mark.integration

# Where the host tree hangs in the slot while sources are opened, and relative routes to it.
PLANTS = {
    "abs": "/oldroot{victim}",
    "rel": "../oldroot{victim}",
    "deep": "../../../../../../oldroot{victim}",
}


@pytest.fixture(scope="module")
def user_daemon_with_mounts():
    """An unprivileged daemon (see tests/integration/test_unprivileged.py) that may mount
    a world-writable directory of its own."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged test user")
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"{PYTHON} is not installed")
    user = _ensure_user(USER)
    base = tempfile.mkdtemp(prefix="leeward-unpriv-mounts-", dir="/tmp")
    os.chmod(base, 0o755)
    sources = os.path.join(base, "site")
    _stage_sources(sources)
    run_dir = os.path.join(base, "run")
    allowed = os.path.join(base, "allowed")
    for path in (run_dir, allowed):
        os.mkdir(path, 0o700)
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(allowed, 0o777)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": sources, "HOME": run_dir}
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    running = start_daemon(run_dir, "--allow-path", allowed, command=[runuser, "-u", USER, "--", PYTHON], env=env)
    running.allowed_dir = allowed
    yield running
    running.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def any_daemon(request, daemon):
    if request.param == "root":
        return daemon
    return request.getfixturevalue("user_daemon_with_mounts")


@pytest.fixture
def victim():
    """A host directory outside every allowed path that anyone could write to: only
    resolution through a planted link could put anything in it."""
    path = tempfile.mkdtemp(prefix="leeward-victim-", dir="/var/tmp")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fresh_dir(parent: str) -> str:
    path = os.path.join(parent, f"probe-{os.urandom(4).hex()}")
    os.mkdir(path)
    os.chmod(path, 0o777)
    return path


def _plant(daemon, directory: str, victim: str) -> None:
    code = "import os\n" + "".join(
        f"os.symlink({target.format(victim=victim)!r}, '/out/{name}')\n" for name, target in PLANTS.items())
    result = daemon.execute(code, mounts=[{"host": directory, "sandbox": "/out", "ro": False}])
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(directory)) == sorted(PLANTS)


@pytest.mark.parametrize("parent_ro", [True, False], ids=["ro-parent", "rw-parent"])
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_mount_points_are_never_created_through_planted_symlinks(any_daemon, victim, parent_ro, kind):
    planted = _fresh_dir(any_daemon.allowed_dir)
    _plant(any_daemon, planted, victim)
    source = os.path.join(_fresh_dir(any_daemon.allowed_dir), "payload")
    if kind == "dir":
        os.mkdir(source)
    else:
        with open(source, "w") as fh:
            fh.write("payload")
    outcomes = []
    for name in PLANTS:
        for nested in (f"/data/{name}/pwned-{kind}", f"/data/{name}/sub/pwned-{kind}"):
            mounts = [{"host": planted, "sandbox": "/data", "ro": parent_ro},
                      {"host": source, "sandbox": nested, "ro": True}]
            try:
                result = any_daemon.execute("import os; print(os.path.lexists('/data'))", mounts=mounts)
                outcomes.append(("ran", result.exit_code))
            except LeewardError as exc:
                outcomes.append(("refused", exc.code))
    assert os.listdir(victim) == [], f"the sandbox created host files through a planted link: {outcomes}"
    # Refused cleanly, never an internal error, and the daemon serves on.
    assert all(kind == "refused" and code != "E4001" for kind, code in outcomes), outcomes
    assert any_daemon.execute("print('alive')").stdout == b"alive\n"


def test_a_target_that_is_a_planted_symlink_is_refused_not_followed(daemon, victim):
    """The target itself is the link (not only a component above it)."""
    planted = _fresh_dir(daemon.allowed_dir)
    _plant(daemon, planted, victim)
    source = _fresh_dir(daemon.allowed_dir)
    with pytest.raises(LeewardError) as info:
        daemon.execute("print(1)", mounts=[{"host": planted, "sandbox": "/data", "ro": False},
                                           {"host": source, "sandbox": "/data/abs", "ro": False}])
    assert info.value.code != "E4001"
    assert os.listdir(victim) == []


def test_nested_mounts_keep_working(daemon, probe_dir):
    """The common case: a rw workspace with a read-only input file and directory nested
    in it, given in any order (children before their parent too)."""
    inputs = _fresh_dir(daemon.allowed_dir)
    with open(os.path.join(inputs, "in.txt"), "w") as fh:
        fh.write("input")
    data_file = os.path.join(inputs, "in.txt")
    mounts = [{"host": data_file, "sandbox": "/work/sub/in.txt", "ro": True},
              {"host": probe_dir, "sandbox": "/work", "ro": False},
              {"host": inputs, "sandbox": "/work/inputs", "ro": True}]
    code = ("import os\n"
            "print(open('/work/sub/in.txt').read(), sorted(os.listdir('/work/inputs')))\n"
            "open('/work/out.txt', 'w').write('written')\n"
            "try:\n"
            "    open('/work/inputs/x', 'w')\n"
            "except OSError as exc:\n"
            "    print('ro', exc.errno == 30)\n")
    result = probe(daemon, code, mounts=mounts)
    assert result.exit_code == 0, result.stderr
    assert lines(result) == ["input ['in.txt']", "ro True"]
    with open(os.path.join(probe_dir, "out.txt")) as fh:
        assert fh.read() == "written"
    # The mount points the sandbox made are plain, empty, and owned inside the rw mount.
    assert sorted(os.listdir(probe_dir)) == ["inputs", "out.txt", "sub"]
    assert os.path.getsize(os.path.join(probe_dir, "sub", "in.txt")) == 0


def test_nested_mount_under_a_read_only_parent_needs_an_existing_target(daemon):
    """A read-only parent is never written to, not even to make a mount point: an
    existing target works, a missing one is a clean refusal."""
    parent = _fresh_dir(daemon.allowed_dir)
    os.mkdir(os.path.join(parent, "there"))
    source = _fresh_dir(daemon.allowed_dir)
    with open(os.path.join(source, "f"), "w") as fh:
        fh.write("f")
    ok = daemon.execute("import os; print(os.listdir('/data/there'))",
                        mounts=[{"host": parent, "sandbox": "/data", "ro": True},
                                {"host": source, "sandbox": "/data/there", "ro": True}])
    assert lines(ok) == ["['f']"], ok.stderr
    with pytest.raises(LeewardError) as info:
        daemon.execute("print(1)", mounts=[{"host": parent, "sandbox": "/data", "ro": True},
                                           {"host": source, "sandbox": "/data/missing", "ro": True}])
    assert info.value.code != "E4001"
    assert sorted(os.listdir(parent)) == ["there"]


def test_user_daemon_fixture_is_really_unprivileged(user_daemon_with_mounts):
    """Guards the parametrisation above: the "user" case must not silently be root."""
    pid = user_daemon_with_mounts.process.pid
    uids = subprocess.run(["ps", "-o", "uid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    assert str(pwd.getpwnam(USER).pw_uid) in uids, uids
