"""SlotForker: each child is pid 1 of its own new pid namespace, and the forking
process (the zygote) is set back to its own pid namespace after every fork."""
from __future__ import annotations

import os

import pytest

from leeward_daemon.isolation import namespaces

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating pid namespaces needs root here")


def _child_pid_and_namespace(forker: namespaces.SlotForker) -> tuple[int, str]:
    read_end, write_end = os.pipe()
    pid = forker.fork()
    if pid == 0:
        os.write(write_end, f"{os.getpid()} {os.readlink('/proc/self/ns/pid')}".encode())
        os._exit(0)
    os.close(write_end)
    said = os.read(read_end, 256).decode().split()
    os.close(read_end)
    assert os.waitpid(pid, 0)[1] == 0
    return int(said[0]), said[1]


def test_each_child_is_pid_1_of_a_namespace_of_its_own():
    forker = namespaces.SlotForker.if_possible()
    assert forker is not None
    own = os.readlink("/proc/self/ns/pid")
    first, second = _child_pid_and_namespace(forker), _child_pid_and_namespace(forker)
    assert first[0] == second[0] == 1
    assert len({own, first[1], second[1]}) == 3
    assert os.readlink("/proc/self/ns/pid_for_children") == own  # set back after each fork
    assert os.getpid() != 1
