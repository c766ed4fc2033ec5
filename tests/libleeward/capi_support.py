"""Helpers for the C-level tests: build libleeward.so, compile tests/capi programs, run them."""
from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from libleeward.build_ffi import DEFAULT_OUT, HEADER, ensure_built

REPO = Path(__file__).resolve().parents[2]
CAPI = REPO / "tests" / "capi"
PKG_CONFIG_PATH = DEFAULT_OUT / "pkgconfig"
# The library reads these; a developer's values must not steer the tests.
_LEAKY_ENV = ("LEEWARD_SOCKET", "LEEWARD_PYTHONPATH", "LEEWARD_LIBRARY", "PYTHONPATH", "PYTHONHOME")


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.update(extra)
    return env


def pkg_config_flags() -> list[str]:
    out = subprocess.run(["pkg-config", "--cflags", "--libs", "leeward"], check=True, capture_output=True,
                         text=True, env={**os.environ, "PKG_CONFIG_PATH": str(PKG_CONFIG_PATH)})
    return out.stdout.split()


def compile_c(source: Path, output: Path, *flags: str, link_leeward: bool = True) -> Path:
    """gcc with -Werror; links -lleeward through pkg-config unless told not to."""
    ensure_built()
    argv = ["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-o", str(output), str(source),
            f"-I{HEADER.parent}", *flags]
    if link_leeward:
        argv += pkg_config_flags()
    argv += ["-pthread", "-ldl"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stderr}"
    return output


@pytest.fixture(scope="module")
def capi_test(tmp_path_factory) -> Path:
    return compile_c(CAPI / "capi_test.c", tmp_path_factory.mktemp("capi") / "capi_test")


@pytest.fixture(scope="module")
def dlopen_test(tmp_path_factory) -> Path:
    return compile_c(CAPI / "dlopen_test.c", tmp_path_factory.mktemp("capi") / "dlopen_test",
                     link_leeward=False)


def run(argv: list, *, env: dict | None = None, timeout: float = 120, expect_pass: bool = True):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                          env=clean_env() if env is None else env)
    if expect_pass:
        assert proc.returncode == 0 and "PASS" in proc.stdout, (
            f"{argv} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


class Driven:
    """A child that prints a word and waits for a line on stdin before going on."""

    def __init__(self, argv: list):
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=clean_env())
        self.output = b""

    def expect(self, word: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while word.encode() + b"\n" not in self.output:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0, remaining))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.proc.kill()
                raise AssertionError(f"no {word!r} (exit {self.proc.poll()}):\n{self.text}")
            self.output += chunk

    def go(self) -> None:
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> int:
        rest, _ = self.proc.communicate(timeout=timeout)
        self.output += rest or b""
        return self.proc.returncode

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")
