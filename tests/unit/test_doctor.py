"""doctor's checks: each verdict (OK/WARN/FAIL) from the inputs that decide it, on the
real kernel where the check is a probe and on prepared inputs where it reads files."""
import errno
import json
import os
import socket
import sys

import pytest

from leeward_daemon import linux
from leeward_daemon.ops import doctor
from leeward_daemon.config import Config
from leeward_daemon.ops.doctor import FAIL, OK, WARN, Check
from leeward_daemon.isolation import subids


def test_in_child_reports_success_and_the_childs_error():
    def refuse():
        raise OSError(errno.EPERM, "no")

    assert doctor.in_child(lambda: None) is None
    assert doctor.in_child(refuse) == "[Errno 1] no"


def test_in_child_keeps_the_callers_namespaces():
    before = os.readlink("/proc/self/ns/mnt")
    assert doctor.in_child(lambda: linux.unshare(linux.CLONE_NEWNS)) is None
    assert os.readlink("/proc/self/ns/mnt") == before


def test_user_namespaces_on_this_kernel():
    # This machine creates user namespaces (the integration suite depends on it).
    assert doctor.check_user_namespaces(Config()).status == OK


def test_user_namespaces_refused_names_the_sysctl(monkeypatch):
    def refuse(flags):
        raise OSError(errno.EPERM, f"unshare({flags:#x}): Operation not permitted")

    monkeypatch.setattr(linux, "unshare", refuse)  # the forked child inherits the patch
    sysctls = {"/proc/sys/kernel/unprivileged_userns_clone": "0", "/proc/sys/user/max_user_namespaces": "1000"}
    check = doctor.check_user_namespaces(Config(), read=sysctls.get)
    assert check.status == FAIL and "Operation not permitted" in check.detail
    assert "kernel.unprivileged_userns_clone=1" in check.fix


@pytest.mark.parametrize("sysctls, hint", [
    ({"/proc/sys/user/max_user_namespaces": "0"}, "user.max_user_namespaces"),
    ({"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}, "AppArmor"),
    ({}, "container"),
])
def test_userns_fix_follows_the_cause(sysctls, hint):
    assert hint in doctor._userns_fix(sysctls.get)


@pytest.mark.parametrize("check, name", [(doctor.check_landlock, "landlock"),
                                         (doctor.check_seccomp_notify, "seccomp_notify")])
def test_a_missing_layer_fails_unless_optional(check, name):
    missing = 0 if name == "landlock" else False
    assert check(Config(), missing).status == FAIL
    assert name in check(Config(), missing).fix  # the way out: optional_layers
    assert check(Config(optional_layers=[name]), missing).status == WARN
    assert check(Config(), 7 if name == "landlock" else True).status == OK


def test_landlock_reports_the_abi():
    check = doctor.check_landlock(Config(), 9)
    assert (check.detail, check.data) == ("ABI 9 (leeward uses up to ABI 7)", {"abi": 9, "used_abi": 7})


def test_seccomp_filters_load_on_this_kernel():
    assert doctor.check_seccomp().status == OK


def _cgroup2(tmp_path, controllers: str):
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    mountinfo = f"30 20 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw\n"
    return doctor.check_cgroup2(mountinfo, "0::/\n")


def test_cgroup2_without_memory_says_so(tmp_path):
    check = _cgroup2(tmp_path, "hugetlb")
    assert check.status == WARN and "no memory controller in v2" in check.detail
    assert check.data == {"cgroup": str(tmp_path), "controllers": ["hugetlb"], "memory": False}


def test_cgroup2_with_memory_and_pids_is_ok(tmp_path):
    check = _cgroup2(tmp_path, "cpu memory pids")
    assert check.status == OK and check.data["memory"] is True


def test_no_cgroup2_mounted():
    check = doctor.check_cgroup2("30 20 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "0::/\n")
    assert check.status == WARN and "no cgroup2 filesystem mounted" in check.detail


def test_a_forced_backend_that_cannot_be_used_fails(tmp_path):
    check = doctor.check_limits_backend(Config(limits_backend="cgroup2", cgroup_root=str(tmp_path)))
    assert check.status == FAIL and "cgroup2" in check.detail


def test_rlimit_backend_is_a_warning():
    check = doctor.check_limits_backend(Config(limits_backend="rlimit"))
    assert (check.status, check.data) == (WARN, {"backend": "rlimit"})
    assert check.detail.startswith("rlimit: memory is enforced by sampling from outside, weaker than cgroups")


def test_socket_in_a_missing_private_directory_is_ok(tmp_path):
    assert doctor.check_socket(str(tmp_path / "run" / "leeward.sock")).status == OK


def test_socket_dir_writable_by_everyone_fails(tmp_path):
    os.chmod(tmp_path, 0o777)
    assert doctor.check_socket(str(tmp_path / "leeward.sock")).status == FAIL
    os.chmod(tmp_path, 0o1777)  # sticky, like /tmp: others cannot remove our socket, but can squat names
    assert doctor.check_socket(str(tmp_path / "leeward.sock")).status == WARN


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another uid needs root")
def test_socket_dir_owned_by_another_user_fails(tmp_path):
    os.chown(tmp_path, 12345, 12345)
    check = doctor.check_socket(str(tmp_path / "leeward.sock"))
    assert check.status == FAIL and "uid 12345" in check.detail


def test_something_else_at_the_socket_path_fails(tmp_path):
    (tmp_path / "leeward.sock").write_text("")
    assert doctor.check_socket(str(tmp_path / "leeward.sock")).status == FAIL
    assert doctor.check_socket(str(tmp_path / "leeward.sock" / "x")).status == FAIL


def test_live_and_stale_sockets(tmp_path):
    path = str(tmp_path / "leeward.sock")
    old = os.umask(0o177)
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen()
    assert "a daemon is listening" in doctor.check_socket(path).detail
    listener.close()
    check = doctor.check_socket(path)
    assert check.status == OK and "stale socket" in check.detail
    os.chmod(path, 0o666)
    assert doctor.check_socket(path).status == WARN


def test_python_is_this_interpreter():
    check = doctor.check_python()
    assert check.status == OK and check.data["executable"] == sys.executable


def test_sandbox_python_is_the_daemons_own_by_default():
    check, python = doctor.check_sandbox_python("")
    assert check.status == OK and check.data["own"] is True and check.data["executable"] == sys.executable
    assert python is not None and python.own


def test_a_sandbox_python_of_another_minor_version_fails_with_its_code(tmp_path):
    other = tmp_path / "python"
    other.write_text("#!/bin/sh\necho '{\"implementation\": \"cpython\", \"version\": [3, 99, 0], "
                     "\"extension_suffix\": \".cpython-399-x86_64-linux-gnu.so\", \"prefixes\": [], \"path\": []}'\n")
    other.chmod(0o755)
    check, python = doctor.check_sandbox_python(str(other))
    assert python is None and check.status == FAIL and check.data["code"] == "python_mismatch"
    assert "3.99.0" in check.detail and "refuses to start" in check.detail
    assert f"python{sys.version_info[0]}.{sys.version_info[1]} -m venv" in check.fix


def test_an_unusable_sandbox_python_fails_doctor_and_skips_the_preload_check(tmp_path):
    checks = {c.name: c for c in doctor.run(Config(python=str(tmp_path / "missing")))}
    assert checks["sandbox_python"].status == FAIL and checks["sandbox_python"].data["code"] == "python_not_found"
    assert checks["preload"].status == WARN and "not checked" in checks["preload"].detail
    assert doctor.exit_status(list(checks.values())) == 1


def test_preload_reports_what_imports_and_what_does_not():
    check = doctor.check_preload(["json", "leeward_no_such_module"])
    assert check.status == WARN
    assert check.data == {"importable": ["json"], "missing": ["leeward_no_such_module"]}
    assert "pip install leeward_no_such_module" in check.fix
    assert doctor.check_preload(["json"]).status == OK


def test_bad_config_is_a_failing_check_and_defaults_are_used(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("workers = 'x'\n")
    cfg, check = doctor.load_config(str(path), None, environ={})
    assert cfg == Config() and check.status == FAIL and "workers" in check.detail


def test_rendering_and_exit_status():
    checks = [Check("a", OK, "fine"), Check("b", WARN, "meh", "do x")]
    assert doctor.render_text(checks) == "OK    a: fine\nWARN  b: meh -- fix: do x\n"
    assert doctor.exit_status(checks) == 0
    checks.append(Check("c", FAIL, "broken", "do y", {"k": 1}))
    assert doctor.exit_status(checks) == 1
    parsed = json.loads(doctor.render_json(checks))
    assert parsed["ok"] is False and parsed["checks"][2] == {"name": "c", "status": "FAIL", "detail": "broken",
                                                             "fix": "do y", "data": {"k": 1}}


def test_a_root_daemon_gives_each_sandbox_its_own_uid():
    check = doctor.check_sandbox_uids(Config(sandbox_uid_base=3_000_000, sandbox_uid_count=4096), euid=0)
    assert check.status == OK and "3000000-3004095" in check.detail


def test_without_subordinate_ids_jobs_share_the_users_limits():
    check = doctor.check_sandbox_uids(Config(), euid=4_000_000, found=None)
    assert check.status == WARN
    assert check.detail.startswith("jobs run as your own uid: they share your per-user kernel limits")
    assert check.fix == "add a range to /etc/subuid and /etc/subgid and install uidmap"


def test_subordinate_ids_that_cannot_be_mapped_fail():
    broken = subids.Subids(subids.IdRange(100000, 65536), subids.IdRange(100000, 65536), "/bin/false", "/bin/false")
    check = doctor.check_sandbox_uids(Config(), euid=4_000_000, found=broken)
    assert check.status == FAIL and "/bin/false" in check.detail and "setuid root" in check.fix


def test_doctor_runs_the_sandbox_uid_check():
    assert "sandbox_uids" in [c.name for c in doctor.run(Config(preload=[]))]
