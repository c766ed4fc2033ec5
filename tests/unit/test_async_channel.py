"""The daemon's side of a slot's channel: receive() futures, in order, none lost."""
from __future__ import annotations

import asyncio
import socket

import pytest

from leeward_daemon.errors import ChannelClosed
from leeward_daemon.ipc.async_channel import MAX_QUEUED, AsyncChannel
from libleeward import protocol


def _run(scenario):
    async def main():
        ours, theirs = socket.socketpair()
        channel = AsyncChannel(ours)
        try:
            return await scenario(channel, theirs)
        finally:
            channel.close()
            theirs.close()
    return asyncio.run(main())


def test_frames_come_in_order_whether_sent_before_or_after_the_receive():
    async def scenario(channel: AsyncChannel, slot: socket.socket) -> list:
        slot.sendall(protocol.encode_frame({"op": "a"}) + protocol.encode_frame({"op": "b"}))
        await asyncio.sleep(0.05)
        waiting = channel.receive()
        first = await waiting
        second = await channel.receive()
        third = channel.receive()
        slot.sendall(protocol.encode_frame({"op": "c"}))
        return [first[0], second[0], (await asyncio.wait_for(third, 5))[0]]

    assert _run(scenario) == [{"op": "a"}, {"op": "b"}, {"op": "c"}]


def test_a_receive_given_up_loses_no_frame():
    async def scenario(channel: AsyncChannel, slot: socket.socket) -> dict:
        given_up = channel.receive()
        given_up.cancel()
        slot.sendall(protocol.encode_frame({"op": "kept"}))
        return (await asyncio.wait_for(channel.receive(), 5))[0]

    assert _run(scenario) == {"op": "kept"}


def test_after_eof_every_receive_fails_with_channel_closed():
    async def scenario(channel: AsyncChannel, slot: socket.socket) -> int:
        waiting = channel.receive()
        slot.close()
        failures = 0
        for receive in (lambda: waiting, channel.receive, channel.receive):
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(receive(), 5)
            failures += 1
        return failures

    assert _run(scenario) == 3


def test_a_flood_of_unread_frames_closes_the_channel():
    async def scenario(channel: AsyncChannel, slot: socket.socket) -> list:
        slot.sendall(protocol.encode_frame({"op": "x"}) * (MAX_QUEUED + 1))
        await asyncio.sleep(0.05)
        taken = []
        with pytest.raises(ChannelClosed):
            while True:
                taken.append((await asyncio.wait_for(channel.receive(), 5))[0])
        return taken

    assert _run(scenario) == [{"op": "x"}] * MAX_QUEUED
