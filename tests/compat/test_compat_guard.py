"""The suite's "zero denials" means something only if the policy is in force and reporting.

If seccomp were missing from jobs, `denied_syscalls` would be [] for every workload and
the rest of this suite would pass vacuously; this test makes that case fail instead.
"""
import pytest

pytestmark = pytest.mark.integration

PROBE = r"""
import ctypes, errno, json
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.unshare(0x10000000)              # CLONE_NEWUSER: on the refused-and-reported list
err = ctypes.get_errno()
print(json.dumps({"seccomp": status["Seccomp"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
                  "unshare": [rc, errno.errorcode.get(err, err)]}))
"""


def test_seccomp_is_in_force_and_reports_denials(daemon):
    with daemon.connect(timeout=180) as conn:
        result = conn.execute(PROBE, timeout_secs=120)
    assert result.exit_code == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().strip() == '{"seccomp": "2", "no_new_privs": "1", "unshare": [-1, "EPERM"]}'
    assert result.denied_syscalls == ["unshare"]
