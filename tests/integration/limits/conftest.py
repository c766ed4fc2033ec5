"""Real kernel, real cgroups, real child processes.

Every cgroup a test creates lives under a group named after the test run and is
killed and removed by a finalizer, whether or not the test passed. A backend this
machine cannot give is skipped with the backend's own reason.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from leeward_daemon.limits import LimitsUnavailable, select_backend
from leeward_daemon.limits import cgroupfs
from leeward_daemon.limits.base import wait_until

HANG_GUARD_SECS = 120  # a child that takes this long is stuck; not a timing assertion
GROUP = f"leeward-test-{os.getpid()}"


@pytest.fixture(params=["cgroup2", "cgroup1"])
def cgroup_backend(request):
    try:
        backend = select_backend(prefer=request.param, group=GROUP)
    except LimitsUnavailable as e:
        pytest.skip(f"{request.param} unavailable here: {e.reason}")
    yield backend
    # Boxes a failed test left behind: kill what is in them, then remove them.
    for group in backend.group_dirs:
        for leftover in os.listdir(group):
            path = os.path.join(group, leftover)
            if os.path.isdir(path):
                if os.path.exists(os.path.join(path, "freezer.state")):
                    cgroupfs.write(os.path.join(path, "freezer.state"), "THAWED")
                for pid in cgroupfs.procs(path):
                    os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not cgroupfs.procs(path))
                os.rmdir(path)
        os.rmdir(group)


@pytest.fixture
def box(cgroup_backend, request):
    box = cgroup_backend.create_box(request.node.name.replace("/", "_").replace("[", "-").rstrip("]"))
    yield box
    box.destroy()


class Child:
    """A Python child that starts, prints "ready" and waits for `go()` before running
    `body`, so the test can attach it to a box first. The body reports with
    `emit(**fields)` (one JSON line each); `cpu_since(T0)` is the CPU time, its own
    and its waited-for children's, spent since the go; `spin(s)` burns s of CPU."""

    PRELUDE = textwrap.dedent("""\
        import json, os, sys
        def emit(**kw):
            sys.stdout.write(json.dumps(kw) + "\\n"); sys.stdout.flush()
        def cpu_since(t0):
            t = os.times()
            return (t.user + t.system + t.children_user + t.children_system
                    - t0.user - t0.system - t0.children_user - t0.children_system)
        def spin(seconds):
            t0 = os.times()
            while os.times().user + os.times().system - t0.user - t0.system < seconds:
                pass
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        sys.stdin.readline()
        T0 = os.times()
    """)

    def __init__(self, body: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.PRELUDE + textwrap.dedent(body)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.readline() == "ready\n"

    @property
    def pid(self) -> int:
        return self.process.pid

    def readline(self) -> str:
        return self.process.stdout.readline()

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self) -> dict:
        line = self.readline()
        assert line, f"child printed nothing; exit status {self.process.poll()}"
        return json.loads(line)

    def wait(self) -> int:
        return self.process.wait(HANG_GUARD_SECS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(HANG_GUARD_SECS)
        self.process.stdin.close()
        self.process.stdout.close()


@pytest.fixture
def spawn():
    children: list[Child] = []

    def start(body: str) -> Child:
        children.append(Child(body))
        return children[-1]

    yield start
    for child in children:
        child.stop()
