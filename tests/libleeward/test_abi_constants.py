"""include/leeward.h is the one source of the error codes and the version: Python's copy
(libleeward/abi.py) is generated from it and must not drift."""
from __future__ import annotations

import re
import tomllib

import pytest

from libleeward import abi, build_ffi, header, protocol

HEADER_TEXT = header.HEADER.read_text()


def test_committed_abi_module_is_generated_from_the_header():
    assert header.GENERATED.read_text() == header.render(HEADER_TEXT), (
        "libleeward/abi.py is stale: run `python -m libleeward.header`")


def test_error_codes_are_the_headers():
    in_header = {code.name: code.value for code in header.codes(HEADER_TEXT)}
    assert {member.name: member.value for member in abi.ErrorCode} == in_header
    assert protocol.ErrorCode is abi.ErrorCode
    # The ones this stage added keep their numbers.
    assert in_header["UNTRUSTED_SOCKET"] == "E1007" and in_header["DAEMON_BUSY"] == "E3004"
    assert in_header["CONNECTION_CLOSED"] == "E1006"


def test_every_code_the_header_documents_has_a_macro():
    documented = set(re.findall(r"^ \*\s+(E\d{4})\s", HEADER_TEXT, re.M))
    assert documented and documented <= {member.value for member in abi.ErrorCode}


def test_version_is_the_headers_everywhere():
    assert abi.VERSION == header.version(HEADER_TEXT) == build_ffi.version()
    with open(header.HEADER.parent.parent / "pyproject.toml", "rb") as fh:
        assert tomllib.load(fh)["project"]["version"] == abi.VERSION


@pytest.mark.parametrize("text,problem", [
    ('#define LEEWARD_VERSION "1"\n', "no LEEWARD_E_"),
    ('#define LEEWARD_VERSION "1"\n#define LEEWARD_E_A "E1001"\n#define LEEWARD_E_B "E1001"\n', "repeats"),
    ('#define LEEWARD_E_A "E1001"\n', "no LEEWARD_VERSION"),
])
def test_a_malformed_header_is_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        header.render(text)
