"""leeward.connect(): a Leeward on the per-user daemon, started when none answers."""
from __future__ import annotations

import os
import re
import signal

import pytest

import leeward
from leeward import DaemonUnavailable, Leeward
from leeward._autostart import LOG_NAME


@pytest.fixture
def default_socket(tmp_path, monkeypatch):
    """The per-user default socket is one under tmp_path (its directory not made yet)."""
    path = tmp_path / "run" / "leeward.sock"
    monkeypatch.setenv("LEEWARD_SOCKET", str(path))
    monkeypatch.setenv("LEEWARD_AUTOSTART_TIMEOUT", "120")
    monkeypatch.setenv("LEEWARD_WORKERS", "1")
    return path


def test_a_named_socket_is_never_autostarted(tmp_path, capsys):
    missing = tmp_path / "run" / "leeward.sock"
    with pytest.raises(DaemonUnavailable):
        leeward.connect(str(missing))
    assert not missing.parent.exists() and "started a daemon" not in capsys.readouterr().err


def test_no_autostart_when_asked_not_to(default_socket, capsys):
    with pytest.raises(DaemonUnavailable):
        leeward.connect(autostart=False)
    assert not default_socket.parent.exists() and "started a daemon" not in capsys.readouterr().err


@pytest.mark.integration
def test_connects_to_a_daemon_that_answers(daemon, capsys):
    with leeward.connect(daemon.socket_path) as sandbox:
        assert isinstance(sandbox, Leeward)
        assert sandbox.execute("print(6 * 7)").stdout == "42\n"
    assert "started a daemon" not in capsys.readouterr().err


@pytest.mark.integration
def test_autostarts_a_detached_daemon_on_the_default_socket_and_reuses_it(default_socket, capsys):
    pid = None
    try:
        with leeward.connect() as sandbox:
            started = capsys.readouterr().err
            match = re.search(r"started a daemon on (\S+) \(pid (\d+)", started)
            pid = int(match.group(2)) if match else None
            assert match and match.group(1) == str(default_socket), started
            assert sandbox.execute("print('autostarted')").stdout == "autostarted\n"
        assert (default_socket.parent / LOG_NAME).is_file()
        # Detached: its own session, so a terminal's Ctrl-C does not reach it.
        assert os.getsid(pid) == pid
        with leeward.connect() as again:
            again.ping()
        assert "started a daemon" not in capsys.readouterr().err
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            try:
                os.waitpid(pid, 0)  # our child: reaped here, so no zombie outlives the test
            except ChildProcessError:  # reaped by subprocess's own clean-up meanwhile
                pass
