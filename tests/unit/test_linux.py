"""linux.close_fds_except: the fd hygiene of slots and jobs."""
import json
import os

from leeward_daemon import linux


def _open_fds_after_closing(keep_extra: set[int]) -> list[int]:
    """Forks; the child closes all but stdio, `keep_extra` and its report pipe, and
    reports which fds below 256 are still open."""
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            linux.close_fds_except({0, 1, 2, report_w} | keep_extra)
            alive = [fd for fd in range(256) if fd != report_w and _is_open(fd)]
            os.write(report_w, json.dumps(alive).encode())
        finally:
            os._exit(0)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_only_stdio_and_the_kept_fds_survive():
    r, w = os.pipe()
    extra = os.dup(w)
    try:
        assert _open_fds_after_closing({r}) == [0, 1, 2, r]
    finally:
        for fd in (r, w, extra):
            os.close(fd)


def test_an_empty_range_does_not_close_everything():
    # Regression: os.closerange(0, 0) is close_range(0, ~0U) and closed stdio too.
    assert _open_fds_after_closing(set()) == [0, 1, 2]


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
