"""What the kernel says about a sandbox's processes, read from outside the sandbox
through the daemon's /proc (the pid namespace the zygote and the daemon share, where
slot pids are numbered). Never the sandbox's own word: this is how the daemon measures
a job under the rlimit backend and learns a slot's exit status early.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

PF_EXITING = 0x4  # include/linux/sched.h: set by do_exit() before anything else
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/<pid>/stat (proc(5)) the daemon uses."""
    state: str
    ppid: int
    flags: int
    cpu_ticks: int  # utime + stime + cutime + cstime: itself and its waited-for children
    threads: int
    vsize: int
    rss: int  # bytes
    exit_code: int  # in waitpid's format; 0 unless the reader may ptrace-read the task


def parse_stat(text: str) -> Stat:
    # comm (field 2) may hold spaces and parentheses: fields 3.. follow its last ')'.
    fields = text[text.rindex(")") + 2:].split()

    def field(number: int) -> int:  # numbered from 1, as in proc(5)
        return int(fields[number - 3])

    return Stat(state=fields[0], ppid=field(4), flags=field(9),
                cpu_ticks=field(14) + field(15) + field(16) + field(17), threads=field(20),
                vsize=field(23), rss=field(24) * PAGE_SIZE, exit_code=field(52))


def read_stat(pid: int) -> Stat | None:
    """None once the process is gone."""
    return _read_stat(f"/proc/{pid}/stat", None)


def open_process(pid: int) -> int | None:
    """An fd of /proc/<pid>, bound to that process: once it is reaped, reads through it
    fail instead of reaching whichever process gets the pid next. None if already gone."""
    try:
        return os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None


def exit_status_if_exiting(process: int) -> int | None:
    """The wait status of the process behind `process` (an open_process fd) as soon as
    the kernel has fixed it, before the slow teardown of its address space and
    namespaces; None when that cannot be told yet. do_exit() sets PF_EXITING, then
    exit_code, then drops the mm (exit_mm clears task->mm before mmput tears the address
    space down): PF_EXITING with no mm means exit_code is final. Only for a sole
    remaining thread not yet a zombie: a group leader that exited before its other
    threads shows its own code, while the process's status is the last thread's.
    exit_code reads as 0 to a reader without ptrace access, and on this kernel (6.18) a
    non-dumpable task stays out of reach of a non-root daemon even without an mm (an
    argv job's pid 1 makes itself non-dumpable: sandbox/runner.py): a 0 counts only
    when the daemon may trace the task, else the pidfd tells."""
    stat = _read_stat("stat", process)
    if stat is None or stat.state in ("Z", "X", "x") or stat.threads != 1:
        return None
    if stat.flags & PF_EXITING and stat.vsize == 0:
        if stat.exit_code == 0 and not _traceable(process):
            return None  # a hidden status, not a 0
        return stat.exit_code
    return None


def _traceable(process: int) -> bool:
    """Whether the daemon passes the ptrace access check on the process: reading its
    `personality` needs that check and nothing else."""
    try:
        fd = os.open("personality", os.O_RDONLY | os.O_CLOEXEC, dir_fd=process)
        try:
            os.read(fd, 64)
        finally:
            os.close(fd)
        return True
    except OSError:  # EPERM/EACCES: not ours to read; ESRCH: gone meanwhile
        return False


def _read_stat(path: str, dir_fd: int | None) -> Stat | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            text = os.read(fd, 4096).decode("ascii", "replace")
        finally:
            os.close(fd)
        return parse_stat(text)
    except (OSError, ValueError, IndexError):  # ESRCH/ENOENT: exited (or reaped) meanwhile
        return None


def children(pid: int) -> list[int]:
    """Children of every thread of `pid` (each thread has its own list; CONFIG_PROC_CHILDREN).
    A child being reparented at that instant may be missing (proc(5))."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):
            continue  # that thread exited meanwhile
    return found


def proportional_set_size(pid: int) -> int:
    """Pss of /proc/<pid>/smaps_rollup in bytes: each resident page divided by the
    number of processes mapping it (pages shared with the zygote and other sandboxes
    count only in part). Walks the page tables: costly, read only when needed. 0 once
    the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
