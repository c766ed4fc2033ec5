"""Defect 3: with a low fd limit, ~1,100 idle connections used to exhaust the daemon's
fds: jobs failed with E3002 "Too many open files", then E3001, the pool stayed stuck
after the clients left, and the log filled with tracebacks. Now connections past what
the fds allow get E3004 and are closed, the pool and jobs keep their fds, and after the
storm the daemon serves with nothing leaked."""
import resource
import socket
import struct
import sys
import time

import pytest

from libleeward import protocol
from tests.conftest import start_daemon

from . import leaks
from .conftest import back_to_target, status, stop_and_check

pytestmark = pytest.mark.integration
DAEMON_FDS = 256
STORM = 1100
MAX_LOG_BYTES = 256 * 1024  # a few lines per refusal burst, not one traceback per connection


def _connect(path: str, deadline: float) -> socket.socket:
    """Waits while the listen queue is full, but not for ever: a daemon that stopped
    accepting fails the test."""
    while True:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(1)
        try:
            sock.connect(path)
            sock.setblocking(False)  # for _answer()'s look at what arrived
            return sock
        except (BlockingIOError, TimeoutError):
            sock.close()
            assert time.monotonic() < deadline, "the daemon stopped accepting connections"
            time.sleep(0.01)


def _answer(sock: socket.socket) -> dict | None:
    """The frame a refused connection gets before it is closed; None while there is
    nothing to read (an accepted, idle connection)."""
    try:
        header = sock.recv(4, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    if len(header) < 4:
        return {"closed": True}
    sock.settimeout(30)
    (length,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
    return protocol.decode_body(sock.recv(length, socket.MSG_WAITALL))


def _refusals(storm: list[socket.socket]) -> list[dict]:
    """Answers of the refused connections, once at most DAEMON_FDS remain unanswered."""
    answers: dict[int, dict] = {}

    def enough() -> bool:
        for i, sock in enumerate(storm):
            if i not in answers and (answer := _answer(sock)) is not None:
                answers[i] = answer
        return len(answers) >= STORM - DAEMON_FDS

    leaks.poll(enough)
    return list(answers.values())


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < STORM + 200:
        pytest.skip(f"the test process may open only {hard} fds")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_idle_connection_storm_cannot_starve_the_pool_or_jobs(tmp_path, many_fds, no_metrics):
    running = start_daemon(str(tmp_path), *no_metrics, workers=2,
                           command=["prlimit", f"--nofile={DAEMON_FDS}:{DAEMON_FDS}", sys.executable])
    baseline = leaks.Baseline.take(running.process.pid)
    storm: list[socket.socket] = []
    try:
        worker = running.connect()  # opened before the storm: it runs jobs through it
        deadline = time.monotonic() + leaks.WAIT_SECS
        for _ in range(STORM):
            storm.append(_connect(running.socket_path, deadline))
        refused = _refusals(storm)
        assert len(refused) >= STORM - DAEMON_FDS, f"only {len(refused)} of {STORM} refused"
        assert all(a.get("error", {}).get("code") == "E3004" for a in refused), refused[:3]

        for i in range(5):  # more jobs than ready sandboxes: new ones are built under the storm
            result = worker.execute(f"print({i})")
            assert (result.exit_code, result.stdout) == (0, f"{i}\n".encode()), result
        for sock in storm:
            sock.close()
        worker.close()
        assert running.execute("print('after')").stdout == b"after\n"
        assert leaks.poll(lambda: back_to_target(running)), status(running)["pool"]
        assert leaks.poll(lambda: not baseline.problems_while_running()), baseline.problems_while_running()
        log = running.log()
        assert len(log) < MAX_LOG_BYTES and "Too many open files" not in log, log[-3000:]
    finally:
        for sock in storm:
            sock.close()
        stop_and_check(running, baseline)
