"""Escape probes: another local user against a user's daemon and clients (issue 19, items
2 and 8). With no XDG_RUNTIME_DIR the per-user socket lives in /tmp/leeward-<uid>/,
which anyone could create first; a socket there, or anywhere, may be someone else's;
the autostarted daemon's log sits next to it; a setgid host's environment is its
caller's. None of that may hand a user's code or files to another user.

Played for real: the victim is a system user made for this run (its own uid, so its
/tmp/leeward-<uid> is this run's alone even beside another test run), the attacker is
`nobody`, each running /usr/bin/python3 over a world-readable copy of leeward (as
tests/integration/test_unprivileged.py does: the checkout may be unreadable to them).
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

import leeward
from libleeward.build_ffi import ensure_built
from libleeward.client import Connection, UntrustedSocket
from tests.conftest import REPO
from tests.host import host_pids
from tests.integration.test_unprivileged import _stage_sources
from tests.libleeward.capi_support import clean_env, compile_c

pytestmark = pytest.mark.integration

PYTHON = "/usr/bin/python3"
EXIT_START_FAILED = 2   # leeward-daemon: cannot start
EXIT_LEEWARD_ERROR = 125  # leeward CLI: leeward itself failed
WAIT_SECS = 120.0  # bound on a daemon's start or exit, not a speed assertion
PRECIOUS = b"the victim's own file\n"


# ---------------------------------------------------------------- the two users

@pytest.fixture(scope="module")
def victim() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("needs root to play two local users")
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"{PYTHON} is not installed")
    name = f"leeward-local-{os.urandom(3).hex()}"
    _user_command(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
    user = pwd.getpwnam(name)
    yield user
    _kill_all_of(user.pw_uid)
    _user_command(["userdel", name])


def _user_command(argv: list[str]) -> None:
    """useradd/userdel, retried while another one holds the lock on /etc/passwd."""
    for _ in range(50):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode == 0:
            return
        if "lock" not in proc.stderr:
            break
        time.sleep(0.1)
    raise AssertionError(f"{' '.join(argv)}: {proc.stderr}")


@pytest.fixture(scope="module")
def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.fixture(scope="module")
def base(victim):
    """World-readable: leeward staged for both users, and the victim's private home."""
    base = tempfile.mkdtemp(prefix="leeward-local-users-", dir="/tmp")
    os.chmod(base, 0o755)
    site = os.path.join(base, "site")
    _stage_sources(site)
    shutil.copytree(os.path.join(REPO, "bindings", "python", "leeward"), os.path.join(site, "leeward"))
    shutil.copy(importlib.util.find_spec("_cffi_backend").origin, site)
    shutil.copy(ensure_built(), os.path.join(site, "libleeward.so"))
    home = os.path.join(base, "home")
    os.mkdir(home, 0o700)
    os.chown(home, victim.pw_uid, victim.pw_gid)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _env(base: str) -> dict:
    """No XDG_RUNTIME_DIR: the default socket is /tmp/leeward-<uid>/leeward.sock."""
    site = os.path.join(base, "site")
    return {"PATH": "/usr/bin:/bin", "HOME": os.path.join(base, "home"), "PYTHONPATH": site,
            "LEEWARD_PYTHONPATH": site, "LEEWARD_LIBRARY": os.path.join(site, "libleeward.so"),
            "LEEWARD_AUTOSTART_TIMEOUT": str(WAIT_SECS)}


def _as(user: pwd.struct_passwd, argv: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env, cwd="/",
                          capture_output=True, text=True, timeout=WAIT_SECS * 2, **kwargs)


def _python_as(user: pwd.struct_passwd, code: str) -> str:
    proc = _as(user, [PYTHON, "-c", code], {"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _kill_all_of(uid: int) -> None:
    """The victim is this module's own user: whatever runs as it was started here."""
    deadline = time.monotonic() + 30
    while (pids := host_pids(uid=uid)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


@pytest.fixture
def per_user_dir(victim):
    """The victim's /tmp/leeward-<uid>, absent at the start; its daemons gone at the end."""
    path = f"/tmp/leeward-{victim.pw_uid}"
    _kill_all_of(victim.pw_uid)
    _remove(path)
    yield path
    _kill_all_of(victim.pw_uid)
    _remove(path)


@pytest.fixture
def nobody_dir(nobody):
    """A directory of the attacker's, in /tmp."""
    path = _python_as(nobody, "import os, tempfile; d = tempfile.mkdtemp(dir='/tmp'); os.chmod(d, 0o777); print(d)")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def precious(base, victim) -> str:
    """A file of the victim's that a planted symlink points at."""
    path = os.path.join(base, "home", f"precious-{os.urandom(4).hex()}")
    with open(path, "wb") as fh:
        fh.write(PRECIOUS)
    os.chown(path, victim.pw_uid, victim.pw_gid)
    os.chmod(path, 0o600)
    yield path
    os.unlink(path)


def _start_default_daemon(victim, base) -> subprocess.CompletedProcess | None:
    """`leeward-daemon` as the victim on its default socket; its exit, or None if it
    was still running after WAIT_SECS (then killed)."""
    process = subprocess.Popen([PYTHON, "-m", "leeward_daemon", "--workers", "1"], user=victim.pw_uid,
                               group=victim.pw_gid, extra_groups=[], env=_env(base), cwd="/",
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=WAIT_SECS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def _cli_as(victim, base, *args: str) -> subprocess.CompletedProcess:
    return _as(victim, [PYTHON, "-m", "leeward", *args], _env(base))


# ---------------------------------------------------------------- the daemon's directory

def test_daemon_refuses_a_per_user_directory_another_user_made(victim, nobody, base, per_user_dir):
    _python_as(nobody, f"import os; os.mkdir({per_user_dir!r}); os.chmod({per_user_dir!r}, 0o777)")
    exited = _start_default_daemon(victim, base)
    assert exited is not None, "the daemon started in a directory of another user's"
    assert exited.returncode == EXIT_START_FAILED, exited.stdout
    assert (f"socket directory {per_user_dir} is owned by uid {nobody.pw_uid}, not uid {victim.pw_uid}"
            in exited.stdout), exited.stdout
    assert os.listdir(per_user_dir) == []


def test_daemon_refuses_a_symlink_planted_as_its_directory(victim, nobody, base, per_user_dir, nobody_dir):
    _python_as(nobody, f"import os; os.symlink({nobody_dir!r}, {per_user_dir!r})")
    exited = _start_default_daemon(victim, base)
    assert exited is not None, "the daemon started behind a planted symlink"
    assert exited.returncode == EXIT_START_FAILED, exited.stdout
    assert f"socket directory {per_user_dir}: it is a symlink" in exited.stdout, exited.stdout
    assert os.listdir(nobody_dir) == []


# ---------------------------------------------------------------- a socket someone else serves

@pytest.fixture
def foreign_socket(nobody, base):
    """A "daemon" of nobody's that anyone may connect to, which counts the bytes each
    connection sends it (it never answers: a client that sends gets EOF after a while).
    Its directory is nobody's but not in a shared parent like /tmp, so the clients'
    directory rule has nothing to say: only the peer's uid gives it away."""
    directory = os.path.join(base, f"foreign-{os.urandom(4).hex()}")
    os.mkdir(directory, 0o755)
    os.chown(directory, nobody.pw_uid, nobody.pw_gid)
    server = (
        "import os, socket\n"
        f"path = {directory!r} + '/leeward.sock'\n"
        "s = socket.socket(socket.AF_UNIX); s.bind(path); os.chmod(path, 0o666); s.listen(8)\n"
        "print(path, flush=True)\n"
        "while True:\n"
        "    c, _ = s.accept(); c.settimeout(2); got = 0\n"
        "    try:\n"
        "        while chunk := c.recv(65536): got += len(chunk)\n"
        "    except OSError: pass\n"
        "    c.close(); print(got, flush=True)\n"
    )
    process = subprocess.Popen([PYTHON, "-c", server], user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                               env={"PATH": "/usr/bin:/bin"}, cwd="/", stdout=subprocess.PIPE, text=True)
    path = process.stdout.readline().strip()
    assert path, "the foreign server did not start"

    def received() -> list[int]:
        """Bytes per connection, once every client is done."""
        process.terminate()
        return [int(line) for line in process.communicate(timeout=30)[0].split()]

    yield path, received
    if process.poll() is None:
        process.kill()
        process.wait()
    shutil.rmtree(directory, ignore_errors=True)


def test_clients_send_nothing_to_a_socket_another_user_serves(victim, nobody, base, foreign_socket):
    path, received = foreign_socket
    # The Python client (in this process, as root)...
    with pytest.raises(UntrustedSocket) as refused:
        Connection(path, timeout=30)
    assert refused.value.code == "E1007"
    assert refused.value.message == (f"socket {path} is served by uid {nobody.pw_uid}, which is neither you "
                                     f"(uid 0) nor root; refusing to send code to it")
    # ...the C ABI, through the Python binding here and the CLI as an ordinary user.
    with pytest.raises(leeward.UntrustedSocket, match=f"E1007: socket {path} is served by uid {nobody.pw_uid}"):
        leeward.Leeward(path)
    cli = _cli_as(victim, base, "exec", "--no-autostart", "--socket", path, "print('secret')")
    assert cli.returncode == EXIT_LEEWARD_ERROR, cli
    assert (f"E1007: socket {path} is served by uid {nobody.pw_uid}, which is neither you (uid {victim.pw_uid}) "
            f"nor root" in cli.stderr), cli.stderr
    # Each connected (the check needs the connection), none sent a byte.
    assert received() == [0, 0, 0]


# ---------------------------------------------------------------- the CLI's autostart

def _assert_autostart_refused(cli, why: str, per_user_dir: str, precious: str) -> None:
    """The CLI failed saying `why`, started no daemon, and left the victim's file and the
    per-user directory (holding only the planted log) as they were."""
    assert cli.returncode == EXIT_LEEWARD_ERROR, cli
    assert why in cli.stderr, cli.stderr
    assert "started a daemon" not in cli.stderr
    with open(precious, "rb") as fh:
        assert fh.read() == PRECIOUS
    assert os.listdir(per_user_dir) == ["leeward-daemon.log"]


def test_autostart_refuses_a_squatted_directory_and_its_planted_log(victim, nobody, base, per_user_dir, precious):
    """The review's attack: nobody makes /tmp/leeward-<victim> 0777 with the log as a
    symlink to the victim's file; `leeward exec` as the victim used it and appended."""
    log = os.path.join(per_user_dir, "leeward-daemon.log")
    _python_as(nobody, f"import os; os.mkdir({per_user_dir!r}); os.chmod({per_user_dir!r}, 0o777); "
                       f"os.symlink({precious!r}, {log!r})")
    _assert_autostart_refused(_cli_as(victim, base, "exec", "print('secret')"),
                              f"E1007: socket directory {per_user_dir} is owned by uid {nobody.pw_uid}",
                              per_user_dir, precious)


def test_autostart_never_follows_a_symlink_as_its_log(victim, base, per_user_dir, precious):
    """Even in the victim's own, correct directory (a symlink left there earlier)."""
    os.mkdir(per_user_dir, 0o700)
    os.chown(per_user_dir, victim.pw_uid, victim.pw_gid)
    log = os.path.join(per_user_dir, "leeward-daemon.log")
    os.symlink(precious, log)
    os.lchown(log, victim.pw_uid, victim.pw_gid)
    _assert_autostart_refused(_cli_as(victim, base, "exec", "print('secret')"),
                              f"cannot open the daemon log {log} safely", per_user_dir, precious)


def test_autostart_makes_a_private_directory_and_log_and_talks_to_its_own_daemon(victim, base, per_user_dir):
    """The control: with nothing planted, the same user, paths and rules just work."""
    cli = _cli_as(victim, base, "exec", "print('mine')")
    assert (cli.returncode, cli.stdout) == (0, "mine\n"), cli.stderr
    info = os.lstat(per_user_dir)
    assert (stat.S_ISDIR(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid) == (True, 0o700, victim.pw_uid)
    info = os.lstat(os.path.join(per_user_dir, "leeward-daemon.log"))
    assert (stat.S_ISREG(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid) == (True, 0o600, victim.pw_uid)


# ---------------------------------------------------------------- an elevated host

HOST_C = r"""
#include <stdio.h>
#include "leeward.h"

int main(void)
{
    LeewardHandle *handle = leeward_connect(NULL);
    if (handle == NULL) {
        printf("%s %s\n", leeward_last_error_code(), leeward_last_error());
        return 1;
    }
    printf("connected\n");
    leeward_disconnect(handle);
    return 0;
}
"""


@pytest.fixture(scope="module")
def connect_host(tmp_path_factory):
    directory = tmp_path_factory.mktemp("elevated")
    source = directory / "connect_host.c"
    source.write_text(HOST_C)
    return compile_c(source, directory / "connect_host")


def test_a_setgid_host_ignores_its_callers_leeward_environment(connect_host, tmp_path):
    """A setgid program linking libleeward runs with AT_SECURE: its caller must choose
    neither the daemon (LEEWARD_SOCKET) nor code on the embedded Python's path
    (LEEWARD_PYTHONPATH, PYTHONPATH). Run by root: a setgid bit alone sets AT_SECURE."""
    chosen_socket = f"/nonexistent-{os.urandom(4).hex()}/leeward.sock"
    planted = tmp_path / "planted"
    marker = tmp_path / "planted-code-ran"
    (planted / "libleeward").mkdir(parents=True)
    (planted / "libleeward" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")

    ordinary = subprocess.run([connect_host], capture_output=True, text=True, timeout=WAIT_SECS,
                              env=clean_env(LEEWARD_SOCKET=chosen_socket))
    assert chosen_socket in ordinary.stdout, ordinary  # the control: normally it is obeyed

    os.chown(connect_host, 0, pwd.getpwnam("nobody").pw_gid)
    os.chmod(connect_host, 0o2755)
    try:
        elevated = subprocess.run([connect_host], capture_output=True, text=True, timeout=WAIT_SECS,
                                  env=clean_env(LEEWARD_SOCKET=chosen_socket, LEEWARD_PYTHONPATH=str(planted),
                                                PYTHONPATH=str(planted)))
    finally:
        os.chmod(connect_host, 0o755)
    assert not marker.exists(), f"the caller's code ran in the setgid host:\n{elevated}"
    assert chosen_socket not in elevated.stdout, elevated
    # Still works: the default socket instead (root's; nothing may listen there).
    assert elevated.stdout.startswith(("connected", "E1006 cannot connect to /run/leeward/leeward.sock")), elevated
