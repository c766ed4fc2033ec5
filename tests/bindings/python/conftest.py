"""Fixtures of the Python binding's tests: the library built from this checkout, and a
Leeward connected to the session's daemon."""
from __future__ import annotations

import pytest

from leeward import Leeward
from libleeward.build_ffi import ensure_built
from tests.bindings.fake_daemon import FakeDaemon


@pytest.fixture(scope="module", autouse=True)
def library():
    ensure_built()


@pytest.fixture
def sandbox(daemon):
    with Leeward(daemon.socket_path) as sandbox:
        yield sandbox


@pytest.fixture
def fake(tmp_path):
    """Starts scripted fake daemons: fake({type: reply or [replies]}) -> FakeDaemon."""
    daemons = []

    def start(replies: dict) -> FakeDaemon:
        directory = tmp_path / "run"
        directory.mkdir(mode=0o700, exist_ok=True)
        daemons.append(FakeDaemon(str(directory / f"fake{len(daemons)}.sock"), replies))
        return daemons[-1]

    yield start
    for daemon in daemons:
        daemon.close()
