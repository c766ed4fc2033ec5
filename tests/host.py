"""Looking at the host from a test (not from a sandbox): its processes and its page cache."""
from __future__ import annotations

import ctypes
import mmap
import os


def host_pids(*, marker: str | None = None, uid: int | None = None) -> list[int]:
    """Host pids whose command line (arguments joined by spaces) contains `marker`, or
    whose real uid is `uid`; never the calling test process."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ")
            with open(f"/proc/{name}/status") as fh:
                real_uid = int(next(line for line in fh if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration):
            continue  # exited while we looked
        if (marker is not None and marker.encode() in cmdline) or (uid is not None and real_uid == uid):
            found.append(int(name))
    return found


def resident_pages(path: str) -> int:
    """How many pages of `path` are in the host's page cache (mincore of a shared mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
    size = os.path.getsize(path)
    vec = (ctypes.c_ubyte * ((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE))()
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            assert libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    finally:
        os.close(fd)
    return sum(page & 1 for page in vec)


def cached_file(path: str, pages: int) -> int:
    """Writes `pages` pages to `path`, flushed (DONTNEED drops only clean pages), and
    reads them back into the page cache; returns how many are resident."""
    with open(path, "wb") as fh:
        fh.write(os.urandom(pages * mmap.PAGESIZE))
        fh.flush()
        os.fsync(fh.fileno())
    with open(path, "rb") as fh:
        fh.read()
    return resident_pages(path)
