"""The ctypes layer is generated from include/leeward.h and the library is found predictably."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import leeward
from leeward import _library

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / "bindings" / "python" / "generate_ctypes.py"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_ctypes", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_ctypes_module_matches_the_header(tmp_path):
    generator = _generator()
    for fresh in generator.generate(tmp_path):
        committed = generator.PACKAGE_DIR / fresh.name
        assert committed.read_text() == fresh.read_text(), (
            f"{committed} is stale: run `python bindings/python/generate_ctypes.py`")


def test_generated_structs_match_the_library_layout():
    from libleeward.build_ffi import ensure_built

    ensure_built()
    ll = _library.lowlevel()
    names = [f[0] for f in ll.LeewardResult._fields_]
    assert names[:10] == ["exit_code", "stdout_data", "stdout_len", "stderr_data", "stderr_len",
                          "duration_us", "memory_peak", "cpu_time_us", "timed_out", "oom_killed"]
    assert [f[0] for f in ll.LeewardOptions._fields_] == ["timeout_secs", "memory_limit", "mounts", "mounts_len"]
    assert [f[0] for f in ll.LeewardMount._fields_] == ["host", "sandbox", "read_only"]
    assert ll.leeward_version() == ll.LEEWARD_VERSION.encode() == leeward.__version__.encode()


def test_library_search_order(monkeypatch, tmp_path):
    monkeypatch.delenv(_library.LIBRARY_ENV, raising=False)
    # A checkout's editable install ships no library: the wheel's copy (<prefix>/lib, found
    # through its RECORD) is checked by tests/packaging/test_wheel.py.
    assert _library.installed() is None
    assert _library.candidates() == [REPO / "build" / "lib" / "libleeward.so"]

    lib = tmp_path / "custom.so"
    lib.write_bytes(b"")
    monkeypatch.setenv(_library.LIBRARY_ENV, str(lib))
    assert _library.find() == lib
    monkeypatch.setenv(_library.LIBRARY_ENV, str(tmp_path))
    (tmp_path / "libleeward.so").write_bytes(b"")
    assert _library.find() == tmp_path / "libleeward.so"


def test_explicit_library_that_is_missing_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv(_library.LIBRARY_ENV, str(tmp_path / "nope.so"))
    with pytest.raises(leeward.LibraryNotFound, match="nope.so"):
        _library.find()
