"""Run a function in a forked child and bring back its result (and seccomp denials).

Isolation layers are irreversible, so every test that applies one does it in a child;
the pytest process itself stays unconfined. With supervise=True the child gets a
`Child` handle whose `hand_over(fd)` sends a seccomp listener fd to the parent, which
then plays supervisor with a real `DenialReporter` until the child exits.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import select
import signal
import socket
import traceback
from typing import Any, Callable

import pytest

from leeward_daemon.isolation.seccomp_policy import DenialReporter

# A hang guard, not a timing assumption: nothing here should take more than a second.
_HANG_GUARD_MS = 120_000


@dataclasses.dataclass
class ChildResult:
    value: Any = None
    error: str | None = None  # formatted traceback of an exception raised in the child
    status: int = 0  # raw waitpid status
    denied: list[str] = dataclasses.field(default_factory=list)
    hung_up: bool = False  # the reporter saw POLLHUP after the child was reaped

    @property
    def signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    def unwrap(self) -> Any:
        assert self.signal is None, f"child killed by signal {self.signal}"
        assert self.error is None, f"child raised:\n{self.error}"
        return self.value


class Child:
    def __init__(self, sock: socket.socket):
        self._sock = sock

    def hand_over(self, fd: int) -> None:
        socket.send_fds(self._sock, [b"L"], [fd])
        os.close(fd)
        self._sock.close()


def _child_main(fn, args, kwargs, result_w: int, sock: socket.socket | None) -> None:
    try:
        if sock is not None:
            args = (Child(sock), *args)
        try:
            payload = ("ok", fn(*args, **kwargs))
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            payload = ("err", traceback.format_exc())
        try:
            data = pickle.dumps(payload)
        except Exception:  # noqa: BLE001
            data = pickle.dumps(("err", f"unpicklable result: {payload!r}"))
        view = memoryview(data)
        while view:
            view = view[os.write(result_w, view):]
    finally:
        os._exit(0)


def _run_in_child(fn: Callable, *args, supervise: bool = False, **kwargs) -> ChildResult:
    result_r, result_w = os.pipe()
    parent_sock = child_sock = None
    if supervise:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        if parent_sock is not None:
            parent_sock.close()
        _child_main(fn, args, kwargs, result_w, child_sock)
    os.close(result_w)
    if child_sock is not None:
        child_sock.close()

    reporter: DenialReporter | None = None
    chunks: list[bytes] = []
    poller = select.poll()
    poller.register(result_r, select.POLLIN)
    if parent_sock is not None:
        poller.register(parent_sock.fileno(), select.POLLIN)
    try:
        done = False
        while not done:
            events = poller.poll(_HANG_GUARD_MS)
            if not events:
                os.kill(pid, signal.SIGKILL)
                pytest.fail("child hung (hang guard expired)")
            for fd, _ in events:
                if fd == result_r:
                    chunk = os.read(result_r, 1 << 16)
                    if chunk:
                        chunks.append(chunk)
                    else:
                        done = True
                elif parent_sock is not None and fd == parent_sock.fileno():
                    poller.unregister(fd)
                    _, fds, _, _ = socket.recv_fds(parent_sock, 1, 1)
                    if fds:
                        reporter = DenialReporter(fds[0])
                        poller.register(reporter.fileno(), select.POLLIN)
                elif reporter is not None and fd == reporter.fileno():
                    reporter.handle_ready()
                    if reporter.hung_up:
                        poller.unregister(fd)
        _, status = os.waitpid(pid, 0)
        result = ChildResult(status=status)
        if reporter is not None:
            reporter.handle_ready()  # must not block now that nobody is left to notify
            result.denied = reporter.denied
            result.hung_up = reporter.hung_up
        if chunks:
            kind, value = pickle.loads(b"".join(chunks))
            if kind == "ok":
                result.value = value
            else:
                result.error = value
        return result
    finally:
        os.close(result_r)
        if parent_sock is not None:
            parent_sock.close()
        if reporter is not None:
            reporter.close()


@pytest.fixture
def run_in_child() -> Callable[..., ChildResult]:
    """run_in_child(fn, *args, supervise=False, **kwargs) -> ChildResult."""
    return _run_in_child
