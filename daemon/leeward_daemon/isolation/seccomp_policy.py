"""Seccomp: a wide allowlist for CPython and its scientific stack, the rest refused.

Before the job (zygote start-up): `compile_policy()` builds the BPF program once.
In the job, last of all layers: `install(bpf, notify=True)`; the listener fd goes to the
supervisor, which wraps it in a `DenialReporter` to fill `denied_syscalls`.

Outcomes (DESIGN.md "Seccomp facts that MUST hold"):
- not x86_64 (i386 `int 0x80`, ...) or an x32 number (nr >= 0x40000000): kill the process;
- allowlisted: run;
- dangerous (`_DANGEROUS`, namespace flags on clone, TIOCSTI/TIOCLINUX, non-AF_UNIX
  sockets without networking, personality changes, mbind other than OpenBLAS's
  "prefer local node", file watching, a set-id file mode, fcntl F_NOTIFY/F_SETLEASE):
  NOTIFY, so the supervisor records the name and answers EPERM — or plain ERRNO(EPERM)
  when notify=False;
- lock requests and page-cache eviction (below): 0, without doing anything, unreported;
- prctl options off `_PRCTL_ALLOWED`, fcntl commands this module does not know: EINVAL,
  unreported;
- everything else, clone3 and openat2 included: ENOSYS, unreported. clone3 must be
  ENOSYS, not EPERM: glibc falls back to clone only on ENOSYS, and OpenBLAS/pthread_create
  break otherwise.

What crosses the sandbox boundary through a shared inode. The read-only binds (system,
Python, a job's ro mounts) are the host's own inodes, shared by every sandbox and every
host process, and some kernel state hangs off the inode, not the mount:
- File watching: inotify, fanotify and dnotify (fcntl F_NOTIFY) on a stdlib directory
  show a job which files other sandboxes and host processes open. All refused and
  reported. Leases (F_SETLEASE) are refused too: a lease holds up another opener.
- Locks. flock(LOCK_EX) of a file opened read-only from a ro bind blocks a host process's
  flock of the same file (a SQLite writer on the host sees BUSY), and two concurrent jobs
  can signal each other through flock on os.py. Advisory locks belong to the inode, and
  no kernel knob scopes them to a mount or a namespace; seccomp cannot tell a private
  /tmp file from a shared one by the fd number, and answering a notification with
  SECCOMP_USER_NOTIF_FLAG_CONTINUE after looking at the fd would be a TOCTOU (the job
  can dup2 another file onto that number in between). So every lock *request* —
  flock(2) and fcntl F_SETLK/F_SETLKW/F_OFD_SETLK/F_OFD_SETLKW — answers 0 and takes no
  lock, unreported: sqlite3 and filelock-style code keep working within one process,
  and nothing a job does is ever seen by another lock holder. Lock *queries* (F_GETLK,
  F_OFD_GETLK) stay real; since a job holds no lock they answer F_UNLCK on its own files,
  which is what sqlite's WAL open and hot-journal check need (on a shared file they do
  show a host process's lock: one way, host to job, nothing a job can answer). The
  price: a job's own processes get no mutual exclusion from file locks (two processes
  of one job writing one SQLite file can corrupt it; a multiprocessing Lock, a
  semaphore, still works).
- Page cache: posix_fadvise(POSIX_FADV_DONTNEED) evicts a shared file's pages for the
  host too; it answers 0 and does nothing (other advice runs). cachestat(2), a page-cache
  residency probe, is refused and reported.
- Set-id files: a mode with S_ISUID or S_ISGID in open/openat/creat/mknod(at)/chmod/
  fchmod/fchmodat/fchmodat2 is refused and reported, so a job cannot leave a setuid
  file in a rw mount for host code to run.

Programs (argv jobs) need nothing more. Measured 2026-11-30 with `strace -f` on a
workload of sh, bash, coreutils, grep, sed, awk, tar, gzip/xz/bzip2, python3 (threads,
subprocess, multiprocessing, sqlite3) and node (child_process, worker_threads): every
syscall they made is allowlisted or passes its gate (ioctl TCGETS/TIOCGPGRP/TIOCGWINSZ/
FIONBIO/FICLONE, fcntl F_DUPFD*/F_GETFD/F_SETFD/F_GETFL/F_SETFL, socket and socketpair
AF_UNIX, clone without namespace flags after clone3's ENOSYS, fadvise64 SEQUENTIAL);
tests/integration/test_argv.py runs that workload in a sandbox with no refusal. The one
addition is PR_SET_DUMPABLE to 0 (below), which the slot uses for itself.

Notification is reporting, never a decision: `DenialReporter` only ever answers an errno,
never SECCOMP_USER_NOTIF_FLAG_CONTINUE, and the job may not call seccomp(2) itself, so it
cannot install a listener of its own.

How the program is built: libseccomp (pyseccomp) generates the per-syscall table, the
architecture and x32 checks, and the bit tests on clone flags and file modes
(SCMP_CMP_MASKED_EQ). Some syscalls need "this argument is one of these values, else
..." with several outcomes, and libseccomp 2.5 cannot say that: a rule may not compare
the same argument twice (EINVAL), and a conditional rule added to a syscall that also
has an unconditional one is silently dropped. So those gates (`_gates`: ioctl, socket,
socketpair, personality, prctl, fcntl, fadvise64) are a hand-assembled prefix of ~90
instructions that runs before libseccomp's program and falls through into it for the
values it lets on; libseccomp's program allows those syscalls unconditionally.
The prefix compares the low 32 bits of the argument only, which is what the kernel uses
for these int/unsigned int arguments (a full 64-bit compare would let TIOCSTI with junk
in the upper half through).
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import select
import struct
from dataclasses import dataclass

import pyseccomp as sc

from .. import linux
from ..errors import SeccompError

AUDIT_ARCH_X86_64 = 0xC000003E

# uapi/linux/seccomp.h
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
_BPF_MAXINSNS = 4096

# Syscalls newer than libseccomp 2.5.4's table (x86_64 numbers, arch/x86/entry/syscalls).
_NEWER_SYSCALLS = {
    "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
    "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
    "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467,
    "file_getattr": 468, "file_setattr": 469,
}
_NEWER_NAMES = {nr: name for name, nr in _NEWER_SYSCALLS.items()}

_ALLOWED = """
    read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 lseek close
    stat fstat lstat newfstatat statx statfs fstatfs access
    faccessat faccessat2 readlink readlinkat getdents getdents64 getcwd chdir fchdir
    mkdir mkdirat rmdir rename renameat renameat2 link linkat unlink unlinkat symlink
    symlinkat chown fchown lchown fchownat umask
    truncate ftruncate fallocate readahead fsync fdatasync sync syncfs
    sync_file_range dup dup2 dup3 pipe pipe2 splice tee vmsplice sendfile
    copy_file_range utime utimes utimensat futimesat close_range
    getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr setxattr lsetxattr
    fsetxattr removexattr lremovexattr fremovexattr
    poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
    epoll_pwait2 eventfd eventfd2 signalfd signalfd4 timerfd_create timerfd_settime
    timerfd_gettime
    mmap munmap mprotect mremap msync mincore madvise brk mlock mlock2 munlock mlockall
    munlockall memfd_create membarrier pkey_mprotect pkey_alloc pkey_free mseal
    map_shadow_stack get_mempolicy
    fork vfork execve execveat exit exit_group wait4 waitid set_tid_address
    set_robust_list get_robust_list rseq arch_prctl restart_syscall
    futex futex_waitv futex_wake futex_wait futex_requeue
    rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend
    rt_sigqueueinfo rt_tgsigqueueinfo sigaltstack kill tkill tgkill pause
    pidfd_open pidfd_send_signal
    nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time alarm
    getitimer setitimer timer_create timer_settime timer_gettime timer_getoverrun
    timer_delete
    getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid getgroups
    setuid setgid setreuid setregid setresuid setresgid setgroups setfsuid setfsgid
    getpgid setpgid getpgrp getsid setsid capget capset
    getrlimit setrlimit prlimit64 getrusage times sysinfo uname getcpu getrandom
    getpriority setpriority ioprio_get ioprio_set sched_yield sched_getaffinity
    sched_setaffinity sched_getparam sched_setparam sched_getscheduler
    sched_setscheduler sched_get_priority_max sched_get_priority_min
    sched_rr_get_interval sched_getattr sched_setattr
    connect accept accept4 bind listen shutdown getsockname getpeername getsockopt
    setsockopt sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg
    shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl
    mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr
""".split()

# Refused and reported. Kernel attack surface or host-wide state no job has a use for, and
# the ways to watch shared inodes (file watching, cachestat: module docstring).
_DANGEROUS = """
    ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd
    mount umount2 pivot_root chroot fsopen fsconfig fsmount fspick move_mount open_tree
    open_tree_attr mount_setattr unshare setns
    bpf perf_event_open userfaultfd io_uring_setup io_uring_enter io_uring_register
    keyctl add_key request_key
    kexec_load kexec_file_load init_module finit_module delete_module reboot
    settimeofday clock_settime clock_adjtime adjtimex sethostname setdomainname
    open_by_handle_at name_to_handle_at
    mbind migrate_pages move_pages set_mempolicy set_mempolicy_home_node
    seccomp acct swapon swapoff quotactl quotactl_fd lookup_dcookie vhangup syslog
    iopl ioperm
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_init fanotify_mark
    cachestat
""".split()

_CLONE_NEW_FLAGS = (
    linux.CLONE_NEWNS | linux.CLONE_NEWCGROUP | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
    | linux.CLONE_NEWUSER | linux.CLONE_NEWPID | linux.CLONE_NEWNET
)  # CLONE_NEWTIME (0x80) is clone3-only: in clone() those bits are the exit signal.

_AF_UNIX, _AF_INET, _AF_INET6 = 1, 2, 10
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C
_MPOL_PREFERRED = 1
_PER_LINUX, _PERSONALITY_QUERY = 0, 0xFFFFFFFF

# prctl options a job may use; the rest get EINVAL (what the kernel says for an option it
# lacks, so probing callers take their fallback), unreported. Notably absent:
# PR_SET_SECCOMP, PR_SET_MM, PR_SET_PTRACER, PR_SET_SPECULATION_CTRL; PR_SET_DUMPABLE
# only to 0 (_PR_SET_DUMPABLE below).
_PRCTL_ALLOWED = (
    1, 2,  # PR_SET/GET_PDEATHSIG
    3,  # PR_GET_DUMPABLE
    7,  # PR_GET_KEEPCAPS
    15, 16,  # PR_SET/GET_NAME
    21,  # PR_GET_SECCOMP
    23,  # PR_CAPBSET_READ
    27,  # PR_GET_SECUREBITS
    29, 30,  # PR_SET/GET_TIMERSLACK
    36, 37,  # PR_SET/GET_CHILD_SUBREAPER
    38, 39,  # PR_SET/GET_NO_NEW_PRIVS
    40,  # PR_GET_TID_ADDRESS
    41, 42,  # PR_SET/GET_THP_DISABLE
    47,  # PR_CAP_AMBIENT (securebits lock raising; reading and clearing are harmless)
    52,  # PR_GET_SPECULATION_CTRL
    65, 66,  # PR_SET/GET_MDWE (can only restrict)
    0x41555856,  # PR_GET_AUXV
    0x53564D41,  # PR_SET_VMA (glibc names anonymous mappings)
)
# PR_SET_DUMPABLE to 0 only: a process may put its memory and /proc files out of reach
# of its own uid (a one-shot argv job's pid 1 does, before it starts the program whose
# status it reports: runner.py), never back within reach (after an execve of an
# unreadable binary, say).
_PR_SET_DUMPABLE = 4

# fcntl commands (uapi/linux/fcntl.h, asm-generic/fcntl.h). Three outcomes plus a default:
# - run: the fd-local commands and the lock *queries* (sqlite's WAL open and hot-journal
#   check need F_GETLK to answer F_UNLCK, which it does: no job ever holds a lock);
_FCNTL_RUN = (
    1, 2, 3, 4, 1030, 0,  # F_GETFD F_SETFD F_GETFL F_SETFL F_DUPFD_CLOEXEC F_DUPFD (hot first)
    5, 36,  # F_GETLK F_OFD_GETLK
    8, 9, 10, 11, 15, 16, 17,  # F_SETOWN F_GETOWN F_SETSIG F_GETSIG F_SETOWN_EX F_GETOWN_EX F_GETOWNER_UIDS
    1025,  # F_GETLEASE (only ever F_UNLCK: F_SETLEASE is refused)
    1027, 1028,  # F_DUPFD_QUERY F_CREATED_QUERY
    1031, 1032, 1033, 1034,  # F_SETPIPE_SZ F_GETPIPE_SZ F_ADD_SEALS F_GET_SEALS
    1035, 1036, 1037, 1038,  # F_GET/SET_RW_HINT F_GET/SET_FILE_RW_HINT
)
# - answered 0 without taking the lock (see "Locks" in the module docstring);
_FCNTL_LOCK_SET = (6, 7, 37, 38)  # F_SETLK F_SETLKW F_OFD_SETLK F_OFD_SETLKW
# - refused and reported: they watch or hold up other openers of the same inode;
_FCNTL_CROSSING = (1024, 1026)  # F_SETLEASE F_NOTIFY (dnotify)
# - anything else (F_CANCELLK, commands of later kernels): EINVAL, unreported, which is
#   what a kernel that lacks the command says.

_POSIX_FADV_DONTNEED = 4

# Syscalls that take a file mode, and the index of that argument. A mode with S_ISUID or
# S_ISGID is refused and reported: a job must not leave set-id files in a rw mount for
# host code to run (the job's own binds are nosuid; the host's view of the same
# directory need not be). mkdir/mkdirat are not here: the kernel masks their mode to
# 0o1777. openat2 is not allowed at all (ENOSYS): its mode sits in struct open_how,
# which seccomp cannot read, and every caller falls back to openat on ENOSYS.
_MODE_ARG = {
    "open": 2, "openat": 3, "creat": 1, "mknod": 1, "mknodat": 2,
    "chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2,
}
_S_ISUID, _S_ISGID = 0o4000, 0o2000

# The action for "answer 0 and do nothing": SECCOMP_RET_ERRNO with errno 0 skips the
# syscall and the kernel sets the return value to -0.
_NOOP = sc.ERRNO(0)


def syscall_name(nr: int) -> str:
    """x86_64 name of a syscall number; "syscall_<nr>" when nobody knows it."""
    try:
        return sc.resolve_syscall(sc.Arch.X86_64, nr).decode()
    except ValueError:
        return _NEWER_NAMES.get(nr, f"syscall_{nr}")


def _nr(name: str) -> int:
    nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
    if nr < 0:
        nr = _NEWER_SYSCALLS.get(name, -1)
    if nr < 0:
        raise SeccompError(f"unknown syscall name {name!r}")
    return nr


# --- the argument gates (hand-assembled prefix, see module docstring) ---------------------

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JA = 0x05  # BPF_JMP | BPF_JA
_RET_K = 0x06  # BPF_RET | BPF_K
_OFF_NR, _OFF_ARCH = 0, 4


def _arg_lo32(index: int) -> int:
    return 16 + 8 * index  # seccomp_data.args[index], low half on little-endian x86_64


# A gate's outcome for a value: an action word, or _ON: on into libseccomp's program,
# which allows the syscall unconditionally, or a _Check of another argument.
_ON = None


@dataclass(frozen=True)
class _Check:
    """For one value of a gate's argument, a second look at another argument."""
    arg: int
    outcomes: dict[int, int | None]  # low 32 bits of that argument -> action or _ON
    otherwise: int | None


@dataclass(frozen=True)
class _Gate:
    syscall: str
    arg: int
    outcomes: dict[int, int | None | _Check]  # low 32 bits of the argument -> outcome
    otherwise: int | None


def _gates(*, allow_network: bool, deny: int) -> list[_Gate]:
    families = (_AF_UNIX, _AF_INET, _AF_INET6) if allow_network else (_AF_UNIX,)
    fcntl = {**dict.fromkeys(_FCNTL_RUN, _ON), **dict.fromkeys(_FCNTL_LOCK_SET, _NOOP),
             **dict.fromkeys(_FCNTL_CROSSING, deny)}
    return [
        _Gate("ioctl", 1, dict.fromkeys((_TIOCSTI, _TIOCLINUX), deny), otherwise=_ON),
        _Gate("socket", 0, dict.fromkeys(families, _ON), otherwise=deny),
        _Gate("socketpair", 0, {_AF_UNIX: _ON}, otherwise=deny),
        _Gate("personality", 0, dict.fromkeys((_PERSONALITY_QUERY, _PER_LINUX), _ON), otherwise=deny),
        _Gate("prctl", 0, {**dict.fromkeys(_PRCTL_ALLOWED, _ON),
                           _PR_SET_DUMPABLE: _Check(1, {0: _ON}, otherwise=sc.ERRNO(errno.EINVAL))},
              otherwise=sc.ERRNO(errno.EINVAL)),
        _Gate("fcntl", 1, fcntl, otherwise=sc.ERRNO(errno.EINVAL)),
        # DONTNEED evicts clean pages of the inode from the page cache, the host's and
        # every sandbox's copy of a shared read-only file included.
        _Gate("fadvise64", 3, {_POSIX_FADV_DONTNEED: _NOOP}, otherwise=_ON),
    ]


def _assemble_gates(gates: list[_Gate]) -> bytes:
    """A forward-only BPF prefix; "body" is the first instruction after it."""
    checks = [(f"check{i}_{value}", check) for i, g in enumerate(gates)
              for value, check in g.outcomes.items() if isinstance(check, _Check)]
    actions = sorted({a for g in (*gates, *(check for _, check in checks))
                      for a in (*g.outcomes.values(), g.otherwise) if a is not _ON and not isinstance(a, _Check)})
    prog: list[list] = []  # [code, jt, jf, k] with jt/jf/k possibly a label
    labels: dict[str, int] = {}

    def emit(code, k=0, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    def label(action: int | None) -> str:
        return "body" if action is _ON else f"ret{actions.index(action)}"

    def look(arg: int, outcomes: dict, otherwise: int | None, checks_at: str) -> None:
        emit(_LD_W_ABS, _arg_lo32(arg))
        for value, action in outcomes.items():
            emit(_JEQ_K, value, jt=f"{checks_at}_{value}" if isinstance(action, _Check) else label(action))
        emit(_JA, label(otherwise))

    emit(_LD_W_ABS, _OFF_ARCH)
    emit(_JEQ_K, AUDIT_ARCH_X86_64, jf="body")  # foreign arch: libseccomp's check kills it
    emit(_LD_W_ABS, _OFF_NR)
    for i, gate in enumerate(gates):
        labels[f"gate{i}"] = len(prog)
        # A still holds nr on the not-this-syscall path: no gate reloads it.
        emit(_JEQ_K, _nr(gate.syscall), jf=f"gate{i + 1}" if i + 1 < len(gates) else "body")
        look(gate.arg, gate.outcomes, gate.otherwise, f"check{i}")
    for name, check in checks:  # after every gate: only a gate's own jump reaches one
        labels[name] = len(prog)
        look(check.arg, check.outcomes, check.otherwise, name)
    for i, action in enumerate(actions):
        labels[f"ret{i}"] = len(prog)
        emit(_RET_K, action)
    labels["body"] = len(prog)

    out = bytearray()
    for pc, (code, jt, jf, k) in enumerate(prog):
        rel = lambda target: labels[target] - pc - 1 if isinstance(target, str) else target  # noqa: E731
        if code == _JA:
            k = rel(k)
        jt, jf = rel(jt), rel(jf)
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise SeccompError(f"gate prefix jump out of range at {pc}")
        out += struct.pack("=HBBI", code, jt, jf, k)
    return bytes(out)


# --- compile and install -------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def compile_policy(*, allow_network: bool = False, notify: bool = True) -> bytes:
    """The whole filter as raw `struct sock_filter[]` bytes, ready for `install()`.

    Call it before any filter is in force (the zygote does, at start-up): libseccomp
    probes the kernel with seccomp(2), which the policy itself refuses.
    """
    if sc.system_arch() != sc.Arch.X86_64:
        raise SeccompError(f"leeward's policy is x86_64-only; this is audit arch {sc.system_arch():#x}")
    deny = sc.NOTIFY if notify else sc.ERRNO(errno.EPERM)
    gates = _gates(allow_network=allow_network, deny=deny)
    try:
        f = sc.SyscallFilter(sc.ERRNO(errno.ENOSYS))
        f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        f.set_attr(sc.Attr.CTL_OPTIMIZE, 2)  # binary tree: ~8 compares, not ~250, per call
        for name in _ALLOWED:
            f.add_rule(sc.ALLOW, _nr(name))
        for gate in gates:
            f.add_rule(sc.ALLOW, _nr(gate.syscall))  # gated by the prefix before reaching here
        # flock(2): every lock answered 0 and not taken (module docstring, "Locks").
        f.add_rule(_NOOP, _nr("flock"))
        # Set-id modes: allowed when neither bit is set, each bit its own deny rule
        # (libseccomp has no "masked value != 0"; cf. clone below). The mode is a umode_t:
        # the kernel reads the low 16 bits, and the mask has no bit in the upper half.
        for name, arg in _MODE_ARG.items():
            f.add_rule(sc.ALLOW, _nr(name), sc.Arg(arg, sc.MASKED_EQ, _S_ISUID | _S_ISGID, 0))
            for bit in (_S_ISUID, _S_ISGID):
                f.add_rule(deny, _nr(name), sc.Arg(arg, sc.MASKED_EQ, bit, bit))
        for name in _DANGEROUS:
            if name != "mbind":
                f.add_rule(deny, _nr(name))
        # mbind: OpenBLAS (numpy's wheels) calls mbind(addr, len, MPOL_PREFERRED, NULL,
        # 0, 0) on every buffer it allocates, i.e. "prefer the local node": a no-op as far
        # as isolation goes, and refusing it would report a denial on every numpy job and
        # cost a supervisor round trip per allocation. Exactly that form runs; any real
        # placement (another mode or a node mask) is refused and reported. Full 64-bit
        # compares are right here: the kernel reads mode and nmask as unsigned long.
        mbind = _nr("mbind")
        f.add_rule(sc.ALLOW, mbind, sc.Arg(2, sc.EQ, _MPOL_PREFERRED), sc.Arg(3, sc.EQ, 0))
        f.add_rule(deny, mbind, sc.Arg(2, sc.NE, _MPOL_PREFERRED))
        f.add_rule(deny, mbind, sc.Arg(3, sc.NE, 0))
        # clone: allowed unless one of the namespace flags is set (each flag its own
        # rule, because libseccomp has no "masked value != 0").
        clone = _nr("clone")
        f.add_rule(sc.ALLOW, clone, sc.Arg(0, sc.MASKED_EQ, _CLONE_NEW_FLAGS, 0))
        for bit in range(64):
            if _CLONE_NEW_FLAGS >> bit & 1:
                f.add_rule(deny, clone, sc.Arg(0, sc.MASKED_EQ, 1 << bit, 1 << bit))
        body = _export_bpf(f)
    except OSError as exc:
        raise SeccompError(f"building the filter with libseccomp failed: {exc}") from exc
    program = _assemble_gates(gates) + body
    if len(program) // 8 > _BPF_MAXINSNS:
        raise SeccompError(f"filter has {len(program) // 8} instructions, over BPF_MAXINSNS")
    return program


def _export_bpf(f: sc.SyscallFilter) -> bytes:
    fd = os.memfd_create("leeward-seccomp", os.MFD_CLOEXEC)
    try:
        f.export_bpf(_Fileno(fd))
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


class _Fileno:
    def __init__(self, fd: int):
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(bpf: bytes, *, notify: bool) -> int | None:
    """Load `bpf` on the calling, single-threaded process; needs no_new_privs already set.

    With notify=True returns the listener fd (O_CLOEXEC): hand it to the supervisor and
    close this copy before running untrusted code, or the job could answer its own
    notifications.
    """
    if not bpf or len(bpf) % 8:
        raise SeccompError(f"not a BPF program: {len(bpf)} bytes")
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = 1  # no /proc here; the caller's contract still holds
    if threads != 1:
        raise SeccompError(f"install() needs a single-threaded process, found {threads} threads")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    flags = SECCOMP_FILTER_FLAG_NEW_LISTENER if notify else 0
    try:
        fd = linux.seccomp(SECCOMP_SET_MODE_FILTER, flags, prog,
                           what=f"{{len={prog.len}}}")
    except OSError as exc:
        hint = " (no_new_privs not set?)" if exc.errno == errno.EACCES else ""
        raise SeccompError(f"installing the filter failed: {exc}{hint}") from exc
    return fd if notify else None


# --- supervisor side -------------------------------------------------------------------------

class _SeccompData(ctypes.Structure):
    _fields_ = [
        ("nr", ctypes.c_int),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class _Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("data", _SeccompData)]


class _NotifResp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32),
                ("flags", ctypes.c_uint32)]


class _NotifSizes(ctypes.Structure):
    _fields_ = [("seccomp_notif", ctypes.c_uint16), ("seccomp_notif_resp", ctypes.c_uint16),
                ("seccomp_data", ctypes.c_uint16)]


def notify_available() -> bool:
    """True when the kernel offers seccomp user notification (Linux >= 5.0), which is how
    denials are reported by name; without it the policy still refuses them (ERRNO).
    Asks for the notification struct sizes: a kernel without the feature does not know
    that operation (EINVAL), and the supervisor relies on those sizes anyway."""
    try:
        return notif_sizes()[0] > 0
    except OSError:
        return False


def notif_sizes() -> tuple[int, int, int]:
    """The kernel's (seccomp_notif, seccomp_notif_resp, seccomp_data) sizes."""
    sizes = _NotifSizes()
    linux.seccomp(SECCOMP_GET_NOTIF_SIZES, 0, sizes, what="&sizes")
    return sizes.seccomp_notif, sizes.seccomp_notif_resp, sizes.seccomp_data


class DenialReporter:
    """Answers a sandbox's seccomp notifications with EPERM and remembers the names.

    Owns `listener_fd` (closed by `close()`). `handle_ready()` never blocks: it polls
    first, because SECCOMP_IOCTL_NOTIF_RECV waits for a notification even on an
    O_NONBLOCK fd. Once every task using the filter has exited the fd polls as POLLHUP
    forever; `hung_up` then turns True so an event-loop caller can drop its reader.
    """

    def __init__(self, listener_fd: int):
        self._fd = listener_fd
        self._denied: list[str] = []
        self._poll = select.poll()
        self._poll.register(listener_fd, select.POLLIN)
        self.hung_up = False

    def fileno(self) -> int:
        return self._fd

    @property
    def denied(self) -> list[str]:
        return list(self._denied)

    def handle_ready(self) -> None:
        if self._fd < 0:
            return
        events = self._poll.poll(0)
        revents = events[0][1] if events else 0
        if not revents & select.POLLIN:
            if revents & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                self.hung_up = True
            return
        notif = _Notif()  # the kernel insists on a zeroed buffer
        try:
            linux.ioctl(self._fd, SECCOMP_IOCTL_NOTIF_RECV, notif,
                        name=f"ioctl({self._fd}, SECCOMP_IOCTL_NOTIF_RECV)")
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EINTR):
                return  # the target died (or was signalled) before we got to it
            raise
        name = syscall_name(notif.data.nr)
        if name not in self._denied:
            self._denied.append(name)
        resp = _NotifResp(id=notif.id, val=0, error=-errno.EPERM, flags=0)
        try:
            linux.ioctl(self._fd, SECCOMP_IOCTL_NOTIF_SEND, resp,
                        name=f"ioctl({self._fd}, SECCOMP_IOCTL_NOTIF_SEND, {{id={notif.id}, error=-EPERM}})")
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # ENOENT: the target died while we looked
                raise

    def close(self) -> None:
        if self._fd >= 0:
            self._poll.unregister(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "DenialReporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
