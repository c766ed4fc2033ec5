"""Defect 1: a burst of concurrent Executes against a small pool used to leave it
believing hundreds of sandboxes were "starting" (requests to the zygote dropped on
EAGAIN, never uncounted): every later Execute waited 30 s for E3001. Now every client
gets a result or a clean busy error (E3004), and the pool returns to its target."""
import threading

import pytest

from libleeward.client import LeewardError
from tests.conftest import start_daemon

from . import leaks
from .conftest import back_to_target, status, stop_and_check

pytestmark = pytest.mark.integration
CLIENTS = 1000
CLIENT_WAIT_SECS = 120.0  # bound on a client's whole call: a hung client fails the test


def test_a_burst_gets_results_or_busy_errors_and_the_pool_recovers(tmp_path, no_metrics):
    # Default limits (max_queue, max_connections_per_uid): the burst meets both.
    running = start_daemon(str(tmp_path), *no_metrics, workers=2)
    baseline = leaks.Baseline.take(running.process.pid)
    outcomes: dict[int, str] = {}
    start = threading.Event()

    def client(i: int) -> None:
        start.wait()
        try:
            result = running.execute("print('ok')", timeout_secs=60)
            outcomes[i] = "ok" if result.stdout == b"ok\n" else f"wrong output {result.stdout!r}"
        except LeewardError as exc:
            outcomes[i] = exc.code
        except OSError as exc:
            outcomes[i] = f"OSError {exc}"

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        start.set()
        for thread in threads:
            thread.join(CLIENT_WAIT_SECS)
        assert not [t for t in threads if t.is_alive()], "clients hung"
        counts = {outcome: list(outcomes.values()).count(outcome) for outcome in set(outcomes.values())}
        assert set(counts) <= {"ok", "E3004"}, counts
        assert counts.get("ok", 0) >= 2, counts

        assert running.execute("print(6 * 7)").stdout == b"42\n"  # the canary
        assert leaks.poll(lambda: back_to_target(running)), status(running)["pool"]
        assert status(running)["healthy"] is True
        assert leaks.poll(lambda: not baseline.problems_while_running()), baseline.problems_while_running()
    finally:
        stop_and_check(running, baseline)
