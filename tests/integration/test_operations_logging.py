"""The daemon's request log: one INFO line per request, never the code or its output."""
import os
import re
import time

import pytest

from libleeward import protocol
from tests.conftest import start_daemon

pytestmark = pytest.mark.integration
LOG_WAIT_SECS = 30.0  # the line is written after the reply is sent: bound the wait for it
# The code's text and its output share no substring: "OUT" + "PUT..." is printed joined.
CODE = 'SECRET_IN_CODE_5c1e = 41\nprint("OUT" + "PUT_OF_JOB_8d2f", SECRET_IN_CODE_5c1e + 1)\n'
OUTPUT = "OUTPUT_OF_JOB_8d2f 42"
LINE = re.compile(r"INFO leeward_daemon\.frontdoor\.accounting: request id=(\d+) uid=(\d+) type=(\w+) "
                  r"duration_ms=[0-9.]+ outcome=(\S+)(.*)$", re.M)


def _execute_lines(daemon, count: int) -> list[tuple]:
    """The Execute requests' lines (start_daemon's readiness pings have theirs too)."""
    deadline = time.monotonic() + LOG_WAIT_SECS
    while True:
        lines = [line for line in LINE.findall(daemon.log()) if line[2] == "Execute"]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_one_line_per_request_without_code_or_output(tmp_path, level):
    daemon = start_daemon(str(tmp_path), "--log-level", level, "--metrics-port", "0", workers=1)
    try:
        result = daemon.execute(CODE)
        assert result.stdout.decode() == OUTPUT + "\n"
        with daemon.connect() as conn:
            refusal = conn.raw_request(protocol.encode_frame({"type": "Execute", "code": CODE, "timeout_secs": -1}))
        assert refusal["error"]["code"] == "E2003"
        lines = _execute_lines(daemon, 2)
    finally:
        daemon.stop()
    log = daemon.log()
    assert "SECRET_IN_CODE" not in log and "OUTPUT_OF_JOB" not in log and "PUT_OF_JOB" not in log
    assert len(lines) == 2
    (first_id, uid, kind, outcome, extra), (second_id, _, _, refused, _) = lines
    assert (uid, kind, outcome, extra.strip()) == (str(os.getuid()), "Execute", "ok", "job=success exit_code=0")
    assert refused == "E2003"
    assert int(second_id) == int(first_id) + 1
    details = re.search(rf"DEBUG leeward_daemon\.frontdoor\.accounting: request id={first_id} details: (.*)", log)
    if level == "DEBUG":
        assert f"code_bytes={len(CODE.encode())}" in details.group(1)
        assert f"stdout_bytes={len(OUTPUT) + 1}" in details.group(1)
    else:
        assert details is None
