"""Backend selection and the /proc parsing behind it."""
from __future__ import annotations

import logging
import os

import pytest

from leeward_daemon.limits import LimitsError, LimitsUnavailable, select_backend
from leeward_daemon.limits import detect
from leeward_daemon.limits.detect import cgroup1_hierarchies, own_cgroup2_dir, parse_mountinfo

# The dev VM's cgroup mounts, plus one mount point with an escaped space.
MOUNTINFO = """\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu
27 25 0:25 / /sys/fs/cgroup/cpuacct rw,relatime shared:11 - cgroup cgroup rw,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:28 / /sys/fs/cgroup/systemd rw,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/unified rw,relatime shared:15 - cgroup2 cgroup2 rw
40 1 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw
"""


def test_parse_mountinfo():
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts[2].mount_point == "/sys/fs/cgroup/cpu"
    assert mounts[2].fstype == "cgroup"
    assert mounts[2].super_options == ("rw", "cpu")
    assert mounts[5].fstype == "cgroup"  # no optional fields before "-"
    assert mounts[-1].mount_point == "/mnt/with space"


def test_cgroup1_hierarchies_from_mountinfo():
    assert cgroup1_hierarchies(None, MOUNTINFO) == {
        "cpu": "/sys/fs/cgroup/cpu",
        "cpuacct": "/sys/fs/cgroup/cpuacct",
        "memory": "/sys/fs/cgroup/memory",
        "pids": "/sys/fs/cgroup/pids",
        "xattr": "/sys/fs/cgroup/systemd",
        "name=systemd": "/sys/fs/cgroup/systemd",
    }


def test_cgroup1_hierarchies_from_a_layout_directory(tmp_path):
    for name in ("memory", "pids", "cpu,cpuacct", "unified"):
        (tmp_path / name).mkdir()
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "not-a-dir").write_text("")
    found = cgroup1_hierarchies(str(tmp_path))
    assert found["memory"] == str(tmp_path / "memory")
    assert found["cpu"] == str(tmp_path / "cpu")
    assert found["cpuacct"] == str(tmp_path / "cpu,cpuacct")
    assert "not-a-dir" not in found


def test_own_cgroup2_dir():
    assert own_cgroup2_dir(MOUNTINFO, "4:memory:/x\n0::/user.slice/leeward.service\n") == \
        "/sys/fs/cgroup/unified/user.slice/leeward.service"
    assert own_cgroup2_dir(MOUNTINFO, "0::/\n") == "/sys/fs/cgroup/unified"


def test_own_cgroup2_dir_in_a_container_whose_mount_is_a_subtree():
    mountinfo = "31 25 0:29 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert own_cgroup2_dir(mountinfo, "0::/kubepods/pod1/ctr\n") == "/sys/fs/cgroup/ctr"
    with pytest.raises(LimitsUnavailable, match="below no cgroup2 mount"):
        own_cgroup2_dir(mountinfo, "0::/kubepods/pod2\n")


def test_own_cgroup2_dir_without_cgroup2():
    with pytest.raises(LimitsUnavailable, match="no cgroup2 filesystem"):
        own_cgroup2_dir(MOUNTINFO.replace("cgroup2 cgroup2", "tmpfs tmpfs"), "0::/\n")


def test_auto_picks_cgroup2_when_delegated(fake_v2):
    assert select_backend(fake_v2.root).name == "cgroup2"


def test_auto_falls_back_to_cgroup1_and_says_why(fake_v1, caplog):
    with caplog.at_level(logging.WARNING):
        backend = select_backend(fake_v1.root, group="lw")
    assert backend.name == "cgroup1"
    assert "not using cgroup2" in caplog.text and "cgroup.controllers" in caplog.text


def test_auto_falls_back_to_rlimit(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert select_backend(str(tmp_path)).name == "rlimit"
    assert "not using cgroup1: cgroup1: no memory, pids, cpuacct hierarchy mounted" in caplog.text


@pytest.mark.parametrize("prefer", ["cgroup2", "cgroup1"])
def test_prefer_fails_closed(tmp_path, prefer):
    with pytest.raises(LimitsUnavailable) as info:
        select_backend(str(tmp_path), prefer=prefer)
    assert info.value.reason.startswith(prefer + ":")


def test_prefer_forces_the_backend(fake_v1):
    assert select_backend(fake_v1.root, prefer="cgroup1").name == "cgroup1"
    assert select_backend(fake_v1.root, prefer="rlimit").name == "rlimit"
    with pytest.raises(LimitsUnavailable):
        select_backend(fake_v1.root, prefer="cgroup2")


def test_unknown_backend_name():
    with pytest.raises(LimitsError, match="unknown limits backend 'cgroup3'"):
        select_backend(prefer="cgroup3")


def test_a_daemon_already_in_the_leaf_uses_the_delegated_root(fake_v2, monkeypatch):
    # E.g. a daemon started by a test harness or a parent daemon that moved there.
    os.mkdir(os.path.join(fake_v2.root, "daemon"))
    monkeypatch.setattr(detect, "own_cgroup2_dir", lambda: os.path.join(fake_v2.root, "daemon"))
    backend = select_backend(prefer="cgroup2")
    assert (backend.root, backend.path) == (fake_v2.root, os.path.join(fake_v2.root, "leeward"))
