"""Socket activation and readiness notification, without systemd (the daemon side)."""
import os
import socket

import pytest

from leeward_daemon.ops import systemd
from leeward_daemon.ops.systemd import ActivationError


def test_not_activated_without_the_variables():
    environ = {"PATH": "/bin"}
    assert systemd.listen_socket(environ) is None
    assert environ == {"PATH": "/bin"}


def test_variables_meant_for_another_process_are_ignored_and_removed():
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x", "HOME": "/h"}
    assert systemd.listen_socket(environ) is None
    assert environ == {"HOME": "/h"}


@pytest.mark.parametrize("fds, message", [("2", "exactly one socket"), ("many", "not a number")])
def test_anything_but_one_socket_is_refused(fds, message):
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": fds}
    with pytest.raises(ActivationError, match=message):
        systemd.listen_socket(environ)
    assert "LISTEN_FDS" not in environ and "LISTEN_PID" not in environ


def test_a_listening_unix_stream_socket_is_accepted_and_not_inheritable(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "s"))
    listener.listen()
    os.set_inheritable(listener.fileno(), True)  # as systemd hands it over
    sock = systemd._checked_socket(listener.fileno())
    try:
        assert sock.getsockname() == str(tmp_path / "s")
        assert not os.get_inheritable(sock.fileno())
    finally:
        sock.detach()
        listener.close()


@pytest.mark.parametrize("family, kind, listen", [
    (socket.AF_UNIX, socket.SOCK_STREAM, False),   # bound but not listening
    (socket.AF_UNIX, socket.SOCK_DGRAM, False),
    (socket.AF_INET, socket.SOCK_STREAM, True),
])
def test_other_sockets_are_refused(tmp_path, family, kind, listen):
    with socket.socket(family, kind) as sock:
        sock.bind(str(tmp_path / "s") if family == socket.AF_UNIX else ("127.0.0.1", 0))
        if listen:
            sock.listen()
        with pytest.raises(ActivationError, match="listening AF_UNIX stream"):
            systemd._checked_socket(sock.fileno())


def test_a_file_is_not_a_socket(tmp_path):
    with open(tmp_path / "f", "w") as fh:
        with pytest.raises(ActivationError, match="not a socket"):
            systemd._checked_socket(fh.fileno())


def test_notify_sends_the_state_to_the_managers_socket(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        assert systemd.notify("READY=1", {"NOTIFY_SOCKET": path}) is True
        assert manager.recv(64) == b"READY=1"


def test_notify_reaches_an_abstract_socket():
    name = f"leeward-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name)
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert manager.recv(64) == b"STOPPING=1"


def test_notify_without_a_manager_is_a_no_op(tmp_path):
    assert systemd.notify("READY=1", {}) is False
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
