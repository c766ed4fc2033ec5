#!/usr/bin/env python3
"""`make run`: start a daemon, run code in sandboxes through it, show the results."""
from __future__ import annotations

import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from leeward import Leeward  # noqa: E402
from libleeward.client import Connection  # noqa: E402
from tests.conftest import start_daemon  # noqa: E402

JOBS = [
    ("the spec's demo", "print(sum(range(100)))", {}),
    ("what the sandbox sees", "import os, socket\nprint('pid', os.getpid(), 'uid', os.getuid(), "
     "'host', socket.gethostname())\nprint('/ =', sorted(os.listdir('/')))", {}),
    ("an escape attempt", "open('/etc/passwd', 'a').write('pwned')", {}),
    ("a runaway loop, 1 s timeout", "while True: pass", {"timeout_secs": 1}),
]


def show(title: str, result) -> None:
    print(f"--- {title}: exit_code={result.exit_code} timed_out={result.timed_out} "
          f"duration={result.duration_ms:.2f} ms")
    for name in ("stdout", "stderr"):
        text = getattr(result, name)
        text = (text.decode(errors="replace") if isinstance(text, bytes) else text).strip()
        if text:
            print(f"{name}:\n  " + text.replace("\n", "\n  ")[-600:])


def show_agent_features(socket_path: str) -> None:
    """Sessions, a program instead of Python, and output as it is written."""
    with Leeward(socket_path) as lw:
        with lw.session() as session:
            session.run("import statistics\ndata = [3, 1, 4, 1, 5, 9, 2, 6]")
            cell = session.run("statistics.mean(data), max(data)", display=True)
            print(f"--- a session keeps its state: the second cell's value is {cell.text}")
        show("a program instead of Python (argv)", lw.run(["sh", "-c", "echo $((6 * 7)); ls / | wc -l"]))
        run = lw.stream("import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.2)")
        chunks = [event.data for event in run if event.kind == "stdout"]
        print(f"--- streamed: {len(chunks)} chunks as they were printed, {b''.join(chunks)!r}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="leeward-demo-") as directory:
        outputs = os.path.join(directory, "outputs")
        os.mkdir(outputs)
        os.chmod(outputs, 0o777)
        daemon = start_daemon(directory, "--allow-path", outputs)
        print(f"leeward daemon running on {daemon.socket_path}\n")
        try:
            with Connection(daemon.socket_path) as conn:
                for title, code, options in JOBS:
                    show(title, conn.execute(code, **options))
                result = conn.execute("open('/out/report.txt', 'w').write('written in a sandbox')",
                                      mounts=[{"host": outputs, "sandbox": "/out", "ro": False}])
                show("a rw mount", result)
                with open(os.path.join(outputs, "report.txt")) as fh:
                    print(f"host sees {outputs}/report.txt: {fh.read()!r}")
            show_agent_features(daemon.socket_path)
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
