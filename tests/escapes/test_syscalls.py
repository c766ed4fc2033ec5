"""Escape probes: the kernel's attack surface through raw syscalls. Dangerous calls are
refused (EPERM) and reported by name; foreign ABIs kill the process; unknown calls and
clone3 are ENOSYS; prctl is an allowlist."""
from __future__ import annotations

import pytest

from ._probe import SYSCALL_PRELUDE, lines, probe

pytestmark = pytest.mark.integration

SIGSYS = 31

# Group -> [(syscall name, x86_64 number, argument expression in the sandbox)]. The
# arguments are real attempts where that is harmless should one get through.
DANGEROUS = {
    "kernel_programs": [
        ("bpf", 321, "0, ctypes.create_string_buffer(72), 72"),              # BPF_MAP_CREATE
        ("perf_event_open", 298, "ctypes.create_string_buffer(128), 0, -1, -1, 0"),
        ("userfaultfd", 323, "0"),
    ],
    "keyrings": [
        ("keyctl", 250, "0, -3, 0"),                                        # KEYCTL_GET_KEYRING_ID session
        ("add_key", 248, "b'user', b'leeward', b'secret', 6, -4"),
        ("request_key", 249, "b'user', b'leeward', 0, 0"),
    ],
    "new_mount_api": [
        ("fsopen", 430, "b'tmpfs', 0"),
        ("fspick", 433, "-100, b'/tmp', 0"),
        ("fsconfig", 431, "0, 0, 0, 0, 0"),
        ("fsmount", 432, "0, 0, 0"),
        ("open_tree", 428, "-100, b'/usr', 1"),                             # OPEN_TREE_CLONE
        ("move_mount", 429, "-100, b'/tmp', -100, b'/usr', 0"),
        ("mount_setattr", 442, "-100, b'/usr', 0, ctypes.create_string_buffer(32), 32"),
    ],
    "old_mount_api": [
        ("mount", 165, "b'none', b'/tmp', b'tmpfs', 0, 0"),
        ("umount2", 166, "b'/tmp', 2"),
        ("pivot_root", 155, "b'/tmp', b'/tmp'"),
        ("chroot", 161, "b'/tmp'"),
    ],
    "clocks": [
        ("clock_settime", 227, "0, ctypes.create_string_buffer(16)"),
        ("settimeofday", 164, "ctypes.create_string_buffer(16), 0"),
        ("adjtimex", 159, "ctypes.create_string_buffer(208)"),
        ("clock_adjtime", 305, "0, ctypes.create_string_buffer(208)"),
    ],
    "kernel_code": [
        ("init_module", 175, "0, 0, b''"),
        ("finit_module", 313, "0, b'', 0"),
        ("delete_module", 176, "b'ext4', 0x800"),
        ("kexec_load", 246, "0, 0, 0, 0"),
        ("kexec_file_load", 320, "0, 0, 0, b'', 0"),
        ("reboot", 169, "0xfee1dead, 672274793, 0, 0"),                     # LINUX_REBOOT_CMD_CAD_OFF
    ],
    "file_handles": [
        ("name_to_handle_at", 303, "-100, b'/usr', ctypes.create_string_buffer(136), ctypes.byref(ctypes.c_int()), 0"),
        ("open_by_handle_at", 304, "0, ctypes.create_string_buffer(136), 0"),
    ],
    "numa": [
        ("set_mempolicy", 238, "2, ctypes.byref(ctypes.c_ulong(1)), 64"),    # MPOL_BIND node 0
        ("mbind", 237, "0, 4096, 2, ctypes.byref(ctypes.c_ulong(1)), 64, 0"),
        ("migrate_pages", 256, "0, 64, ctypes.byref(ctypes.c_ulong(1)), ctypes.byref(ctypes.c_ulong(1))"),
        ("move_pages", 279, "0, 0, 0, 0, 0, 0"),
    ],
    "host_admin": [
        ("acct", 163, "0"),
        ("swapon", 167, "b'/tmp/swap', 0"),
        ("swapoff", 168, "b'/tmp/swap'"),
        ("quotactl", 179, "0, b'/tmp', 0, 0"),
        ("syslog", 103, "3, ctypes.create_string_buffer(4096), 4096"),      # SYSLOG_ACTION_READ_ALL
        ("vhangup", 153, ""),
    ],
    "port_io": [
        ("iopl", 172, "3"),
        ("ioperm", 173, "0x80, 1, 1"),
    ],
}


@pytest.mark.parametrize("group", sorted(DANGEROUS))
def test_dangerous_syscalls_are_refused_and_reported(daemon, group):
    calls = DANGEROUS[group]
    code = SYSCALL_PRELUDE + "".join(f"print({name!r}, *syscall({nr}, {args}))\n" for name, nr, args in calls)
    result = probe(daemon, code)
    assert lines(result) == [f"{name} -1 EPERM" for name, _, _ in calls]
    assert result.denied_syscalls == [name for name, _, _ in calls]


def test_hostname_and_domainname_cannot_be_changed(daemon):
    code = SYSCALL_PRELUDE + (
        "import socket\n"
        "print(*syscall(170, b'pwned', 5))\n"
        "print(*syscall(171, b'pwned', 5))\n"
        "print(socket.gethostname(), os.uname().nodename, open('/proc/sys/kernel/hostname').read().strip())\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["-1 EPERM", "-1 EPERM", "leeward leeward leeward"]
    assert result.denied_syscalls == ["sethostname", "setdomainname"]


def test_seccomp_cannot_install_a_filter_or_listener_of_its_own(daemon):
    """A job that installed its own filter with a listener could answer syscalls for
    itself; one allow-all instruction is enough to try."""
    code = SYSCALL_PRELUDE + (
        "import struct\n"
        "insn = ctypes.create_string_buffer(struct.pack('=HBBI', 0x06, 0, 0, 0x7fff0000))  # RET ALLOW\n"
        "prog = struct.pack('=HxxxxxxQ', 1, ctypes.addressof(insn))\n"
        "print('filter', *syscall(317, 1, 8, ctypes.create_string_buffer(prog)))\n"   # NEW_LISTENER
        "print('strict', *syscall(317, 0, 0, 0))\n"                                    # SECCOMP_SET_MODE_STRICT
        "print('prctl', *syscall(157, 22, 2, ctypes.create_string_buffer(prog), 0, 0))\n"  # PR_SET_SECCOMP
        "print('mode', *syscall(157, 21, 0, 0, 0, 0))\n"                               # PR_GET_SECCOMP
    )
    result = probe(daemon, code)
    assert lines(result) == ["filter -1 EPERM", "strict -1 EPERM", "prctl -1 EINVAL", "mode 2 OK"]
    assert result.denied_syscalls == ["seccomp"]


# prctl options off the allowlist; any of them would loosen the sandbox.
PRCTL_REFUSED = {"PR_SET_DUMPABLE": (4, 1), "PR_SET_KEEPCAPS": (8, 1), "PR_CAPBSET_DROP": (24, 0),
                 "PR_SET_SECUREBITS": (28, 0), "PR_SET_MM": (35, 8), "PR_SET_PTRACER": (0x59616D61, -1),
                 "PR_SET_SPECULATION_CTRL": (53, 0), "PR_SET_IO_FLUSHER": (57, 1)}


def test_prctl_outside_the_allowlist_is_einval_and_nnp_stays_set(daemon):
    code = SYSCALL_PRELUDE + (
        f"for name, (option, arg) in {PRCTL_REFUSED!r}.items():\n"
        "    print(name, *syscall(157, option, arg, 0, 0, 0))\n"
        "print('clear_nnp', *syscall(157, 38, 0, 0, 0, 0))\n"
        "print('nnp', *syscall(157, 39, 0, 0, 0, 0))\n"
        "print('dumpable', *syscall(157, 3, 0, 0, 0, 0))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == [f"{name} -1 EINVAL" for name in PRCTL_REFUSED] + [
        "clear_nnp -1 EINVAL", "nnp 1 OK", "dumpable 1 OK"]
    assert result.denied_syscalls == []


def test_unknown_syscalls_are_enosys_and_unreported(daemon):
    code = SYSCALL_PRELUDE + (
        "print('landlock_create_ruleset', *syscall(444, 0, 0, 1))\n"
        "print('memfd_secret', *syscall(447, 0))\n"
        "print('process_madvise', *syscall(440, 0, 0, 0, 0, 0))\n"
        "print('nr_1000', *syscall(1000))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == [f"{name} -1 ENOSYS" for name in
                             ("landlock_create_ruleset", "memfd_secret", "process_madvise", "nr_1000")]
    assert result.denied_syscalls == []


def test_clone3_is_enosys_and_threads_and_fork_still_work(daemon):
    code = SYSCALL_PRELUDE + (
        "import threading\n"
        "args = ctypes.create_string_buffer(88)\n"
        "ctypes.memmove(args, (17).to_bytes(8, 'little'), 0)\n"
        "value, err = syscall(435, args, 88)\n"
        "if value == 0: os._exit(0)\n"
        "print('clone3', value, err)\n"
        "out = []\n"
        "threads = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "pid = os.fork()\n"
        "if pid == 0: os._exit(7)\n"
        "print('threads', sorted(out), 'fork', os.waitpid(pid, 0)[1] >> 8)\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["clone3 -1 ENOSYS", "threads [0, 1, 2, 3, 4, 5, 6, 7] fork 7"]
    assert result.denied_syscalls == []


def test_clone_with_namespace_flags_is_refused_and_reported(daemon):
    code = SYSCALL_PRELUDE + (
        "for flag in (0x10000000, 0x20000000, 0x40000000, 0x20000, 0x8000000, 0x4000000, 0x2000000):\n"
        "    value, err = syscall(56, flag | 17, 0, 0, 0, 0)\n"   # | SIGCHLD, fork-like
        "    if value == 0: os._exit(0)\n"
        "    print(hex(flag), value, err)\n"
    )
    result = probe(daemon, code)
    assert [line.split(" ", 1)[1] for line in lines(result)] == ["-1 EPERM"] * 7
    assert result.denied_syscalls == ["clone"]


def test_personality_changes_are_refused_and_reported(daemon):
    code = SYSCALL_PRELUDE + (
        "print('query', *syscall(135, 0xFFFFFFFF))\n"
        "print('linux32', *syscall(135, 0x0008))\n"            # PER_LINUX32
        "print('no_aslr', *syscall(135, 0x0040000))\n"         # ADDR_NO_RANDOMIZE
        "print('exec_heap', *syscall(135, 0x0400000))\n"       # READ_IMPLIES_EXEC
        "print('after', *syscall(135, 0xFFFFFFFF))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["query 0 OK", "linux32 -1 EPERM", "no_aslr -1 EPERM", "exec_heap -1 EPERM",
                             "after 0 OK"]
    assert result.denied_syscalls == ["personality"]


def test_terminal_injection_ioctls_are_refused_and_reported(daemon):
    code = SYSCALL_PRELUDE + (
        "c = ctypes.c_char(b'x')\n"
        "print('tiocsti', *syscall(16, 0, 0x5412, ctypes.byref(c)))\n"
        "print('tiocsti_junk', *syscall(16, 0, (1 << 32) | 0x5412, ctypes.byref(c)))\n"  # kernel reads 32 bits
        "print('tioclinux', *syscall(16, 1, 0x541C, ctypes.byref(c)))\n"
        "print('tty', os.path.exists('/dev/tty'), os.path.exists('/dev/console'))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["tiocsti -1 EPERM", "tiocsti_junk -1 EPERM", "tioclinux -1 EPERM", "tty False False"]
    assert result.denied_syscalls == ["ioctl"]


# Machine code: mov eax, <nr>; int 0x80; ret. i386 syscall 20 is getpid.
INT80 = (
    "import ctypes, mmap, sys\n"
    "print('before', flush=True)\n"
    "try:\n"
    "    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
    "except OSError as e:\n"
    "    print('mmap refused', e.errno); sys.exit(0)\n"
    "page.write(b'\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3')\n"
    "fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))\n"
    "print('i386 getpid', fn(), flush=True)\n"
)


def test_int80_i386_syscall_kills_the_process(daemon):
    result = probe(daemon, INT80)
    if b"mmap refused" in result.stdout:  # W^X refusal is a safe outcome too
        assert result.stdout.startswith(b"before\nmmap refused ")
        return
    assert (result.exit_code, result.stdout, result.timed_out) == (-SIGSYS, b"before\n", False), result


@pytest.mark.parametrize("name, nr, args", [
    ("getpid", 39, ""),
    ("socket", 41, "2, 1, 0"),            # would be AF_INET through the x32 table
    ("ptrace", 101, "0, 0, 0, 0"),
])
def test_x32_syscall_numbers_kill_the_process(daemon, name, nr, args):
    code = SYSCALL_PRELUDE + (
        "print('before', flush=True)\n"
        f"print('x32 {name}', *syscall(0x40000000 | {nr}{', ' if args else ''}{args}), flush=True)\n"
    )
    result = probe(daemon, code)
    assert (result.exit_code, result.stdout, result.timed_out) == (-SIGSYS, b"before\n", False), result


def test_random_device_ioctls_are_refused(daemon):
    """Entropy poisoning: crediting, clearing or reseeding the host's pool needs
    CAP_SYS_ADMIN (writing bytes in is allowed and credits nothing)."""
    code = SYSCALL_PRELUDE + (
        "fd = os.open('/dev/urandom', os.O_RDWR)\n"
        "count = ctypes.c_int(4096)\n"
        "print('addtoentcnt', *syscall(16, fd, 0x40045201, ctypes.byref(count)))\n"
        "print('zapentcnt', *syscall(16, fd, 0x5204, 0))\n"
        "print('clearpool', *syscall(16, fd, 0x5206, 0))\n"
        "print('reseed', *syscall(16, fd, 0x5207, 0))\n"
        "print('write', os.write(fd, b'\\x00' * 64))\n"
    )
    result = probe(daemon, code)
    assert lines(result) == ["addtoentcnt -1 EPERM", "zapentcnt -1 EPERM", "clearpool -1 EPERM",
                             "reseed -1 EPERM", "write 64"]
