"""A session's file requests, carried out by the sandbox process itself, so under its
own Landlock, seccomp and uid (never by the daemon with host privileges).

Every path is walked one component at a time from a directory fd, each opened with
O_NOFOLLOW: a symlink a cell planted is refused wherever it sits, never followed. The
daemon has already checked the shape (a root of /tmp or a rw mount, no `..`).
"""
from __future__ import annotations

import errno
import os
import stat

from ..ipc.messages import FILE_ENTRIES_MAX, FileEntry, FileOp, FileReply

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_CHUNK = 1 << 20


class Refused(Exception):
    """The request cannot be done; the message says why, naming the path as sent."""


def serve(op: FileOp) -> FileReply:
    handler = _HANDLERS.get(op.kind)
    if handler is None or (not op.parts and op.kind != "list"):
        return FileReply(error=f"cannot {op.kind} {_name(op)}")
    try:
        return handler(op)
    except Refused as exc:
        return FileReply(error=str(exc))


def _write(op: FileOp) -> FileReply:
    parent = _walk(op.root, op.parts[:-1], create=True)
    try:
        fd = _at(parent, op.parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, op)
        with os.fdopen(fd, "wb") as fh:
            fh.write(op.data)
    finally:
        os.close(parent)
    return FileReply(size=len(op.data))


def _read(op: FileOp) -> FileReply:
    parent = _walk(op.root, op.parts[:-1])
    try:
        fd = _at(parent, op.parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, op)
    finally:
        os.close(parent)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{_name(op)} is not a regular file")
        data = fh.read(op.max_bytes)
    return FileReply(data=data, size=info.st_size, truncated=info.st_size > len(data))


def _list(op: FileOp) -> FileReply:
    fd = _walk(op.root, op.parts)
    entries = []
    try:
        with os.scandir(fd) as listing:
            for entry in listing:
                if len(entries) > FILE_ENTRIES_MAX:
                    break
                info = entry.stat(follow_symlinks=False)
                entries.append(FileEntry(entry.name, _kind(info.st_mode), info.st_size))
    finally:
        os.close(fd)
    entries.sort(key=lambda e: e.name)
    return FileReply(entries=entries)


def _remove(op: FileOp) -> FileReply:
    parent = _walk(op.root, op.parts[:-1])
    try:
        try:
            os.unlink(op.parts[-1], dir_fd=parent)  # a symlink is removed itself, never followed
        except IsADirectoryError:
            os.rmdir(op.parts[-1], dir_fd=parent)
    except OSError as exc:
        raise Refused(f"{_name(op)}: {os.strerror(exc.errno or 0)}") from None
    finally:
        os.close(parent)
    return FileReply()


def _walk(root: str, parts: list[str], *, create: bool = False) -> int:
    """An fd of the directory `root`/`parts`, no component followed if a symlink."""
    fd = os.open(root, _DIR_FLAGS)
    for i, part in enumerate(parts):
        try:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            raise Refused(_why(exc, "/".join(parts[:i + 1]))) from None
        os.close(fd)
        fd = child
    return fd


def _at(parent: int, name: str, flags: int, op: FileOp) -> int:
    try:
        return os.open(name, flags, 0o644, dir_fd=parent)
    except OSError as exc:
        raise Refused(_why(exc, _name(op))) from None


def _why(exc: OSError, name: str) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return f"{name} is a symlink or not a directory: refused, links are never followed"
    return f"{name}: {os.strerror(exc.errno or 0)}"


def _name(op: FileOp) -> str:
    return "/".join(op.parts) or op.root


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


_HANDLERS = {"write": _write, "read": _read, "list": _list, "remove": _remove}
