"""The sandbox uid allocator: blocks leased by flock, skipped while any process of
theirs lives, reused least recently leased first; one uid per live slot."""
import os

import pytest

from leeward_daemon.sandbox import zygote
from leeward_daemon.isolation import uid_leases
from leeward_daemon.isolation.uid_leases import Block, SandboxUids, UidLeaseError

# Far above any uid a process of this host runs as (the root daemon's range starts at 2e9).
FIRST = 3_000_000_000


def test_the_range_is_cut_into_blocks_with_a_short_last_one():
    assert uid_leases.blocks(FIRST, 2500, 1024) == [Block(FIRST, 1024), Block(FIRST + 1024, 1024),
                                                    Block(FIRST + 2048, 452)]


def test_two_allocators_get_disjoint_blocks_and_a_released_block_is_reusable(tmp_path):
    lock_dir = str(tmp_path / "uids")
    first = uid_leases.lease(FIRST, 2048, lock_dir, size=1024)
    second = uid_leases.lease(FIRST, 2048, lock_dir, size=1024)  # its own open file: flock conflicts
    assert {first.block, second.block} == {Block(FIRST, 1024), Block(FIRST + 1024, 1024)}
    with pytest.raises(UidLeaseError, match="2 held by running daemons"):
        uid_leases.lease(FIRST, 2048, lock_dir, size=1024)
    second.release()
    assert uid_leases.lease(FIRST, 2048, lock_dir, size=1024).block == second.block


def test_the_lock_outlives_nothing_but_its_holder(tmp_path):
    """A lease held by a process that died (however) is free again: the kernel drops flocks."""
    lock_dir = str(tmp_path / "uids")
    pid = os.fork()
    if pid == 0:
        uid_leases.lease(FIRST, 1024, lock_dir, size=1024)
        os._exit(0)  # no release(): only its death drops the lock
    os.waitpid(pid, 0)
    assert uid_leases.lease(FIRST, 1024, lock_dir, size=1024).block == Block(FIRST, 1024)


def test_blocks_are_reused_least_recently_leased_first(tmp_path):
    lock_dir = str(tmp_path / "uids")
    order = []
    for _ in range(4):
        held = uid_leases.lease(FIRST, 3 * 1024, lock_dir, size=1024)
        order.append(held.block.first)
        held.release()
    assert order == [FIRST, FIRST + 1024, FIRST + 2048, FIRST]  # never leased ones first, then the oldest


def test_a_block_with_a_live_process_is_never_leased(tmp_path):
    """This test's own uid runs processes: its block is skipped for the next free one;
    with no other block the error names the processes."""
    me = os.getuid()
    busy = uid_leases.live_uids(me, 1 << 16)
    free = next(uid for uid in range(me, me + (1 << 16)) if uid not in busy)
    lock_dir = str(tmp_path / "uids")
    assert uid_leases.lease(me, free - me + 1, lock_dir, size=1).block == Block(free, 1)
    with pytest.raises(UidLeaseError, match=f"still has processes .*{os.getpid()}"):
        uid_leases.lease(me, 1, lock_dir, size=1)


def test_live_uids_sees_this_process():
    assert os.getpid() in uid_leases.live_uids(os.getuid(), 1)[os.getuid()]


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_lock_directory_others_can_write_is_refused(tmp_path, mode):
    lock_dir = tmp_path / "uids"
    lock_dir.mkdir()
    lock_dir.chmod(mode)
    with pytest.raises(UidLeaseError, match="unsafe"):
        uid_leases.lease(FIRST, 1024, str(lock_dir))


def test_a_lock_directory_that_is_a_symlink_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "uids").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UidLeaseError, match="unsafe"):
        uid_leases.lease(FIRST, 1024, str(tmp_path / "uids"))


def test_a_planted_lock_file_symlink_is_not_followed(tmp_path):
    lock_dir = tmp_path / "uids"
    lock_dir.mkdir(mode=0o700)
    target = tmp_path / "victim"
    target.write_text("keep")
    (lock_dir / Block(FIRST, 1024).name).symlink_to(target)
    with pytest.raises(OSError):
        uid_leases.lease(FIRST, 1024, str(lock_dir), size=1024)
    assert target.read_text() == "keep"


def test_default_lock_directories():
    assert uid_leases.default_lock_dir(0) == "/run/leeward/uids"
    assert uid_leases.default_lock_dir(4_000_000) == "/tmp/leeward-4000000/uids"  # no /run/user/4000000


def test_sandbox_uids_one_per_slot_released_ones_last():
    uids = SandboxUids(1, 3)
    assert [uids.take(), uids.take()] == [1, 2]
    uids.give_back(1)
    assert [uids.take(), uids.take()] == [3, 1]
    with pytest.raises(UidLeaseError):
        uids.take()


def test_the_zygote_returns_a_uid_only_once_the_slot_that_held_it_was_reaped(tmp_path):
    lease = uid_leases.lease(FIRST, 2, str(tmp_path / "uids"), size=2)
    book = zygote.SandboxUidBook(lease, first=1, host_offset=FIRST - 1)
    assert book.host_uid(1) == FIRST
    made_a_slot, made_none = book.take(), book.take()
    slot_pid = 4_000_001  # the intermediate records it, as a real one does after forking the slot
    intermediates = []
    for records_a_slot in (True, False):
        pid = os.fork()
        if pid == 0:
            if records_a_slot:
                book.slot_started(slot_pid)
            os._exit(0)
        os.waitpid(pid, 0)
        intermediates.append(pid)
    book.spawned(intermediates[0], made_a_slot)
    book.spawned(intermediates[1], made_none)
    for pid in intermediates:
        book.exited(pid)
    assert book.take() == made_none  # the intermediate that failed gave its uid back
    with pytest.raises(UidLeaseError):
        book.take()  # the other uid stays with the live slot
    book.exited(slot_pid)
    assert book.take() == made_a_slot
