"""A daemon killed outright (SIGKILL, OOM killer) must not leave running sandboxes
behind: its zygote notices and kills every slot it made."""
import os
import signal
import threading
import time
import uuid

import pytest

from libleeward.client import DaemonUnavailable, LeewardError
from tests.conftest import start_daemon
from tests.host import host_pids

pytestmark = pytest.mark.integration
WAIT_SECS = 60.0  # bound on polling, not a speed assertion


def _poll(predicate) -> bool:
    deadline = time.monotonic() + WAIT_SECS
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_sigkilled_daemon_takes_its_running_sandboxes_along(tmp_path):
    running = start_daemon(str(tmp_path), workers=2)
    marker = f"9{uuid.uuid4().int % 10**8}"  # a sleep length no other process uses
    code = f"import subprocess; subprocess.run(['sleep', '{marker}'])"

    def job():
        try:
            running.execute(code, timeout_secs=300)
        except (LeewardError, DaemonUnavailable, OSError):
            pass  # the daemon is killed under it

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    try:
        assert _poll(lambda: host_pids(marker=f"sleep {marker}")), "the job never started"
        zygote = [int(p) for p in open(f"/proc/{running.process.pid}/task/{running.process.pid}/children").read().split()]
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait()
        assert _poll(lambda: not host_pids(marker=f"sleep {marker}")), "the sandbox outlived its daemon"
        assert _poll(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in zygote))
    finally:
        running.stop()
        thread.join(WAIT_SECS)
