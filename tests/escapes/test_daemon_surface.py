"""Escape probes: the daemon itself as the target. Its fds, environment and socket stay
out of reach; its result channel survives junk; no job leaves anything for the next;
nothing a job can exec brings a privilege back."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import msgpack
import pytest

from tests.conftest import start_daemon

from ._probe import ATTEMPT_PRELUDE, FIND_CHANNEL, OWN_TMP, SYSCALL_PRELUDE, lines, outcomes, probe, refused

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-leeward-probe"
SAFE_ENV_NAMES = ["HOME", "LANG", "PATH", "TMPDIR", "USER"]

@pytest.fixture(scope="module")
def own_daemon(tmp_path_factory):
    """A daemon with a secret in its environment, whose allowed_paths include the
    directory holding its own socket."""
    directory = str(tmp_path_factory.mktemp("own-daemon"))
    os.chmod(directory, 0o755)
    running = start_daemon(directory, "--allow-path", directory,
                           env={**os.environ, "LEEWARD_PROBE_SECRET": SECRET})
    yield running
    running.stop()


def test_only_stdio_and_the_result_channel_are_open(daemon):
    """Probed with fstat over the whole fd range, not just /proc's listing."""
    code = ("import os, stat\n"
            "open_fds = []\n"
            "for fd in range(0, 1 << 16):\n"
            "    try: os.fstat(fd); open_fds.append(fd)\n"
            "    except OSError: pass\n"
            "def kind(fd):\n"
            "    link = os.readlink(f'/proc/self/fd/{fd}')\n"
            "    return link.split(':')[0] if ':' in link else link\n"
            "print([(fd, kind(fd)) for fd in open_fds[:3]], len(open_fds), kind(open_fds[3]))\n")
    assert lines(probe(daemon, code)) == ["[(0, '/memfd'), (1, 'pipe'), (2, 'pipe')] 4 socket"]


def test_daemon_environment_never_reaches_a_job(own_daemon):
    code = ("import os\n"
            "secret = 'leeward-probe'.encode()\n"
            "def leaks(path):\n"
            "    try: return secret in open(path, 'rb').read()\n"
            "    except OSError: return False\n"
            "print(sorted(os.environ))\n"
            "print([k for k, v in os.environ.items() if 'leeward-probe' in v or 'LEEWARD_PROBE' in k])\n"
            "print([p for p in os.listdir('/proc') if p.isdigit()\n"
            "       and (leaks(f'/proc/{p}/environ') or leaks(f'/proc/{p}/cmdline'))])\n"
            "import subprocess\n"
            "print(subprocess.run(['cat', '/proc/self/environ'], capture_output=True).stdout.count(secret))\n")
    assert lines(probe(own_daemon, code)) == [str(SAFE_ENV_NAMES), "[]", "[]", "0"]


def test_the_daemon_socket_cannot_be_found_or_reached(daemon):
    path = daemon.socket_path
    code = ATTEMPT_PRELUDE + (
        "import os, socket, stat\n"
        "def connect(address):\n"
        "    socket.socket(socket.AF_UNIX).connect(address)\n"
        f"attempt('path', connect, {path!r})\n"
        f"attempt('via_proc_root', connect, '/proc/1/root' + {path!r})\n"
        f"attempt('abstract', connect, '\\0' + {path!r})\n"
        "sockets = []\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    if root == '/': dirs.remove('proc')\n"
        "    sockets += [f for f in files if stat.S_ISSOCK(os.lstat(os.path.join(root, f)).st_mode)]\n"
        "print('socket_files', len(sockets))\n"
        f"print('proc_net_unix', {path!r} in open('/proc/net/unix').read())\n"
    )
    seen = outcomes(probe(daemon, code))
    assert seen == {"path": "ENOENT", "via_proc_root": "ENOENT", "abstract": "ECONNREFUSED",
                    "socket_files": "0", "proc_net_unix": "False"}


def test_the_daemon_socket_directory_cannot_be_mounted(own_daemon):
    directory = os.path.dirname(own_daemon.socket_path)
    sub = os.path.join(directory, "jobs")
    os.makedirs(sub, exist_ok=True)
    os.chmod(sub, 0o777)
    for host in (directory, own_daemon.socket_path, directory + "/jobs/.."):
        err = refused(own_daemon, "print(1)", mounts=[{"host": host, "sandbox": "/data", "ro": False}])
        assert err.code == "E2006", (host, err)
    # A sibling directory may be mounted; a symlink planted in it leads nowhere.
    code = ATTEMPT_PRELUDE + (
        "import os, socket\n"
        "os.symlink('../leeward.sock', '/data/sock')\n"
        "attempt('relative_link', lambda: socket.socket(socket.AF_UNIX).connect('/data/sock'))\n"
        f"attempt('absolute', lambda: socket.socket(socket.AF_UNIX).connect({own_daemon.socket_path!r}))\n"
    )
    assert outcomes(probe(own_daemon, code, mounts=[{"host": sub, "sandbox": "/data", "ro": False}])) == {
        "relative_link": "ENOENT", "absolute": "ENOENT"}
    err = refused(own_daemon, "print(1)", mounts=[{"host": os.path.join(sub, "sock"), "sandbox": "/data"}])
    assert err.code == "E2008"


def test_nothing_a_job_plants_is_seen_by_the_next(daemon):
    key = int.from_bytes(os.urandom(3), "big") + 1
    abstract = f"\0leeward-plant-{key}"
    ipc = SYSCALL_PRELUDE + (
        f"key = {key}\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]\n"
        "def res(v):\n"
        "    return 'OK' if v >= 0 else errno.errorcode[ctypes.get_errno()]\n"
        "mq = f'/leeward-{key}'.encode()\n"
    )
    plant = ipc + (
        "import socket\n"
        "open('/tmp/marker', 'w').write('m'); open('/dev/shm/marker', 'w').write('m')\n"
        "print('shm', res(libc.shmget(key, 4096, 0o1666)), 'msg', res(libc.msgget(key, 0o1666)),\n"
        "      'sem', res(libc.semget(key, 1, 0o1666)), 'mq', res(libc.mq_open(mq, 0o100 | 2, 0o666, None)))\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.bind({abstract!r}); s.listen(1)\n"
        "if os.fork() == 0:\n"
        "    os.setsid(); __import__('time').sleep(300)\n"  # tries to keep the socket alive
        "print('planted')\n"
    )
    planted = lines(probe(daemon, plant))
    # POSIX queues may be refused outright (EACCES on the ipc namespace's mqueue root).
    assert planted in (["shm OK msg OK sem OK mq OK", "planted"], ["shm OK msg OK sem OK mq EACCES", "planted"])
    look = ipc + OWN_TMP + (
        "import socket\n"
        "print(own_tmp(), os.listdir('/dev/shm'))\n"
        "print('shm', res(libc.shmget(key, 0, 0)), 'msg', res(libc.msgget(key, 0)),\n"
        "      'sem', res(libc.semget(key, 0, 0)), 'mq', res(libc.mq_open(mq, 0, 0, None)))\n"
        "print([len(open(f'/proc/sysvipc/{n}').read().splitlines()) for n in ('shm', 'msg', 'sem')])\n"
        "try:\n"
        f"    socket.socket(socket.AF_UNIX).connect({abstract!r}); print('abstract reached')\n"
        "except OSError as e:\n"
        "    print('abstract', errno.errorcode[e.errno])\n"
    )
    for _ in range(3):  # every ready slot, and one built after the plant
        assert lines(daemon.execute(look)) == ["[] []", "shm ENOENT msg ENOENT sem ENOENT mq ENOENT",
                                               "[1, 1, 1]", "abstract ECONNREFUSED"]


JUNK = {
    "bad_length": b"\xff\xff\xff\xff" + os.urandom(4096),
    "oversized_frame": (16 << 20).to_bytes(4, "big") + b"\x00" * 4096,
    "not_msgpack": (3).to_bytes(4, "big") + b"\xc1\xc1\xc1",
    "not_a_map": (4).to_bytes(4, "big") + msgpack.packb([1, 2, 3]),
    "flood": b"".join((len(f := msgpack.packb({"op": "noise", "n": i}))).to_bytes(4, "big") + f for i in range(2000)),
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_junk_on_the_result_channel_only_hurts_the_job_itself(daemon, name):
    code = FIND_CHANNEL + (
        f"junk = {JUNK[name]!r}\n"
        "try:\n"
        "    os.write(channel, junk)\n"
        "except OSError as e:\n"
        "    pass\n"
        "print('sent', flush=True)\n"
    )
    result = probe(daemon, code)
    # The daemon stops listening to this job's channel; the job's own result is whatever
    # its process did (ran to the end, or killed when the channel was dropped).
    assert result.exit_code in (0, -9), result
    assert result.stdout in (b"sent\n", b""), result
    assert result.timed_out is False


def test_a_forged_result_cannot_hide_denials_or_fake_kernel_accounting(daemon):
    forged = {"op": "result", "exit_code": 0, "duration_ms": 1.0, "cpu_time_us": 1, "memory_peak": 1,
              "error": None, "denied_syscalls": [], "oom_killed": True, "timed_out": True,
              "limits": "none", "stdout_truncated": True}
    frame = msgpack.packb(forged)
    code = FIND_CHANNEL + (
        "import socket\n"
        "try: socket.socket(socket.AF_INET)\n"
        "except OSError: pass\n"
        "x = sum(i * i for i in range(3 * 10**6))\n"  # some real CPU time to account
        f"os.write(channel, {len(frame).to_bytes(4, 'big') + frame!r})\n"
        "print('forged', flush=True)\n"
    )
    backend = daemon.execute("pass").limits  # whichever this host gives: never the job's word
    result = probe(daemon, code)
    assert result.denied_syscalls == ["socket"]
    assert backend != "none" and (result.timed_out, result.oom_killed, result.stdout_truncated, result.limits) == \
        (False, False, False, backend)
    assert result.memory_peak > 64 << 10 and result.cpu_time_us > 10_000, result  # the kernel's, not 1


def test_fds_smuggled_over_the_result_channel_do_not_pile_up_in_the_daemon(daemon):
    marker = f"leeward-smuggled-{os.urandom(4).hex()}"
    body = msgpack.packb({"op": "started"})
    frame = len(body).to_bytes(4, "big") + body
    code = FIND_CHANNEL + (
        "import array, socket\n"
        "sock = socket.socket(fileno=channel)\n"
        f"fds = [os.memfd_create('{marker}') for _ in range(16)]\n"
        "sent = 0\n"
        "try:\n"
        "    for i in range(64):\n"
        f"        sock.sendmsg([{frame!r}],\n"  # a forged "started", as if carrying a listener
        "                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))]); sent += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print('sent', sent > 0, flush=True)\n"
    )
    result = probe(daemon, code)
    assert result.stdout in (b"sent True\n", b""), result
    held = []
    for fd in os.listdir(f"/proc/{daemon.process.pid}/fd"):
        try:
            if marker in os.readlink(f"/proc/{daemon.process.pid}/fd/{fd}"):
                held.append(fd)
        except OSError:
            pass
    assert held == []


def test_capabilities_cannot_be_regained(daemon):
    code = SYSCALL_PRELUDE + ATTEMPT_PRELUDE + (
        "import subprocess\n"
        "attempt('setuid0', os.setuid, 0)\n"
        "attempt('setresuid0', os.setresuid, 0, 0, 0)\n"
        "attempt('setgroups', os.setgroups, [0])\n"
        "header = (ctypes.c_uint32 * 2)(0x20080522, 0)\n"
        "data = (ctypes.c_uint32 * 6)(*[0xFFFFFFFF] * 6)\n"
        "print('capset', syscall(126, header, data)[1])\n"
        "print('ambient_raise', syscall(157, 47, 2, 21, 0, 0)[1])\n"  # PR_CAP_AMBIENT_RAISE CAP_SYS_ADMIN
        "keys = ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters')\n"
        "def status(text):\n"
        "    fields = dict(l.split(':', 1) for l in text.splitlines())\n"
        "    return ' '.join(fields[k].strip() for k in keys)\n"
        "print('self', status(open('/proc/self/status').read()))\n"
        "print('exec', status(subprocess.run(['cat', '/proc/self/status'], capture_output=True, text=True).stdout))\n"
    )
    expected_status = " ".join(["0000000000000000"] * 5 + ["1", "2", "1"])
    assert outcomes(probe(daemon, code)) == {
        "setuid0": "EINVAL", "setresuid0": "EINVAL", "setgroups": "EPERM", "capset": "EPERM",
        "ambient_raise": "EPERM", "self": expected_status, "exec": expected_status}


def test_host_planted_setuid_and_file_capability_binaries_grant_nothing(daemon, probe_dir):
    """Host root leaves a setuid-root and a cap_sys_admin binary in a directory a job may
    mount read-write (rw job mounts are not nosuid): running them changes nothing."""
    suid = os.path.join(probe_dir, "suid-sleep")
    capped = os.path.join(probe_dir, "cap-sleep")
    for path in (suid, capped):
        shutil.copy("/bin/sleep", path)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    subprocess.run(["setcap", "cap_sys_admin,cap_net_raw,cap_dac_override+eip", capped], check=True)
    code = (
        "import os, subprocess, time\n"
        "for name in ('suid-sleep', 'cap-sleep'):\n"
        "    try:\n"
        "        p = subprocess.Popen([f'/data/{name}', '30'])\n"
        "    except OSError as e:\n"
        "        print(name, 'refused', e.errno); continue\n"
        "    deadline, seen = time.monotonic() + 30, None\n"
        "    while seen is None and time.monotonic() < deadline:\n"
        "        fields = dict(l.split(':', 1) for l in open(f'/proc/{p.pid}/status').read().splitlines())\n"
        "        if fields['Name'].strip() == name[:15] and fields['State'].split()[0] == 'S':\n"
        "            seen = [' '.join(fields[k].split()) for k in ('Uid', 'CapPrm', 'CapEff')]\n"
        "        time.sleep(0.01)\n"
        "    p.kill(); p.wait()\n"
        "    print(name, seen)\n"
    )
    unprivileged = "['1000 1000 1000 1000', '0000000000000000', '0000000000000000']"
    suid_line, cap_line = lines(probe(daemon, code, mounts=[{"host": probe_dir, "sandbox": "/data", "ro": False}]))
    assert suid_line == f"suid-sleep {unprivileged}"
    # The kernel refuses to exec a file whose effective file capabilities cannot all be
    # granted (the bounding set is empty): EPERM. Running without them is safe too.
    assert cap_line in ("cap-sleep refused 1", f"cap-sleep {unprivileged}")


def test_no_trace_of_a_previous_jobs_data_in_a_later_jobs_memory(daemon):
    """Job A carries a token in its code, env, stdin and files; later jobs scan every
    readable byte of their own address space for it (matching by hash, so the scanner
    never holds the token itself)."""
    token = f"leeward-xjob-{os.urandom(12).hex()}"
    digest = hashlib.sha256(token.encode()).hexdigest()
    first = probe(daemon, f"import os; x = {token!r}; print(len(os.environ['T']), len(open('f').read()), len(input()))",
                  env={"T": token}, files={"f": token.encode()}, stdin=token.encode() + b"\n")
    assert lines(first) == [f"{len(token)} {len(token)} {len(token)}"]
    scan = (
        "import hashlib, re\n"
        "pattern = re.compile(rb'leeward-xjob-[0-9a-f]{24}')\n"
        "found, scanned = set(), 0\n"
        "mem = open('/proc/self/mem', 'rb', buffering=0)\n"
        "for line in open('/proc/self/maps').read().splitlines():\n"
        "    span, perms = line.split()[:2]\n"
        "    start, end = (int(x, 16) for x in span.split('-'))\n"
        "    if 'r' not in perms or end - start > 1 << 30: continue\n"
        "    try:\n"
        "        mem.seek(start); data = mem.read(end - start)\n"
        "    except (OSError, OverflowError, ValueError): continue\n"
        "    scanned += len(data)\n"
        "    found |= {hashlib.sha256(m.group()).hexdigest() for m in pattern.finditer(data)}\n"
        "print(scanned > 1 << 20, sorted(found))\n"
    )
    for _ in range(3):  # the slots built before job A, and one built after it
        assert lines(daemon.execute(scan, timeout_secs=120)) == ["True []"], digest
