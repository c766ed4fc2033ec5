"""argv cells: a program run in the session's own sandbox, sharing its workdir and /tmp
with the Python cells, under the session's timeout rules (SIGINT, then the kill)."""
from __future__ import annotations

import pytest

from tests.integration.sessions.conftest import call, cell, ok, open_session

pytestmark = pytest.mark.integration


def argv_cell(conn, session_id: str, argv: list[str], **fields) -> dict:
    return ok(conn, {"type": "SessionExecute", "session_id": session_id, "argv": argv, **fields})["result"]


def test_argv_and_python_cells_share_the_workdir(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "open('from_python.txt', 'w').write('py')")
        listed = argv_cell(conn, sid, ["sh", "-c", "cat from_python.txt; echo; pwd; echo sh > from_sh.txt"])
        read_back = cell(conn, sid, "print(open('from_sh.txt').read().strip())")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert (listed["exit_code"], listed["stdout"], listed["stderr"]) == (0, b"py\n/tmp\n", b"")
    assert listed["execution_count"] == 2 and listed["session"] == {"id": sid, "alive": True}
    assert read_back["stdout"] == b"sh\n"


def test_an_argv_cell_has_its_own_status_output_stdin_and_collect(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        failed = argv_cell(conn, sid, ["sh", "-c", "echo out; echo err >&2; exit 4"])
        upper = argv_cell(conn, sid, ["tr", "a-z", "A-Z"], stdin=b"quiet\n")
        missing = argv_cell(conn, sid, ["no-such-program"])
        made = argv_cell(conn, sid, ["sh", "-c", "echo x > made.txt"], collect=["*.txt"])
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert (failed["exit_code"], failed["stdout"], failed["stderr"]) == (4, b"out\n", b"err\n")
    assert (upper["exit_code"], upper["stdout"], upper["stderr"]) == (0, b"QUIET\n", b"")
    assert missing["exit_code"] == 127 and missing["session"]["alive"] is True
    assert made["files"] == {"made.txt": b"x\n"}


def test_a_timed_out_program_is_interrupted_and_the_session_lives(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "kept = 1")
        slow = argv_cell(conn, sid, ["sleep", "100"], timeout_secs=0.5)
        after = cell(conn, sid, "print(kept)")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert slow["timed_out"] is True and slow["exit_code"] == 128 + 2  # SIGINT, as a shell reports it
    assert slow["session"] == {"id": sid, "alive": True}
    assert after["stdout"] == b"1\n"


def test_a_program_that_ignores_its_interrupt_ends_the_session(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        stuck = argv_cell(conn, sid, ["sh", "-c", "trap '' INT; sleep 100"], timeout_secs=0.5)
        later = call(conn, {"type": "SessionExecute", "session_id": sid, "argv": ["true"]})
    assert stuck["timed_out"] is True
    assert stuck["session"] == {"id": sid, "alive": False, "end_reason": "timeout"}
    assert later["error"]["code"] == "E5003" and "timeout" in later["error"]["message"]


def test_denials_are_reported_per_cell(shared_daemon):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        denied = argv_cell(conn, sid, ["python3", "-c", "import socket; socket.socket()"])
        clean = argv_cell(conn, sid, ["true"])
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert denied["exit_code"] == 1 and denied["denied_syscalls"] == ["socket"]
    assert clean["exit_code"] == 0 and clean["denied_syscalls"] == []


@pytest.mark.parametrize("fields", [{}, {"code": "1", "argv": ["true"]}])
def test_both_or_neither_is_e2009(shared_daemon, fields):
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        reply = call(conn, {"type": "SessionExecute", "session_id": sid, **fields})
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert reply["error"]["code"] == "E2009"


def test_what_programs_leave_running_is_reaped_but_a_python_cells_child_is_its_own(shared_daemon):
    # Each cell leaves a background process that ends at once: orphaned, it is the
    # session process's child, and unreaped it would hold one of the 64 pids for good.
    zombies = ("import os\n"
               "print(sum(open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z'\n"
               "          for p in os.listdir('/proc') if p.isdigit()))")
    with shared_daemon.connect() as conn:
        sid = open_session(conn)
        cell(conn, sid, "import subprocess\nmine = subprocess.Popen(['sh', '-c', 'exit 3'])")
        statuses = {argv_cell(conn, sid, ["sh", "-c", "true & exit 0"])["exit_code"] for _ in range(80)}
        after = cell(conn, sid, zombies + "\nprint(mine.wait())")
        ok(conn, {"type": "SessionClose", "session_id": sid})
    assert statuses == {0}
    assert after["stdout"] == b"1\n3\n", after  # the one zombie left is the Python cell's, with its status
