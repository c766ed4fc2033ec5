"""sandbox/files.py in a plain process: the O_NOFOLLOW walk refuses a symlink at any
component, and each operation does what its reply says."""
import os

import pytest

from leeward_daemon.ipc.messages import FileOp
from leeward_daemon.sandbox import files


@pytest.fixture
def root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.symlink(outside, workdir / "link_dir")
    os.symlink(outside / "secret", workdir / "link_file")
    return str(workdir)


def test_write_read_list_remove(root):
    assert files.serve(FileOp("write", root, ["d", "f.bin"], data=b"abc")).size == 3
    read = files.serve(FileOp("read", root, ["d", "f.bin"], max_bytes=2))
    assert (read.error, read.data, read.size, read.truncated) == (None, b"ab", 3, True)
    listed = files.serve(FileOp("list", root, ["d"]))
    assert [(e.name, e.type, e.size) for e in listed.entries] == [("f.bin", "file", 3)]
    assert files.serve(FileOp("remove", root, ["d", "f.bin"])).error is None
    assert files.serve(FileOp("list", root, ["d"])).entries == []


@pytest.mark.parametrize("kind, parts", [("read", ["link_file"]), ("read", ["link_dir", "secret"]),
                                         ("write", ["link_file"]), ("write", ["link_dir", "new"]),
                                         ("list", ["link_dir"])])
def test_a_symlink_is_never_followed(root, kind, parts):
    reply = files.serve(FileOp(kind, root, parts, data=b"x", max_bytes=100))
    assert reply.error is not None and reply.data == b""
    with open(os.path.join(os.path.dirname(root), "outside", "secret"), "rb") as fh:
        assert fh.read() == b"secret"
    assert sorted(os.listdir(os.path.join(os.path.dirname(root), "outside"))) == ["secret"]


def test_removing_a_symlink_removes_the_link_only(root):
    assert files.serve(FileOp("remove", root, ["link_file"])).error is None
    assert not os.path.lexists(os.path.join(root, "link_file"))
    assert os.path.exists(os.path.join(os.path.dirname(root), "outside", "secret"))


def test_listing_names_symlinks_as_such(root):
    types = {e.name: e.type for e in files.serve(FileOp("list", root, [])).entries}
    assert types == {"link_dir": "symlink", "link_file": "symlink"}


@pytest.mark.parametrize("kind", ["write", "read", "remove", "chmod"])
def test_the_root_itself_and_unknown_operations_are_refused(root, kind):
    assert files.serve(FileOp(kind, root, [])).error is not None
