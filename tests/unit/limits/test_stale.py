"""Stale boxes: a dead daemon's boxes are removed at start, a live one's never (fake
cgroupfs; the real kernel, with a SIGKILLed daemon, is tests/integration/test_operations_shutdown.py)."""
from __future__ import annotations

import os

import pytest

from leeward_daemon.limits.cgroup1 import Cgroup1Backend
from leeward_daemon.limits.cgroup2 import Cgroup2Backend
from leeward_daemon.limits.detect import cgroup1_hierarchies
from leeward_daemon.limits.rlimit import RlimitBackend
from leeward_daemon.limits.stale import owner, remove_stale_boxes, slot_box_id

DEAD, LIVE = 999_001, 999_002


@pytest.mark.parametrize("name, pid", [
    ("slot-12-34", 12), ("probe-56", 56), ("slot-34", None), ("leeward", None), ("slot-1-2-3", None),
    ("slot-a-1", None), ("probe-", None),
])
def test_owner_comes_from_the_name(name, pid):
    assert owner(name) == pid


def test_slot_box_id_names_its_daemon():
    assert owner(slot_box_id(41, 42)) == 41


def _leave_boxes(backend) -> None:
    for name in (slot_box_id(DEAD, 1), slot_box_id(DEAD, 2), f"probe-{DEAD}", slot_box_id(LIVE, 3),
                 "slot-77", "someone-elses"):
        backend.create_box(name)


def _alive(pid: int) -> bool:
    return pid == LIVE


def test_v1_removes_only_the_dead_daemons_boxes_in_every_hierarchy(fake_v1):
    backend = Cgroup1Backend(cgroup1_hierarchies(fake_v1.root))
    _leave_boxes(backend)
    removed = remove_stale_boxes(backend, alive=_alive)
    assert removed == sorted([slot_box_id(DEAD, 1), slot_box_id(DEAD, 2), f"probe-{DEAD}"])
    kept = sorted([slot_box_id(LIVE, 3), "slot-77", "someone-elses"])
    for group in backend.group_dirs:
        assert sorted(n for n in os.listdir(group) if os.path.isdir(os.path.join(group, n))) == kept


def test_v1_a_box_left_in_one_hierarchy_only_is_removed(fake_v1):
    backend = Cgroup1Backend(cgroup1_hierarchies(fake_v1.root))
    os.mkdir(os.path.join(backend.group_dirs[1], slot_box_id(DEAD, 9)))  # a crash mid create_box
    assert remove_stale_boxes(backend, alive=_alive) == [slot_box_id(DEAD, 9)]
    assert backend.box_ids() == []


def test_v2_removes_only_the_dead_daemons_boxes(fake_v2):
    backend = Cgroup2Backend(fake_v2.root)
    _leave_boxes(backend)
    assert remove_stale_boxes(backend, alive=_alive) == sorted(
        [slot_box_id(DEAD, 1), slot_box_id(DEAD, 2), f"probe-{DEAD}"])
    assert backend.box_ids() == sorted([slot_box_id(LIVE, 3), "slot-77", "someone-elses"])
    assert ("leeward/" + slot_box_id(DEAD, 1) + "/cgroup.kill", "1") in fake_v2.writes  # killed, then removed


def test_own_boxes_are_never_stale(fake_v2):
    backend = Cgroup2Backend(fake_v2.root)
    backend.create_box(slot_box_id(os.getpid(), 1))
    assert remove_stale_boxes(backend, alive=lambda pid: False) == []


def test_rlimit_leaves_nothing_behind():
    assert remove_stale_boxes(RlimitBackend(), alive=lambda pid: False) == []
