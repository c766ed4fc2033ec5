"""Finds and loads libleeward.so, once, and binds it through the ctypesgen module.

Search order: $LEEWARD_LIBRARY (a file, or a directory holding libleeward.so), then
the copy an installed wheel put in <prefix>/lib (named in the distribution's RECORD,
so every install scheme is covered), then the source checkout's build/lib (where
libleeward/build_ffi.py puts it).
"""
from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from types import ModuleType

from .errors import LibraryNotFound

LIBRARY_ENV = "LEEWARD_LIBRARY"
LIBRARY_NAME = "libleeward.so"
_PACKAGE_DIR = Path(__file__).resolve().parent
_BUILD_DIR = _PACKAGE_DIR.parents[2] / "build" / "lib"

_lock = threading.Lock()
_lowlevel: ModuleType | None = None


def installed() -> Path | None:
    """The wheel's libleeward.so, wherever pip put it (None for a checkout, whose
    editable install ships no library)."""
    # Imported here, not at the top: importlib.metadata costs 15-35 ms, on every
    # `import leeward` otherwise, and only a library lookup needs it.
    import importlib.metadata

    try:
        files = importlib.metadata.files("leeward") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == LIBRARY_NAME:
            return Path(file.locate()).resolve()
    return None


def candidates() -> list[Path]:
    found = []
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        path = Path(explicit)
        found.append(path / LIBRARY_NAME if path.is_dir() else path)
    wheel = installed()
    if wheel is not None:
        found.append(wheel)
    found.append(_BUILD_DIR / LIBRARY_NAME)
    return found


def find() -> Path:
    searched = candidates()
    if os.environ.get(LIBRARY_ENV):
        # An explicit choice is not second-guessed by falling back to another copy.
        searched = searched[:1]
    for path in searched:
        if path.is_file():
            return path
    raise LibraryNotFound("", f"{LIBRARY_NAME} not found (searched {', '.join(map(str, searched))}); "
                              f"build it with `python libleeward/build_ffi.py` or set {LIBRARY_ENV}")


def lowlevel() -> ModuleType:
    """The ctypesgen module, bound to the library that find() chose."""
    global _lowlevel
    with _lock:
        if _lowlevel is None:
            path = find()
            try:
                ctypes.CDLL(str(path))  # for dlopen's own message; the loader below hides it
            except OSError as exc:
                raise LibraryNotFound("", f"cannot load {path}: {exc}") from None
            from ._ffi import ctypes_loader

            # The generated module loads "leeward" through this loader when imported:
            # make it load exactly our file instead of searching the system for one.
            ctypes_loader.load_library.getpaths = lambda libname: iter([str(path)])
            from ._ffi import lowlevel as module

            _lowlevel = module
        return _lowlevel
