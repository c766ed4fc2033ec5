"""Escape probes: the network. No socket family but AF_UNIX, no route out, no way to a
host's Unix sockets, abstract or pathname."""
from __future__ import annotations

import os
import socket

import pytest

from ._probe import ATTEMPT_PRELUDE, SYSCALL_PRELUDE, lines, outcomes, probe, probe_beside_job

pytestmark = pytest.mark.integration

# (family, type, proto) as numbers, so that families Python lacks constants for work too.
FAMILIES = {
    "inet_udp": (2, 2, 0),
    "inet6_tcp": (10, 1, 0),
    "inet_raw_icmp": (2, 3, 1),
    "packet": (17, 3, 0x0300),       # AF_PACKET, ETH_P_ALL (network order)
    "netlink_route": (16, 3, 0),     # AF_NETLINK, NETLINK_ROUTE: configure interfaces
    "netlink_audit": (16, 3, 9),
    "vsock": (40, 1, 0),             # AF_VSOCK: the hypervisor's side channel
    "alg": (38, 5, 0),               # AF_ALG: kernel crypto, a classic LPE surface
    "key": (15, 3, 2),               # AF_KEY
    "xdp": (44, 3, 0),
    "bluetooth": (31, 3, 0),
    "tipc": (30, 5, 0),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_non_unix_socket_families_are_refused_and_reported(daemon, name):
    family, kind, proto = FAMILIES[name]
    code = ("import socket, errno\n"
            "try:\n"
            f"    s = socket.socket({family}, {kind}, {proto}); print('created', s)\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n")
    result = probe(daemon, code)
    assert lines(result) == ["EPERM"]
    assert result.denied_syscalls == ["socket"]


def test_socket_family_with_junk_in_the_upper_half_is_still_refused(daemon):
    """The kernel reads `family` as an int: AF_INET with the upper 32 bits set must not
    slip past a 64-bit compare."""
    code = SYSCALL_PRELUDE + (
        "print(*syscall(41, (1 << 32) | 2, 1, 0))\n"      # socket(AF_INET | junk, SOCK_STREAM)
        "print(*syscall(41, (0xdead << 32) | 10, 2, 0))\n"  # socket(AF_INET6 | junk, SOCK_DGRAM)
    )
    result = probe(daemon, code)
    assert lines(result) == ["-1 EPERM", "-1 EPERM"]
    assert result.denied_syscalls == ["socket"]


def test_socketpair_of_another_family_is_refused(daemon):
    code = SYSCALL_PRELUDE + (
        "fds = (ctypes.c_int * 2)()\n"
        "print(*syscall(53, 2, 1, 0, fds))\n"   # socketpair(AF_INET, SOCK_STREAM)
        "print(*syscall(53, 16, 3, 0, fds))\n"  # socketpair(AF_NETLINK, SOCK_RAW)
    )
    result = probe(daemon, code)
    assert lines(result) == ["-1 EPERM", "-1 EPERM"]
    assert result.denied_syscalls == ["socketpair"]


def test_dns_resolution_fails(daemon):
    code = ("import os, socket\n"
            "print(os.path.exists('/etc/resolv.conf'))\n"
            "for host in ('example.com', 'metadata.google.internal', 'leeward-probe.invalid'):\n"
            "    try:\n"
            "        print(host, sorted({a[4][0] for a in socket.getaddrinfo(host, 80)}))\n"
            "    except socket.gaierror as e:\n"
            "        print(host, 'gaierror')\n")
    assert lines(probe(daemon, code)) == ["False", "example.com gaierror", "metadata.google.internal gaierror",
                                          "leeward-probe.invalid gaierror"]


def test_cloud_metadata_endpoint_is_unreachable(daemon):
    code = ATTEMPT_PRELUDE + (
        "import socket, urllib.request\n"
        "attempt('tcp', socket.create_connection, ('169.254.169.254', 80), 3)\n"
        "attempt('tcp6', socket.create_connection, ('fd00:ec2::254', 80), 3)\n"
        "def http():\n"
        "    try:\n"
        "        urllib.request.urlopen('http://169.254.169.254/latest/meta-data/', timeout=3)\n"
        "    except urllib.error.URLError as e:\n"
        "        raise e.reason\n"
        "attempt('http', http)\n"
    )
    result = probe(daemon, code)
    assert outcomes(result) == {"tcp": "EPERM", "tcp6": "EPERM", "http": "EPERM"}
    assert result.denied_syscalls == ["socket"]


def test_host_abstract_unix_socket_is_unreachable(daemon):
    name = f"\0leeward-probe-{os.urandom(6).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(8)
        listener.setblocking(False)
        code = ATTEMPT_PRELUDE + (
            "import socket\n"
            "def connect(kind):\n"
            "    s = socket.socket(socket.AF_UNIX, kind)\n"
            f"    s.connect({name!r}); s.send(b'escaped')\n"
            "attempt('stream', connect, socket.SOCK_STREAM)\n"
            "attempt('seqpacket', connect, socket.SOCK_SEQPACKET)\n"
            "def datagram():\n"
            f"    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'escaped', {name!r})\n"
            "attempt('dgram', datagram)\n"
        )
        seen = outcomes(probe(daemon, code))
        assert set(seen) == {"stream", "seqpacket", "dgram"}
        assert set(seen.values()) <= {"ECONNREFUSED", "EPERM", "EPROTOTYPE"}, seen
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_abstract_unix_socket_of_a_concurrent_job_is_unreachable(daemon, probe_dir):
    """Job A listens on an abstract name and says so in a shared mount; job B, running
    at the same time, cannot connect to it."""
    name = f"\0leeward-xjob-{os.urandom(6).hex()}"
    listener_code = ("import socket, time\n"
                     "s = socket.socket(socket.AF_UNIX)\n"
                     f"s.bind({name!r}); s.listen(8); s.settimeout(0.1)\n"
                     "open('/shared/ready', 'w').close()\n"
                     "accepted, deadline = 0, time.monotonic() + 30\n"
                     "while time.monotonic() < deadline and not __import__('os').path.exists('/shared/done'):\n"
                     "    try: s.accept(); accepted += 1\n"
                     "    except socket.timeout: pass\n"
                     "print('accepted', accepted)\n")
    code = ("import os, socket, time, errno\n"
            "deadline = time.monotonic() + 60\n"
            "while not os.path.exists('/shared/ready') and time.monotonic() < deadline: time.sleep(0.05)\n"
            "print('ready', os.path.exists('/shared/ready'))\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({name!r}); print('connected')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n"
            "open('/shared/done', 'w').close()\n")
    listener, result = probe_beside_job(daemon, probe_dir, listener_code, code)
    assert lines(result)[0] == "ready True"
    assert lines(result)[1] in ("ECONNREFUSED", "EPERM"), result
    assert listener.stdout == b"accepted 0\n", listener


def test_well_known_host_unix_sockets_are_absent(daemon):
    paths = ["/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket", "/var/run/docker.sock",
             "/run/docker.sock", "/run/containerd/containerd.sock", "/run/systemd/private",
             "/run/systemd/journal/socket", "/dev/log", "/tmp/.X11-unix/X0", "/run/user/0/bus"]
    code = ATTEMPT_PRELUDE + (
        "import socket\n"
        "def connect(path):\n"
        "    socket.socket(socket.AF_UNIX).connect(path)\n"
        + "".join(f"attempt({p!r}, connect, {p!r})\n" for p in paths)
    )
    assert outcomes(probe(daemon, code)) == {p: "ENOENT" for p in paths}


def test_io_uring_is_refused_and_reported(daemon):
    """io_uring runs network and file operations off the syscall path seccomp sees."""
    code = SYSCALL_PRELUDE + (
        "params = ctypes.create_string_buffer(120)\n"
        "print(*syscall(425, 8, params))\n"   # io_uring_setup(8 entries, &params)
        "print(*syscall(426, 0, 1, 1, 1, 0, 0))\n"  # io_uring_enter on fd 0
        "print(*syscall(427, 0, 0, 0, 0))\n"  # io_uring_register
    )
    result = probe(daemon, code)
    assert lines(result) == ["-1 EPERM"] * 3
    assert result.denied_syscalls == ["io_uring_setup", "io_uring_enter", "io_uring_register"]
