"""Reliability tests: each starts its own small daemon, hurts it, and checks that it
serves again afterwards with nothing leaked (see leaks.py)."""
from __future__ import annotations

import pytest

from tests.conftest import RunningDaemon

from . import leaks


def stop_and_check(running: RunningDaemon, baseline: leaks.Baseline) -> None:
    """SIGTERM, then: the daemon exited 0 and left nothing behind."""
    baseline.watch()
    running.stop()
    assert running.process.returncode == 0, running.log()[-4000:]
    assert baseline.problems_after_stop(running.socket_path) == []


def status(running: RunningDaemon) -> dict:
    with running.connect(timeout=30) as conn:
        return conn.status()


def back_to_target(running: RunningDaemon) -> bool:
    pool = status(running)["pool"]
    return pool["idle"] == pool["target"] and pool["starting"] == 0 and pool["busy"] == 0 and pool["waiting"] == 0


@pytest.fixture
def no_metrics() -> tuple[str, ...]:
    """Many daemons at once on one host: none takes the default metrics port."""
    return ("--metrics-port", "0")
