"""argv jobs on the wire (PROTOCOL-V2): exactly one of code and argv, argv's shape and bounds."""
import pytest

from libleeward.messages import parse_request
from libleeward.protocol import MAX_ARG_BYTES, Bounds, ErrorCode, Execute, execute_to_wire
from tests.protocol.parsing import refusal_code

BOUNDS = Bounds(max_argv=8, max_argv_bytes=MAX_ARG_BYTES + 64)


def code_of(message: dict) -> ErrorCode:
    return refusal_code(message, BOUNDS)


def test_an_argv_execute_is_parsed_and_round_trips():
    request = parse_request({"type": "Execute", "argv": ["sh", "-c", "echo hi"], "stdin": b"x",
                             "collect": ["*.txt"]}, BOUNDS)
    assert request == Execute(argv=("sh", "-c", "echo hi"), stdin=b"x", collect=("*.txt",))
    assert request.code == "" and request.is_v2
    wire = execute_to_wire(request)
    assert "code" not in wire and wire["argv"] == ["sh", "-c", "echo hi"]
    assert parse_request(wire, BOUNDS) == request


@pytest.mark.parametrize("message", [
    {"type": "Execute"},
    {"type": "Execute", "code": "print(1)", "argv": ["true"]},
    {"type": "Execute", "code": "", "argv": []},
    {"type": "SessionExecute", "session_id": "a"},
    {"type": "SessionExecute", "session_id": "a", "code": "1", "argv": ["true"]},
])
def test_both_or_neither_is_e2009(message):
    assert code_of(message) is ErrorCode.CODE_OR_ARGV
    assert ErrorCode.CODE_OR_ARGV.value == "E2009"


@pytest.mark.parametrize("argv, code", [
    ("sh -c true", ErrorCode.WRONG_TYPE),       # a string is not a list of arguments
    (["sh", 1], ErrorCode.WRONG_TYPE),
    (["sh", b"bytes"], ErrorCode.WRONG_TYPE),
    (["sh", "a\x00b"], ErrorCode.WRONG_TYPE),    # execve would cut it there
    ([], ErrorCode.OUT_OF_RANGE),
    ([""], ErrorCode.OUT_OF_RANGE),
    (["true"] * 9, ErrorCode.OUT_OF_RANGE),      # over max_argv
    (["echo", "x" * (MAX_ARG_BYTES + 1)], ErrorCode.OUT_OF_RANGE),  # over the kernel's limit on one argument
    (["echo", "x" * MAX_ARG_BYTES, "y" * 64], ErrorCode.OUT_OF_RANGE),  # over max_argv_bytes in all
])
def test_argv_shape_and_bounds(argv, code):
    assert code_of({"type": "Execute", "argv": argv}) is code


def test_the_largest_argument_the_kernel_takes_is_accepted():
    assert parse_request({"type": "Execute", "argv": ["echo", "x" * MAX_ARG_BYTES]}, BOUNDS).argv[1] == "x" * MAX_ARG_BYTES


def test_display_is_for_code_only():
    assert code_of({"type": "Execute", "argv": ["true"], "display": True}) is ErrorCode.OUT_OF_RANGE
    assert parse_request({"type": "Execute", "argv": ["true"], "display": False}, BOUNDS).display is False
