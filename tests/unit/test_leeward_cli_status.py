"""`leeward status` as people read it, from a Status response (old daemons included)."""
from leeward.cli import format_status

STATUS = {
    "type": "Status", "success": True, "version": "0.1.0", "pid": 42, "socket": "/run/leeward/leeward.sock",
    "socket_activated": True, "uptime_secs": 90061.5, "shutting_down": False,
    "pool": {"target": 4, "idle": 3, "busy": 1, "starting": 0, "total": 4, "recycled": 17, "last_failure": None},
    "executions": 17, "failed": {"timeout": 1, "oom": 2, "error": 3}, "requests": 40, "connections": 2,
    "limits": "cgroup1", "preloaded": ["numpy", "pandas"],
    "isolation": {"layers": ["namespaces", "landlock", "seccomp"], "landlock_abi": 7, "seccomp": "notify"},
    "metrics": "http://127.0.0.1:9090/metrics", "metrics_error": None,
}


def test_every_part_of_the_status_is_shown():
    assert format_status(STATUS).splitlines() == [
        "leeward daemon 0.1.0 (pid 42) on /run/leeward/leeward.sock (socket from systemd), up 1d 01:01:01",
        "sandboxes:  4 = 3 idle + 1 busy + 0 starting (target 4); 17 used and discarded",
        "executions: 17 (failed: 1 timeout, 2 oom, 3 error); 40 requests, 2 open connections",
        "limits:     cgroup1",
        "isolation:  namespaces, landlock, seccomp (landlock ABI 7, seccomp notify)",
        "preloaded:  numpy, pandas",
        "metrics:    http://127.0.0.1:9090/metrics",
    ]


def test_metrics_problem_and_last_failure_are_shown():
    status = {**STATUS, "metrics": None, "metrics_error": "cannot serve metrics on 127.0.0.1:9090: in use",
              "pool": {**STATUS["pool"], "last_failure": "zygote exited"}}
    lines = format_status(status).splitlines()
    assert lines[-2] == "metrics:    cannot serve metrics on 127.0.0.1:9090: in use"
    assert lines[-1] == "last sandbox failure: zygote exited"


def test_an_older_daemons_missing_fields_show_as_unknown():
    text = format_status({"type": "Status", "version": "0.0.9", "pool": {"idle": 1}})
    assert "up ?" in text and "isolation:  ? (landlock ABI ?, seccomp ?)" in text and "metrics:    off" in text
