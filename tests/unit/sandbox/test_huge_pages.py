"""The zygote's anonymous memory collapsed into huge pages before it forks slots."""
from __future__ import annotations

import ctypes
import mmap

import pytest

from leeward_daemon.sandbox import huge_pages

MAPS = """\
00400000-00600000 r-xp 00000000 08:01 1 /usr/bin/python3.11
00800000-00a00000 rw-p 00000000 08:01 1 /usr/bin/python3.11
01000000-01700000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000300000 rw-p 00000000 00:00 0
7f0000400000-7f0000500000 r--p 00000000 00:00 0
7f0000600000-7f0000800000 rw-s 00000000 00:01 5 /dev/shm/x
7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0 [stack]
"""


def test_only_private_writable_anonymous_mappings_are_taken(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    assert huge_pages._anonymous_ranges(str(maps)) == [
        (0x01000000, 0x01700000), (0x7f0000000000, 0x7f0000300000)]


def _thp_mode() -> str:
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
        return fh.read().split("[")[1].split("]")[0]


def _huge_kib_at(address: int) -> int:
    with open("/proc/self/smaps") as fh:
        inside = False
        for line in fh:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                low, high = (int(part, 16) for part in fields[0].split("-"))
                inside = low <= address < high
            elif inside and fields[0] == "AnonHugePages:":
                return int(fields[1])
    return 0


@pytest.mark.skipif(_thp_mode() == "never", reason="transparent huge pages are off on this machine")
def test_a_touched_anonymous_region_becomes_huge_pages():
    region = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        region.write(b"x" * len(region))  # resident, as the zygote's heap is
        address = _address_of(region)
        if _thp_mode() == "madvise":  # with "always" the faults may have made huge pages already
            assert _huge_kib_at(address) == 0
        assert huge_pages.collapse_anonymous_memory() >= huge_pages.HUGE_PAGE
        assert _huge_kib_at(address) >= 2048
    finally:
        region.close()


def _address_of(region: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(region))
