"""The wheel, installed into a fresh venv outside the checkout, works without the source tree.

Built from a copy of the files a clone has (so nothing of this checkout's build/ can
leak in), installed with pip (dependencies from the package index or pip's cache), then
used the three ways a user would: the `leeward` CLI, the Python binding, and a C program
compiled against the installed header through pkg-config. The daemon is the wheel's too.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import RunningDaemon, start_daemon

REPO = Path(__file__).resolve().parents[2]
PIP_SECS = 600  # bound on a pip run that fetches from the index, not a speed assertion
# What a developer's shell may carry that would let the checkout stand in for the install.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "LEEWARD_SOCKET", "LEEWARD_PYTHONPATH", "LEEWARD_LIBRARY",
              "PKG_CONFIG_PATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV")


def outside_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.update(extra)
    return env


def run(argv: list, *, cwd: Path | str = "/", timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=outside_env(**env))
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def clone_files(destination: Path) -> Path:
    """The tracked and new (not ignored) files of the checkout, as a clone would have them."""
    listed = run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not there
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = clone_files(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source], timeout=PIP_SECS)
    (built,) = dist.glob("leeward-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("installed") / "venv"
    # The wheel embeds the interpreter it was built with: the venv uses the same one.
    run([sys._base_executable, "-m", "venv", prefix])
    run([prefix / "bin" / "python", "-m", "pip", "install", "-q", wheel], timeout=PIP_SECS)
    return prefix


@pytest.fixture(scope="module")
def installed_daemon(venv, tmp_path_factory) -> RunningDaemon:
    running = start_daemon(str(tmp_path_factory.mktemp("daemon")), command=[str(venv / "bin" / "python")],
                           env=outside_env(), workers=1)
    yield running
    running.stop()


def pkg_config(venv: Path, *args: str) -> str:
    return run(["pkg-config", *args, "leeward"], PKG_CONFIG_PATH=str(venv / "lib" / "pkgconfig")).stdout.strip()


def test_wheel_is_for_this_interpreter_and_carries_the_c_library(wheel):
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name.startswith(f"leeward-0.1.0-{tag}-{tag}-linux_")
    names = zipfile.ZipFile(wheel).namelist()
    data = "leeward-0.1.0.data/data/"
    for name in ("lib/libleeward.so", "lib/pkgconfig/leeward.pc", "include/leeward.h", "bin/leeward"):
        assert data + name in names
    assert not [n for n in names if n.endswith(".so") and n != data + "lib/libleeward.so"]
    entry_points = zipfile.ZipFile(wheel).read("leeward-0.1.0.dist-info/entry_points.txt").decode()
    for script in ("leeward-daemon", "leeward-mcp"):
        assert f"\n{script} = " in entry_points
    # `leeward` is the C program: a console script of that name would overwrite it.
    assert "\nleeward = " not in entry_points


def test_installed_files_and_commands(venv):
    for path in ("lib/libleeward.so", "lib/pkgconfig/leeward.pc", "include/leeward.h"):
        assert (venv / path).is_file(), path
    for script in ("leeward", "leeward-daemon", "leeward-mcp"):
        assert os.access(venv / "bin" / script, os.X_OK), script
    assert (venv / "bin" / "leeward").read_bytes()[:4] == b"\x7fELF"
    assert "--socket" in run([venv / "bin" / "leeward-daemon", "--help"]).stdout
    # Handed over to the Python CLI, run by the venv's python3 beside the program.
    assert "usage: leeward" in run([venv / "bin" / "leeward", "--help"]).stdout


def test_python_packages_come_from_the_venv(venv):
    code = ("import leeward, leeward_daemon, libleeward; from leeward import _library; "
            "print(leeward.__file__, leeward_daemon.__file__, libleeward.__file__, _library.find())")
    paths = run([venv / "bin" / "python", "-c", code]).stdout.split()
    assert len(paths) == 4 and all(p.startswith(f"{venv}/") for p in paths), paths
    assert Path(paths[3]) == (venv / "lib" / "libleeward.so").resolve()


def test_pkg_config_finds_the_installed_library(venv):
    assert pkg_config(venv, "--modversion") == "0.1.0"
    flags = pkg_config(venv, "--cflags", "--libs").split()
    include = [os.path.normpath(f[2:]) for f in flags if f.startswith("-I")]
    libdirs = [os.path.normpath(f[2:]) for f in flags if f.startswith("-L")]
    assert include == [str(venv / "include")] and libdirs == [str(venv / "lib")] and "-lleeward" in flags


def test_cli_runs_a_job(venv, installed_daemon):
    proc = run([venv / "bin" / "leeward", "exec", "--socket", installed_daemon.socket_path, "print(6 * 7)"])
    assert proc.stdout == "42\n"


def test_python_binding_runs_a_job(venv, installed_daemon, tmp_path):
    code = "import leeward\nwith leeward.Leeward() as c:\n    print(c.execute('print(6 * 7)').stdout, end='')\n"
    proc = run([venv / "bin" / "python", "-c", code], cwd=tmp_path, LEEWARD_SOCKET=installed_daemon.socket_path)
    assert proc.stdout == "42\n"


def test_c_program_built_against_the_installed_header(venv, installed_daemon, tmp_path):
    # The example includes "leeward.h": only the installed header is on the include path.
    source = shutil.copy(REPO / "examples" / "hello.c", tmp_path / "hello.c")
    flags = pkg_config(venv, "--cflags", "--libs").split()
    run(["cc", "-Wall", "-Werror", "-o", tmp_path / "hello", source, *flags])
    proc = run([tmp_path / "hello", installed_daemon.socket_path])
    assert proc.stdout.startswith("hello\nexit_code=0 ")
