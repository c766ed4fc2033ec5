"""Writes files a job collected (names chosen inside the sandbox, so untrusted) under one
output directory, and nowhere else.

A name is refused when it is absolute, empty, or has a `..`, `.` or empty component; the
walk goes from a descriptor of the output directory with O_NOFOLLOW at every step, so a
symlink already in that directory (or planted there meanwhile) is never followed out of it.
"""
from __future__ import annotations

import os


class UnsafeName(ValueError):
    """A collected file's name that would not stay inside the output directory."""


def check_name(name: str) -> list[str]:
    """The components of a safe relative name; UnsafeName otherwise."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        raise UnsafeName(f"refusing to write collected file {name[:200]!r}: not a plain relative path")
    return parts


def write_files(files: dict[str, bytes], out_dir: str) -> list[str]:
    """Writes each file under out_dir (made if missing), replacing what is there; returns
    the paths written. Every name is checked before anything is written."""
    checked = {name: check_name(name) for name in files}
    os.makedirs(out_dir, exist_ok=True)
    root = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    written = []
    try:
        for name, parts in checked.items():
            _write_under(root, parts, files[name])
            written.append(os.path.join(out_dir, *parts))
    finally:
        os.close(root)
    return written


def _write_under(root: int, parts: list[str], data: bytes) -> None:
    directory = root
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=directory)
            except FileExistsError:
                pass
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            if directory != root:
                os.close(directory)
            directory = inner
        # O_NONBLOCK: a FIFO planted there fails (ENXIO) instead of hanging us.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(parts[-1], flags, 0o644, dir_fd=directory)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    finally:
        if directory != root:
            os.close(directory)
