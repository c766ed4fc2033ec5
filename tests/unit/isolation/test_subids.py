"""Reading subuid(5)/subgid(5) the way newuidmap does: by user name or number."""
from leeward_daemon.isolation import subids
from leeward_daemon.isolation.subids import IdRange, Subids


def test_the_users_range_by_name_or_number(tmp_path):
    path = tmp_path / "subuid"
    path.write_text("alice:100000:65536\n# comment\nbroken line\n1001:200000:4096\nbob:x:10\nbob:300000:0\n")
    assert subids.granted(str(path), 1000, "alice") == IdRange(100000, 65536)
    assert subids.granted(str(path), 1001, "carol") == IdRange(200000, 4096)
    assert subids.granted(str(path), 1002, "bob") is None  # malformed and empty ranges grant nothing
    assert subids.granted(str(tmp_path / "missing"), 1000, "alice") is None


def test_only_ids_at_the_same_offset_in_both_ranges_are_used():
    found = Subids(IdRange(100000, 65536), IdRange(500000, 4096), "/usr/bin/newuidmap", "/usr/bin/newgidmap")
    assert found.count == 4096


def test_a_user_without_ranges_is_told_what_is_missing():
    missing = subids.missing_parts(4_000_000)
    assert "no range for uid 4000000 in /etc/subuid" in missing
    assert "no range for uid 4000000 in /etc/subgid" in missing
    assert subids.find(4_000_000) is None
    warn, text = subids.startup_notice(4_000_000, 0, 1)
    assert warn and text == subids.MISSING_ADVICE


def test_a_root_daemon_announces_its_range():
    assert subids.startup_notice(0, 2_000_000_000, 65536) == (
        False, "each sandbox runs as its own host uid from 2000000000-2000065535")
