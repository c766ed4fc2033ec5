"""runner.run_argv in a plain process: the program's status as a shell reports it, its
signals at their defaults, and a session's interrupt passed on to it."""
from __future__ import annotations

import os
import signal
import threading

import pytest

from leeward_daemon.model import Run
from leeward_daemon.sandbox import runner


@pytest.fixture
def restore_sigint():
    """run_argv(interruptible=True) leaves SIGINT ignored, as a session's process wants."""
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("wait_status, shell", [(0, 0), (3 << 8, 3), (255 << 8, 255), (9, 137), (15, 143)])
def test_shell_status(wait_status, shell):
    assert runner.shell_status(wait_status) == shell


def test_the_programs_exit_status(restore_sigint):
    assert runner.run_argv(Run("", argv=("sh", "-c", "exit 4")), interruptible=True) == 4
    assert runner.run_argv(Run("", argv=("sh", "-c", "kill -USR1 $$")), interruptible=True) == 128 + signal.SIGUSR1


def test_a_program_not_found_or_not_executable(tmp_path, capsys, restore_sigint):
    assert runner.run_argv(Run("", argv=("no-such-program-xyz",)), interruptible=True) == runner.EXIT_NOT_FOUND
    assert capsys.readouterr().err == "leeward: no-such-program-xyz: No such file or directory\n"
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert runner.run_argv(Run("", argv=(str(script),)), interruptible=True) == runner.EXIT_CANNOT_EXECUTE


def test_signals_python_ignores_are_at_their_default_in_the_program(capfd, restore_sigint):
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # as in the sandbox's Python
    # With SIGPIPE ignored, `yes` would see EPIPE and complain; at its default it just ends.
    assert runner.run_argv(Run("", argv=("sh", "-c", "yes | head -c 2 > /dev/null")), interruptible=True) == 0
    assert capfd.readouterr().err == ""


def test_an_interrupt_reaches_the_programs_process_group(restore_sigint):
    started: list[int] = []
    interrupt = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    interrupt.start()  # before or after the spawn: either way it is passed on
    try:
        status = runner.run_argv(Run("", argv=("sh", "-c", "sleep 30 & wait")), interruptible=True,
                                 started=started.append)
    finally:
        interrupt.cancel()
    assert status == 128 + signal.SIGINT
    assert started and os.getpgid(0) != started[0]  # the program led a group of its own
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
