"""kill -9 of the daemon mid-job: its zygote takes every sandbox along, and a new
daemon on the same socket path starts, removes the dead one's cgroup boxes and stale
socket, and serves; stopped, it leaves nothing."""
import os
import signal
import threading

import pytest

from libleeward.client import DaemonUnavailable, LeewardError
from tests.conftest import start_daemon

from . import leaks
from .conftest import stop_and_check

pytestmark = pytest.mark.integration


def test_a_killed_daemon_leaves_nothing_a_restart_does_not_clear(tmp_path, no_metrics):
    first = start_daemon(str(tmp_path), *no_metrics, workers=2)
    dead = leaks.Baseline.take(first.process.pid)

    def job() -> None:
        try:
            first.execute("import time; time.sleep(60)", timeout_secs=120)
        except (LeewardError, DaemonUnavailable, OSError):
            pass  # the daemon is killed under it

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    assert leaks.poll(lambda: leaks.boxed_pids(first.process.pid)), "the job never started"
    dead.watch()
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    thread.join(leaks.WAIT_SECS)
    assert leaks.poll(lambda: not [p for p in dead.seen if p.alive()]), "sandboxes outlived their daemon"
    assert os.path.lexists(first.socket_path)  # what a crash leaves: the next daemon clears it

    second = start_daemon(str(tmp_path), *no_metrics, workers=2)
    baseline = leaks.Baseline.take(second.process.pid)
    try:
        assert leaks.box_dirs(first.process.pid) == [], "the dead daemon's boxes were not removed"
        assert second.execute("print('again')").stdout == b"again\n"
    finally:
        stop_and_check(second, baseline)
