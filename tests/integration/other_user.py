"""Requests sent as another local uid, from a forked client that dropped to it: how a
second user sees the daemon (sessions, Cancel)."""
from __future__ import annotations

import ast
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from libleeward import protocol
from libleeward.client import Connection

from tests.conftest import RunningDaemon, start_daemon

OTHER_USER = "leeward-test"


@contextmanager
def daemon_for_two_uids(*args: str, workers: int = 2) -> Iterator[RunningDaemon]:
    """A daemon whose socket every local user reaches (socket_mode 0o666), in a
    directory under /run: not writable by others, so the daemon accepts it as not private."""
    directory = tempfile.mkdtemp(prefix="leeward-shared-", dir="/run")
    os.chmod(directory, 0o755)
    running = start_daemon(directory, "--set", "socket_mode=0o666", *args, workers=workers)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(directory, ignore_errors=True)


def as_other_user(socket_path: str, requests: list[dict]) -> list[dict]:
    """The replies another local uid gets, success or not, in order."""
    try:
        user = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
                       check=True)
        user = pwd.getpwnam(OTHER_USER)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        status = 1
        try:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            with Connection(socket_path, timeout=60) as conn:
                replies = [conn.raw_request(protocol.encode_frame(request)) for request in requests]
            os.write(write_end, repr(replies).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data
    return ast.literal_eval(data.decode())
