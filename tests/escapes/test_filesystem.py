"""Escape probes: the host's files, from inside the sandbox and through the request."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from libleeward.client import LeewardError
from tests.conftest import start_daemon

from ._probe import (ATTEMPT_PRELUDE, SYSCALL_PRELUDE, beside_canary, filled_until_full, lines, outcomes, probe,
                     refused)

pytestmark = pytest.mark.integration

MiB = 1 << 20
TMP_CAP_MIB = 256  # the daemon's default tmp_size
REFUSALS = {"ENOENT", "EACCES", "EPERM", "EROFS", "EXDEV", "ETXTBSY"}


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_host_secrets_are_unreachable_by_any_route(daemon, tmp_path):
    """A secret in a host directory that was never mounted, and /etc/shadow, through
    every path trick: /proc/*/root, /proc/self/cwd, `..` past a mount, /dev/fd."""
    secret = tmp_path / "host-secret.txt"
    secret.write_text("leeward-probe-host-secret")
    secret.chmod(0o644)
    routes = []
    for target in ("/etc/shadow", str(secret)):
        routes += [target, "/proc/1/root" + target, "/proc/self/root" + target,
                   "/proc/self/cwd/../.." + target, "/tmp/../../.." + target,
                   "/dev/fd/../../../.." + target, "/data/../../.." + target]
    code = ATTEMPT_PRELUDE + "".join(f"attempt({r!r}, lambda: open({r!r}).read())\n" for r in routes)
    result = probe(daemon, code, mounts=[{"host": daemon.allowed_dir, "sandbox": "/data", "ro": True}])
    seen = outcomes(result)
    assert set(seen) == set(routes)
    assert set(seen.values()) <= REFUSALS, seen
    assert b"leeward-probe-host-secret" not in result.stdout


def test_no_ssh_keys_or_host_homes_anywhere_in_the_sandbox(daemon, tmp_path):
    """A fake private key planted on the host is found nowhere in the sandbox, and the
    usual key and home locations do not exist."""
    name = f"id_ed25519_leeward_probe_{os.urandom(4).hex()}"
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / name).write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
    code = (
        "import os\n"
        "hits, keys = [], []\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    if root == '/': dirs.remove('proc')\n"
        f"    hits += [os.path.join(root, f) for f in files + dirs if f == {name!r}]\n"
        "    keys += [os.path.join(root, f) for f in files if f.endswith('_key') or f.startswith('id_rsa')\n"
        "             or f in ('id_ed25519', 'id_ecdsa', 'authorized_keys', 'known_hosts')]\n"
        "print('planted', hits)\n"
        "known = ['/root', '/home', '/etc/ssh', '/etc/shadow', '/etc/gshadow', '/etc/sudoers',\n"
        "         '/var', '/run', '/srv', '/mnt', '/media', '/opt']\n"
        "print('present', [p for p in known if os.path.lexists(p)])\n"
        "print('keys', keys)\n"
    )
    assert lines(probe(daemon, code)) == ["planted []", "present []", "keys []"]


def test_every_write_primitive_outside_tmp_fails(daemon):
    exe = "os.path.realpath(sys.executable)"
    code = ATTEMPT_PRELUDE + (
        "import os, sys\n"
        "open('/tmp/x', 'w').write('x')\n"
        "attempt('create_root', lambda: open('/newfile', 'w'))\n"
        "attempt('mkdir_root', os.mkdir, '/evil')\n"
        "attempt('rename_into_usr', os.rename, '/tmp/x', '/usr/evil')\n"
        "attempt('symlink_in_etc', os.symlink, '/tmp/x', '/etc/evil')\n"
        "attempt('link_in_bin', os.link, '/tmp/x', '/bin/evil')\n"
        f"attempt('chmod_python', os.chmod, {exe}, 0o777)\n"
        f"attempt('write_python', lambda: open({exe}, 'r+b'))\n"
        "attempt('truncate_passwd', os.truncate, '/etc/passwd', 0)\n"
        "attempt('unlink_hosts', os.unlink, '/etc/hosts')\n"
        "attempt('utime_usr', os.utime, '/usr', None)\n"
        "attempt('xattr_usr', os.setxattr, '/usr', 'user.evil', b'1')\n"
        "attempt('chown_passwd', os.chown, '/etc/passwd', 1000, 1000)\n"
        "attempt('dev_via_shm_dotdot', lambda: open('/dev/shm/../evil', 'w'))\n"
        "attempt('rmdir_work', os.rmdir, '/work')\n"
        "attempt('proc_via_dotdot', lambda: open('/tmp/../proc/evil', 'w'))\n"
    )
    seen = outcomes(probe(daemon, code))
    assert len(seen) == 15
    assert set(seen.values()) <= REFUSALS | {"EBUSY"}, seen


def test_read_only_mount_resists_every_write_and_a_remount(daemon, probe_dir):
    data = os.path.join(probe_dir, "data.txt")
    with open(data, "w") as fh:
        fh.write("original")
    os.chmod(data, 0o666)  # only the mount's read-only flag stands in the way
    os.mkdir(os.path.join(probe_dir, "sub"), 0o777)
    os.chmod(os.path.join(probe_dir, "sub"), 0o777)
    code = SYSCALL_PRELUDE + ATTEMPT_PRELUDE + (
        "attempt('write', lambda: open('/data/data.txt', 'w').write('pwned'))\n"
        "attempt('append', lambda: open('/data/data.txt', 'a').write('pwned'))\n"
        "attempt('create', lambda: open('/data/new', 'w'))\n"
        "attempt('unlink', os.unlink, '/data/data.txt')\n"
        "attempt('rename', os.rename, '/data/data.txt', '/data/sub/moved')\n"
        "attempt('chmod', os.chmod, '/data/data.txt', 0o777)\n"
        "attempt('truncate', os.truncate, '/data/data.txt', 0)\n"
        "attempt('mkdir', os.mkdir, '/data/sub/dir')\n"
        "attempt('symlink', os.symlink, '/etc', '/data/sub/link')\n"
        "print('remount_rw', syscall(165, 0, b'/data', 0, 0x20 | 0x1000, 0)[1])\n"  # MS_REMOUNT|MS_BIND, rw
        "attempt('write_after_remount', lambda: open('/data/data.txt', 'w').write('pwned'))\n"
        "print('umount', syscall(166, b'/data', 2)[1])\n"  # MNT_DETACH
    )
    result = probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/data", "ro": True}])
    seen = outcomes(result)
    assert len(seen) == 12 and set(seen.values()) <= REFUSALS, seen
    assert {"mount", "umount2"} <= set(result.denied_syscalls), result.denied_syscalls
    assert sorted(os.listdir(probe_dir)) == ["data.txt", "sub"] and os.listdir(os.path.join(probe_dir, "sub")) == []
    with open(data) as fh:
        assert fh.read() == "original"


def test_symlinks_in_tmp_do_not_make_read_only_paths_writable(daemon, probe_dir):
    with open(os.path.join(probe_dir, "ro.txt"), "w") as fh:
        fh.write("original")
    os.chmod(os.path.join(probe_dir, "ro.txt"), 0o666)
    code = ATTEMPT_PRELUDE + (
        "import os\n"
        "os.symlink('/etc/passwd', '/tmp/passwd')\n"
        "os.symlink('/usr/lib', '/tmp/lib')\n"
        "os.symlink('/data/ro.txt', '/tmp/ro')\n"
        "os.symlink('../../../../etc', '/tmp/up')\n"
        "attempt('passwd', lambda: open('/tmp/passwd', 'w').write('root::0:0::/:/bin/sh'))\n"
        "attempt('usr_lib', lambda: open('/tmp/lib/evil.so', 'w'))\n"
        "attempt('ro_mount', lambda: open('/tmp/ro', 'w').write('pwned'))\n"
        "attempt('relative', lambda: open('/tmp/up/evil', 'w'))\n"
    )
    seen = outcomes(probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/data", "ro": True}]))
    assert len(seen) == 4 and set(seen.values()) <= REFUSALS, seen
    with open(os.path.join(probe_dir, "ro.txt")) as fh:
        assert fh.read() == "original"


def test_symlinks_planted_in_a_rw_mount_cannot_redirect_later_mounts(daemon, probe_dir):
    code = ("import os\n"
            "os.symlink('/', '/out/escape')\n"
            "os.symlink('..', '/out/up')\n"
            "os.symlink('/etc', '/out/etc')\n"
            "print(sorted(os.listdir('/out')))")
    result = probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}])
    assert lines(result) == ["['escape', 'etc', 'up']"]
    # Each link itself, and an existing path through it (which lies under allowed_paths
    # only for `up`): all refused as symlinks, before any allowed_paths check.
    for name, beyond in (("escape", "etc/passwd"), ("up", os.path.basename(probe_dir)), ("etc", "passwd")):
        assert os.path.islink(os.path.join(probe_dir, name))
        for host in (os.path.join(probe_dir, name), os.path.join(probe_dir, name, beyond)):
            assert os.path.exists(host)
            err = refused(daemon, "print(1)", mounts=[{"host": host, "sandbox": "/data"}])
            assert err.code == "E2008", err


def test_request_files_cannot_be_written_through_a_planted_symlink(daemon, probe_dir):
    """A previous job left `plant -> /usr/lib` in a rw mount; a later request's `files`
    placed through it must not land anywhere but the sandbox's own tmp/mounts."""
    name = f"leeward_probe_{os.urandom(4).hex()}.py"
    result = probe(daemon, "import os; os.symlink('/usr/lib', '/out/plant'); os.symlink('/', '/out/root')",
                   mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}])
    assert result.exit_code == 0, result.stderr
    for via in ("plant", "root/usr/lib"):
        err = refused(daemon, "print('ran')", files={f"m/{via}/{name}": b"evil"},
                      mounts=[{"host": probe_dir, "sandbox": "/tmp/m", "ro": False}])
        assert err.code == "E3002", err  # the sandbox could not place the file: the job never ran
    assert not os.path.exists(os.path.join("/usr/lib", name))


def test_proc_self_exe_and_the_interpreter_cannot_be_opened_for_writing(daemon):
    """CVE-2019-5736 style: rewrite the host binary through /proc/self/exe."""
    host_python = os.path.realpath(sys.executable)
    before = _sha256(host_python)
    code = ATTEMPT_PRELUDE + (
        "import os, sys\n"
        "attempt('exe_rw', lambda: open('/proc/self/exe', 'r+b'))\n"
        "attempt('exe_wronly', os.open, '/proc/self/exe', os.O_WRONLY)\n"
        "path_fd = os.open('/proc/self/exe', os.O_PATH)\n"
        "attempt('reopen_o_path', os.open, f'/proc/self/fd/{path_fd}', os.O_WRONLY)\n"
        "attempt('pid1_exe', os.open, '/proc/1/exe', os.O_RDWR)\n"
        "attempt('realpath', lambda: open(os.path.realpath(sys.executable), 'r+b'))\n"
        "attempt('map_files', lambda: [os.open('/proc/self/map_files/' + n, os.O_RDWR)\n"
        "                              for n in os.listdir('/proc/self/map_files')])\n"
    )
    seen = outcomes(probe(daemon, code))
    assert len(seen) == 6 and set(seen.values()) <= REFUSALS, seen
    assert _sha256(host_python) == before


def test_device_nodes_cannot_be_made(daemon):
    code = ATTEMPT_PRELUDE + (
        "import os, stat\n"
        "attempt('mem', os.mknod, '/tmp/mem', stat.S_IFCHR | 0o666, os.makedev(1, 1))\n"
        "attempt('kmsg', os.mknod, '/tmp/kmsg', stat.S_IFCHR | 0o666, os.makedev(1, 11))\n"
        "attempt('vda', os.mknod, '/tmp/vda', stat.S_IFBLK | 0o666, os.makedev(254, 0))\n"
        "attempt('shm_sda', os.mknod, '/dev/shm/sda', stat.S_IFBLK | 0o666, os.makedev(8, 0))\n"
    )
    # Landlock refuses first (EACCES: no dir grants making device nodes), the kernel
    # would anyway (EPERM: no CAP_MKNOD in the initial user namespace).
    seen = outcomes(probe(daemon, code))
    assert set(seen) == {"mem", "kmsg", "vda", "shm_sda"} and set(seen.values()) <= {"EACCES", "EPERM"}, seen


def test_dev_has_only_the_harmless_devices(daemon):
    code = ("import os, stat\n"
            "print(sorted(os.listdir('/dev')))\n"
            "bad = ['/dev/mem', '/dev/kmem', '/dev/port', '/dev/kmsg', '/dev/sda', '/dev/vda', '/dev/tty',\n"
            "       '/dev/console', '/dev/net/tun', '/dev/fuse', '/dev/vsock', '/dev/kvm', '/dev/loop0']\n"
            "print([p for p in bad if os.path.lexists(p)])\n"
            "print(sorted((n, os.major(s.st_rdev), os.minor(s.st_rdev)) for n in os.listdir('/dev')\n"
            "             for s in [os.stat('/dev/' + n)] if stat.S_ISCHR(s.st_mode)))\n")
    assert lines(probe(daemon, code)) == [
        "['fd', 'full', 'null', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']",
        "[]",
        "[('full', 1, 7), ('null', 1, 3), ('random', 1, 8), ('urandom', 1, 9), ('zero', 1, 5)]",
    ]


def test_setuid_binaries_grant_nothing(daemon):
    """Every setuid file sits on a nosuid mount, and `su` really runs without becoming
    root: its credentials, read while it waits for a password, stay the sandbox's."""
    assert os.path.exists("/usr/bin/su") and os.stat("/usr/bin/su").st_mode & stat.S_ISUID, \
        "this probe needs a setuid /usr/bin/su on the host"
    code = (
        "import os, stat, subprocess, time\n"
        "suid = [os.path.join(r, f) for top in ('/usr', '/bin', '/sbin') for r, _, fs in os.walk(top)\n"
        "        for f in fs for s in [os.lstat(os.path.join(r, f))]\n"
        "        if stat.S_ISREG(s.st_mode) and s.st_mode & (stat.S_ISUID | stat.S_ISGID)]\n"
        "print('suid', len(suid) > 0, all(os.statvfs(p).f_flag & os.ST_NOSUID for p in suid))\n"
        "p = subprocess.Popen(['/usr/bin/su', 'root', '-c', 'touch /tmp/owned'], stdin=subprocess.PIPE,\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "deadline, seen = time.monotonic() + 30, None\n"
        "while time.monotonic() < deadline and seen is None:\n"
        "    status = dict(l.split(':', 1) for l in open(f'/proc/{p.pid}/status').read().splitlines())\n"
        "    if status['Name'].strip() == 'su' and status['State'].split()[0] == 'S':\n"
        "        seen = [' '.join(status[k].split()) for k in ('Uid', 'Gid', 'CapPrm', 'CapEff')]\n"
        "    time.sleep(0.01)\n"
        "p.kill(); p.wait()\n"
        "print('su', seen)\n"
        "print('owned', os.path.exists('/tmp/owned'))\n"
    )
    assert lines(probe(daemon, code)) == [
        "suid True True",
        "su ['1000 1000 1000 1000', '1000 1000 1000 1000', '0000000000000000', '0000000000000000']",
        "owned False",
    ]


def test_filling_tmp_stops_at_its_cap(daemon):
    err, mib = filled_until_full(daemon, "/tmp/fill")
    assert err == "ENOSPC" and TMP_CAP_MIB - 8 <= mib <= TMP_CAP_MIB, (err, mib)


def test_hardlinks_to_foreign_files_are_refused(daemon, probe_dir):
    secret = os.path.join(probe_dir, "root-only")
    with open(secret, "w") as fh:
        fh.write("root-secret")
    os.chmod(secret, 0o600)  # owned by host root
    code = ATTEMPT_PRELUDE + (
        "import os, sys\n"
        "attempt('read', lambda: open('/out/root-only').read())\n"
        "attempt('link_in_mount', os.link, '/out/root-only', '/out/hl')\n"
        "attempt('link_to_tmp', os.link, '/out/root-only', '/tmp/hl')\n"
        "attempt('link_python', os.link, os.path.realpath(sys.executable), '/tmp/py')\n"
        "attempt('link_passwd', os.link, '/etc/passwd', '/tmp/passwd')\n"
    )
    seen = outcomes(probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}]))
    assert seen == {"read": "EACCES", "link_in_mount": "EPERM", "link_to_tmp": "EXDEV",
                    "link_python": "EXDEV", "link_passwd": "EXDEV"}, seen
    assert os.listdir(probe_dir) == ["root-only"]


def test_kernel_tunables_cannot_be_written_by_any_route(daemon):
    """core_pattern and modprobe mean host code execution as root: not through
    /proc/sys, not through /proc/1/root, not through a fresh procfs mount."""
    tunables = [p for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe") if os.path.exists(p)]
    assert "/proc/sys/kernel/core_pattern" in tunables
    before = {}
    for path in tunables:
        with open(path) as fh:
            before[path] = fh.read()
    code = SYSCALL_PRELUDE + ATTEMPT_PRELUDE + (
        "def write(path):\n"
        "    with open(path, 'w') as fh: fh.write('|/tmp/evil')\n"
        "for path in ('/proc/sys/kernel/core_pattern', '/proc/1/root/proc/sys/kernel/core_pattern',\n"
        "             '/proc/self/root/proc/sys/kernel/modprobe', '/proc/sys/kernel/modprobe'):\n"
        "    attempt(path, write, path)\n"
        "os.mkdir('/tmp/p')\n"
        "print('mount_proc', syscall(165, b'proc', b'/tmp/p', b'proc', 0, 0)[1])\n"
        "attempt('fresh_proc_core_pattern', write, '/tmp/p/sys/kernel/core_pattern')\n"
    )
    result = probe(daemon, code)
    seen = outcomes(result)
    assert len(seen) == 6 and set(seen.values()) <= REFUSALS, seen
    assert "mount" in result.denied_syscalls, result.denied_syscalls
    for path in tunables:
        with open(path) as fh:
            assert fh.read() == before[path]


@pytest.mark.skipif(not os.path.exists("/proc/sysrq-trigger"),
                    reason="host kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ off): nothing to reach")
def test_sysrq_trigger_is_masked(daemon):
    code = ("import os\n"
            "s = os.stat('/proc/sysrq-trigger')\n"
            "print(os.major(s.st_rdev), os.minor(s.st_rdev))\n"
            "try:\n    open('/proc/sysrq-trigger', 'w').write('h')\n"
            "except OSError as e: print('refused', e.errno)\n")
    out = lines(probe(daemon, code))
    assert out[0] == "1 3" and len(out) in (1, 2)  # /dev/null bound over it: writes go nowhere


def test_sysfs_is_absent_and_cannot_be_mounted(daemon):
    code = SYSCALL_PRELUDE + (
        "print(os.path.exists('/sys'), os.path.exists('/proc/1/root/sys'), os.path.exists('/proc/self/root/sys'))\n"
        "os.mkdir('/tmp/s')\n"
        "print(*syscall(165, b'sysfs', b'/tmp/s', b'sysfs', 0, 0))\n"
        "print(os.listdir('/tmp/s'))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["False False False", "-1 EPERM", "[]"]
    assert "mount" in result.denied_syscalls


def _race_mount_against_a_symlink_swap(daemon, probe_dir, requests: int, expected: set[str]) -> dict[str, int]:
    """A job keeps atomically exchanging a mountable directory with a symlink to /etc
    (renameat2 RENAME_EXCHANGE) while up to `requests` requests mount that path (fewer
    once an outcome outside `expected` shows up); returns how often each outcome (the
    listing of /data, or an error code) came back."""
    os.mkdir(os.path.join(probe_dir, "target"), 0o777)
    os.chmod(os.path.join(probe_dir, "target"), 0o777)
    open(os.path.join(probe_dir, "target", "inside"), "w").close()
    swapper = SYSCALL_PRELUDE + (
        "import time\n"
        "os.symlink('/etc', '/out/evil')\n"
        "swaps, deadline = 0, time.monotonic() + 60\n"
        "while not os.path.exists('/out/stop') and time.monotonic() < deadline:\n"
        "    value, err = syscall(316, -100, b'/out/target', -100, b'/out/evil', 2)\n"  # RENAME_EXCHANGE
        "    assert value == 0, err\n"
        "    swaps += 1\n"
        "print('swaps', swaps > 0)\n"
    )
    mount = [{"host": os.path.join(probe_dir, "target"), "sandbox": "/data", "ro": True}]
    seen: dict[str, int] = {}
    with beside_canary(daemon), ThreadPoolExecutor(1) as pool:
        swapping = pool.submit(daemon.execute, swapper, timeout_secs=90,
                               mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}])
        try:
            deadline = time.monotonic() + 60
            while not os.path.lexists(os.path.join(probe_dir, "evil")) and time.monotonic() < deadline:
                time.sleep(0.05)
            for _ in range(requests):
                try:
                    result = daemon.execute("import os; print(sorted(os.listdir('/data')))", mounts=mount)
                    outcome = result.stdout.decode().strip()
                except LeewardError as err:
                    outcome = err.code
                seen[outcome] = seen.get(outcome, 0) + 1
                if outcome not in expected:
                    break
        finally:
            open(os.path.join(probe_dir, "stop"), "w").close()
            swapped = swapping.result(timeout=120)
    print(seen)
    assert swapped.stdout == b"swaps True\n", swapped
    return seen


def test_mount_source_swapped_for_a_symlink_mid_request_never_mounts_the_target(daemon, probe_dir):
    """TOCTOU between the daemon's check and the slot's bind: each request is refused or
    gets the real directory; none ever sees the host's /etc."""
    refusals = {"E2008", "E2007", "E3002", "E4001"}
    seen = _race_mount_against_a_symlink_swap(daemon, probe_dir, requests=48, expected={"['inside']"} | refusals)
    assert set(seen) <= {"['inside']"} | refusals, seen


def test_mount_source_swap_race_gets_a_clean_refusal_not_an_internal_error(daemon, probe_dir):
    """The same race must end in a refusal the client can act on (symlink, missing
    source, or the sandbox's own O_NOFOLLOW check), never E4001 "internal error"."""
    clean = {"['inside']", "E2008", "E2007", "E3002"}
    seen = _race_mount_against_a_symlink_swap(daemon, probe_dir, requests=400, expected=clean)
    assert set(seen) <= clean, seen


def test_a_job_cannot_plant_privileges_for_a_later_job(daemon, probe_dir):
    """Job 1 leaves a copy of sleep in a rw mount and tries to make it setuid (refused by
    seccomp) and to give it file capabilities; job 2 runs it and stays exactly as
    unprivileged."""
    plant = ATTEMPT_PRELUDE + (
        "import os, shutil\n"
        "shutil.copy('/bin/sleep', '/out/planted')\n"
        "attempt('chmod_setuid', os.chmod, '/out/planted', 0o6755)\n"
        "import struct\n"
        "admin = (1 << 21) | (1 << 12)  # CAP_SYS_ADMIN, CAP_NET_RAW\n"
        "v2 = struct.pack('<5I', 0x02000001, admin, 0, 0, 0)        # VFS_CAP_REVISION_2 | EFFECTIVE\n"
        "v3 = struct.pack('<6I', 0x03000001, admin, 0, 0, 0, 1000)  # REVISION_3, rootid: our uid\n"
        "attempt('file_caps_v2', os.setxattr, '/out/planted', 'security.capability', v2)\n"
        "attempt('file_caps_v3', os.setxattr, '/out/planted', 'security.capability', v3)\n"
    )
    seen = outcomes(probe(daemon, plant, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}]))
    assert seen == {"chmod_setuid": "EPERM", "file_caps_v2": "EPERM", "file_caps_v3": "EPERM"}, seen
    planted = os.path.join(probe_dir, "planted")
    if os.geteuid() == 0:  # owned by the box's unused outside uid, never by root
        assert os.stat(planted).st_uid >= 2_000_000_000
    with pytest.raises(OSError):
        os.getxattr(planted, "security.capability")
    run = (
        "import subprocess, time\n"
        "p = subprocess.Popen(['/in/planted', '30'])\n"
        "deadline, seen = time.monotonic() + 30, None\n"
        "while seen is None and time.monotonic() < deadline:\n"
        "    fields = dict(l.split(':', 1) for l in open(f'/proc/{p.pid}/status').read().splitlines())\n"
        "    if fields['Name'].strip() == 'planted' and fields['State'].split()[0] == 'S':\n"
        "        seen = [' '.join(fields[k].split()) for k in ('Uid', 'Gid', 'CapPrm', 'CapEff')]\n"
        "    time.sleep(0.01)\n"
        "p.kill(); p.wait()\n"
        "print(seen)\n"
    )
    assert lines(probe(daemon, run, mounts=[{"host": probe_dir, "sandbox": "/in", "ro": False}])) == [
        "['1000 1000 1000 1000', '1000 1000 1000 1000', '0000000000000000', '0000000000000000']"]


def test_cgroup_release_agent_escape_is_impossible(daemon):
    """CVE-2022-0492: mount a cgroup v1 hierarchy, set release_agent, run it as host
    root. No cgroupfs is reachable and none can be mounted."""
    code = SYSCALL_PRELUDE + (
        "print(os.path.exists('/sys/fs/cgroup'), os.path.exists('/proc/1/root/sys/fs/cgroup'))\n"
        "os.mkdir('/tmp/cg')\n"
        "print('v1', *syscall(165, b'cgroup', b'/tmp/cg', b'cgroup', 0, b'memory'))\n"
        "print('v1_rdma', *syscall(165, b'cgroup', b'/tmp/cg', b'cgroup', 0, b'rdma'))\n"
        "print('v2', *syscall(165, b'cgroup2', b'/tmp/cg', b'cgroup2', 0, 0))\n"
        "print(os.listdir('/tmp/cg'))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["False False", "v1 -1 EPERM", "v1_rdma -1 EPERM", "v2 -1 EPERM", "[]"]
    assert result.denied_syscalls == ["mount"]


def test_cwd_root_and_every_fd_stay_inside_the_sandbox(daemon):
    """runc CVE-2024-21626: a working directory or fd left pointing into the host tree.
    Climbing `..` from the cwd and from every open fd ends at the sandbox's own root."""
    code = (
        "import os, stat\n"
        "print(os.getcwd(), os.readlink('/proc/self/cwd'), os.readlink('/proc/self/root'))\n"
        "os.chdir('/'.join(['..'] * 64))\n"
        "here, root = os.stat('.'), os.stat('/')\n"
        "print(os.getcwd(), (here.st_dev, here.st_ino) == (root.st_dev, root.st_ino), os.path.exists('oldroot'))\n"
        "def is_dir(fd):\n"
        "    try: return stat.S_ISDIR(os.fstat(fd).st_mode)\n"
        "    except OSError: return False\n"
        "print('directory fds', [fd for fd in range(1024) if is_dir(fd)])\n"
    )
    assert lines(probe(daemon, code)) == ["/tmp /tmp /", "/ True False", "directory fds []"]


def test_host_files_in_a_rw_mount_cannot_be_made_immutable_or_huge(daemon, probe_dir):
    """On a host filesystem the job may write: no immutable/append-only flags (the host
    could not clean up), and no file beyond RLIMIT_FSIZE, allocated or sparse."""
    code = SYSCALL_PRELUDE + ATTEMPT_PRELUDE + (
        "fd = os.open('/out/f', os.O_RDWR | os.O_CREAT, 0o644)\n"
        "def setflags(flag):\n"  # FS_IOC_SETFLAGS
        "    return syscall(16, fd, 0x40086602, ctypes.byref(ctypes.c_long(flag)))[1]\n"
        "print('immutable', setflags(0x10))\n"
        "print('append_only', setflags(0x20))\n"
        "attempt('fallocate', os.posix_fallocate, fd, 0, (1 << 30) + (1 << 20))\n"
        "attempt('ftruncate', os.ftruncate, fd, 1 << 40)\n"
        "attempt('pwrite_far', os.pwrite, fd, b'x', 1 << 40)\n"
    )
    seen = outcomes(probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}]))
    assert seen == {"immutable": "EPERM", "append_only": "EPERM", "fallocate": "EFBIG",
                    "ftruncate": "EFBIG", "pwrite_far": "EFBIG"}, seen
    assert os.stat(os.path.join(probe_dir, "f")).st_size == 0
    os.unlink(os.path.join(probe_dir, "f"))  # would fail were the file immutable


def test_host_submounts_under_the_system_binds_are_read_only_too(tmp_path):
    """/usr (and every other system or Python dir) is bound recursively; a host mount
    below it must be read-only in the sandbox like its parent, not only the top mount."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a host directory below /usr")
    sub = f"/usr/local/share/leeward-probe-{os.urandom(4).hex()}"
    os.makedirs(sub)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=1m", "tmpfs", sub], check=True)
        try:
            running = start_daemon(str(tmp_path))  # slots built now see the submount
            try:
                code = ATTEMPT_PRELUDE + (
                    f"line = [l.split() for l in open('/proc/self/mountinfo') if l.split()[4] == {sub!r}]\n"
                    "print('options', line[0][5].split(',')[0] if line else 'missing')\n"
                    f"attempt('write', lambda: open({sub!r} + '/x', 'w'))\n")
                seen = outcomes(running.execute(code))
            finally:
                running.stop()
        finally:
            subprocess.run(["umount", sub], check=True)
    finally:
        os.rmdir(sub)
    assert seen == {"options": "ro", "write": "EROFS"}, seen


def test_no_fifos_sockets_or_device_nodes_are_left_in_a_rw_mount(daemon, probe_dir):
    """Host code reading a rw mount's content after the job must not trip over a FIFO
    (its open blocks), a socket or a device node; the sandbox's own /tmp keeps FIFOs and
    sockets (multiprocessing's forkserver needs one), and no device node is made anywhere."""
    code = ATTEMPT_PRELUDE + (
        "import os, socket, stat\n"
        "def bind(path):\n"
        "    s = socket.socket(socket.AF_UNIX); s.bind(path); s.close()\n"
        "attempt('fifo_in_mount', os.mkfifo, '/out/fifo')\n"
        "attempt('socket_in_mount', bind, '/out/sock')\n"
        "attempt('whiteout_in_mount', os.mknod, '/out/wh', stat.S_IFCHR | 0o600, 0)\n"
        "attempt('whiteout_in_tmp', os.mknod, '/tmp/wh', stat.S_IFCHR | 0o600, 0)\n"
        "attempt('null_in_tmp', os.mknod, '/tmp/null', stat.S_IFCHR | 0o666, os.makedev(1, 3))\n"
        "attempt('fifo_in_tmp', os.mkfifo, '/tmp/fifo')\n"
        "attempt('socket_in_tmp', bind, '/tmp/sock')\n"
        "attempt('file_in_mount', lambda: open('/out/plain', 'w').write('ok'))\n")
    seen = outcomes(probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/out", "ro": False}]))
    assert seen.pop("fifo_in_tmp") == "OK" and seen.pop("socket_in_tmp") == "OK" and seen.pop("file_in_mount") == "OK"
    assert set(seen.values()) <= {"EACCES", "EPERM"}, seen
    assert sorted(os.listdir(probe_dir)) == ["plain"]
