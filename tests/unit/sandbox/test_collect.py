"""collect.collect in a plain process, on a tree made in tmp_path: globs as Python's
glob, regular files only, exact bytes, symlinks never followed at any component, caps."""
from __future__ import annotations

import glob
import os

import pytest

from leeward_daemon.sandbox import collect

BIG = 1 << 30


def grab(workdir, *patterns, max_bytes=BIG, max_files=1000):
    return collect.collect(list(patterns), str(workdir), max_bytes=max_bytes, max_files=max_files)


def make(root, files: dict[str, bytes]):
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.fixture
def tree(tmp_path):
    make(tmp_path, {"a.png": b"\x89PNG\x00\xff", "b.txt": b"b", ".hidden.png": b"h", "out/c.csv": b"1,2\n",
                    "out/deep/d.csv": b"3,4\n", "out/.dot/e.csv": b"e", "data[1].bin": bytes(range(256))})
    return tmp_path


def test_exact_bytes_of_matching_regular_files(tree):
    assert grab(tree, "*.png", "out/*.csv") == ({"a.png": b"\x89PNG\x00\xff", "out/c.csv": b"1,2\n"}, False)


@pytest.mark.parametrize("pattern", ["*", "*.png", ".*", "**", "**/*.csv", "out/**", "out/**/*.csv", "**/d.csv",
                                     "out/deep/d.csv", "?.txt", "[ab].*", "data[[]1].bin", "out/*/*.csv",
                                     "nothing*", "out"])
def test_matches_what_python_glob_matches(tree, pattern):
    expected = {os.path.normpath(path) for path in glob.glob(pattern, root_dir=tree, recursive=True)
                if os.path.isfile(tree / path)}
    files, truncated = grab(tree, pattern)
    assert set(files) == expected and not truncated
    for path, data in files.items():
        assert data == (tree / path).read_bytes()


def test_overlapping_patterns_give_each_file_once(tree):
    files, _ = grab(tree, "*.png", "a.*", "./a.png", "**/*.png")
    assert list(files) == ["a.png"]


def test_symlinks_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    make(outside, {"secret": b"host secret", "dir/inner": b"inner secret"})
    work = tmp_path / "work"
    make(work, {"real/ok.txt": b"ok"})
    (work / "link.txt").symlink_to(outside / "secret")
    (work / "linkdir").symlink_to(outside / "dir")
    (work / "real" / "up").symlink_to(outside)
    files, truncated = grab(work, "*", "*.txt", "link.txt", "linkdir/inner", "linkdir/*", "**", "**/*",
                            "real/up/secret", "real/up/dir/*")
    assert files == {"real/ok.txt": b"ok"} and not truncated


def test_a_symlink_swapped_in_for_a_directory_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    make(outside, {"x.csv": b"secret"})
    work = tmp_path / "work"
    work.mkdir()
    (work / "out").symlink_to(outside)  # where a directory was expected
    assert grab(work, "out/x.csv", "out/*.csv", "out/**/*.csv") == ({}, False)


def test_only_regular_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it must not hang
    (tmp_path / "dir.csv").mkdir()
    make(tmp_path, {"f.csv": b"f"})
    assert grab(tmp_path, "*", "*.csv", "fifo") == ({"f.csv": b"f"}, False)


def test_max_files_truncates_in_a_stable_order(tmp_path):
    make(tmp_path, {f"{i}.txt": b"x" for i in range(5)})
    assert grab(tmp_path, "*.txt", max_files=3) == ({"0.txt": b"x", "1.txt": b"x", "2.txt": b"x"}, True)
    assert grab(tmp_path, "*.txt", max_files=5) == ({f"{i}.txt": b"x" for i in range(5)}, False)


def test_max_bytes_truncates_and_drops_all_after(tmp_path):
    make(tmp_path, {"a": b"12", "b": b"3456", "c": b"7"})
    assert grab(tmp_path, "*", max_bytes=3) == ({"a": b"12"}, True)  # c would fit, but comes after b
    assert grab(tmp_path, "*", max_bytes=7) == ({"a": b"12", "b": b"3456", "c": b"7"}, False)
    assert grab(tmp_path, "*", max_bytes=0) == ({}, True)


def test_empty_files_and_zero_caps(tmp_path):
    make(tmp_path, {"empty": b""})
    assert grab(tmp_path, "*", max_bytes=0) == ({"empty": b""}, False)
    assert grab(tmp_path, "*", max_files=0) == ({}, True)
    assert grab(tmp_path, "none*", max_files=0) == ({}, False)


def test_names_that_are_not_utf8_are_left_out(tmp_path):
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.txt"), "wb") as fh:
        fh.write(b"x")
    make(tmp_path, {"good.txt": b"g"})
    assert grab(tmp_path, "*.txt") == ({"good.txt": b"g"}, False)


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../x", "a/../../b", "..", "", "a\x00"])
def test_patterns_that_leave_the_workdir_are_refused(tmp_path, pattern):
    with pytest.raises(collect.BadPattern):
        grab(tmp_path, "ok", pattern)
