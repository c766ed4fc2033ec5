"""channel.recv_packet on a SOCK_SEQPACKET pair: whole records, a record over the
limit refused as truncated, and the kept receive buffer never leaking one record's
bytes into the next."""
from __future__ import annotations

import socket

import pytest

from leeward_daemon.errors import DamagedRecord
from leeward_daemon.ipc import channel


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_records_arrive_whole_and_each_on_its_own(pair):
    ours, theirs = pair
    channel.send(theirs, {"type": "Big", "blob": b"x" * 50_000})
    channel.send(theirs, {"type": "Small"})
    assert channel.recv_packet(ours) == ({"type": "Big", "blob": b"x" * 50_000}, [])
    assert channel.recv_packet(ours) == ({"type": "Small"}, [])


def test_a_record_over_the_limit_is_refused_and_the_next_still_reads(pair):
    ours, theirs = pair
    channel.send(theirs, {"type": "Big", "blob": b"x" * 5_000})
    channel.send(theirs, {"type": "Small"})
    with pytest.raises(DamagedRecord, match="truncated"):
        channel.recv_packet(ours, max_size=1_000)
    assert channel.recv_packet(ours, max_size=1_000) == ({"type": "Small"}, [])
