"""Pure-Python client: one Connection speaks the wire protocol over a Unix socket.

Thread-safe: requests on one Connection are serialized by a lock, since the
protocol answers requests in order on a connection.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
import time
from typing import Any, Callable

from . import protocol
from .paths import UnsafeSocketDirectory, check_client_directory, default_socket_path
from .protocol import ErrorCode, ExecutionResult

# A response carries up to two capped outputs; allow far more than the request limit.
MAX_RESPONSE_FRAME = 256 * 1024 * 1024
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
# The type of the frames a streaming request gets before its response (PROTOCOL-V2.md).
EVENT_TYPE = protocol.EVENT


# A daemon under a burst has a full listen queue: a non-blocking connect (any socket
# with a timeout) then fails with EAGAIN at once. Retry briefly before giving up.
CONNECT_RETRY_SECS = 3.0
CONNECT_RETRY_FIRST_DELAY = 0.005
CONNECT_RETRY_MAX_DELAY = 0.1


def _connect_retrying(path: str, timeout: float | None) -> socket.socket:
    deadline = time.monotonic() + CONNECT_RETRY_SECS
    delay = CONNECT_RETRY_FIRST_DELAY
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() + delay > deadline:
                raise
        except OSError:
            sock.close()
            raise
        time.sleep(delay)
        delay = min(delay * 2, CONNECT_RETRY_MAX_DELAY)


class LeewardError(Exception):
    """The daemon refused or failed a request; `code` is the protocol's stable code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class DaemonUnavailable(LeewardError):
    """No daemon answered on the socket, or it went away mid-request."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.CONNECTION_CLOSED.value, message)


class UntrustedSocket(LeewardError):
    """The socket, or the directory holding it, belongs to someone who is neither this
    process's user nor root: nothing is sent to it (E1007)."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.UNTRUSTED_SOCKET.value, message)


def successful(response: dict) -> dict:
    """The response, if it says success; else its error as LeewardError."""
    if not response.get("success"):
        error = response.get("error") or {}
        raise LeewardError(str(error.get("code", ErrorCode.INTERNAL.value)), str(error.get("message", "")))
    return response


class Connection:
    """trust_uid: one more uid whose daemon this client accepts, for a caller that knows
    who serves the socket (root talking to a service user's daemon); by default only a
    daemon of our own euid or root is spoken to."""

    def __init__(self, socket_path: str | None = None, timeout: float | None = None,
                 trust_uid: int | None = None):
        self.socket_path = socket_path or default_socket_path()
        self._timeout = timeout
        self._trusted_uids = {os.geteuid(), 0} | ({trust_uid} if trust_uid is not None else set())
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.connect()

    def connect(self) -> None:
        try:
            check_client_directory(self.socket_path)
        except UnsafeSocketDirectory as exc:
            raise UntrustedSocket(str(exc)) from None
        try:
            sock = _connect_retrying(self.socket_path, self._timeout)
        except OSError as exc:
            raise DaemonUnavailable(f"cannot connect to {self.socket_path}: {exc.strerror or exc}") from None
        try:
            self._check_peer(sock)
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(f"cannot connect to {self.socket_path}: {exc.strerror or exc}") from None
        except UntrustedSocket:
            sock.close()
            raise
        self._sock = sock

    def _check_peer(self, sock: socket.socket) -> None:
        """Whoever listens on the socket reads every job sent to it: it must be us or
        root. SO_PEERCRED holds the credentials of the process that called listen(),
        which no later chmod, rename or fd passing can change."""
        _, uid, _ = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid not in self._trusted_uids:
            raise UntrustedSocket(
                f"socket {self.socket_path} is served by uid {uid}, which is neither you "
                f"(uid {os.geteuid()}) nor root; refusing to send code to it")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def ping(self) -> dict:
        return self.request({"type": "Ping"})

    def status(self) -> dict:
        return self.request({"type": "Status"})

    def execute(
        self,
        code: str,
        *,
        mounts: list[dict] | None = None,
        files: dict[str, bytes] | None = None,
        timeout_secs: float | None = None,
        memory_limit: int | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        execution_id: str | None = None,
        on_event: Callable[[dict], None] | None = None,
    ) -> ExecutionResult:
        """on_event: stream the job (v2 `stream`), each Event frame to it as output arrives.
        execution_id: the job's handle for cancel() from another connection (v2)."""
        message: dict[str, Any] = {"type": "Execute", "code": code}
        optional = {"mounts": mounts, "files": files, "timeout_secs": timeout_secs,
                    "memory_limit": memory_limit, "env": env, "stdin": stdin, "execution_id": execution_id}
        message.update({k: v for k, v in optional.items() if v is not None})
        if on_event is not None:
            message["stream"] = True
        response = self.request(message, on_event)
        return ExecutionResult.from_wire(response["result"])

    def cancel(self, execution_id: str) -> bool:
        """Cancels a running job or session cell of this uid; whether one was found."""
        return bool(self.request({"type": "Cancel", "execution_id": execution_id})["found"])

    def request(self, message: dict, on_event: Callable[[dict], None] | None = None) -> dict:
        """Sends one request, returns the successful response map or raises LeewardError.
        on_event gets each Event frame that precedes the response (a streaming request's)."""
        return successful(self.raw_request(protocol.encode_frame(message), on_event))

    def raw_request(self, frame: bytes, on_event: Callable[[dict], None] | None = None) -> dict:
        """Sends pre-encoded bytes and returns the decoded response (tests send bad frames).
        Event frames before it go to on_event, or are dropped without one."""
        with self._lock:
            if self._sock is None:
                raise DaemonUnavailable("connection is closed")
            try:
                try:
                    self._sock.sendall(frame)
                except (BrokenPipeError, ConnectionResetError):
                    # A daemon at its limit answers E3004 and closes at once, perhaps before
                    # the request arrived: that answer is still queued for us to read.
                    pass
                while True:
                    message = self._recv_frame()
                    if message.get("type") != EVENT_TYPE:
                        return message
                    if on_event is not None:
                        on_event(message)
            except BaseException as exc:
                # Whatever broke the exchange (the daemon, or on_event raising) left the
                # rest of the reply unread: the connection can no longer be trusted.
                self._sock.close()
                self._sock = None
                if isinstance(exc, OSError):
                    raise DaemonUnavailable(f"daemon connection failed: {exc}") from None
                raise

    def _recv_frame(self) -> dict:
        header = self._recv_exact(protocol.HEADER.size)
        length = protocol.parse_header(header, MAX_RESPONSE_FRAME)
        return protocol.decode_body(self._recv_exact(length))

    def _recv_exact(self, n: int) -> bytes:
        assert self._sock is not None
        chunks, remaining = [], n
        while remaining:
            chunk = self._sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise DaemonUnavailable("daemon closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
