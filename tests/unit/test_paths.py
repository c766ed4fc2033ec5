"""Which directory may hold the daemon's socket (libleeward.paths) and how the CLI opens
the autostarted daemon's log: what another local user could have planted is refused.

A parent like /tmp (writable by others) makes a directory private-by-location, the
same rule as the per-user /tmp/leeward-<uid>; tests/escapes/test_local_users.py
plays the other user for real."""
from __future__ import annotations

import os
import stat

import pytest

from leeward import UntrustedSocket
from leeward._autostart import open_log
from libleeward import paths
from libleeward.paths import UnsafeSocketDirectory

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")
OTHER_UID = 12345


@pytest.fixture
def shared(tmp_path) -> str:
    """A parent like /tmp: anyone may create names in it."""
    os.chmod(tmp_path, 0o1777)
    return str(tmp_path)


def _mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_per_user_directory_and_anything_in_a_shared_parent_must_be_private(shared, tmp_path):
    assert paths.must_be_private(paths.per_user_directory())
    assert paths.must_be_private(os.path.join(shared, "run"))
    private_parent = tmp_path / "private"
    private_parent.mkdir(mode=0o755)
    assert not paths.must_be_private(str(private_parent / "run"))


def test_a_missing_private_directory_is_created_0700_and_ours(shared):
    directory = paths.prepare_socket_directory(os.path.join(shared, "run", "leeward.sock"))
    assert directory == os.path.join(shared, "run")
    assert (_mode(directory), os.lstat(directory).st_uid) == (0o700, os.geteuid())
    # An existing one that is ours passes again (a restarted daemon).
    assert paths.prepare_socket_directory(os.path.join(shared, "run", "leeward.sock")) == directory


def test_a_private_directory_others_can_enter_is_refused(shared):
    directory = os.path.join(shared, "run")
    os.mkdir(directory)
    os.chmod(directory, 0o777)
    with pytest.raises(UnsafeSocketDirectory, match=r"run has mode 0777, not 0700"):
        paths.prepare_socket_directory(os.path.join(directory, "leeward.sock"))
    os.chmod(directory, 0o750)
    with pytest.raises(UnsafeSocketDirectory, match="mode 0750"):
        paths.prepare_socket_directory(os.path.join(directory, "leeward.sock"))
    assert os.listdir(directory) == []


@needs_root
def test_a_private_directory_of_another_user_is_refused(shared):
    directory = os.path.join(shared, "run")
    os.mkdir(directory, 0o700)
    os.chown(directory, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeSocketDirectory, match=f"owned by uid {OTHER_UID}, not uid {os.geteuid()}"):
        paths.prepare_socket_directory(os.path.join(directory, "leeward.sock"))


def test_a_symlink_as_the_directory_is_refused_even_to_a_good_one(shared, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = os.path.join(shared, "run")
    os.symlink(target, link)
    with pytest.raises(UnsafeSocketDirectory, match="run: it is a symlink"):
        paths.prepare_socket_directory(os.path.join(link, "leeward.sock"))
    with open(os.path.join(shared, "file"), "w"):
        pass
    with pytest.raises(UnsafeSocketDirectory, match="file: it is not a directory"):
        paths.prepare_socket_directory(os.path.join(shared, "file", "leeward.sock"))


def test_outside_shared_places_the_operators_directory_is_kept(tmp_path):
    """/run/leeward of a root daemon is 0755 on purpose; an existing directory in a place
    only trusted users write is the operator's choice. A missing one is created."""
    existing = tmp_path / "existing"
    existing.mkdir()
    os.chmod(existing, 0o755)
    assert paths.prepare_socket_directory(str(existing / "leeward.sock")) == str(existing)
    created = paths.prepare_socket_directory(str(tmp_path / "a" / "b" / "leeward.sock"))
    assert _mode(created) == (0o755 if os.geteuid() == 0 else 0o700) & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@needs_root
def test_the_client_accepts_its_own_or_roots_private_directory_only(shared):
    directory = os.path.join(shared, "run")
    socket_path = os.path.join(directory, "leeward.sock")
    paths.check_client_directory(socket_path)  # missing: left to connect() (E1006, autostart)
    os.mkdir(directory, 0o700)
    paths.check_client_directory(socket_path)
    os.chmod(directory, 0o711)
    with pytest.raises(UnsafeSocketDirectory, match="mode 0711"):
        paths.check_client_directory(socket_path)
    os.chmod(directory, 0o700)
    os.chown(directory, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeSocketDirectory, match=f"owned by uid {OTHER_UID}"):
        paths.check_client_directory(socket_path)


def test_environment_is_read_in_an_ordinary_process(monkeypatch):
    """The elevated (AT_SECURE) half runs for real in tests/escapes/test_local_users.py."""
    monkeypatch.setenv(paths.SOCKET_ENV, "/somewhere/leeward.sock")
    assert paths.secure_getenv(paths.SOCKET_ENV) == "/somewhere/leeward.sock"
    assert paths.default_socket_path() == "/somewhere/leeward.sock"


# ---------------------------------------------------------------- the autostart log

def test_the_log_is_created_0600_and_appended_to(tmp_path):
    log_path = str(tmp_path / "leeward-daemon.log")
    with open_log(log_path) as log:
        log.write(b"first\n")
    assert _mode(log_path) == 0o600
    with open_log(log_path) as log:
        log.write(b"second\n")
    assert open(log_path, "rb").read() == b"first\nsecond\n"


def test_a_symlink_as_the_log_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    log_path = str(tmp_path / "leeward-daemon.log")
    os.symlink(victim, log_path)
    with pytest.raises(UntrustedSocket, match="a symlink there is refused") as refused:
        open_log(log_path)
    assert refused.value.code == "E1007"
    os.unlink(log_path)
    os.symlink(tmp_path / "missing", log_path)  # dangling: O_CREAT would create the target
    with pytest.raises(UntrustedSocket):
        open_log(log_path)
    assert victim.read_bytes() == b"precious\n" and not (tmp_path / "missing").exists()


def test_a_fifo_or_directory_as_the_log_is_refused_without_hanging(tmp_path):
    log_path = str(tmp_path / "leeward-daemon.log")
    os.mkfifo(log_path)
    with pytest.raises(UntrustedSocket):  # no reader: ENXIO, never a blocked open
        open_log(log_path)
    os.unlink(log_path)
    os.mkdir(log_path)
    with pytest.raises(UntrustedSocket):
        open_log(log_path)


@needs_root
def test_a_log_of_another_user_is_refused(tmp_path):
    log_path = tmp_path / "leeward-daemon.log"
    log_path.write_bytes(b"theirs\n")
    os.chown(log_path, OTHER_UID, OTHER_UID)
    with pytest.raises(UntrustedSocket, match=f"belongs to uid {OTHER_UID}"):
        open_log(str(log_path))
    assert log_path.read_bytes() == b"theirs\n"
