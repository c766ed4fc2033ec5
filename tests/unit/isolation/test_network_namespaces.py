"""NetworkNamespaces: every slot in a network namespace no live slot has; a namespace
recycled only once its slot was reaped and nothing of it is left (no Unix socket).

Everything runs in a forked child: the recycler moves its process between namespaces."""
from __future__ import annotations

import json
import os
import socket

import pytest

from leeward_daemon.isolation.network_namespaces import NetworkNamespaces

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating network namespaces needs root here")


def _in_child(scenario) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, json.dumps(scenario()).encode())
        except BaseException as exc:
            os.write(write_end, json.dumps({"error": repr(exc)}).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as said:
        answer = json.loads(said.read())
    os.waitpid(pid, 0)
    return answer


def _slot(networks: NetworkNamespaces, code=None) -> tuple[int, str]:
    """Forks a 'slot' into the next namespace; returns its pid and namespace."""
    handle = networks.enter_for_next_slot()
    namespace = os.readlink("/proc/self/ns/net")
    pid = os.fork()
    if pid == 0:
        if code is not None:
            code()
        os._exit(0)
    networks.assign(pid, handle)
    networks.restore()
    return pid, namespace


def _reap(networks: NetworkNamespaces, pid: int) -> None:
    os.waitpid(pid, 0)
    networks.slot_reaped(pid)


def test_live_slots_never_share_and_a_reaped_ones_namespace_is_reused():
    def scenario() -> dict:
        own = os.readlink("/proc/self/ns/net")
        networks = NetworkNamespaces()
        first, first_ns = _slot(networks)
        second, second_ns = _slot(networks)  # the first is still alive: a new one
        _reap(networks, first)
        third, third_ns = _slot(networks)
        _reap(networks, second)
        _reap(networks, third)
        return {"own": own, "namespaces": [first_ns, second_ns, third_ns], "reused": networks.reused,
                "back": os.readlink("/proc/self/ns/net")}

    answer = _in_child(scenario)
    assert "error" not in answer, answer
    first, second, third = answer["namespaces"]
    assert first != second and answer["own"] not in (first, second)
    assert third == first and answer["reused"] == 1
    assert answer["back"] == answer["own"]  # the recycler's process always set back


def test_a_namespace_with_a_socket_left_in_it_is_dropped_not_reused():
    def scenario() -> dict:
        networks = NetworkNamespaces()
        handle = networks.enter_for_next_slot()
        kept = socket.socket(socket.AF_UNIX)  # made inside: a job's socket kept alive elsewhere
        kept.bind(b"\0leeward-left-behind")
        kept_ns = os.readlink("/proc/self/ns/net")
        networks.restore()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        networks.assign(pid, handle)
        _reap(networks, pid)
        _, next_ns = _slot(networks)
        return {"reused": networks.reused, "kept_ns": kept_ns, "next": next_ns}

    answer = _in_child(scenario)
    assert "error" not in answer, answer
    assert answer["reused"] == 0 and answer["next"] != answer["kept_ns"]
