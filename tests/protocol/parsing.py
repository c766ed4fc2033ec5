"""Parsing requests under a test's bounds, and the ErrorCode a refused one gets: what
the protocol tests share. Imported as tests.protocol.parsing (this folder has no
__init__.py, so its test modules' bare names stay as they were)."""
from __future__ import annotations

from typing import Callable

import pytest

from libleeward.messages import parse_request
from libleeward.protocol import Bounds, ErrorCode, ProtocolError


def refusal_code(message: dict, bounds: Bounds) -> ErrorCode:
    """The code of the ProtocolError `message` must raise."""
    with pytest.raises(ProtocolError) as err:
        parse_request(message, bounds)
    return err.value.code


def execute_parsers(bounds: Bounds, code: str) -> tuple[Callable[..., object], Callable[..., ErrorCode]]:
    """parse(**fields) and code_of(**fields): an Execute of `code` with these fields,
    parsed under `bounds`, or the code of its refusal."""
    def parse(**fields):
        return parse_request({"type": "Execute", "code": code, **fields}, bounds)

    def code_of(**fields) -> ErrorCode:
        return refusal_code({"type": "Execute", "code": code, **fields}, bounds)

    return parse, code_of
