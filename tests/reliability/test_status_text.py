"""`leeward status` shows the zygote, the queue, and an unhealthy daemon first."""
from leeward.cli import format_status


def test_status_names_the_zygote_and_an_unhealthy_daemon():
    text = format_status({"pool": {"waiting": 3, "max_queue": 256},
                          "zygote": {"state": "failed", "pid": None, "restarts": 2, "last_exit": "killed by signal 9",
                                     "restart_error": "ZygoteError: zygote failed to start"},
                          "healthy": False, "problem": "the zygote cannot be restarted: ZygoteError"})
    lines = text.splitlines()
    assert lines[0] == "UNHEALTHY: the zygote cannot be restarted: ZygoteError"
    assert "zygote:     failed (pid -), 2 restart(s); last exit: killed by signal 9" in text
    assert "3 waiting (max_queue 256)" in text


def test_a_healthy_daemon_says_nothing_of_health():
    text = format_status({"pool": {}, "zygote": {"state": "running", "pid": 7, "restarts": 0}, "healthy": True})
    assert "UNHEALTHY" not in text and "zygote:     running (pid 7), 0 restart(s)" in text
