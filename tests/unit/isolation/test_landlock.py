"""Landlock against the real kernel: each restriction runs in a forked child."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess

import prctl
import pytest

import isolation_probes as probes
from leeward_daemon.isolation import landlock

ABI = landlock.abi_version()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="Landlock is not available on this kernel")
SYSTEM_RO = ["/usr", "/lib", "/lib64", "/bin", "/etc"]


def _errno_of(call, *args, **kwargs) -> int:
    try:
        call(*args, **kwargs)
    except OSError as exc:
        return exc.errno
    return 0


@pytest.fixture
def tree(tmp_path):
    ro, rw, outside = tmp_path / "ro", tmp_path / "rw", tmp_path / "outside"
    for d in (ro, rw, outside):
        d.mkdir()
    (ro / "in.txt").write_text("readable")
    (outside / "secret.txt").write_text("secret")
    shutil.copy("/bin/true", ro / "true")
    shutil.copy("/bin/true", outside / "true")
    return ro, rw, outside


def test_abi_version_is_7_on_this_machine():
    if ABI < 7:
        pytest.skip(f"kernel offers Landlock ABI {ABI}, this check expects the dev VM's ABI 7")
    assert ABI == 7


@needs_landlock
def test_reads_and_writes_only_where_allowed(run_in_child, tree):
    ro, rw, outside = tree

    def child():
        used = probes.restrict([str(ro)], [str(rw)])
        (rw / "out.txt").write_text("written")
        (rw / "sub").mkdir()
        os.rename(rw / "out.txt", rw / "sub" / "out.txt")
        return {
            "abi": used,
            "read ro": (ro / "in.txt").read_text(),
            "read rw": (rw / "sub" / "out.txt").read_text(),
            "write ro": _errno_of((ro / "new.txt").write_text, "x"),
            "append ro": _errno_of(open, ro / "in.txt", "a"),
            "read outside": _errno_of((outside / "secret.txt").read_text),
            "list outside": _errno_of(os.listdir, outside),
            "write outside": _errno_of((outside / "new.txt").write_text, "x"),
            "move rw->outside": _errno_of(os.rename, rw / "sub" / "out.txt", outside / "out.txt"),
            "no_new_privs": prctl.get_no_new_privs(),
        }

    got = run_in_child(child).unwrap()
    assert got == {
        "abi": min(ABI, landlock.KNOWN_ABI),
        "read ro": "readable",
        "read rw": "written",
        "write ro": errno.EACCES,
        "append ro": errno.EACCES,
        "read outside": errno.EACCES,
        "list outside": errno.EACCES,
        "write outside": errno.EACCES,
        "move rw->outside": errno.EACCES,
        "no_new_privs": True,
    }


@needs_landlock
def test_read_only_paths_allow_exec_and_others_do_not(run_in_child, tree):
    ro, rw, outside = tree

    def child():
        probes.restrict(SYSTEM_RO + [str(ro)], [str(rw)])
        return (subprocess.run(["/bin/true"]).returncode,
                subprocess.run([str(ro / "true")]).returncode,
                _errno_of(subprocess.run, [str(outside / "true")]))

    assert run_in_child(child).unwrap() == (0, 0, errno.EACCES)


@needs_landlock
def test_single_file_rule_and_missing_paths(run_in_child, tree):
    ro, rw, outside = tree

    def child():
        probes.restrict([str(ro / "in.txt"), "/nonexistent/leeward"], [str(rw / "missing-too")])
        return ((ro / "in.txt").read_text(),
                _errno_of(os.listdir, ro),
                _errno_of(open, ro / "in.txt", "w"))

    assert run_in_child(child).unwrap() == ("readable", errno.EACCES, errno.EACCES)


@pytest.mark.skipif(ABI < 4, reason=f"Landlock ABI {ABI} has no TCP rules (needs 4)")
def test_tcp_connect_and_bind_denied_unless_allowed(run_in_child, tree):
    ro, rw, _ = tree
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def child(allow_tcp):
        probes.restrict([str(ro)], [str(rw)], allow_tcp=allow_tcp)
        with socket.socket() as c, socket.socket() as b:
            return (_errno_of(c.connect, ("127.0.0.1", port)),
                    _errno_of(b.bind, ("127.0.0.1", 0)))

    try:
        assert run_in_child(child, False).unwrap() == (errno.EACCES, errno.EACCES)
        assert run_in_child(child, True).unwrap() == (0, 0)
    finally:
        server.close()


@pytest.mark.skipif(ABI < 6, reason=f"Landlock ABI {ABI} has no scopes (needs 6)")
def test_scopes_block_signals_and_abstract_sockets_leaving_the_domain(run_in_child, tree):
    ro, rw, _ = tree
    name = f"\0leeward-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen()

    def child():
        probes.restrict([str(ro)], [str(rw)])
        pid = os.fork()  # inside the domain: still reachable
        if pid == 0:
            signal.pause()
            os._exit(0)
        own = _errno_of(os.kill, pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            abstract = _errno_of(c.connect, name)
        return _errno_of(os.kill, os.getppid(), 0), own, abstract

    try:
        assert run_in_child(child).unwrap() == (errno.EPERM, 0, errno.EPERM)
    finally:
        server.close()


@needs_landlock
def test_restrict_stacks_and_never_widens(run_in_child, tree):
    ro, rw, outside = tree

    def child():
        probes.restrict([str(ro)], [str(rw)])
        probes.restrict([str(ro)], [str(rw), str(outside)])  # a second layer cannot add
        return _errno_of((outside / "secret.txt").read_text), (rw / "x").write_text("ok")

    assert run_in_child(child).unwrap() == (errno.EACCES, 2)


def test_handled_rights_grow_with_abi():
    assert landlock.handled_fs_access(1) == (1 << 13) - 1
    assert landlock.handled_fs_access(2) & landlock.FS_REFER
    assert landlock.handled_fs_access(3) & landlock.FS_TRUNCATE
    assert not landlock.handled_fs_access(4) & landlock.FS_IOCTL_DEV
    assert landlock.handled_fs_access(7) == (1 << 16) - 1
