"""`leeward doctor` and `leeward status` run as a user would, checked against what this
kernel says when asked directly (so the expectations hold on any host, and on this one
mean: user namespaces, Landlock ABI 7, seccomp, cgroup v1, no v2 memory controller)."""
import ctypes
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import start_daemon

pytestmark = pytest.mark.integration
SYS_LANDLOCK_CREATE_RULESET = 444  # x86_64
LANDLOCK_CREATE_RULESET_VERSION = 1


def leeward(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leeward", *args], capture_output=True, text=True, timeout=300,
                          cwd="/")


@pytest.fixture(scope="module")
def report() -> tuple[dict, int, bool]:
    proc = leeward("doctor", "--json")
    parsed = json.loads(proc.stdout)
    return {check["name"]: check for check in parsed["checks"]}, proc.returncode, parsed["ok"]


def landlock_abi() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(abi, 0)


def mounts(fstype: str) -> list[list[str]]:
    with open("/proc/self/mounts") as fh:
        return [line.split() for line in fh if line.split()[2] == fstype]


def v2_controllers() -> list[str] | None:
    found = mounts("cgroup2")
    if not found:
        return None
    with open("/proc/self/cgroup") as fh:
        own = next(line[3:].strip() for line in fh if line.startswith("0::"))
    with open(os.path.join(found[0][1], own.lstrip("/"), "cgroup.controllers")) as fh:
        return fh.read().split()


def test_user_namespaces_and_seccomp_work_here(report):
    checks, _, _ = report
    assert checks["user_namespaces"]["status"] == "OK", checks["user_namespaces"]
    assert checks["seccomp"]["status"] == "OK", checks["seccomp"]


def test_landlock_abi_is_the_kernels(report):
    checks, _, _ = report
    abi = landlock_abi()
    assert checks["landlock"]["data"]["abi"] == abi
    assert checks["landlock"]["detail"].startswith(f"ABI {abi}")
    assert checks["landlock"]["status"] == ("OK" if abi else "FAIL")


def test_cgroup2_memory_controller_as_the_kernel_lists_it(report):
    checks, _, _ = report
    controllers = v2_controllers()
    if controllers is None:
        pytest.skip("no cgroup2 filesystem mounted here")
    check = checks["cgroup2"]
    assert check["data"]["controllers"] == controllers
    if "memory" in controllers:
        assert check["data"]["memory"] is True and "no memory controller" not in check["detail"]
    else:
        assert check["status"] == "WARN" and "no memory controller in v2" in check["detail"]


def test_cgroup1_is_writable_for_root(report):
    checks, _, _ = report
    if os.geteuid() != 0 or not any("memory" in m[3].split(",") for m in mounts("cgroup")):
        pytest.skip("needs root and a cgroup v1 memory hierarchy")
    assert checks["cgroup1"]["status"] == "OK" and checks["cgroup1"]["data"]["writable"] is True
    assert {"memory", "pids", "cpuacct"} <= set(checks["cgroup1"]["data"]["controllers"])


def test_exit_status_follows_the_verdicts(report):
    checks, returncode, ok = report
    failed = [name for name, check in checks.items() if check["status"] == "FAIL"]
    assert (returncode, ok) == ((1, False) if failed else (0, True))


def test_text_report_is_one_line_per_check(report):
    checks, _, _ = report
    lines = leeward("doctor").stdout.splitlines()
    assert [line.split()[0] for line in lines] == [check["status"] for check in checks.values()]
    assert [line.split()[1].rstrip(":") for line in lines] == list(checks)


def test_a_required_check_failing_makes_doctor_exit_1():
    proc = leeward("doctor", "--socket", "/etc/hostname/leeward.sock")
    assert proc.returncode == 1
    assert any(line.startswith("FAIL  socket: /etc/hostname is not a directory") for line in proc.stdout.splitlines())


def test_status_shows_the_daemons_state(tmp_path):
    daemon = start_daemon(str(tmp_path), "--metrics-port", "0", workers=1)
    try:
        assert daemon.execute("print(1)").exit_code == 0
        with daemon.connect() as conn:
            raw = conn.status()
        proc = leeward("status", "--socket", daemon.socket_path)
        as_json = json.loads(leeward("status", "--json", "--socket", daemon.socket_path).stdout)
    finally:
        daemon.stop()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"leeward daemon {raw['version']} (pid {daemon.process.pid}) on {daemon.socket_path}")
    assert lines[2].startswith("executions: 1 (failed: 0 timeout, 0 oom, 0 error)")
    assert lines[3] == f"limits:     {raw['limits']}"
    isolation = raw["isolation"]
    assert lines[4] == (f"isolation:  {', '.join(isolation['layers'])} (landlock ABI {isolation['landlock_abi']}, "
                        f"seccomp {isolation['seccomp']})")
    assert as_json["isolation"] == isolation and as_json["executions"] == 1
