"""examples/mcp_agent.py runs as a user would run it, against the test daemon: the scripted
agent finishes its two-step task (state, a figure, a file) through leeward-mcp over stdio."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_example(name: str, socket_path: str, out_dir) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}, "LEEWARD_SOCKET": socket_path}
    return subprocess.run([sys.executable, os.path.join(REPO, "examples", name), str(out_dir)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_mcp_agent_example(daemon, tmp_path):
    ran = run_example("mcp_agent.py", daemon.socket_path, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == "answer: Sold 518 units, best month Apr; the chart is attached."
    assert (tmp_path / "sales.png").read_bytes().startswith(PNG_MAGIC)
