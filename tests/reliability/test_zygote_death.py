"""Defect 2: after kill -9 of the zygote the daemon used to serve a job or two from its
ready sandboxes and then make every Execute wait 30 s for E3001, for ever. Now it
notices at once (pidfd), fails waiting requests with E3001 naming the cause, restarts
the zygote with backoff and serves again; when the zygote cannot be restarted, Status,
Ping and the metrics say the daemon is unhealthy."""
import os
import shutil
import signal
import socket
import threading
import urllib.request

import pytest

from libleeward.client import LeewardError
from tests.conftest import REPO, start_daemon

from . import leaks
from .conftest import back_to_target, status, stop_and_check

pytestmark = pytest.mark.integration
JOBS_AFTER = 5  # more than the pool's ready sandboxes: new ones must be built


def _zygote(running) -> int:
    """The daemon's one child (found from outside, so this also runs against old daemons)."""
    zygote, = leaks.children(running.process.pid)
    return zygote


def _kill_zygote(running, baseline) -> set:
    """SIGKILL; returns the dead zygote's processes (it and its sandboxes)."""
    zygote = _zygote(running)
    baseline.watch()
    victims = leaks.processes([zygote, *leaks.descendants(zygote)])
    os.kill(zygote, signal.SIGKILL)
    return victims


def _answer_or_code(running):
    try:
        return running.execute("print('early')").stdout
    except LeewardError as exc:
        return exc.code


def _restarted(running, restarts: int) -> bool:
    zygote = status(running)["zygote"]
    return zygote["state"] == "running" and zygote["restarts"] == restarts


def test_killed_idle_zygote_is_restarted_and_its_sandboxes_are_gone(tmp_path, no_metrics):
    running = start_daemon(str(tmp_path), *no_metrics, workers=2)
    baseline = leaks.Baseline.take(running.process.pid)
    try:
        victims = _kill_zygote(running, baseline)
        # Until the daemon noticed, a request may still be queued and then failed fast.
        early = _answer_or_code(running)
        assert early in (b"early\n", "E3001"), early
        assert leaks.poll(lambda: _restarted(running, 1)), status(running)["zygote"]
        for i in range(JOBS_AFTER):
            assert running.execute(f"print({i})").stdout == f"{i}\n".encode()
        assert leaks.poll(lambda: not [p for p in victims if p.alive()]), "the dead zygote's sandboxes live on"
        current = status(running)
        assert current["healthy"] is True and current["zygote"]["last_exit"]
        assert leaks.poll(lambda: back_to_target(running))
    finally:
        stop_and_check(running, baseline)


def test_zygote_killed_mid_job_leaves_the_job_an_answer_and_the_daemon_serving(tmp_path, no_metrics):
    running = start_daemon(str(tmp_path), *no_metrics, workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    answers: list = []

    def job() -> None:
        try:
            answers.append(running.execute("import time; time.sleep(2); print('done')", timeout_secs=60))
        except LeewardError as exc:
            answers.append(exc.code)

    thread = threading.Thread(target=job, daemon=True)
    try:
        thread.start()
        assert leaks.poll(lambda: status(running)["pool"]["busy"] == 1)
        _kill_zygote(running, baseline)
        thread.join(leaks.WAIT_SECS)
        assert not thread.is_alive(), "the client of the running job hangs"
        answer, = answers
        assert getattr(answer, "stdout", None) == b"done\n" or answer in ("E3001", "E3002"), answer
        assert leaks.poll(lambda: _restarted(running, 1))
        for i in range(JOBS_AFTER):
            assert running.execute(f"print({i})").stdout == f"{i}\n".encode()
    finally:
        stop_and_check(running, baseline)


def test_a_waiting_request_fails_at_once_naming_the_zygotes_death(tmp_path, no_metrics):
    running = start_daemon(str(tmp_path), *no_metrics, workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    zygote = _zygote(running)
    answers: list = []

    def request(code: str) -> None:
        try:
            answers.append(running.execute(code, timeout_secs=60).stdout)
        except LeewardError as exc:
            answers.append(exc)

    # The busy request needs the one sandbox made before the stop (a loaded machine may
    # not have made it yet when the daemon first answers).
    assert leaks.poll(lambda: status(running)["pool"]["idle"] == 1)
    os.kill(zygote, signal.SIGSTOP)  # no sandbox can be built: the next request waits
    stopped = leaks.Process.of(zygote)
    busy = threading.Thread(target=request, args=("import time; time.sleep(3)",), daemon=True)
    waiting = threading.Thread(target=request, args=("print(1)",), daemon=True)
    try:
        busy.start()
        assert leaks.poll(lambda: status(running)["pool"]["busy"] == 1)
        waiting.start()
        assert leaks.poll(lambda: status(running)["pool"]["waiting"] == 1)
        victims = _kill_zygote(running, baseline)
        waiting.join(leaks.WAIT_SECS)
        busy.join(leaks.WAIT_SECS)
        failed = [a for a in answers if isinstance(a, LeewardError)]
        assert failed and failed[0].code == "E3001" and "zygote died" in failed[0].message, answers
        assert leaks.poll(lambda: _restarted(running, 1))
        assert running.execute("print(2)").stdout == b"2\n"
        assert leaks.poll(lambda: not [p for p in victims if p.alive()])
    finally:
        if stopped.alive():
            os.kill(zygote, signal.SIGCONT)
        stop_and_check(running, baseline)


def test_a_zygote_that_cannot_be_restarted_makes_the_daemon_unhealthy_until_it_can(tmp_path, no_metrics):
    # A copy of the daemon's source, so that the zygote's module can be broken and mended.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(os.path.join(REPO, "daemon", "leeward_daemon"), source / "leeward_daemon", ignore=ignore)
    shutil.copytree(os.path.join(REPO, "libleeward"), source / "libleeward", ignore=ignore)
    zygote_module = source / "leeward_daemon" / "sandbox" / "zygote.py"
    good = zygote_module.read_text()
    env = {**os.environ, "PYTHONPATH": str(source)}
    running = start_daemon(str(tmp_path), "--metrics-port", str(_free_port()), env=env, workers=1)
    baseline = leaks.Baseline.take(running.process.pid)
    try:
        zygote_module.write_text("import sys\nsys.exit('zygote broken by the test')\n")
        _kill_zygote(running, baseline)
        assert leaks.poll(lambda: status(running)["zygote"]["state"] == "failed"), status(running)["zygote"]
        current = status(running)
        assert current["healthy"] is False and "cannot be restarted" in current["problem"]
        assert _metric(current, "leeward_healthy") == 0.0
        with running.connect(timeout=30) as conn:
            with pytest.raises(LeewardError) as ping:
                conn.ping()
        assert ping.value.code == "E3001" and "unhealthy" in ping.value.message
        with pytest.raises(LeewardError) as execute:
            running.execute("print(1)")
        assert execute.value.code == "E3001"

        zygote_module.write_text(good)
        assert leaks.poll(lambda: _restarted(running, 1)), status(running)["zygote"]
        current = status(running)
        assert current["healthy"] is True
        assert _metric(current, "leeward_healthy") == 1.0 and _metric(current, "leeward_zygote_restarts_total") == 1.0
        assert running.execute("print(3)").stdout == b"3\n"
    finally:
        zygote_module.write_text(good)
        stop_and_check(running, baseline)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _metric(current_status: dict, name: str) -> float:
    with urllib.request.urlopen(current_status["metrics"], timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")
