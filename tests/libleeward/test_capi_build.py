"""libleeward.so without a daemon: the build, the exported ABI, argument checks, start-up failure."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from capi_support import (CAPI, HEADER, REPO, capi_test, clean_env, compile_c, dlopen_test,  # noqa: F401
                          pkg_config_flags, run)

from libleeward import build_ffi

HEADER_FUNCTIONS = sorted(set(re.findall(r"\b(leeward_\w+)\s*\(", HEADER.read_text())))


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory):
    """The documented build command, into a scratch dir."""
    out = tmp_path_factory.mktemp("build") / "lib"
    proc = subprocess.run([sys.executable, str(REPO / "libleeward" / "build_ffi.py"), "--out", str(out)],
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_build_produces_library_and_pkg_config(fresh_build):
    assert (fresh_build / "libleeward.so").is_file()
    pc = (fresh_build / "pkgconfig" / "leeward.pc").read_text()
    assert f"libdir={fresh_build}" in pc and "-lleeward" in pc
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "leeward"], capture_output=True, text=True,
                           env={"PKG_CONFIG_PATH": str(fresh_build / "pkgconfig"), "PATH": "/usr/bin:/bin"})
    assert f"-I{HEADER.parent}" in flags.stdout and f"-L{fresh_build}" in flags.stdout


def test_exports_exactly_the_header(fresh_build):
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(fresh_build / "libleeward.so")],
                             capture_output=True, text=True, check=True).stdout.split("\n")
    exported = sorted(line.split()[-1] for line in symbols if line.strip() and line.split()[1] == "T")
    # PyInit_ is how cffi registers the module with the embedded interpreter.
    assert exported == sorted(HEADER_FUNCTIONS + ["PyInit__libleeward_cffi"])
    for name in ("leeward_connect", "leeward_execute", "leeward_result_free", "leeward_disconnect",
                 "leeward_last_error", "leeward_version"):
        assert name in exported  # the DESIGN.md section 5 names


def test_soname_and_dependencies(fresh_build):
    dynamic = subprocess.run(["readelf", "-d", str(fresh_build / "libleeward.so")],
                             capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libleeward.so]" in dynamic
    assert re.search(r"NEEDED.*libpython3\.\d+\.so", dynamic)


def test_stale_check(fresh_build):
    assert not build_ffi.is_stale(fresh_build)
    (fresh_build / "pkgconfig" / "leeward.pc").unlink()
    assert build_ffi.is_stale(fresh_build)


@pytest.mark.parametrize("compiler,std", [("gcc", "-std=c99"), ("gcc", "-std=c11"), ("g++", "-std=c++11")])
def test_header_stands_alone(tmp_path, compiler, std):
    if subprocess.run(["which", compiler], capture_output=True).returncode != 0:
        pytest.skip(f"{compiler} not installed")
    source = tmp_path / ("t.cpp" if compiler == "g++" else "t.c")
    source.write_text('#include "leeward.h"\nint main(void) { return leeward_version() == 0; }\n')
    proc = subprocess.run([compiler, std, "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only",
                           f"-I{HEADER.parent}", str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_cdef_is_the_header():
    """cffi is fed the header itself: one source of truth for the struct layouts."""
    cdef = build_ffi.header_cdef(HEADER.read_text())
    assert not any(line.lstrip().startswith("#") for line in cdef.splitlines())
    assert 'extern "C"' not in cdef
    for name in HEADER_FUNCTIONS:
        assert name in cdef


def test_null_arguments_and_forged_handles(capi_test):
    run([capi_test, "args"])


def test_no_daemon(capi_test, tmp_path):
    proc = run([capi_test, "nodaemon", tmp_path / "nobody.sock"])
    assert "cannot connect" in proc.stdout


def test_python_that_cannot_start_is_an_error_not_a_crash(capi_test):
    proc = run([capi_test, "bootfail"], env=clean_env(LEEWARD_PYTHONPATH="/nonexistent"))
    assert "libleeward" in proc.stdout


def test_dlopen_rtld_local_without_daemon(dlopen_test, fresh_build):
    proc = run([dlopen_test, fresh_build / "libleeward.so", "-"], expect_pass=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no daemon: cannot connect" in proc.stdout


def test_example_without_daemon(tmp_path):
    hello = compile_c(REPO / "examples" / "hello.c", tmp_path / "hello")
    proc = run([hello, tmp_path / "nobody.sock"], expect_pass=False)
    assert proc.returncode == 2
    assert "cannot connect" in proc.stderr and "E1006" in proc.stderr
