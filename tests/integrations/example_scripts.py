"""Runs a script of examples/ as a user would, against the test daemon."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

RUN_SECS = 300  # bound on a whole example; not a speed assertion


def run_example(name: str, socket_path: str, output_dir) -> subprocess.CompletedProcess:
    """`python examples/NAME OUTPUT_DIR` with LEEWARD_SOCKET naming the test daemon; exits
    0 only when the example checked its own results."""
    env = {**os.environ, "LEEWARD_SOCKET": socket_path}
    finished = subprocess.run([sys.executable, os.path.join(REPO, "examples", name), str(output_dir)],
                              env=env, capture_output=True, text=True, timeout=RUN_SECS, cwd=REPO)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished
