"""`leeward doctor`: what this host gives leeward, what it lacks, and how to fix it.

Each check probes the kernel the way the daemon will use it (namespaces are created in
a child, a seccomp filter is loaded in a child, a cgroup box is created and removed),
because a config file or /proc/sys entry can say "enabled" while an LSM or a container
runtime still refuses. A check is OK, WARN (leeward works, with less) or FAIL (the
daemon will not start, or will not be safe to use); FAIL makes doctor exit non-zero.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass, field

from .. import config as config_module
from .. import limits, linux
from ..config import Config
from ..errors import SandboxPythonUnusable
from ..isolation import landlock, seccomp_policy, subids, uid_leases
from ..isolation.namespaces import SLOT_FLAGS
from ..limits import detect
from ..limits.cgroup2 import REQUIRED as CGROUP2_REQUIRED
from ..pool import sandbox_python
from ..pool.sandbox_python import SandboxPython

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    data: dict = field(default_factory=dict)


def run(cfg: Config, config_check: Check | None = None) -> list[Check]:
    checks = [config_check] if config_check else []
    with _quiet_daemon_logs():  # the backends log what doctor reports itself
        checks += [check_user_namespaces(cfg), check_sandbox_uids(cfg), check_landlock(cfg), check_seccomp(),
                   check_seccomp_notify(cfg), check_cgroup2(), check_cgroup1(), check_limits_backend(cfg), check_socket(cfg.socket_path),
                   check_python()]
        python_check, python = check_sandbox_python(cfg.python)
        checks.append(python_check)
        checks.append(check_preload(cfg.preload, python) if python else
                      Check("preload", WARN, "not checked: the sandbox's Python is unusable (see sandbox_python)"))
    return checks


def load_config(explicit: str | None, socket_path: str | None, environ=os.environ) -> tuple[Config, Check]:
    """The configuration the daemon would read, and a check saying where it came from;
    a bad one is a FAIL and the other checks run with the defaults."""
    try:
        path = config_module.find_file(explicit, environ)
        cfg = config_module.load(path, environ=environ, socket_path=socket_path)
    except config_module.ConfigError as exc:
        return Config(), Check("config", FAIL, str(exc), "correct the key named (README: Configuration)")
    return cfg, Check("config", OK, f"read {path}" if path else "no config file: defaults", data={"file": path})


def main(argv: list[str]) -> int:
    """`leeward-daemon doctor`, which `leeward doctor` runs (the client never imports the daemon)."""
    parser = argparse.ArgumentParser(prog="leeward-daemon doctor",
                                     description="Check what this host gives leeward (exit 1 when a required check fails).")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--config", help="the daemon's config file (default: found as the daemon finds it)")
    parser.add_argument("--socket", help="the socket path to check (default: the configured one)")
    args = parser.parse_args(argv)
    cfg, config_check = load_config(args.config, args.socket)
    checks = run(cfg, config_check)
    print(render_json(checks) if args.json else render_text(checks), end="")
    return exit_status(checks)


def exit_status(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def render_text(checks: list[Check]) -> str:
    """One line per check: status, name, finding, and the fix when there is one."""
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name}: {c.detail}" + (f" -- fix: {c.fix}" if c.fix else ""))
    return "\n".join(lines) + "\n"


def render_json(checks: list[Check]) -> str:
    return json.dumps({"ok": exit_status(checks) == 0, "checks": [dataclasses.asdict(c) for c in checks]}, indent=2)


@contextlib.contextmanager
def _quiet_daemon_logs():
    logger = logging.getLogger("leeward_daemon")
    handler = logging.NullHandler()
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


# ---------------------------------------------------------------- kernel

def in_child(action) -> str | None:
    """Runs `action` in a forked child (namespaces and filters must not touch doctor
    itself); None when it succeeded, else the error it raised."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, no return into the caller's stack
        os.close(read_end)
        try:
            action()
            message = b""
        except BaseException as exc:  # noqa: BLE001 - every failure is the finding
            message = (str(exc) or type(exc).__name__).encode()[:4000]
        os.write(write_end, message or b"")
        os._exit(1 if message else 0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return message or f"child exited with status {os.waitstatus_to_exitcode(status)}"


def check_user_namespaces(cfg: Config, read=None) -> Check:
    """The daemon's sequence: a root daemon creates the slot namespaces as root and the
    job's user namespace as an unused uid; a user daemon creates them all at once."""
    privileged = os.geteuid() == 0

    def slot_then_job() -> None:
        if privileged:
            linux.unshare(SLOT_FLAGS)
            uid = cfg.sandbox_uid_base
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP)
        else:
            linux.unshare(linux.CLONE_NEWUSER | SLOT_FLAGS | linux.CLONE_NEWCGROUP)

    error = in_child(slot_then_job)
    if error is None:
        return Check("user_namespaces", OK, "user, pid, mount, net, ipc, uts and cgroup namespaces can be created"
                     + (" (the job's user namespace as an unprivileged uid)" if privileged else ""))
    return Check("user_namespaces", FAIL, f"cannot create the sandbox namespaces: {error}",
                 _userns_fix(read or _read_proc))


def check_sandbox_uids(cfg: Config, euid: int | None = None, found: subids.Subids | None | bool = True) -> Check:
    """Whether each sandbox gets a host uid of its own (`found`: the subordinate ids to
    assume, None for none; True: this host's)."""
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        last = cfg.sandbox_uid_base + cfg.sandbox_uid_count - 1
        return Check("sandbox_uids", OK, f"each sandbox runs as its own host uid from {cfg.sandbox_uid_base}-{last} "
                     f"(a block of {uid_leases.BLOCK_SIZE} per daemon, leased under {uid_leases.ROOT_LOCK_DIR})",
                     data={"first": cfg.sandbox_uid_base, "count": cfg.sandbox_uid_count})
    found = subids.find(euid) if found is True else found
    if found is None:
        return Check("sandbox_uids", WARN, f"{subids.SHARED_UID}: {'; '.join(subids.missing_parts(euid))}",
                     subids.SUBID_FIX)
    count = min(found.count, uid_leases.BLOCK_SIZE)

    def map_then_switch() -> None:  # the zygote's sequence, then a slot's identity switch
        subids.enter_user_namespace(found, 0, count)
        os.setgroups([])
        os.setresgid(1, 1, 1)
        os.setresuid(1, 1, 1)
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP)

    data = {"first": found.uids.first, "count": found.count, "gid_first": found.gids.first}
    error = in_child(map_then_switch)
    if error is not None:
        return Check("sandbox_uids", FAIL, f"subordinate ids are granted but cannot be used: {error}",
                     f"ls -l {found.newuidmap} {found.newgidmap} (both must be setuid root); check /etc/subuid and "
                     "/etc/subgid, or remove the user's entries to run jobs as the daemon's uid", data)
    return Check("sandbox_uids", OK, f"each sandbox runs as its own subordinate uid from {found.uids.first}-"
                 f"{found.uids.first + found.count - 1}; namespace-counted limits (processes, pending signals, "
                 "...) still add up to your uid", data=data)


def _read_proc(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _userns_fix(read) -> str:
    if read("/proc/sys/user/max_user_namespaces") == "0":
        return "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/)"
    if read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/)"
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor restricts unprivileged user namespaces: give the daemon's Python a profile with "
                "'userns,' or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
    return ("in a container, allow unshare(2) (e.g. docker --security-opt seccomp=unconfined "
            "--security-opt apparmor=unconfined) or run leeward on the host")


def _layer(name: str, available: bool, detail: str, missing: str, fix: str, cfg: Config, data: dict) -> Check:
    if available:
        return Check(name, OK, detail, data=data)
    if name in cfg.optional_layers:
        return Check(name, WARN, f"{missing}; allowed by optional_layers", fix, data)
    return Check(name, FAIL, f"{missing}; the daemon refuses to start without it",
                 f"{fix}, or add {name!r} to optional_layers to run without it", data)


def check_landlock(cfg: Config, abi: int | None = None) -> Check:
    abi = landlock.abi_version() if abi is None else abi
    used = min(abi, landlock.KNOWN_ABI)
    detail = f"ABI {abi}" + (f" (leeward uses up to ABI {landlock.KNOWN_ABI})" if abi > landlock.KNOWN_ABI else "")
    return _layer("landlock", abi >= 1, detail, "Landlock is not available (ABI 0)",
                  "Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK=y and 'landlock' in the lsm= boot parameter",
                  cfg, {"abi": abi, "used_abi": used})


def check_seccomp() -> Check:
    def load_filter() -> None:
        import pyseccomp  # libseccomp: the zygote compiles the policy with it

        pyseccomp.SyscallFilter(pyseccomp.ALLOW).load()

    error = in_child(load_filter)
    if error is None:
        return Check("seccomp", OK, "filters can be loaded (libseccomp)")
    return Check("seccomp", FAIL, f"cannot load a seccomp filter: {error}",
                 "install libseccomp2 (apt install libseccomp2) and run on a kernel with CONFIG_SECCOMP_FILTER=y")


def check_seccomp_notify(cfg: Config, available: bool | None = None) -> Check:
    available = seccomp_policy.notify_available() if available is None else available
    return _layer("seccomp_notify", available, "user notification available: denied syscalls are reported by name",
                  "no seccomp user notification (Linux < 5.0): denials are refused but not reported",
                  "Linux >= 5.0", cfg, {"available": available})


# ---------------------------------------------------------------- cgroups and limits

def check_cgroup2(mountinfo: str | None = None, proc_cgroup: str | None = None) -> Check:
    try:
        own = detect.own_cgroup2_dir(mountinfo, proc_cgroup)
    except limits.LimitsUnavailable as exc:
        return Check("cgroup2", WARN, str(exc.reason), "leeward uses cgroup v1 or rlimits instead")
    controllers = (_read_proc(os.path.join(own, "cgroup.controllers")) or "").split()
    data = {"cgroup": own, "controllers": controllers, "memory": "memory" in controllers}
    listed = " ".join(controllers) or "none"
    missing = [c for c in CGROUP2_REQUIRED if c not in controllers]
    if not missing:
        return Check("cgroup2", OK, f"{own}: controllers {listed}", data=data)
    what = "no memory controller in v2" if "memory" in missing else f"no {', '.join(missing)} controller in v2"
    return Check("cgroup2", WARN, f"{own}: controllers {listed}; {what}",
                 "on a hybrid host the controllers are bound to cgroup v1 (leeward then uses v1); for v2 boot with "
                 "systemd.unified_cgroup_hierarchy=1 and run leeward with Delegate=yes (deploy/systemd/leeward.service)",
                 data)


def check_cgroup1() -> Check:
    try:
        hierarchies = detect.cgroup1_hierarchies(None)
    except limits.LimitsUnavailable as exc:
        return Check("cgroup1", WARN, exc.reason)
    found = sorted(c for c in ("memory", "pids", "cpuacct", "cpu", "freezer") if c in hierarchies)
    data = {"controllers": found, "writable": False}
    if not hierarchies:
        return Check("cgroup1", WARN, "no cgroup v1 hierarchy mounted (normal on a cgroup v2 host)", data=data)
    try:
        limits.select_backend(prefer="cgroup1")
    except limits.LimitsError as exc:
        return Check("cgroup1", WARN, f"hierarchies {' '.join(found)}, but not usable: {exc}",
                     "run the daemon as root to use cgroup v1", data)
    data["writable"] = True
    return Check("cgroup1", OK, f"hierarchies {' '.join(found)}, writable", data=data)


def check_limits_backend(cfg: Config) -> Check:
    try:
        backend = limits.select_backend(cfg.cgroup_root or None, prefer=cfg.limits_backend)
    except limits.LimitsError as exc:
        return Check("limits_backend", FAIL, f"limits_backend = {cfg.limits_backend!r} cannot be used: {exc}",
                     "fix that backend (see the cgroup checks) or set limits_backend = \"auto\"")
    data = {"backend": backend.name}
    if backend.name == "rlimit":
        return Check("limits_backend", WARN, "rlimit: memory is enforced by sampling from outside, weaker than "
                     "cgroups: a job may overshoot its limit between two samples, and memory outside its processes' "
                     "RSS (kernel, page cache) is not counted",
                     "give leeward a writable cgroup (root on cgroup v1, or a delegated v2 subtree)", data)
    detail = f"{backend.name}: the kernel limits and accounts each job"
    if backend.name == "cgroup2":
        # Delegation as the daemon does it (limits/cgroup2.py): its processes go into a
        # leaf, the boxes beside it, under the delegated root.
        data.update(root=backend.root, boxes=backend.path, leaf=backend.leaf)
        detail += f", boxes in {backend.path}" + (
            f" (delegated root {backend.root} held the daemon: moved into the leaf {backend.leaf})"
            if backend.leaf else "")
    return Check("limits_backend", OK, detail, data=data)


# ---------------------------------------------------------------- host

def check_socket(path: str) -> Check:
    """The socket's directory decides who can put a socket there: a directory others
    can write lets them replace the daemon's socket with their own."""
    directory = os.path.dirname(path) or "."
    existing = directory
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing) or "/"
    if not os.path.isdir(existing):
        return Check("socket", FAIL, f"{existing} is not a directory: {path} cannot be created",
                     "set socket_path to a path in a directory")
    info = os.stat(existing)
    if existing != directory:
        if not os.access(existing, os.W_OK):
            return Check("socket", FAIL, f"{directory} is missing and {existing} is not writable",
                         f"create {directory} for the daemon's user, or set socket_path")
        return Check("socket", OK, f"{directory} will be created, private, at start")
    if info.st_uid not in (os.geteuid(), 0):
        return Check("socket", FAIL, f"{directory} belongs to uid {info.st_uid}, who could replace the socket",
                     f"remove {directory} (the daemon creates it) or set socket_path")
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        return Check("socket", FAIL, f"{directory} is writable by everyone: anyone could replace the socket",
                     f"chmod o-w {directory}, or put socket_path in a private directory")
    if not os.access(directory, os.W_OK):
        return Check("socket", FAIL, f"{directory} is not writable: the daemon cannot create {path}",
                     "run the daemon as the directory's owner, or set socket_path")
    found = _existing_socket(path)
    if found.status != OK:
        return found
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return Check("socket", WARN, f"{directory} is writable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                     f"{found.detail}", "put socket_path in a private directory such as $XDG_RUNTIME_DIR")
    return found


def _existing_socket(path: str) -> Check:
    if not os.path.lexists(path):
        return Check("socket", OK, f"{path}: no daemon yet; the directory is private")
    info = os.lstat(path)
    if not stat.S_ISSOCK(info.st_mode):
        return Check("socket", FAIL, f"{path} exists and is not a socket", f"remove {path} or set socket_path")
    mode = stat.S_IMODE(info.st_mode)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        state = "a daemon is listening"
    except OSError:
        state = "stale socket, nobody listening (the next daemon removes it)"
    finally:
        probe.close()
    if mode & 0o077:
        return Check("socket", WARN, f"{path}: {state}; mode {mode:o} lets others connect and run code",
                     f"chmod 600 {path} (SocketMode=0600 in the socket unit)", {"mode": mode})
    return Check("socket", OK, f"{path}: {state}, mode {mode:o}", data={"mode": mode})


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    data = {"executable": sys.executable, "version": version}
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", FAIL, f"{sys.executable} is Python {version}",
                     f"install leeward into a Python >= {'.'.join(map(str, MIN_PYTHON))}", data)
    return Check("python", OK, f"{sys.executable} (Python {version}) runs the daemon", data=data)


# What to do about each rule of pool/sandbox_python.py.
_SANDBOX_PYTHON_FIXES = {
    "python_not_found": "set python to a venv directory or an interpreter's absolute path ('' for the daemon's own)",
    "python_not_runnable": "run that interpreter by hand with -s -c pass; recreate the venv if it is broken",
    "python_mismatch": f"recreate the venv with python{sys.version_info[0]}.{sys.version_info[1]} -m venv "
                       "(the daemon's minor version), or install leeward into the sandbox's Python",
}


def check_sandbox_python(setting: str) -> tuple[Check, SandboxPython | None]:
    """The `python` key against pool/sandbox_python.py's rules, as the daemon checks it at
    start; also returns the interpreter when it can be used."""
    try:
        python = sandbox_python.resolve(setting)
    except SandboxPythonUnusable as exc:
        return Check("sandbox_python", FAIL, f"{exc}; the daemon refuses to start", _SANDBOX_PYTHON_FIXES[exc.code],
                     {"code": exc.code, "setting": setting}), None
    facts = python.facts
    data = {"executable": python.executable, "version": facts.version_text, "prefix": facts.prefixes[0],
            "own": python.own}
    if python.own:
        detail = f"{python.executable} (the daemon's own, Python {facts.version_text}) runs the zygote and every sandbox"
    else:
        detail = (f"{python.executable} (Python {facts.version_text}, {facts.prefixes[0]}) runs the zygote and every "
                  f"sandbox; leeward's own modules come from {', '.join(sorted(set(sandbox_python.first_modules().values())))}")
    return Check("sandbox_python", OK, detail, data=data), python


_IMPORT_ALL = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
        found[name] = [True, str(getattr(module, "__version__", ""))]
    except Exception as exc:
        found[name] = [False, f"{type(exc).__name__}: {exc}"]
print(json.dumps(found))
"""


def check_preload(modules: list[str], python: SandboxPython | None = None) -> Check:
    """Imports them the way the zygote does: the sandbox's Python (None: the daemon's
    own), -s, a scrubbed environment."""
    if not modules:
        return Check("preload", OK, "nothing to preload (preload = [])")
    python = python or sandbox_python.resolve("")
    env = dict(sandbox_python.SCRUBBED_ENV)
    if python.own and os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    executable = python.executable
    proc = subprocess.run([executable, "-s", "-c", _IMPORT_ALL, *modules], capture_output=True, text=True,
                          env=env, cwd="/", timeout=300)
    try:
        found = json.loads(proc.stdout)
    except ValueError:
        return Check("preload", FAIL, f"{executable} could not run an import check: {proc.stderr.strip()[-500:]}",
                     "reinstall the sandbox's Python environment")
    loaded = [f"{n} {v}".strip() for n, (ok, v) in found.items() if ok]
    missing = [f"{n} ({v})" for n, (ok, v) in found.items() if not ok]
    data = {"importable": [n for n, (ok, _) in found.items() if ok], "missing": [n for n, (ok, _) in found.items()
                                                                             if not ok]}
    if missing:
        return Check("preload", WARN, f"not importable: {', '.join(missing)}"
                     + (f"; importable: {', '.join(loaded)}" if loaded else ""),
                     f"{executable} -m pip install {' '.join(data['missing'])} (or drop them from preload)", data)
    return Check("preload", OK, f"importable: {', '.join(loaded)} (imported once by the zygote)", data=data)

