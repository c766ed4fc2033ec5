"""Session and file requests: their shape is checked before the daemon looks anything up."""
import pytest

from libleeward.messages import parse_request
from libleeward.protocol import ProtocolError
from libleeward.session_requests import FileList, FileRead, SessionExecute, SessionOpen
from leeward_daemon.errors import FileRefused
from leeward_daemon.frontdoor.session_handlers import _locate


def _code(message):
    with pytest.raises(ProtocolError) as info:
        parse_request(message)
    return info.value.code.value


def test_parsed():
    assert parse_request({"type": "SessionOpen", "idle_timeout_secs": 5}) == SessionOpen(idle_timeout_secs=5.0)
    assert parse_request({"type": "SessionExecute", "session_id": "abc", "code": "x"}) == SessionExecute("abc", "x")
    assert parse_request({"type": "SessionExecute", "session_id": "a", "code": "x", "display": True,
                          "collect": ["out/*.png"]}) == SessionExecute("a", "x", display=True, collect=("out/*.png",))
    assert parse_request({"type": "SessionExecute", "session_id": "a", "argv": ["ls", "-l"]}) == \
        SessionExecute("a", argv=("ls", "-l"))
    assert parse_request({"type": "FileList", "session_id": "abc"}) == FileList("abc", ".")
    assert parse_request({"type": "FileRead", "session_id": "a", "path": "f", "max_bytes": 3}) == FileRead("a", "f", 3)


@pytest.mark.parametrize("message, code", [
    ({"type": "SessionExecute", "session_id": "a"}, "E2009"),  # neither code nor argv
    ({"type": "SessionExecute", "session_id": "a", "code": "x", "argv": ["ls"]}, "E2009"),  # both
    ({"type": "SessionExecute", "session_id": "a/b", "code": "x"}, "E5001"),
    ({"type": "SessionExecute", "session_id": "a" * 65, "code": "x"}, "E5001"),
    ({"type": "SessionExecute", "session_id": "a", "code": "x", "display": "yes"}, "E2002"),
    ({"type": "SessionExecute", "session_id": "a", "code": "x", "collect": ["/etc/*"]}, "E2005"),
    ({"type": "SessionExecute", "session_id": "a", "code": "x", "collect": "*.png"}, "E2002"),
    ({"type": "SessionClose"}, "E2001"),
    ({"type": "SessionOpen", "idle_timeout_secs": 0}, "E2003"),
    ({"type": "SessionOpen", "max_lifetime_secs": True}, "E2002"),
    ({"type": "FileRead", "session_id": "a", "path": "../x"}, "E2005"),
    ({"type": "FileRead", "session_id": "a", "path": "d/../../x"}, "E2005"),
    ({"type": "FileRead", "session_id": "a", "path": ""}, "E2005"),
    ({"type": "FileRead", "session_id": "a", "path": "x", "max_bytes": -1}, "E2003"),
    ({"type": "FileWrite", "session_id": "a", "path": "x"}, "E2001"),
    ({"type": "SessionList", "uid": 0}, "E2004"),
])
def test_refused(message, code):
    assert _code(message) == code


def test_paths_resolve_to_a_root_and_its_components():
    assert _locate("a/./b", []) == ("/tmp", ["a", "b"])
    assert _locate("/tmp/a", []) == ("/tmp", ["a"])
    assert _locate("/data/out/x", ["/data", "/data/out"]) == ("/data/out", ["x"])
    for path in ("/etc/passwd", "/tmpx/a", "/data/x"):
        with pytest.raises(FileRefused):
            _locate(path, [])
