"""A root daemon recycles a sandbox's network namespace for a later sandbox once the
first is gone (isolation/network_namespaces.py). Nothing of the earlier job may be
there: no Unix socket listed, its abstract name free to bind and nobody listening on
it. This probe runs jobs one after another until a namespace came round again (the
reuse it must exercise) and checks every job found its namespace empty."""
from __future__ import annotations

import os

import pytest

JOBS = 24  # enough for the pool's ready slots to turn over several times
NAME = "\0leeward-reuse-probe"

LEAVE_STATE = (
    "import errno, os, socket\n"
    "print(os.readlink('/proc/self/ns/net'))\n"
    "print(len(open('/proc/net/unix').read().splitlines()) - 1)\n"
    "probe = socket.socket(socket.AF_UNIX)\n"
    "try:\n"
    f"    probe.connect({NAME!r}); print('connected')\n"
    "except OSError as e:\n"
    "    print(errno.errorcode[e.errno])\n"
    "server = socket.socket(socket.AF_UNIX)\n"
    f"server.bind({NAME!r}); server.listen(8)\n"
    "client = socket.socket(socket.AF_UNIX)\n"
    f"client.connect({NAME!r}); client.sendall(b'left behind')\n"  # queued, never accepted
    "pair = socket.socketpair(); pair[0].sendall(b'also left')\n"
    "print('bound')\n"
)


def test_a_recycled_network_namespace_holds_nothing_of_the_job_before(daemon):
    namespaces = []
    for _ in range(JOBS):
        result = daemon.execute(LEAVE_STATE)
        lines = result.stdout.decode().split()
        assert result.exit_code == 0 and lines[1:] == ["0", "ECONNREFUSED", "bound"], result
        namespaces.append(lines[0])
    if os.geteuid() != 0:
        pytest.skip("an unprivileged daemon makes a new network namespace for every sandbox")
    assert len(set(namespaces)) < len(namespaces), namespaces  # some namespace came round again
