"""Shared fixtures: a real daemon on the real kernel (no mocked namespaces)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from libleeward.client import Connection, DaemonUnavailable
from libleeward.protocol import ExecutionResult

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_WAIT_SECS = 90.0  # bound on waiting for readiness, not a speed assertion


@dataclass
class RunningDaemon:
    socket_path: str
    process: subprocess.Popen
    log_path: str
    allowed_dir: str | None = None
    extra: dict = field(default_factory=dict)

    def connect(self, timeout: float | None = 120.0) -> Connection:
        # The test started this daemon, maybe as another user (test_unprivileged): its
        # socket's owner is who serves it, which the client would otherwise refuse (E1007).
        return Connection(self.socket_path, timeout=timeout, trust_uid=_owner(self.socket_path))

    def execute(self, code: str, **options):
        with self.connect() as conn:
            return conn.execute(code, **options)

    def run(self, argv: list[str], **fields) -> ExecutionResult:
        """An argv job (PROTOCOL-V2), with any Execute fields; LeewardError if refused."""
        with self.connect() as conn:
            return ExecutionResult.from_wire(conn.request({"type": "Execute", "argv": argv, **fields})["result"])

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        try:
            with self.connect(timeout=30) as conn:
                return conn.ping()["type"] == "Pong"
        except DaemonUnavailable:
            return False

    def log(self) -> str:
        with open(self.log_path, errors="replace") as fh:
            return fh.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _owner(path: str) -> int | None:
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None


def start_daemon(directory: str, *args: str, command: list[str] | None = None,
                 env: dict | None = None, workers: int = 2) -> RunningDaemon:
    """Starts `python -m leeward_daemon` and waits until it answers a Ping."""
    socket_path = os.path.join(directory, "leeward.sock")
    log_path = os.path.join(directory, "daemon.log")
    argv = (command or [sys.executable]) + ["-m", "leeward_daemon", "--socket", socket_path,
                                            "--workers", str(workers), *args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/")
    daemon = RunningDaemon(socket_path, process, log_path)
    deadline = time.monotonic() + START_WAIT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with {process.returncode}:\n{daemon.log()}")
        if os.path.exists(socket_path) and daemon.alive():
            return daemon
        time.sleep(0.05)
    daemon.stop()
    raise RuntimeError(f"daemon did not answer within {START_WAIT_SECS}s:\n{daemon.log()}")


@pytest.fixture(scope="session")
def allowed_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("allowed"))
    # A root daemon runs each sandbox as an otherwise unused uid: rw mounts must let it write.
    os.chmod(path, 0o777)
    return os.path.realpath(path)


@pytest.fixture(scope="session")
def daemon(tmp_path_factory, allowed_dir) -> RunningDaemon:
    directory = str(tmp_path_factory.mktemp("daemon"))
    running = start_daemon(directory, "--allow-path", allowed_dir)
    running.allowed_dir = allowed_dir
    yield running
    running.stop()
