"""The wheel's build hook: everything else about the package is in pyproject.toml.

A wheel carries, besides the Python packages, what a C, Go, Node or Rust program links
against, installed under the environment's prefix as a C library is:

    <prefix>/lib/libleeward.so            relocatable (libleeward/build_ffi.py --relocatable)
    <prefix>/lib/pkgconfig/leeward.pc     prefix=${pcfiledir}/../..
    <prefix>/include/leeward.h
    <prefix>/bin/leeward                  the C CLI (cli/), handing over to <prefix>/bin/python3

(`leeward` is that program rather than a console script: pyproject.toml declares only
leeward-daemon and leeward-mcp, so pip's generated script cannot overwrite it.)

so `PKG_CONFIG_PATH=<prefix>/lib/pkgconfig pkg-config --libs leeward` works wherever pip
put it. The library embeds the CPython it was built with, so the wheel is tagged for that
interpreter and platform, not pure. An editable install (`pip install -e`, what `make
setup` does) builds nothing here: a checkout uses build/lib (`make lib`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BinaryDistribution(Distribution):
    """Tags the wheel cpXY-cpXY-<platform>: libleeward.so links this libpython."""

    def has_ext_modules(self) -> bool:
        return True


class BuildPyWithLibrary(build_py):
    """build_py, then libleeward.so, leeward.pc and the C `leeward` into build/wheel/prefix,
    listed as the data files that land in <prefix>/lib, lib/pkgconfig, include and bin."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        sys.path.insert(0, str(HERE))  # libleeward.build_ffi and cli.build, from this source tree
        from cli import build as build_cli
        from libleeward import build_ffi

        prefix = Path(self.get_finalized_command("build").build_base).resolve() / "prefix"
        lib = prefix / "lib"
        library = build_ffi.build(lib, relocatable=True)
        # Relative: the program runs the python3 beside it, the venv's once installed.
        command = build_cli.build(prefix / "bin", python="python3")
        self.distribution.data_files = [
            ("bin", [str(command)]),
            ("lib", [str(library)]),
            ("lib/pkgconfig", [str(lib / "pkgconfig" / "leeward.pc")]),
            ("include", [str(HERE / "include" / "leeward.h")]),
        ]


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": BuildPyWithLibrary},
    # Not build/: a checkout's build/lib holds its own libleeward.so, which setuptools'
    # install step would otherwise copy into the wheel as package data.
    options={"build": {"build_base": "build/wheel"}},
)
