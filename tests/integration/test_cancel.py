"""Cancel on a real daemon (PROTOCOL-V2 "New requests", issue 14 item 3): the same uid
cancels from any connection, another uid finds nothing, the result says cancelled and
nothing of the sandbox is left running."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid

import pytest

from libleeward import protocol
from tests.conftest import start_daemon
from tests.integration import sandbox_processes
from tests.integration.other_user import as_other_user

pytestmark = pytest.mark.integration

JOIN_SECS = 120.0  # bound on a job thread's end; not a speed assertion


@pytest.fixture(scope="module")
def shared_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root: a second uid and the host's view of the limits boxes")
    directory = tempfile.mkdtemp(prefix="leeward-cancel-", dir="/run")  # reachable by the second uid
    os.chmod(directory, 0o755)
    gates = tempfile.mkdtemp(prefix="leeward-cancel-gates-")
    os.chmod(gates, 0o777)
    running = start_daemon(directory, "--set", "socket_mode=0o666", "--set", "metrics_port=0",
                           "--allow-path", gates)
    running.allowed_dir = os.path.realpath(gates)
    yield running
    running.stop()
    shutil.rmtree(directory, ignore_errors=True)
    shutil.rmtree(gates, ignore_errors=True)


def call(conn, message: dict) -> dict:
    return conn.raw_request(protocol.encode_frame(message))


class Job(threading.Thread):
    """A streaming Execute on its own connection; `started` is set on its first event,
    which the code sends once its marker file is written and its child forked."""

    def __init__(self, daemon, code: str, **fields):
        super().__init__(daemon=True)
        self._daemon, self._message = daemon, {"type": "Execute", "code": code, "stream": True, **fields}
        self.started = threading.Event()
        self.reply: dict | None = None

    def run(self) -> None:
        with self._daemon.connect() as conn:
            self.reply = conn.raw_request(protocol.encode_frame(self._message), lambda _event: self.started.set())

    def result(self) -> dict:
        self.join(JOIN_SECS)
        assert self.reply is not None and self.reply["success"], self.reply
        return self.reply["result"]


def running_job(daemon, execution_id: str) -> Job:
    """A job that runs until cancelled, once it has started."""
    job = Job(daemon, forever(f"marker-{uuid.uuid4().hex}"), execution_id=execution_id)
    job.start()
    assert job.started.wait(JOIN_SECS)
    return job


def forever(marker: str) -> str:
    """Writes its marker, forks a child that sleeps too, says so, and sleeps."""
    return (f"import os, time\nopen({marker!r}, 'w').close()\n"
            "if os.fork() == 0:\n    time.sleep(600)\n    os._exit(0)\n"
            "print('running', flush=True)\ntime.sleep(600)\n")


def test_the_same_uid_cancels_from_another_connection_and_nothing_is_left(shared_daemon):
    marker = f"marker-{uuid.uuid4().hex}"
    job = Job(shared_daemon, forever(marker), execution_id="cancel-me")
    job.start()
    assert job.started.wait(JOIN_SECS)
    boxes, pids = sandbox_processes.find(marker)
    assert boxes and len(pids) >= 2  # the job and its child
    with shared_daemon.connect() as other_connection:
        assert call(other_connection, {"type": "Cancel", "execution_id": "cancel-me"}) == \
            {"type": "Cancel", "success": True, "found": True}
    result = job.result()
    assert result["cancelled"] is True and result["execution_id"] == "cancel-me"
    assert result["exit_code"] < 0 and result["timed_out"] is False
    assert result["stdout"] == b"running\n"
    sandbox_processes.wait_until_gone(boxes, pids)
    with shared_daemon.connect() as conn:  # it is over: the id finds nothing any more
        assert call(conn, {"type": "Cancel", "execution_id": "cancel-me"})["found"] is False
    deadline = time.monotonic() + JOIN_SECS  # the log line follows the reply: bound the wait
    while " cancelled=1" not in shared_daemon.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert " cancelled=1" in shared_daemon.log()  # the request's log line says so


def test_another_uid_finds_nothing_and_the_job_runs_on(shared_daemon):
    name = f"gate-{uuid.uuid4().hex}"
    code = (f"import os, time\nprint('waiting', flush=True)\n"
            f"while not os.path.exists('/gate/{name}'):\n    time.sleep(0.01)\nprint('done')\n")
    job = Job(shared_daemon, code, execution_id="not-yours",
              mounts=[{"host": shared_daemon.allowed_dir, "sandbox": "/gate"}])
    job.start()
    assert job.started.wait(JOIN_SECS)
    replies = as_other_user(shared_daemon.socket_path, [{"type": "Cancel", "execution_id": "not-yours"},
                                                        {"type": "Cancel", "execution_id": "no-such-job"}])
    assert replies == [{"type": "Cancel", "success": True, "found": False}] * 2  # the two read alike
    open(os.path.join(shared_daemon.allowed_dir, name), "w").close()  # only now may it finish
    result = job.result()
    assert result["cancelled"] is False and result["exit_code"] == 0
    assert result["stdout"] == b"waiting\ndone\n"


def test_an_unknown_id_is_not_found(shared_daemon):
    with shared_daemon.connect() as conn:
        assert call(conn, {"type": "Cancel", "execution_id": "never-ran"}) == \
            {"type": "Cancel", "success": True, "found": False}


@pytest.mark.parametrize("message, code", [({"type": "Cancel"}, "E2001"),
                                           ({"type": "Cancel", "execution_id": 1}, "E2002"),
                                           ({"type": "Cancel", "execution_id": "a b"}, "E2003"),
                                           ({"type": "Cancel", "execution_id": "x", "why": 1}, "E2004")])
def test_a_malformed_cancel_is_refused(shared_daemon, message, code):
    with shared_daemon.connect() as conn:
        assert call(conn, message)["error"]["code"] == code


def test_an_id_already_running_for_the_same_uid_is_refused(shared_daemon):
    job = running_job(shared_daemon, "twice")
    with shared_daemon.connect() as conn:
        again = call(conn, {"type": "Execute", "code": "1", "execution_id": "twice"})
        assert call(conn, {"type": "Cancel", "execution_id": "twice"})["found"] is True
    assert again["error"]["code"] == "E2003"
    assert job.result()["cancelled"] is True


def test_the_python_client_cancels(shared_daemon):
    job = running_job(shared_daemon, "from-client")
    with shared_daemon.connect() as conn:
        assert conn.cancel("from-client") is True
        assert job.result()["cancelled"] is True
        assert conn.cancel("from-client") is False
