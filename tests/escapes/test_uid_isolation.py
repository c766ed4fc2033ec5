"""Escape probes: sandbox uids are never shared. Two root daemons on one host, or a
restarted one, never hand out a uid another daemon's sandbox holds, or one a process
of an earlier holder still runs as; a restarted daemon reuses uids last. (The
unprivileged daemon's subordinate uids: tests/integration/test_unprivileged.py.)

Each test gets its own range far from the default one, so daemons of other tests on
this host never lease from it."""
from __future__ import annotations

import os
import random
import subprocess
import threading

import pytest

from leeward_daemon.isolation.uid_leases import BLOCK_SIZE
from tests.conftest import start_daemon

pytestmark = pytest.mark.integration


@pytest.fixture
def uid_range() -> tuple[int, int]:
    if os.geteuid() != 0:
        pytest.skip("sandbox uids of their own are a root daemon's")
    return 2_100_000_000 + random.randrange(20_000) * 2 * BLOCK_SIZE, 2 * BLOCK_SIZE


@pytest.fixture
def shared_dir(tmp_path) -> str:
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o777)  # sandbox uids are "other" to it
    return os.path.realpath(path)


def _start(tmp_path, name: str, shared: str, uid_range: tuple[int, int]):
    directory = tmp_path / name
    directory.mkdir()
    base, count = uid_range
    return start_daemon(str(directory), "--allow-path", shared, "--metrics-port", "0",
                        "--set", f"sandbox_uid_base={base}", "--set", f"sandbox_uid_count={count}")


def _job_uids(daemon, shared: str, jobs: int) -> list[int]:
    """Host uids of `jobs` jobs run one after the other: the owner of a file each made."""
    uids = []
    for _ in range(jobs):
        name = f"owner-{os.urandom(4).hex()}"
        result = daemon.execute(f"import time; open('/shared/{name}', 'w').close(); time.sleep(0.3)",
                                mounts=[{"host": shared, "sandbox": "/shared", "ro": False}])
        assert result.exit_code == 0, result.stderr
        uids.append(os.stat(os.path.join(shared, name)).st_uid)
    return uids


def test_two_daemons_at_once_never_share_a_sandbox_uid(tmp_path, shared_dir, uid_range):
    """More jobs per daemon than it keeps slots: with one uid counter per daemon (the
    old scheme) the two would have met on the first few uids of the range."""
    first, second = (_start(tmp_path, name, shared_dir, uid_range) for name in ("first", "second"))
    try:
        found: dict[str, list[int]] = {}
        threads = [threading.Thread(target=lambda d=d, n=n: found.setdefault(n, _job_uids(d, shared_dir, 3)))
                   for n, d in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        first.stop()
        second.stop()
    assert len(found["first"]) == len(found["second"]) == 3
    assert not set(found["first"]) & set(found["second"])
    base, count = uid_range
    assert all(base <= uid < base + count for uid in found["first"] + found["second"])


def test_a_restarted_daemon_reuses_uids_last(tmp_path, shared_dir, uid_range):
    """The earlier daemon's jobs left files owned by its uids: the next daemon starts
    from the block leased least recently, not the same one."""
    before = _start(tmp_path, "before", shared_dir, uid_range)
    try:
        earlier = _job_uids(before, shared_dir, 1)
    finally:
        before.stop()
    after = _start(tmp_path, "after", shared_dir, uid_range)
    try:
        later = _job_uids(after, shared_dir, 1)
    finally:
        after.stop()
    block = lambda uid: (uid - uid_range[0]) // BLOCK_SIZE  # noqa: E731
    assert block(earlier[0]) != block(later[0])


def test_uids_a_leftover_process_runs_as_are_never_handed_out(tmp_path, shared_dir, uid_range):
    """A process an earlier daemon's sandbox left behind (its zygote was SIGKILLed) still
    runs as a uid of the first block: a new daemon takes the other block; with none left
    it refuses to start, naming the process."""
    base, _ = uid_range
    leftovers = [subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sleep", "600"])
                 for uid in (base + 5, base + BLOCK_SIZE + 5)]
    try:
        with pytest.raises(RuntimeError, match="no free sandbox uid block") as refused:
            _start(tmp_path, "refused", shared_dir, uid_range).stop()
        assert str(leftovers[0].pid) in str(refused.value) and str(leftovers[1].pid) in str(refused.value)
        leftovers[1].kill()
        leftovers[1].wait()
        daemon = _start(tmp_path, "started", shared_dir, uid_range)
        try:
            uids = _job_uids(daemon, shared_dir, 2)
        finally:
            daemon.stop()
    finally:
        for process in leftovers:
            process.kill()
            process.wait()
    assert all(base + BLOCK_SIZE <= uid < base + 2 * BLOCK_SIZE for uid in uids)
