"""Escape probes: information about the host. Kernel memory and internals masked, no
host names, users, paths, environment, network state or logs."""
from __future__ import annotations

import ast
import os
import socket

import pytest

from ._probe import FIND_CHANNEL, SYSCALL_PRELUDE, lines, probe

pytestmark = pytest.mark.integration

# runc's masked /proc files (kernel memory, keys, timers, scheduler, kernel log), and the
# host's boot command line and kernel build config.
MASKED = ["kcore", "keys", "timer_list", "sched_debug", "kallsyms", "kmsg", "latency_stats", "timer_stats",
          "cmdline", "config.gz"]
SAFE_ENV_NAMES = {"HOME", "LANG", "PATH", "TMPDIR", "USER"}


@pytest.mark.parametrize("name", MASKED)
def test_kernel_internals_in_proc_are_masked(daemon, name):
    if not os.path.exists(f"/proc/{name}"):
        pytest.skip(f"host kernel has no /proc/{name}: nothing there to leak")
    code = ("import os, errno\n"
            "try:\n"
            f"    data = open('/proc/{name}', 'rb').read(1 << 20)\n"
            "    print('read', len(data))\n"
            "except OSError as e:\n"
            "    print('refused', errno.errorcode[e.errno])\n")
    (out,) = lines(probe(daemon, code))
    assert out in ("read 0", "refused EACCES", "refused EPERM", "refused ENOENT"), out


def test_boot_id_is_the_sandboxs_own(daemon):
    """The host's boot id identifies the machine to every job on it; each sandbox gets
    its own, and cannot rewrite it."""
    with open("/proc/sys/kernel/random/boot_id") as fh:
        host = fh.read().strip()
    code = ("import errno\n"
            "print(open('/proc/sys/kernel/random/boot_id').read().strip())\n"
            "try:\n"
            "    open('/proc/sys/kernel/random/boot_id', 'w').write('x')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n")
    first, refusal = lines(probe(daemon, code))
    (second, _) = lines(daemon.execute(code))
    assert len(first) == 36 and first.count("-") == 4, first
    assert host not in (first, second) and first != second
    assert refusal in ("EROFS", "EACCES", "EPERM"), refusal


def test_mount_table_shows_no_daemon_or_host_scratch_paths(daemon, tmp_path):
    code = ("import sys\n"
            "for path in ('/proc/self/mountinfo', '/proc/1/mountinfo', '/proc/self/mounts'):\n"
            "    sys.stdout.write(open(path).read())\n")
    table = probe(daemon, code).stdout.decode()
    assert "/proc" in table and "/tmp" in table  # the probe did read the tables
    for leak in (os.path.dirname(daemon.socket_path), daemon.allowed_dir, str(tmp_path), "/oldroot",
                 "/run", "/var", "/home", "/root"):
        assert f" {leak} " not in table and f" {leak}/" not in table, leak


def test_host_hostname_and_domainname_are_not_visible(daemon):
    code = ("import os, socket\n"
            "print(socket.gethostname(), os.uname().nodename, open('/proc/sys/kernel/hostname').read().strip(),\n"
            "      open('/etc/hostname').read().strip())\n"
            "print(sorted(set(open('/etc/hosts').read().split())))\n"
            "print(open('/proc/sys/kernel/domainname').read().strip())\n")
    out = lines(probe(daemon, code))
    assert out == ["leeward leeward leeward leeward", "['127.0.0.1', '::1', 'leeward', 'localhost']", "(none)"]
    assert socket.gethostname() not in ("leeward", "localhost")  # the host's name really differs


def test_users_and_groups_are_synthetic(daemon):
    # The host's fontconfig and alternatives directories are bound read-only (rootfs.ETC_DIRS):
    # fonts and symlinks into /usr, no identities.
    host_etc = {"ld.so.cache", "localtime", "nsswitch.conf", "fonts", "alternatives"} & set(os.listdir("/etc"))
    code = ("import grp, os, pwd\n"
            "print([(p.pw_name, p.pw_uid) for p in pwd.getpwall()])\n"
            "print([(g.gr_name, g.gr_gid, g.gr_mem) for g in grp.getgrall()])\n"
            "print(sorted(os.listdir('/etc')))\n"
            "print(os.access('/etc/fonts', os.W_OK))\n")
    assert lines(probe(daemon, code)) == [
        "[('root', 0), ('sandbox', 1000), ('nobody', 65534)]",
        "[('root', 0, []), ('sandbox', 1000, []), ('nogroup', 65534, [])]",
        str(sorted({"group", "hostname", "hosts", "passwd"} | host_etc)),
        "False",
    ]


def test_identity_inside_is_uid_1000_mapped_to_an_unused_outside_uid(daemon):
    code = ("import os\n"
            "print(os.getresuid(), os.getresgid(), os.getgroups())\n"
            "print([l.split() for l in open('/proc/self/uid_map')])\n"
            "print([l.split() for l in open('/proc/self/gid_map')])\n"
            "print(open('/proc/self/setgroups').read().strip())\n")
    out = lines(probe(daemon, code))
    assert out[0] == "(1000, 1000, 1000) (1000, 1000, 1000) []"
    uid_map, gid_map = ast.literal_eval(out[1]), ast.literal_eval(out[2])
    assert len(uid_map) == 1 and len(gid_map) == 1
    assert uid_map[0][0] == "1000" and uid_map[0][2] == "1" and gid_map[0][2] == "1"
    if os.geteuid() == 0:  # a root daemon's boxes use the configured unused range
        assert int(uid_map[0][1]) >= 2_000_000_000 and int(gid_map[0][1]) >= 2_000_000_000
    assert out[3] == "deny"


def test_kernel_log_is_unreadable(daemon):
    code = SYSCALL_PRELUDE + (
        "import subprocess\n"
        "print(os.path.exists('/dev/kmsg'))\n"
        "p = subprocess.run(['dmesg'], capture_output=True)\n"
        "print(p.returncode != 0, len(p.stdout))\n"
        "print(len(open('/proc/kmsg', 'rb').read(4096)) if os.path.exists('/proc/kmsg') else 'absent')\n"
    )
    result = probe(daemon, code)
    assert lines(result)[:2] == ["False", "True 0"]
    assert lines(result)[2] in ("0", "absent")
    assert result.denied_syscalls == ["syslog"]


def test_proc_net_shows_no_host_network_state(daemon):
    tables = ["tcp", "tcp6", "udp", "udp6", "raw", "raw6", "arp", "route", "packet", "netlink", "unix"]
    code = ("import os\n"
            f"for name in {tables!r}:\n"
            "    rows = open(f'/proc/net/{name}').read().splitlines()[1:]\n"
            "    print(name, [r for r in rows if name not in ('netlink', 'unix') or '/' in r])\n"
            "print('dev', [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]])\n")
    assert lines(probe(daemon, code)) == [f"{name} []" for name in tables] + ["dev ['lo']"]


def test_no_host_environment_anywhere_in_the_sandbox(daemon):
    code = ("import os, sys\n"
            "print(sorted(os.environ))\n"
            "for p in sorted(p for p in os.listdir('/proc') if p.isdigit()):\n"
            "    for f in ('environ', 'cmdline'):\n"
            "        sys.stdout.write(repr(open(f'/proc/{p}/{f}', 'rb').read()) + '\\n')\n")
    result = probe(daemon, code, env={"JOB_VAR": "from-request"})
    out = lines(result)
    assert out[0] == str(sorted(SAFE_ENV_NAMES | {"JOB_VAR"}))
    dump = "\n".join(out[1:]).encode()
    # The daemon under test inherited this process's environment: none of it may show.
    leaked = [k for k, v in os.environ.items()
              if k not in SAFE_ENV_NAMES and len(v) >= 3 and f"{k}={v}".encode() in dump]
    assert leaked == []


def test_cgroup_paths_reveal_nothing_of_the_host(daemon):
    code = "print(sorted({l.rstrip().split(':', 2)[2] for l in open('/proc/self/cgroup')}))"
    assert lines(probe(daemon, code)) == ["['/']"]


def test_no_host_pid_is_visible_from_inside(daemon):
    """Not in /proc/self/status (NSpid lists one level), not as a parent, not through
    the result channel's peer credentials."""
    code = FIND_CHANNEL + (
        "import socket, struct\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(status['NSpid'].split(), status['NStgid'].split(), status['PPid'].strip(), os.getppid())\n"
        "sock = socket.socket(fileno=os.dup(channel))\n"
        "print(struct.unpack('3i', sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)))\n"
    )
    assert lines(probe(daemon, code)) == ["['1'] ['1'] 0 0", "(0, 65534, 65534)"]
