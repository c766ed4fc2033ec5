"""Helpers for the compatibility suite: real workloads that must run untouched.

Every workload goes through the `run_clean` fixture, which insists on three things at once: the job
exited 0, it was not killed (timeout, OOM), and seccomp refused it nothing at all
(`denied_syscalls == []`). A denial is a bug in the policy or in the workload's
environment, never something to code around in the workload.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

# A bound for a loaded 2-core VM, not a speed expectation: no test asserts on time.
WORKLOAD_TIMEOUT_SECS = 120
# The client socket timeout must outlast the job's own timeout, or a slow job would
# surface as DaemonUnavailable instead of a result that says what happened.
CLIENT_SLACK_SECS = 60

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def describe(result) -> str:
    """Everything needed to diagnose a failed workload, for assertion messages."""
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    return (f"exit_code={result.exit_code} denied_syscalls={result.denied_syscalls} "
            f"timed_out={result.timed_out} oom_killed={result.oom_killed} "
            f"limits={result.limits} error={result.error and result.error.get('name')}\n"
            f"--- stdout (tail) ---\n{stdout[-3000:]}\n"
            f"--- stderr (tail) ---\n{stderr[-8000:]}")


def _run_clean(daemon, code: str, **options) -> str:
    """Runs `code` in a sandbox; asserts a clean exit with zero denials; returns stdout."""
    timeout = options.setdefault("timeout_secs", WORKLOAD_TIMEOUT_SECS)
    with daemon.connect(timeout=timeout + CLIENT_SLACK_SECS) as conn:
        result = conn.execute(code, **options)
    assert not result.timed_out, describe(result)
    assert not result.oom_killed, describe(result)
    assert result.exit_code == 0, describe(result)
    assert result.denied_syscalls == [], describe(result)
    return result.stdout.decode()


def _run_json(daemon, code: str, **options) -> dict:
    """`_run_clean`, then the job's last stdout line parsed as JSON (its report)."""
    stdout = _run_clean(daemon, code, **options)
    lines = stdout.strip().splitlines()
    assert lines, "the workload printed nothing"
    return json.loads(lines[-1])


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    assert data[12:16] == b"IHDR", data[:32]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _host_dir(daemon) -> str:
    path = os.path.join(daemon.allowed_dir, f"compat-{uuid.uuid4().hex}")
    os.mkdir(path)
    # A root daemon runs each job as an otherwise unused uid: it must be able to write.
    os.chmod(path, 0o777)
    return path


# Sibling test directories are not packages, so the helpers reach tests as fixtures.

@pytest.fixture
def run_clean(daemon):
    """run_clean(code, **execute_options) -> stdout str; asserts exit 0 and no denials."""
    return lambda code, **options: _run_clean(daemon, code, **options)


@pytest.fixture
def run_json(daemon):
    """run_json(code, **execute_options) -> the job's last stdout line as JSON."""
    return lambda code, **options: _run_json(daemon, code, **options)


@pytest.fixture
def png_size():
    """png_size(data) -> (width, height); asserts the PNG signature and IHDR."""
    return _png_size


@pytest.fixture
def out_dir(daemon):
    """A fresh host directory under the daemon's allowed path, removed afterwards."""
    path = _host_dir(daemon)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rw_out(out_dir):
    """(host directory, mounts) for a rw bind mount of it at /out."""
    return out_dir, [{"host": out_dir, "sandbox": "/out", "ro": False}]


@pytest.fixture
def unique_name():
    """A file-name stem no other test (or earlier run) uses."""
    return f"compat-{uuid.uuid4().hex}"
