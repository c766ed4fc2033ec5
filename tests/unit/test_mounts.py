import errno
import os

import pytest

from leeward_daemon.frontdoor import mounts
from libleeward.protocol import ErrorCode, Mount, ProtocolError


@pytest.fixture
def tree(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "data").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", allowed / "link")
    return tmp_path.resolve(), str(allowed.resolve())


def resolve(path, allowed, socket_path="/run/none.sock"):
    return mounts.resolve((Mount(path, "/data", True),), [allowed], socket_path)


def code_of(*args, **kwargs):
    with pytest.raises(ProtocolError) as err:
        resolve(*args, **kwargs)
    return err.value.code


def test_allowed_real_path(tree):
    _, allowed = tree
    [job_mount] = resolve(allowed + "/data", allowed)
    assert (job_mount.host, job_mount.sandbox, job_mount.ro) == (allowed + "/data", "/data", True)


def test_symlink_is_refused(tree):
    _, allowed = tree
    assert code_of(allowed + "/link", allowed) is ErrorCode.MOUNT_SYMLINK


def test_outside_and_prefix_tricks_are_refused(tree):
    root, allowed = tree
    assert code_of(str(root / "secret"), allowed) is ErrorCode.MOUNT_NOT_ALLOWED
    os.mkdir(allowed + "-evil")  # shares the string prefix of the allowed dir
    assert code_of(allowed + "-evil", allowed) is ErrorCode.MOUNT_NOT_ALLOWED
    assert code_of(allowed + "/data/../../secret", allowed) is ErrorCode.MOUNT_NOT_ALLOWED


def test_missing_source(tree):
    _, allowed = tree
    assert code_of(allowed + "/nope", allowed) is ErrorCode.MOUNT_NOT_FOUND


def test_a_dir_holding_the_daemon_socket_is_refused(tree):
    _, allowed = tree
    assert code_of(allowed, allowed, socket_path=allowed + "/data/leeward.sock") is ErrorCode.MOUNT_NOT_ALLOWED


def test_a_path_swapped_while_resolving_is_refused_as_a_symlink(tmp_path, monkeypatch):
    # realpath(3)-style resolution raises EINVAL when a symlink it saw is a directory
    # again by the time it reads it (the escape probe races this for real).
    def swapped(path, **_):
        raise OSError(errno.EINVAL, "Invalid argument", path)
    monkeypatch.setattr(mounts.os.path, "realpath", swapped)
    with pytest.raises(ProtocolError) as info:
        mounts.resolve((Mount(str(tmp_path), "/data", True),), [str(tmp_path)], "/run/x.sock")
    assert info.value.code == ErrorCode.MOUNT_SYMLINK
