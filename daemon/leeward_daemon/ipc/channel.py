"""Length-prefixed msgpack frames over a blocking Unix socket, with optional fds.

Used between the daemon and the zygote/slots (trusted code on both ends, but a slot
that ran a job is hostile: the daemon side bounds every frame it reads).
"""
from __future__ import annotations

import array
import os
import socket
import threading

from libleeward import protocol

from ..errors import ChannelClosed, DamagedRecord

SLOT_MAX_FRAME = 1 << 20
# The zygote finds its end of the daemon's channel by this variable's fd number.
ZYGOTE_FD_ENV = "LEEWARD_ZYGOTE_FD"


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    frame = protocol.encode_frame(message)
    if fds:
        sent = sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


def recv(sock: socket.socket, max_frame: int = protocol.DEFAULT_MAX_FRAME) -> tuple[dict, list[int]]:
    header, fds = _recv_exact(sock, protocol.HEADER.size, want_fds=True)
    try:
        length = protocol.parse_header(header, max_frame)
        body, _ = _recv_exact(sock, length, want_fds=False)
        return protocol.decode_body(body), fds
    except protocol.ProtocolError as exc:
        raise ChannelClosed(str(exc)) from None


def _recv_exact(sock: socket.socket, n: int, want_fds: bool) -> tuple[bytes, list[int]]:
    chunks, fds, remaining = [], [], n
    while remaining:
        if want_fds and not chunks:
            data, ancdata, _, _ = sock.recvmsg(remaining, socket.CMSG_SPACE(16 * 4))
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        else:
            data = sock.recv(min(remaining, 1 << 20))
        if not data:
            raise ChannelClosed("peer closed the channel")
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks), fds


def recv_packet(sock: socket.socket, max_size: int = SLOT_MAX_FRAME) -> tuple[dict, list[int]]:
    """One whole record from a SOCK_SEQPACKET socket (the zygote's channel): a short
    read there would silently drop the rest of the record. Raises DamagedRecord for a
    record that cannot be taken whole, ChannelClosed at EOF."""
    buffer = _packet_buffer(max_size)
    received, ancdata, flags, _ = sock.recvmsg_into([buffer], socket.CMSG_SPACE(16 * 4))
    data = bytes(buffer[:received])
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
    if not data and not fds:
        raise ChannelClosed("peer closed the channel")
    try:
        message = _decode_record(data, flags, max_size)
    except DamagedRecord:
        _close_all(fds)
        raise
    if flags & socket.MSG_CTRUNC:
        _close_all(fds)
        raise DamagedRecord(f"record lost its fds (only {len(fds)} arrived): the daemon is out of file "
                            "descriptors", message)
    return message, fds


# One receive buffer per thread, kept: recvmsg(max_size) would allocate (and the
# allocator map and unmap) a megabyte for every record, in the daemon and the zygote.
_buffers = threading.local()


def _packet_buffer(max_size: int) -> memoryview:
    """A view of exactly `max_size` bytes: a longer record sets MSG_TRUNC."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < max_size:
        buffer = _buffers.buffer = bytearray(max_size)
    return memoryview(buffer)[:max_size]


def _decode_record(data: bytes, flags: int, max_size: int) -> dict:
    if flags & socket.MSG_TRUNC or len(data) < protocol.HEADER.size:
        raise DamagedRecord("truncated record")
    try:
        protocol.parse_header(data[: protocol.HEADER.size], max_size)
        return protocol.decode_body(data[protocol.HEADER.size:])
    except protocol.ProtocolError as exc:
        raise DamagedRecord(str(exc)) from None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
