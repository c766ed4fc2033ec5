"""`display` and `collect` in session cells on a real daemon: the same runner code as a
one-shot Execute (tests/integration/test_display_collect.py), in a namespace that lives
across cells."""
from __future__ import annotations

import pytest

from libleeward.protocol import ErrorCode
from tests.integration.sessions.conftest import call, cell, ok, open_session

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def session(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        yield conn, sid
        ok(conn, {"type": "SessionClose", "session_id": sid})


def shown(conn, sid: str, code: str) -> list[dict]:
    result = cell(conn, sid, code, display=True)
    assert result["exit_code"] == 0 and "error" not in result, result
    assert result["results_truncated"] is False
    return result["results"]


def test_the_main_result_and_underscore_persist_across_cells(session):
    conn, sid = session
    cell(conn, sid, "x = 1")
    assert shown(conn, sid, "x + 1") == [{"main": True, "data": {"text/plain": "2"}}]
    assert shown(conn, sid, "_ * 10") == [{"main": True, "data": {"text/plain": "20"}}]
    assert shown(conn, sid, "__ + _;") == []
    assert shown(conn, sid, "display(_, __)") == [{"main": False, "data": {"text/plain": "20"}},
                                                  {"main": False, "data": {"text/plain": "2"}}]


def test_a_dataframe_and_a_plot_in_cells(session):
    conn, sid = session
    cell(conn, sid, "import pandas as pd\nimport matplotlib.pyplot as plt")
    [table] = shown(conn, sid, "pd.DataFrame({'a': [1, 2]})")
    assert "<table" in table["data"]["text/html"]
    result = cell(conn, sid, "plt.plot([1, 2, 3])\nplt.show()", display=True)
    assert result["stderr"] == b"" and result["denied_syscalls"] == []
    [figure] = result["results"]
    assert figure["data"]["image/png"].startswith(PNG_SIGNATURE)
    assert shown(conn, sid, "plt.get_fignums()") == [{"main": True, "data": {"text/plain": "[]"}}]


def test_a_cell_collects_files_of_earlier_cells_never_through_a_symlink(session):
    conn, sid = session
    payload = bytes(range(256)) * 8
    cell(conn, sid, f"open('early.bin', 'wb').write({payload!r})")
    result = cell(conn, sid, "import os\nos.symlink('/etc/hostname', 'link.bin')\n"
                             "open('late.bin', 'wb').write(b'late')", collect=["*.bin"])
    assert result["files"] == {"early.bin": payload, "late.bin": b"late"}
    assert result["files_truncated"] is False and "results" not in result


def test_a_cell_that_asks_nothing_gets_none_of_the_new_keys(session):
    conn, sid = session
    result = cell(conn, sid, "1 + 1")
    assert not {"results", "results_truncated", "files", "files_truncated"} & set(result)


@pytest.mark.parametrize("fields, code", [({"display": 1}, ErrorCode.WRONG_TYPE.value),
                                          ({"collect": ["../x"]}, ErrorCode.BAD_PATH.value)])
def test_bad_display_or_collect_fields_are_refused(session, fields, code):
    conn, sid = session
    reply = call(conn, {"type": "SessionExecute", "session_id": sid, "code": "pass", **fields})
    assert reply["success"] is False and reply["error"]["code"] == code
