"""A daemon whose sandboxes run a Python of their own (config key `python`): the
second venv built by `make setup` (build/sandbox-venv: numpy pinned to another version
than leeward's .venv has, no pandas). Jobs import that venv's packages, checked against
the venv on the host through its own interpreter, and nothing of leeward's environment
beyond the few modules the zygote needs; a Python that breaks the rules stops the
daemon at start with the rule's code."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, start_daemon

pytestmark = pytest.mark.integration
SANDBOX_VENV = os.path.join(REPO, "build", "sandbox-venv")
NUMPY_FACTS = "import json, numpy; print(json.dumps([numpy.__version__, numpy.__file__]))"
# In leeward's .venv (the test extra and leeward's own dependencies), not in the sandbox venv.
LEEWARD_ONLY = ("pandas", "prometheus_client", "hypothesis", "leeward")


@pytest.fixture(scope="module")
def venv_python() -> str:
    python = os.path.join(SANDBOX_VENV, "bin", "python")
    if not os.access(python, os.X_OK):
        pytest.fail(f"{python} is missing: run `make setup` (it builds {SANDBOX_VENV})")
    return python


@pytest.fixture(scope="module")
def venv_numpy(venv_python) -> list[str]:
    """[version, file] of numpy as the sandbox venv has it on the host."""
    out = subprocess.run([venv_python, "-s", "-c", NUMPY_FACTS], capture_output=True, text=True, check=True, cwd="/")
    facts = json.loads(out.stdout)
    import numpy
    assert facts[0] != numpy.__version__, "the sandbox venv must pin a numpy leeward's .venv does not have"
    return facts


@pytest.fixture(scope="module")
def venv_daemon(tmp_path_factory, venv_python):
    directory = str(tmp_path_factory.mktemp("sandbox-python"))
    running = start_daemon(directory, "--metrics-port", "0", "--set", f"python={SANDBOX_VENV}", workers=2)
    yield running
    running.stop()


def job_json(daemon, code: str):
    result = daemon.execute(code)
    assert result.exit_code == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_jobs_import_the_sandbox_venvs_numpy(venv_daemon, venv_numpy):
    assert job_json(venv_daemon, NUMPY_FACTS) == venv_numpy
    assert job_json(venv_daemon, "import numpy; print(int(numpy.arange(10).sum()))") == 45


def test_jobs_run_in_the_sandbox_venvs_interpreter(venv_daemon, venv_python):
    found = job_json(venv_daemon, "import json, sys; print(json.dumps([sys.executable, sys.prefix]))")
    assert found == [venv_python, SANDBOX_VENV]


def test_a_programs_python3_is_the_sandbox_venvs(venv_daemon, venv_numpy):
    result = venv_daemon.run(["python3", "-c", NUMPY_FACTS])
    assert result.exit_code == 0, result.stderr.decode()
    assert json.loads(result.stdout) == venv_numpy
    shell = venv_daemon.run(["sh", "-c", "command -v python3; echo $PATH"])
    assert shell.stdout.decode().split() == [f"{SANDBOX_VENV}/bin/python3", f"{SANDBOX_VENV}/bin:/usr/local/bin:/usr/bin:/bin"]


def test_a_jobs_env_may_still_set_its_own_path(venv_daemon):
    result = venv_daemon.run(["sh", "-c", "echo $PATH"], env={"PATH": "/usr/bin:/bin"})
    assert result.stdout == b"/usr/bin:/bin\n"


def test_a_venv_reached_through_a_symlink_is_found_inside_by_the_same_path(tmp_path_factory, venv_numpy):
    link = tmp_path_factory.mktemp("linked-venv") / "ds"
    link.symlink_to(SANDBOX_VENV)
    running = start_daemon(str(tmp_path_factory.mktemp("linked-daemon")), "--metrics-port", "0", "--set",
                           f"python={link}", workers=1)
    try:
        spawned = job_json(running, "import subprocess, sys\n"
                           f"print(subprocess.run([sys.executable, '-c', {NUMPY_FACTS!r}], capture_output=True,"
                           " text=True, check=True).stdout)")
        program = running.run(["python3", "-c", NUMPY_FACTS])
    finally:
        running.stop()
    assert spawned == [venv_numpy[0], str(link / venv_numpy[1][len(SANDBOX_VENV) + 1:])]
    assert program.exit_code == 0 and json.loads(program.stdout)[0] == venv_numpy[0], program.stderr.decode()


@pytest.mark.parametrize("module", LEEWARD_ONLY)
def test_leewards_own_environment_is_not_importable(venv_daemon, venv_python, module):
    assert importlib.util.find_spec(module) is not None, f"{module} must be in leeward's .venv for this test"
    missing = subprocess.run([venv_python, "-s", "-c", f"import {module}"], capture_output=True, cwd="/")
    assert missing.returncode != 0, f"{module} must not be in the sandbox venv for this test"
    result = venv_daemon.execute(f"import {module}")
    assert result.exit_code == 1 and f"No module named '{module}'" in result.stderr.decode()


def test_no_directory_of_leewards_environment_is_on_the_jobs_path(venv_daemon):
    leeward_site = {p for p in sys.path if p.startswith(sys.prefix)}
    job_path = job_json(venv_daemon, "import json, sys; print(json.dumps(sys.path))")
    assert leeward_site and not leeward_site & set(job_path)
    assert [p for p in job_path if p.startswith(SANDBOX_VENV)]


def test_the_preload_comes_from_the_sandbox_venv(venv_daemon):
    with venv_daemon.connect() as conn:
        assert conn.status()["preloaded"] == ["numpy"]  # pandas, the default's other entry, is not in it


def test_doctor_checks_the_configured_python(venv_numpy):
    env = {**os.environ, "LEEWARD_PYTHON": SANDBOX_VENV}
    proc = subprocess.run([sys.executable, "-m", "leeward_daemon", "doctor", "--json"], capture_output=True,
                          text=True, env=env, cwd="/", timeout=300)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    python = checks["sandbox_python"]
    assert python["status"] == "OK" and python["data"]["prefix"] == SANDBOX_VENV and python["data"]["own"] is False
    preload = checks["preload"]
    assert preload["data"] == {"importable": ["numpy"], "missing": ["pandas"]}
    assert f"numpy {venv_numpy[0]}" in preload["detail"]


def fake_interpreter(directory, version: list[int]) -> str:
    path = os.path.join(directory, "python")
    facts = {"implementation": "cpython", "version": version, "extension_suffix": ".cpython-399-x86_64-linux-gnu.so",
             "prefixes": [str(directory)] * 4, "path": []}
    with open(path, "w") as fh:
        fh.write(f"#!/bin/sh\necho '{json.dumps(facts)}'\n")
    os.chmod(path, 0o755)
    return path


@pytest.mark.parametrize("rule", ["python_mismatch", "python_not_found"])
def test_the_daemon_refuses_to_start_on_a_python_that_breaks_a_rule(tmp_path, rule):
    python = fake_interpreter(tmp_path, [3, 99, 0]) if rule == "python_mismatch" else str(tmp_path / "nothing")
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    proc = subprocess.run([sys.executable, "-m", "leeward_daemon", "--socket", str(run_dir / "s.sock"),
                           "--metrics-port", "0", "--set", f"python={python}"],
                          capture_output=True, text=True, cwd="/", timeout=120)
    assert proc.returncode == 2 and f"leeward-daemon: {rule}: " in proc.stderr, proc.stderr
    assert not (run_dir / "s.sock").exists()
