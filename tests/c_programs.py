"""Small C programs that tests build on the host and mount into a sandbox (argv jobs):
what a job could bring along as a compiled binary rather than run through Python."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def build(directory: str, name: str, source: str) -> str:
    """Compiles `source` to `directory`/`name` (readable and executable by every uid: a
    root daemon's sandbox runs as an otherwise unused one); returns the binary's path."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (scripts/install-system-packages.sh installs gcc)")
    source_path = os.path.join(directory, f"{name}.c")
    with open(source_path, "w") as fh:
        fh.write(source)
    binary = os.path.join(directory, name)
    subprocess.run([compiler, "-O1", "-Wall", "-o", binary, source_path], check=True, capture_output=True)
    os.chmod(binary, 0o755)
    os.chmod(directory, 0o755)
    return binary
