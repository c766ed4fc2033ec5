"""Socket activation as systemd does it: a listening socket at fd 3, LISTEN_FDS=1 and
LISTEN_PID set to the daemon's own pid (a wrapper sets it, then execs the daemon)."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import RunningDaemon

pytestmark = pytest.mark.integration
WAIT_SECS = 90.0  # bound on waiting for readiness, not a speed assertion
# What systemd does between fork and exec: the socket to fd 3, the variables naming
# this very process (exec keeps the pid), then the daemon.
WRAPPER = """
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, "-m", "leeward_daemon", *sys.argv[2:]])
"""


def activate(directory, fd: int, socket_path: str, *args: str) -> RunningDaemon:
    log_path = os.path.join(directory, f"daemon-{time.monotonic_ns()}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", WRAPPER, str(fd), "--workers", "1", "--metrics-port", "0",
                                    *args], pass_fds=[fd], stdout=log, stderr=subprocess.STDOUT, cwd="/")
    daemon = RunningDaemon(socket_path, process, log_path)
    deadline = time.monotonic() + WAIT_SECS
    while not daemon.alive():  # connections queue on the socket until the daemon accepts
        if process.poll() is not None or time.monotonic() > deadline:
            daemon.stop()
            raise RuntimeError(f"activated daemon did not answer (status {process.poll()}):\n{daemon.log()}")
        time.sleep(0.05)
    return daemon


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "activated.sock"))
    sock.listen()
    yield sock
    sock.close()


def test_daemon_serves_on_the_socket_it_was_given_and_leaves_it_for_the_next(tmp_path, listener):
    path = listener.getsockname()
    for attempt in ("first", "restarted"):  # systemd starts the service again on the next connection
        daemon = activate(str(tmp_path), listener.fileno(), path, "--socket", str(tmp_path / "unused.sock"))
        try:
            with daemon.connect() as conn:
                status = conn.status()
                result = conn.execute(f"print({attempt!r})")
            assert (status["socket_activated"], status["socket"]) == (True, path)
            assert result.stdout == f"{attempt}\n".encode()
        finally:
            daemon.process.send_signal(signal.SIGTERM)
            assert daemon.process.wait(WAIT_SECS) == 0
        assert os.path.exists(path)  # systemd's socket file: not the daemon's to remove
        assert not os.path.lexists(tmp_path / "unused.sock")


def test_something_else_at_fd_3_stops_the_daemon(tmp_path):
    with open(tmp_path / "not-a-socket", "w") as fh:
        proc = subprocess.run([sys.executable, "-c", WRAPPER, str(fh.fileno()), "--socket", str(tmp_path / "s.sock")],
                              pass_fds=[fh.fileno()], capture_output=True, text=True, timeout=WAIT_SECS, cwd="/")
    assert proc.returncode == 2
    assert "fd 3 from systemd is not a socket" in proc.stderr
