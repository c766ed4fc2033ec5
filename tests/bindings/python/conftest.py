"""Fixtures of the Python binding's tests: the library built from this checkout, and a
Leeward connected to the session's daemon."""
from __future__ import annotations

import pytest

from leeward import Leeward
from libleeward.build_ffi import ensure_built


@pytest.fixture(scope="module", autouse=True)
def library():
    ensure_built()


@pytest.fixture
def sandbox(daemon):
    with Leeward(daemon.socket_path) as sandbox:
        yield sandbox
