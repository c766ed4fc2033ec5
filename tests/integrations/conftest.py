"""Fixtures of the agent-framework adapters' tests: the library built from this checkout
and the socket of the session's real daemon (no mocked leeward)."""
from __future__ import annotations

import pytest

from libleeward.build_ffi import ensure_built


@pytest.fixture(scope="module", autouse=True)
def library():
    ensure_built()


@pytest.fixture
def socket_path(daemon) -> str:
    return daemon.socket_path
