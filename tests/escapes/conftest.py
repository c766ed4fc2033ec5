"""Fixtures of the escape probes; the probe runner itself is in _probe.py."""
from __future__ import annotations

import os
import subprocess

import pytest


@pytest.fixture
def probe_dir(daemon) -> str:
    """A fresh host directory under the daemon's allowed_dir (mode 0777, so the
    sandbox's unprivileged outside uid may write a rw mount of it)."""
    path = os.path.join(daemon.allowed_dir, f"escape-{os.urandom(4).hex()}")
    os.mkdir(path)
    os.chmod(path, 0o777)
    return path


@pytest.fixture
def host_sentinel():
    """A host process in its own session and process group that no job may signal."""
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield process
    process.kill()
    process.wait()
