"""The sandbox's base root: a tmpfs `/` with read-only system and Python binds, a /proc
of the new pid namespace (runc's masks), a minimal /dev, and size-capped /tmp and
/dev/shm. Built in the slot, ahead of demand; the old root stays at /oldroot until the
job has bound its mounts (job_mounts.py), then it is detached.
"""
from __future__ import annotations

import os
import uuid

from .. import linux
from ..linux import (MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID,
                     MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT)
from ..model import SANDBOX_GID, SANDBOX_HOSTNAME, SANDBOX_UID, SandboxSpec

# A mount point that exists everywhere; the new root's tmpfs sits on it only inside
# our private mount namespace, and pivot_root moves it away at once.
STAGING = "/tmp"
OLD_ROOT = "/oldroot"
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf")
# Host config directories bound read-only when they exist: fontconfig (matplotlib's
# text, via freetype's users) prints "Cannot load default config file" without its own;
# Debian's alternatives are how `awk`, `which`, `cc` and others on /usr/bin find their
# program (symlinks into /usr, nothing else).
ETC_DIRS = ("/etc/fonts", "/etc/alternatives")
DEVICES = ("null", "zero", "full", "random", "urandom")
MAX_LINK_HOPS = 40  # as the kernel's path walk (ELOOP past it)
# runc's default masked and read-only /proc paths: kernel memory, keys, timers and
# scheduler internals leak host state; /proc/sys and sysrq-trigger change the host.
# Beyond runc: the kernel's command line and build config (config.gz) describe the host
# (root device, boot options, mitigations turned off) and help fingerprint it; gVisor
# shows neither.
PROC_MASKED_FILES = ("kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug",
                     "sysrq-trigger", "kallsyms", "kmsg", "cmdline", "config.gz")
# Same for every process on the host, so jobs could tell they share one: each sandbox
# sees a boot id of its own, as under gVisor.
BOOT_ID = "sys/kernel/random/boot_id"
PROC_MASKED_DIRS = ("acpi", "asound", "scsi", "firmware", "driver")
PROC_READONLY = ("bus", "fs", "irq", "sys")

_ST_TO_MS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC,
             1024: 1024, 2048: 2048, 4096: 1 << 21}  # noatime, nodiratime, relatime


def build(spec: SandboxSpec) -> None:
    linux.mount(None, "/", None, MS_REC | MS_PRIVATE)
    linux.mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    # Pivot first, as bubblewrap does: from then on every host path is read through
    # /oldroot, where the staging tmpfs no longer hides the host's /tmp (a Python or a
    # CI checkout living under /tmp must stay reachable).
    os.mkdir(STAGING + OLD_ROOT)
    os.chdir(STAGING)
    linux.pivot_root(".", OLD_ROOT.lstrip("/"))
    os.chdir("/")
    # /tmp before the Python binds, so binds under /tmp sit on top of it.
    _tmpfs("/tmp", spec.tmp_size, "1777")
    for path in SYSTEM_PATHS + spec.python_paths:
        _bind_host_path(path)
    _build_etc()
    _build_dev(spec.tmp_size)
    _build_proc()
    linux.sethostname(SANDBOX_HOSTNAME)


def detach_old_root() -> None:
    """Job time, once the job's mount sources are cloned: drop the host tree."""
    linux.umount2(OLD_ROOT, linux.MNT_DETACH)
    os.rmdir(OLD_ROOT)


def freeze_root() -> None:
    """Job time, once the job's mounts are attached: `/` itself becomes read-only."""
    linux.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def bind(source: str, target: str, *, read_only: bool) -> None:
    """Bind, then always nosuid and nodev (a rw host dir may hold setuid files or
    device nodes planted by host users or an earlier job), read-only if asked."""
    linux.mount(source, target, None, MS_BIND)
    _remount(target, read_only=read_only)


def remount_read_only(target: str) -> None:
    _remount(target, read_only=True)


def _remount(target: str, *, read_only: bool) -> None:
    # Inside a user namespace a bind remount must keep the flags the kernel locked on
    # the source mount (nosuid, nodev, atime...), or it fails with EPERM.
    locked = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (MS_RDONLY if read_only else 0)
    for st_flag, ms_flag in _ST_TO_MS.items():
        if locked & st_flag:
            flags |= ms_flag
    linux.mount(None, target, None, flags)


def _bind_host_path(path: str, hops: int = 0) -> None:
    link = _first_link(path)
    if link is not None:
        # Kept a link, as on the host, and the path followed one hop (a venv reached
        # through a symlinked directory is found inside under the same name). Not read
        # through: after the pivot an absolute link resolves in the new root.
        target = os.readlink(OLD_ROOT + link)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink(target, link)
        if hops < MAX_LINK_HOPS:
            _bind_host_path(os.path.normpath(os.path.join(os.path.dirname(link), target) + path[len(link):]),
                            hops + 1)
        return
    host = OLD_ROOT + path
    if not os.path.isdir(host) or os.path.ismount(path):
        return
    os.makedirs(path, exist_ok=True)
    linux.mount(host, path, None, MS_BIND | MS_REC)
    # Every submount too: a remount changes only the top mount of a recursive bind, and a
    # host mount below /usr or a Python prefix would stay writable.
    linux.mount_setattr(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive=True)


def _first_link(path: str) -> str | None:
    """The outermost of `path`'s ancestors (or `path` itself) that is a symlink on the host."""
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:depth])
        if os.path.islink(OLD_ROOT + prefix):
            return prefix
    return None


def _tmpfs(target: str, size: int, mode: str) -> None:
    os.makedirs(target, exist_ok=True)
    linux.mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size}")


def _build_etc() -> None:
    etc = "/etc"
    os.makedirs(etc, exist_ok=True)
    # Synthetic identity files: the host's users and hosts are not the job's business.
    _write(etc + "/passwd", f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                            f"sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:/tmp:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    _write(etc + "/group", f"root:x:0:\nsandbox:x:{SANDBOX_GID}:\nnogroup:x:65534:\n")
    _write(etc + "/hosts", f"127.0.0.1 localhost {SANDBOX_HOSTNAME}\n::1 localhost\n")
    _write(etc + "/hostname", SANDBOX_HOSTNAME + "\n")
    for path in ETC_FILES:
        host = OLD_ROOT + path
        if os.path.islink(host):
            os.symlink(os.readlink(host), path)
        elif os.path.isfile(host):
            _write(path, "")
            bind(host, path, read_only=True)
    for path in ETC_DIRS:
        _bind_host_path(path)


def _build_dev(shm_size: int) -> None:
    dev = "/dev"
    _tmpfs(dev, 1 << 16, "0755")
    for name in DEVICES:
        _write(f"{dev}/{name}", "")
        linux.mount(f"{OLD_ROOT}/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    _tmpfs(dev + "/shm", shm_size, "1777")
    remount_read_only(dev)


def _build_proc() -> None:
    proc = "/proc"
    os.mkdir(proc)
    linux.mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_MASKED_FILES:
        if os.path.exists(f"{proc}/{name}"):
            linux.mount("/dev/null", f"{proc}/{name}", None, MS_BIND)
    for name in PROC_MASKED_DIRS:
        if os.path.isdir(f"{proc}/{name}"):
            linux.mount("tmpfs", f"{proc}/{name}", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=0")
    for name in PROC_READONLY:
        if os.path.exists(f"{proc}/{name}"):
            linux.mount(f"{proc}/{name}", f"{proc}/{name}", None, MS_BIND | MS_REC)
            remount_read_only(f"{proc}/{name}")
    if os.path.exists(f"{proc}/{BOOT_ID}"):
        # Backed by a file on the root tmpfs that is unlinked at once: the bind keeps it.
        _write("/.boot_id", str(uuid.uuid4()) + "\n")
        linux.mount("/.boot_id", f"{proc}/{BOOT_ID}", None, MS_BIND)
        remount_read_only(f"{proc}/{BOOT_ID}")
        os.unlink("/.boot_id")


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
