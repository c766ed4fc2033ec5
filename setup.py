"""The wheel's build hook: everything else about the package is in pyproject.toml.

A wheel carries, besides the Python packages, what a C, Go, Node or Rust program links
against, installed under the environment's prefix as a C library is:

    <prefix>/lib/libleeward.so            relocatable (libleeward/build_ffi.py --relocatable)
    <prefix>/lib/pkgconfig/leeward.pc     prefix=${pcfiledir}/../..
    <prefix>/include/leeward.h

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
    """build_py, then libleeward.so and leeward.pc into build/wheel/prefix, listed as the
    data files that land in <prefix>/lib, <prefix>/lib/pkgconfig and <prefix>/include."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        sys.path.insert(0, str(HERE))  # libleeward.build_ffi, from this source tree
        from libleeward import build_ffi

        lib = Path(self.get_finalized_command("build").build_base).resolve() / "prefix" / "lib"
        library = build_ffi.build(lib, relocatable=True)
        self.distribution.data_files = [
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
