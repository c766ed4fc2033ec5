"""Daemon side of a slot's control socket: frames (and passed fds) read without
blocking the event loop. The slot is hostile once it ran a job, so frames are small
and bounded, and a flood closes the channel."""
from __future__ import annotations

import array
import asyncio
import collections
import os
import socket

from libleeward import protocol

from ..errors import ChannelClosed
from .channel import SLOT_MAX_FRAME

MAX_QUEUED = 16
# Only the seccomp listener ever travels this way (one fd, with "started"); a job that
# sends fds of its own could otherwise pile them up in the daemon until it runs out.
MAX_PENDING_FDS = 4


class AsyncChannel:
    def __init__(self, sock: socket.socket, max_frame: int = SLOT_MAX_FRAME):
        self._sock = sock
        self._max_frame = max_frame
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._pending_fds: list[int] = []
        # Frames read and not yet taken; None after them once the channel closed.
        self._frames: collections.deque[tuple[dict, list[int]] | None] = collections.deque()
        self._receiver: asyncio.Future | None = None
        self._closed = False
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._on_readable)

    async def send(self, message: dict, fds: list[int] | None = None) -> None:
        """Sends one frame; `fds` (a session cell's pipes) travel with its first byte."""
        if self._closed:
            raise ChannelClosed("channel is closed")
        frame = protocol.encode_frame(message)
        try:
            if fds:
                frame = frame[await self._send_with_fds(frame, fds):]
            if frame:
                await self._loop.sock_sendall(self._sock, frame)
        except OSError as exc:
            raise ChannelClosed(f"send failed: {exc}") from None

    async def _send_with_fds(self, frame: bytes, fds: list[int]) -> int:
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        while True:
            try:
                return self._sock.sendmsg([frame], rights)
            except BlockingIOError:
                writable = self._loop.create_future()
                self._loop.add_writer(self._sock.fileno(), lambda: writable.done() or writable.set_result(None))
                try:
                    await writable
                finally:
                    self._loop.remove_writer(self._sock.fileno())

    def allow_frames_up_to(self, max_frame: int) -> None:
        """A session's slot answers file reads: its frames may be larger than a result's."""
        self._max_frame = max(self._max_frame, max_frame)

    async def recv(self) -> tuple[dict, list[int]]:
        return await self.receive()

    def receive(self) -> asyncio.Future:
        """A future of the next (message, fds), or of ChannelClosed; no task needed to wait
        on it beside other futures (a session cell does). One receiver at a time.
        Cancelling it before it is done loses no frame."""
        receiver = self._loop.create_future()
        if self._frames:
            self._hand_over(receiver)
        else:
            self._receiver = receiver
        return receiver

    def _hand_over(self, receiver: asyncio.Future) -> None:
        item = self._frames[0]
        if item is None:  # stays closed for later receivers
            receiver.set_exception(ChannelClosed("slot closed its channel"))
        else:
            receiver.set_result(self._frames.popleft())

    def _arrived(self, item: tuple[dict, list[int]] | None) -> None:
        self._frames.append(item)
        receiver, self._receiver = self._receiver, None
        if receiver is not None and not receiver.done():
            self._hand_over(receiver)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            for fd in self._pending_fds:
                os.close(fd)
            self._pending_fds.clear()
            self._arrived(None)

    def _on_readable(self) -> None:
        try:
            data, ancdata, _, _ = self._sock.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        except BlockingIOError:
            return
        except OSError:
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self._pending_fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        if not data or len(self._pending_fds) > MAX_PENDING_FDS:
            self.close()
            return
        self._buffer += data
        try:
            self._drain_frames()
        except (protocol.ProtocolError, ChannelClosed):
            self.close()

    def _drain_frames(self) -> None:
        header = protocol.HEADER.size
        while len(self._buffer) >= header:
            length = protocol.parse_header(bytes(self._buffer[:header]), self._max_frame)
            if len(self._buffer) < header + length:
                return
            message = protocol.decode_body(bytes(self._buffer[header:header + length]))
            del self._buffer[:header + length]
            if len(self._frames) >= MAX_QUEUED:
                raise ChannelClosed("slot flooded its channel")
            fds, self._pending_fds = self._pending_fds, []
            self._arrived((message, fds))
