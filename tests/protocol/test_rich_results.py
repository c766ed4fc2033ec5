"""Protocol v2's `display` and `collect` on Execute and the result keys they bring:
validated as the spec says, and absent unless asked for, so v1 stays byte for byte."""
import msgpack
import pytest

from libleeward.messages import parse_request
from libleeward.protocol import Bounds, ErrorCode, ExecutionResult, encode_frame, execute_ok, execute_to_wire
from tests.protocol.parsing import execute_parsers

BOUNDS = Bounds(max_timeout_secs=60, max_memory_limit=1 << 30, max_collect_patterns=3)
parse, code_of = execute_parsers(BOUNDS, code="1")


def test_display_and_collect_default_off_and_stay_off_the_wire():
    request = parse()
    assert request.display is False and request.collect == ()
    assert execute_to_wire(request) == {"type": "Execute", "code": "1"}


def test_display_and_collect_round_trip():
    request = parse(display=True, collect=["*.png", "out/**/*.csv", "a b/[x].txt"])
    assert request.display is True and request.collect == ("*.png", "out/**/*.csv", "a b/[x].txt")
    assert parse_request(execute_to_wire(request), BOUNDS) == request


@pytest.mark.parametrize("fields", [{"display": 1}, {"display": "yes"}, {"collect": "*.png"},
                                    {"collect": [b"*.png"]}, {"collect": [3]}])
def test_wrong_types(fields):
    assert code_of(**fields) is ErrorCode.WRONG_TYPE


@pytest.mark.parametrize("pattern", ["/tmp/*.png", "/etc/passwd", "../x", "a/../../b", "a/..", "..", "",
                                     "a\x00b", "x" * 1025])
def test_a_pattern_outside_the_workdir_is_a_bad_path(pattern):
    assert code_of(collect=[pattern]) is ErrorCode.BAD_PATH


def test_dots_inside_a_name_are_not_parent_directories():
    assert parse(collect=["..hidden", "a..b/*", "./x"]).collect == ("..hidden", "a..b/*", "./x")


def test_too_many_patterns():
    assert code_of(collect=["a", "b", "c", "d"]) is ErrorCode.OUT_OF_RANGE


V1_RESULT_KEYS = ["exit_code", "stdout", "stderr", "duration_ms", "memory_peak", "cpu_time_us", "timed_out",
                  "oom_killed", "stdout_truncated", "stderr_truncated", "denied_syscalls", "limits"]


def test_a_v1_reply_is_byte_for_byte_what_it_was():
    result = ExecutionResult(exit_code=0, stdout=b"2\n", duration_ms=1.5, error={"name": "E", "value": "v",
                                                                                 "traceback": "t"})
    v1 = {"exit_code": 0, "stdout": b"2\n", "stderr": b"", "duration_ms": 1.5, "memory_peak": 0,
          "cpu_time_us": 0, "timed_out": False, "oom_killed": False, "stdout_truncated": False,
          "stderr_truncated": False, "denied_syscalls": [], "limits": "rlimit",
          "error": {"name": "E", "value": "v", "traceback": "t"}}
    assert encode_frame(execute_ok(result)) == encode_frame({"type": "Execute", "success": True, "result": v1})
    assert list(ExecutionResult(exit_code=0).to_wire()) == V1_RESULT_KEYS


def test_results_and_files_appear_with_their_truncation_flags_when_asked_for():
    results = [{"main": True, "data": {"text/plain": "2", "image/png": b"\x89PNG"}}]
    result = ExecutionResult(exit_code=0, results=results, files={"out/a.bin": b"\x00\xff"}, files_truncated=True)
    wire = result.to_wire()
    assert list(wire) == V1_RESULT_KEYS + ["results", "results_truncated", "files", "files_truncated"]
    assert (wire["results_truncated"], wire["files_truncated"]) == (False, True)
    assert "files" not in ExecutionResult(exit_code=0, results=[]).to_wire()
    assert "results" not in ExecutionResult(exit_code=0, files={}).to_wire()
    # through msgpack as the client decodes it: bytes stay bytes, text stays str
    decoded = msgpack.unpackb(msgpack.packb(wire, use_bin_type=True), raw=False)
    assert ExecutionResult.from_wire(decoded) == result
