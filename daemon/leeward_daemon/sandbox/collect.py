"""Files a job leaves behind, by glob, returned with its result: regular files only,
exact bytes, and never through a symlink. A plain library (no daemon imports).

Runs inside the sandbox after the job, in a tree the job controlled, so every step is
an openat() from a directory fd with O_NOFOLLOW: a symlink planted at any component,
or swapped in while we walk, is never followed, and what we read is what we checked
(fstat of the open fd, not a stat of a path).

Patterns are Python's glob with recursive=True: `*`, `?`, `[...]` within one name,
`**` for any depth of directories, and wildcards skip names starting with "." unless
the pattern's own name does.
"""
from __future__ import annotations

import fnmatch
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the job left must not hang us; it is then refused by fstat.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_MAGIC = frozenset("*?[")


class BadPattern(ValueError):
    """A pattern that is empty, absolute or goes through `..`: it would leave the workdir."""


def collect(patterns: list[str], workdir: str, *, max_bytes: int, max_files: int) -> tuple[dict[str, bytes], bool]:
    """Regular files under `workdir` matching any pattern, as {relative path: bytes},
    in pattern order then name order; and whether a file was left out because taking
    it would pass `max_files` files or `max_bytes` bytes (it and all after it are).
    Raises BadPattern (before reading anything), or OSError if `workdir` cannot be opened."""
    for pattern in patterns:
        _check(pattern)
    found = _Found(max_bytes, max_files)
    root = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for pattern in patterns:
            parts = [part for part in pattern.split("/") if part not in ("", ".")]
            if parts and not found.truncated:
                _match(root, "", parts, found)
    finally:
        os.close(root)
    return found.files, found.truncated


def _check(pattern: str) -> None:
    if not pattern or "\x00" in pattern or pattern.startswith("/") or ".." in pattern.split("/"):
        raise BadPattern(f"collect pattern must stay inside the workdir: {pattern[:200]!r}")


class _Found:
    def __init__(self, max_bytes: int, max_files: int) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated = False
        self._bytes_left, self._files_left = max_bytes, max_files

    def take(self, dir_fd: int, name: str, path: str) -> None:
        if path in self.files or self.truncated:
            return
        # One byte past the room tells "too big" without reading all of a huge file.
        data = _read_regular(dir_fd, name, self._bytes_left + 1 if self._files_left else 0)
        if data is None:
            return
        if len(data) > self._bytes_left or self._files_left == 0:
            self.truncated = True
            return
        self.files[path] = data
        self._bytes_left -= len(data)
        self._files_left -= 1


def _match(dir_fd: int, prefix: str, parts: list[str], found: _Found) -> None:
    head, rest = parts[0], parts[1:]
    if head == "**":
        if rest:
            _match(dir_fd, prefix, rest, found)  # zero directories
        for name in _names(dir_fd):
            if found.truncated:
                return
            if name.startswith("."):
                continue
            _descend(dir_fd, name, prefix, parts, found)
            if not rest:  # a trailing ** matches every file below, at any depth
                found.take(dir_fd, name, prefix + name)
        return
    if not _MAGIC.intersection(head):
        names = [head]
    else:
        names = [name for name in _names(dir_fd) if _name_matches(name, head)]
    for name in names:
        if found.truncated:
            return
        if rest:
            _descend(dir_fd, name, prefix, rest, found)
        else:
            found.take(dir_fd, name, prefix + name)


def _name_matches(name: str, pattern: str) -> bool:
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _descend(dir_fd: int, name: str, prefix: str, parts: list[str], found: _Found) -> None:
    try:
        child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return  # gone, not a directory, a symlink (ELOOP/ENOTDIR), or not ours to read
    try:
        _match(child, f"{prefix}{name}/", parts, found)
    finally:
        os.close(child)


def _names(dir_fd: int) -> list[str]:
    """The directory's names, sorted (a stable order, so truncation is too); names that
    are not UTF-8 are left out, as the reply's paths are text."""
    try:
        names = os.listdir(dir_fd)
    except OSError:
        return []
    return sorted(name for name in names if _is_text(name))


def _is_text(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:  # undecodable bytes came back as surrogates
        return False
    return True


def _read_regular(dir_fd: int, name: str, limit: int) -> bytes | None:
    """At most `limit` bytes of `name` if it is a regular file, else None."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # gone, a symlink (ELOOP), or not ours to read: not collected
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, min(limit - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
