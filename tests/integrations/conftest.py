"""Fixtures of the agent-framework adapters' tests: the library built from this checkout
and the socket of the session's real daemon (no mocked leeward)."""
from __future__ import annotations

import pytest

from libleeward.build_ffi import ensure_built
from tests.conftest import start_daemon


@pytest.fixture(scope="module", autouse=True)
def library():
    ensure_built()


@pytest.fixture(scope="module")
def patient_daemon(tmp_path_factory):
    """A daemon that gives an interrupted cell a minute to return: within the default
    second a loaded machine may not get there, and the session would end instead."""
    directory = tmp_path_factory.mktemp("patient")
    (directory / "config.toml").write_text("interrupt_grace_secs = 60.0\n")
    running = start_daemon(str(directory), "--config", str(directory / "config.toml"))
    yield running
    running.stop()


@pytest.fixture
def socket_path(daemon) -> str:
    return daemon.socket_path
