"""Requests sent as another local uid, from a forked client that dropped to it: how a
second user sees the daemon (sessions, Cancel)."""
from __future__ import annotations

import ast
import os
import pwd
import subprocess

from libleeward import protocol
from libleeward.client import Connection

OTHER_USER = "leeward-test"


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
