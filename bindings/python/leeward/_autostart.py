"""connect(): a Leeward on the per-user daemon, started in the background when none
answers (as `leeward exec` and leeward-mcp do). The socket's directory must then be ours
(libleeward.paths), and the daemon's log beside it is never opened through a symlink or
someone else's file."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

from libleeward.abi import ErrorCode

from ._client import Leeward
from .errors import DaemonUnavailable, UntrustedSocket

AUTOSTART_WAIT_ENV = "LEEWARD_AUTOSTART_TIMEOUT"
AUTOSTART_WAIT_SECS = 30.0
LOG_NAME = "leeward-daemon.log"


def connect(socket: str | None = None, *, autostart: bool = True) -> Leeward:
    """A Leeward on `socket`; None means $LEEWARD_SOCKET, else the per-user default.

        with leeward.connect() as sandbox:      # a daemon is started if none answers
            sandbox.execute("print(1)")

    With autostart and no `socket` given, a daemon is started on the default socket when
    none answers there (detached: its own session, cwd /, its log `leeward-daemon.log`
    beside the socket), and waited for up to $LEEWARD_AUTOSTART_TIMEOUT seconds (30).
    A `socket` you name is never autostarted: DaemonUnavailable (E1006) when nothing
    listens there, as with autostart=False. UntrustedSocket (E1007) when the socket's
    directory or the log is not safely ours."""
    try:
        return Leeward(socket)
    except DaemonUnavailable:
        if not autostart or socket is not None:
            raise
    from libleeward.paths import default_socket_path, secure_getenv

    path = default_socket_path()
    process, log_path = start_daemon(path)
    deadline = time.monotonic() + float(secure_getenv(AUTOSTART_WAIT_ENV) or AUTOSTART_WAIT_SECS)
    while True:
        try:
            return Leeward(path)
        except DaemonUnavailable:
            # A daemon that exited may have lost a race with another autostart:
            # keep waiting for the socket until the deadline either way.
            if time.monotonic() > deadline:
                raise DaemonUnavailable(
                    ErrorCode.CONNECTION_CLOSED.value, f"started a daemon on {path} but it did not answer "
                             f"(exit status {process.poll()}); see {log_path}") from None
            time.sleep(0.05)


def start_daemon(socket_path: str) -> tuple[subprocess.Popen, str]:
    """Starts `python -m leeward_daemon` detached (own session, no tty, cwd /), once its
    socket directory has passed the daemon's own rules (else UntrustedSocket, E1007)."""
    from libleeward.paths import UnsafeSocketDirectory, prepare_socket_directory

    try:
        directory = prepare_socket_directory(socket_path)
    except UnsafeSocketDirectory as exc:
        raise UntrustedSocket(ErrorCode.UNTRUSTED_SOCKET.value, str(exc)) from None
    log_path = os.path.join(directory, LOG_NAME)
    with open_log(log_path) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "leeward_daemon", "--socket", socket_path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd="/", start_new_session=True, close_fds=True,
        )
    print(f"leeward: started a daemon on {socket_path} (pid {process.pid}, log {log_path})", file=sys.stderr)
    return process, log_path


def open_log(path: str):
    """`path` for appending, created 0600 if missing; refused (UntrustedSocket) when it
    is a symlink, not a regular file, or not ours. O_NOFOLLOW: the log sits next to the
    socket, and a symlink planted there would make us append to whatever it names;
    O_NONBLOCK: a FIFO planted there must not hang us before fstat rejects it."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(path, flags)
    except OSError as exc:
        raise UntrustedSocket(ErrorCode.UNTRUSTED_SOCKET.value,
                              f"cannot open the daemon log {path} safely: {exc.strerror or exc} "
                              f"(a symlink there is refused)") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        what = "is not a regular file" if not stat.S_ISREG(info.st_mode) else f"belongs to uid {info.st_uid}"
        raise UntrustedSocket(ErrorCode.UNTRUSTED_SOCKET.value, f"the daemon log {path} {what}; refusing to write to it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "ab")
