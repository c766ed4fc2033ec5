import math

import pytest

from libleeward.messages import parse_request
from libleeward.protocol import Bounds, ErrorCode, Execute, Mount, Ping, ProtocolError, Status, execute_to_wire
from tests.protocol.parsing import execute_parsers

BOUNDS = Bounds(max_timeout_secs=60, max_memory_limit=1 << 30)
parse, code_of = execute_parsers(BOUNDS, code="print(1)")


def test_simple_requests():
    assert isinstance(parse_request({"type": "Ping"}), Ping)
    assert isinstance(parse_request({"type": "Status"}), Status)
    assert parse() == Execute(code="print(1)")


def test_defaults_are_left_to_the_daemon():
    request = parse()
    assert request.timeout_secs is None and request.memory_limit is None


def test_full_request_round_trips():
    request = parse(mounts=[{"host": "/srv/in", "sandbox": "/data", "ro": False}], files={"a/b.txt": b"x"},
                    timeout_secs=1.5, memory_limit=64 << 20, env={"K": "v"}, stdin=b"in")
    assert request.mounts == (Mount("/srv/in", "/data", False),)
    assert parse_request(execute_to_wire(request), BOUNDS) == request


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, 61, 1e308])
def test_timeout_out_of_range(value):
    assert code_of(timeout_secs=value) is ErrorCode.OUT_OF_RANGE


@pytest.mark.parametrize("value", ["1", True, [1], None.__class__])
def test_timeout_wrong_type(value):
    if value is None.__class__:
        return
    assert code_of(timeout_secs=value) is ErrorCode.WRONG_TYPE


@pytest.mark.parametrize("value", [0, -5, (1 << 30) + 1, 2**64])
def test_memory_out_of_range(value):
    assert code_of(memory_limit=value) is ErrorCode.OUT_OF_RANGE


@pytest.mark.parametrize("value", [1.5, "1", True])
def test_memory_wrong_type(value):
    assert code_of(memory_limit=value) is ErrorCode.WRONG_TYPE


def test_code_required_and_typed():
    with pytest.raises(ProtocolError) as err:
        parse_request({"type": "Execute"})
    assert err.value.code is ErrorCode.CODE_OR_ARGV  # neither code nor argv (PROTOCOL-V2)
    assert code_of(code=b"bytes") is ErrorCode.WRONG_TYPE
    assert code_of(code="a\x00b") is ErrorCode.WRONG_TYPE


def test_unknown_fields_and_types():
    assert code_of(extra=1) is ErrorCode.UNKNOWN_FIELD
    with pytest.raises(ProtocolError) as err:
        parse_request({"type": "Shell"})
    assert err.value.code is ErrorCode.UNKNOWN_TYPE
    with pytest.raises(ProtocolError) as err:
        parse_request({"type": "Ping", "x": 1})
    assert err.value.code is ErrorCode.UNKNOWN_FIELD


@pytest.mark.parametrize("sandbox", ["relative", "/", "/proc", "/proc/1", "/etc/x", "/usr", "/a/../etc", "/dev/shm", "/sys"])
def test_mount_targets_that_would_cover_the_system(sandbox):
    assert code_of(mounts=[{"host": "/srv", "sandbox": sandbox}]) is ErrorCode.BAD_PATH


def test_mount_shape():
    assert code_of(mounts={"host": "/a"}) is ErrorCode.WRONG_TYPE
    assert code_of(mounts=["/a"]) is ErrorCode.WRONG_TYPE
    assert code_of(mounts=[{"sandbox": "/data"}]) is ErrorCode.MISSING_FIELD
    assert code_of(mounts=[{"host": "rel", "sandbox": "/data"}]) is ErrorCode.BAD_PATH
    assert code_of(mounts=[{"host": "/a", "sandbox": "/data", "ro": "yes"}]) is ErrorCode.WRONG_TYPE
    assert code_of(mounts=[{"host": "/a", "sandbox": "/data", "x": 1}]) is ErrorCode.UNKNOWN_FIELD
    assert code_of(mounts=[{"host": "/a", "sandbox": "/d"}, {"host": "/b", "sandbox": "/d/"}]) is ErrorCode.BAD_PATH
    assert code_of(mounts=[{"host": "/a", "sandbox": f"/d{i}"} for i in range(65)]) is ErrorCode.OUT_OF_RANGE


@pytest.mark.parametrize("name", ["/abs", "../up", "a/../../up", "", "a/../..", "x\x00y"])
def test_file_names_stay_in_the_workdir(name):
    assert code_of(files={name: b""}) is ErrorCode.BAD_PATH


def test_files_accept_str_content_and_normalize():
    assert parse(files={"./a//b": "text"}).files == {"a/b": b"text"}


@pytest.mark.parametrize("env", [{"1BAD": "x"}, {"A=B": "x"}, {"A": 1}, {"A": "x\x00"}, ["A"]])
def test_env_validation(env):
    assert code_of(env=env) is ErrorCode.WRONG_TYPE


def test_stdin_types():
    assert parse(stdin="text").stdin == b"text"
    assert code_of(stdin=5) is ErrorCode.WRONG_TYPE
