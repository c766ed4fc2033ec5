"""Builds libleeward.so: the C ABI of include/leeward.h over an embedded CPython (cffi
embedding mode), plus leeward.pc for pkg-config.

    .venv/bin/python libleeward/build_ffi.py [--out build/lib]

The C entry points live in libleeward/_cffi_capi.c; the Python behind them in
libleeward/_cffi_impl.py (imported inside the embedded interpreter, never by the
daemon). Where the embedded interpreter finds its stdlib and leeward's
site-packages is decided here, at build time, from the interpreter running this
script, and baked into the library (LEEWARD_PYTHONPATH overrides the latter).

--relocatable (what the wheel builds, see setup.py) bakes no path of the build
machine: the library looks for the interpreter at ../bin/python3 next to itself,
found at run time (a venv's, whose pyvenv.cfg brings its site-packages), and the .pc
names its prefix relative to its own directory (${pcfiledir}), so both follow the
install wherever pip puts it.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import site
import sys
import sysconfig
from pathlib import Path

import cffi

from libleeward import header

REPO = Path(__file__).resolve().parent.parent
HEADER = REPO / "include" / "leeward.h"
C_SOURCE = REPO / "libleeward" / "_cffi_capi.c"
MODULE = "_libleeward_cffi"
DEFAULT_OUT = REPO / "build" / "lib"
# Where a relocatable library finds its interpreter, relative to its own directory:
# <prefix>/lib/libleeward.so -> <prefix>/bin/python3 (the layout of a wheel's data files).
RELOCATED_PROGRAM = "../bin/python3"

# Python functions the C entry points call (implemented in _cffi_impl.py).
# `extern "Python"` (not embedding_api) keeps them static: the only exported
# symbols are the leeward_* of the header, each of which starts Python itself
# and turns a failed start into NULL + leeward_last_error().
PYTHON_SIDE = """
extern "Python" int _lw_py_boot(void);
extern "Python" LeewardHandle *_lw_py_connect(const char *socket_path);
extern "Python" void _lw_py_disconnect(LeewardHandle *handle);
extern "Python" int _lw_py_execute(LeewardHandle *handle, const char *code,
                                   const LeewardOptions *options, LeewardResult *out);
extern "Python" int _lw_py_ping(LeewardHandle *handle);
extern "Python" char *_lw_py_status_json(LeewardHandle *handle);
extern "Python" int _lw_py_call(LeewardHandle *handle, const char *request_json,
                                LeewardEventCallback on_event, void *user, char **reply_json);

void _lw_set_error(const char *code, const char *message);
void _lw_set_boot_error(const char *message);
char *_lw_memdup(const char *data, size_t len);
"""

# Runs once inside the embedded interpreter, after the cffi module exists.
# Nothing may escape it: an exception here would make cffi print to the host's
# stderr and every later call return 0. A failed import is reported through
# _lw_py_boot() instead, which the C side turns into E4001.
INIT_CODE = f"""
from {MODULE} import ffi, lib
try:
    import libleeward._cffi_impl
except BaseException as exc:
    import traceback
    _reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    lib._lw_set_boot_error(("cannot import libleeward: " + _reason).encode("utf-8", "replace"))

    @ffi.def_extern()
    def _lw_py_boot():
        return 0
"""


def header_cdef(header: str) -> str:
    """The header as cffi's cdef: the same declarations, without the preprocessor."""
    header = re.sub(r"#ifdef __cplusplus.*?#endif", "", header, flags=re.S)
    return "\n".join(line for line in header.splitlines() if not line.lstrip().startswith("#"))


def c_string(value: str) -> str:
    """A C string literal for any path (octal escapes keep non-ASCII bytes intact)."""
    out = []
    for byte in value.encode():
        ch = chr(byte)
        out.append(ch if 0x20 <= byte < 0x7F and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def baked_paths() -> list[str]:
    """leeward's own import roots: the building interpreter's site-packages (msgpack,
    the matching _cffi_backend), then the repo (libleeward, for a source checkout)."""
    paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
    paths.append(str(REPO))
    return list(dict.fromkeys(paths))


def pkg_config(out: Path, relocatable: bool = False) -> str:
    # A relocatable .pc lives in <prefix>/lib/pkgconfig: pkg-config expands ${pcfiledir}
    # to the directory it found the file in, wherever the wheel was installed.
    prefix, libdir = ("${pcfiledir}/../..", "${prefix}/lib") if relocatable else (REPO, out)
    return (
        f"prefix={prefix}\n"
        f"libdir={libdir}\n"
        "includedir=${prefix}/include\n\n"
        "Name: leeward\n"
        "Description: C ABI of the leeward sandbox daemon\n"
        f"Version: {version()}\n"
        "Cflags: -I${includedir}\n"
        "Libs: -L${libdir} -Wl,-rpath,${libdir} -lleeward\n"
    )


def version() -> str:
    try:
        return header.version(HEADER.read_text())
    except ValueError as exc:
        raise SystemExit(f"{HEADER}: {exc}") from None


def make_builder(relocatable: bool = False) -> cffi.FFI:
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(header_cdef(HEADER.read_text()) + PYTHON_SIDE)
    ffibuilder.embedding_api("")  # makes this an embedding build; exports come from C
    ffibuilder.embedding_init_code(INIT_CODE)
    defines = {
        "LW_BAKED_PYTHONPATH": c_string("" if relocatable else os.pathsep.join(baked_paths())),
        # The interpreter Python's stdlib is found from: getpath() would otherwise
        # search $PATH for "python3" and may land on another installation.
        "LW_PROGRAM_NAME": c_string(getattr(sys, "_base_executable", None) or sys.executable),
        # Tried first when set; LW_PROGRAM_NAME is the fallback (an install outside a venv).
        "LW_RELATIVE_PROGRAM_NAME": c_string(RELOCATED_PROGRAM if relocatable else ""),
    }
    ffibuilder.set_source(
        MODULE,
        "\n".join(f"#define {k} {v}" for k, v in defines.items()) + "\n" + C_SOURCE.read_text(),
        include_dirs=[str(HEADER.parent)],
        libraries=["dl", "pthread"],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
        # The soname lets a second dlopen("libleeward.so") find the loaded copy.
        extra_link_args=["-Wl,-soname,libleeward.so", "-Wl,--no-undefined"],
    )
    return ffibuilder


def build(out: Path, relocatable: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / "cffi"
    tmp.mkdir(parents=True, exist_ok=True)
    built = Path(make_builder(relocatable).compile(tmpdir=str(tmp), target="libleeward.*", verbose=False))
    target = out / "libleeward.so"
    # Replace, don't overwrite in place: a running process may have the old one mapped.
    staging = out / ".libleeward.so.new"
    shutil.copy2(built, staging)
    os.replace(staging, target)
    pc_dir = out / "pkgconfig"
    pc_dir.mkdir(exist_ok=True)
    (pc_dir / "leeward.pc").write_text(pkg_config(out, relocatable))
    return target


def is_stale(out: Path = DEFAULT_OUT) -> bool:
    """True when the library or its .pc is missing or older than a source of the build."""
    products = [out / "libleeward.so", out / "pkgconfig" / "leeward.pc"]
    if not all(p.exists() for p in products):
        return True
    newest_source = max(p.stat().st_mtime for p in (HEADER, C_SOURCE, Path(__file__).resolve()))
    return any(p.stat().st_mtime < newest_source for p in products)


def ensure_built(out: Path = DEFAULT_OUT) -> Path:
    """The library in `out`, rebuilt first if stale (what tests call)."""
    return build(out) if is_stale(out) else out / "libleeward.so"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output dir (default build/lib)")
    parser.add_argument("--if-stale", action="store_true", help="do nothing if the library is up to date")
    parser.add_argument("--relocatable", action="store_true",
                        help="bake no build path: find ../bin/python3 at run time, .pc relative to itself")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.if_stale and not is_stale(out):
        print(f"{out / 'libleeward.so'} is up to date")
        return 0
    target = build(out, args.relocatable)
    print(f"built {target} (python {sysconfig.get_python_version()}, pkg-config: {target.parent / 'pkgconfig'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
