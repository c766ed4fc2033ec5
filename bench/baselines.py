"""What leeward is compared against: a fresh interpreter per execution, bare or in
another sandbox (bubblewrap, nsjail when installed). Each is an argv run to completion."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"  # the baseline: a bare interpreter outside any venv
VENV_PYTHON = sys.executable  # leeward's own: slower to start (its site-packages)


def python_argv(interpreter: str, code: str) -> list[str]:
    return [interpreter, "-c", code]


def bwrap_argv(code: str) -> list[str] | None:
    """bubblewrap with every namespace it offers and a root of the system dirs, as
    close to a leeward slot as its options go; the system python inside."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    return argv + python_argv(SYSTEM_PYTHON, code)


def nsjail_argv(code: str) -> list[str] | None:
    nsjail = shutil.which("nsjail")
    if nsjail is None:
        return None
    argv = [nsjail, "-Mo", "--quiet", "--disable_proc", "-R", "/usr", "-R", "/etc", "-T", "/tmp"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.exists(link):
            argv += ["-R", link]
    return argv + ["--", *python_argv(SYSTEM_PYTHON, code)]


def runner(argv: list[str]):
    """A call that runs `argv` once and checks it worked."""
    def run() -> None:
        subprocess.run(argv, check=True, capture_output=True)
    return run


def works(argv: list[str]) -> str | None:
    """None when `argv` runs here, else why not (e.g. bwrap without user namespaces)."""
    done = subprocess.run(argv, capture_output=True)
    if done.returncode == 0:
        return None
    return (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit {done.returncode}"])[-1]
