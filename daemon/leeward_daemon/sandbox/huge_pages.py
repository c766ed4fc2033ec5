"""The zygote's heap in transparent huge pages, once its preload is imported.

Every slot is a fork of the zygote, and fork copies one page-table entry per resident
4 KiB page of the parent's anonymous memory (copy_page_range: the zygote's largest
cost), which the slot's exit then tears down again (unmap_page_range: the largest in
the sandbox's). Measured with perf at saturation, those two were 14% of the machine's
CPU. A 2 MiB huge page is one entry to copy and to tear down instead of 512. A slot
writing to a shared huge page gets a 4 KiB copy as before (the kernel splits the
mapping for it), so only the entries a job touches cost what they did.

MADV_COLLAPSE (Linux 6.1) collapses in place and synchronously, whatever the THP
sysfs mode short of "never"; khugepaged would take minutes and only with "always".
Ranges the kernel will not collapse (not anonymous, too small, under memory pressure)
are left as they are: this is an optimisation, never a requirement."""
from __future__ import annotations

from .. import linux
from ..linux import SyscallError

HUGE_PAGE = 2 << 20


def collapse_anonymous_memory(maps_path: str = "/proc/self/maps") -> int:
    """Collapses every 2 MiB-aligned stretch of this process's private writable
    anonymous mappings (the heap, Python's arenas, extension modules' buffers); returns
    the bytes collapsed."""
    collapsed = 0
    for start, end in _anonymous_ranges(maps_path):
        first, last = -(-start // HUGE_PAGE) * HUGE_PAGE, end // HUGE_PAGE * HUGE_PAGE
        if last <= first:
            continue
        try:
            linux.madvise(first, last - first, linux.MADV_COLLAPSE)
        except SyscallError:
            continue  # EINVAL (THP "never", an ineligible mapping), EAGAIN/ENOMEM: left as is
        collapsed += last - first
    return collapsed


def _anonymous_ranges(maps_path: str) -> list[tuple[int, int]]:
    ranges = []
    with open(maps_path) as maps:
        for line in maps:
            fields = line.split()
            perms, name = fields[1], fields[5] if len(fields) > 5 else ""
            if perms.startswith("rw") and perms.endswith("p") and name in ("", "[heap]"):
                low, high = (int(part, 16) for part in fields[0].split("-"))
                ranges.append((low, high))
    return ranges
