"""A fake cgroupfs of plain files in tmp_path, for the cgroup backends' unit tests.

It plays the kernel's part where plain files cannot: mkdir fills a new cgroup with
its interface files, rmdir removes them with the directory, and a "+ctrl" written to
cgroup.subtree_control adds to the list instead of replacing it. Every write the
backend makes goes through `cgroupfs.write` (or a kept file's write) and is recorded in `fake.writes` as
(path relative to the fake root, value).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

import pytest

from leeward_daemon.limits import cgroupfs
from leeward_daemon.limits.base import LimitsError

V2_FILES = {
    "cgroup.controllers": "cpu memory pids",
    "cgroup.subtree_control": "",
    "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.kill": "",
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.peak": "0",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    "pids.max": "max",
    "cpu.max": "max 100000",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}

V1_FILES = {
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712",
        "memory.memsw.limit_in_bytes": "9223372036854771712",
        "memory.max_usage_in_bytes": "0",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    },
    "pids": {"pids.max": "max"},
    "cpuacct": {"cpuacct.usage": "0"},
    "cpu": {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"},
    "freezer": {"freezer.state": "THAWED"},
}


class FakeCgroupFs:
    def __init__(self, root: str, version: int):
        self.root = root
        self.version = version
        self.writes: list[tuple[str, str]] = []
        self.fail: dict[str, int] = {}  # relative path -> errno the "kernel" answers
        self.skip_files: set[str] = set()  # interface files this "kernel" lacks

    def rel(self, path: str) -> str:
        return os.path.relpath(os.path.realpath(path), os.path.realpath(self.root))

    def file(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def read(self, *parts: str) -> str:
        with open(self.file(*parts)) as f:
            return f.read()

    def set(self, *parts_and_value: str) -> None:
        """Change a file in place, as the kernel would (same inode: open fds see it)."""
        *parts, value = parts_and_value
        with open(self.file(*parts), "w") as f:
            f.write(value)

    def populate(self, directory: str) -> None:
        if self.version == 2:
            files = dict(V2_FILES)
        else:
            hierarchy = self.rel(directory).split(os.sep)[0]
            files = {"cgroup.procs": ""}
            for controller in hierarchy.split(","):
                files.update(V1_FILES.get(controller, {}))
        for name, content in files.items():
            if name not in self.skip_files:
                with open(os.path.join(directory, name), "w") as f:
                    f.write(content)

    def mkdir(self, path: str, *, exist_ok: bool = False) -> None:
        if exist_ok and os.path.isdir(path):
            return
        self._real_mkdir(path, exist_ok=exist_ok)
        self.populate(path)

    def rmdir(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path)

    def write(self, path: str, value: str) -> None:
        rel = self.rel(path)
        self.writes.append((rel, value))
        if rel in self.fail:
            err = self.fail[rel]
            raise LimitsError(f"write {value!r} to {path}: {os.strerror(err)}", errno=err)
        if os.path.basename(path) == "cgroup.subtree_control" and value[:1] in "+-":
            enabled = set(self.read(path).split())
            (enabled.add if value[0] == "+" else enabled.discard)(value[1:])
            value = " ".join(sorted(enabled))
        self._real_write(path, value)

    def writes_under(self, prefix: str) -> list[tuple[str, str]]:
        return [(os.path.relpath(p, prefix), v) for p, v in self.writes if p.startswith(prefix + os.sep)]


@pytest.fixture
def make_fake(tmp_path, monkeypatch):
    """make_fake(name, version, hierarchies=()): a fake cgroup root at tmp_path/name, its
    files made (cgroup2) or one directory made per cgroup1 hierarchy; cgroupfs writes,
    mkdir and rmdir are routed through the fake."""
    def install(name: str, version: int, hierarchies: Iterable[str] = ()) -> FakeCgroupFs:
        root = tmp_path / name
        root.mkdir()
        fake = FakeCgroupFs(str(root), version)
        fake._real_mkdir = cgroupfs.mkdir
        fake._real_write = cgroupfs.write
        monkeypatch.setattr(cgroupfs, "mkdir", fake.mkdir)
        monkeypatch.setattr(cgroupfs, "rmdir", fake.rmdir)
        monkeypatch.setattr(cgroupfs, "write", fake.write)
        # A kept file's write (a reset) is recorded alike; a plain file then holds just the
        # value, as a cgroup file would answer.
        monkeypatch.setattr(cgroupfs.KeptFile, "write", lambda kept, value: fake.write(kept.path, value))
        for directory in [root / h for h in hierarchies] if version == 1 else [root]:
            directory.mkdir(exist_ok=True)
            fake.populate(str(directory))
        return fake
    return install


@pytest.fixture
def fake_v2(make_fake) -> FakeCgroupFs:
    """A delegated cgroup2 subtree at `fake.root` offering cpu, memory and pids."""
    return make_fake("delegated", 2)


@pytest.fixture
def fake_v1(make_fake) -> FakeCgroupFs:
    """The /sys/fs/cgroup layout of the dev VM: one hierarchy per controller."""
    return make_fake("cgroup", 1, V1_FILES)
