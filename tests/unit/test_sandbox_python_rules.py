"""pool/sandbox_python.py's rules (each with its stable code) and sandbox/zygote_boot.py's
finders: leeward's own packages ahead of the sandbox's Python, its dependencies after."""
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from leeward_daemon.errors import SandboxPythonUnusable
from leeward_daemon.isolation.rootfs import SYSTEM_PATHS
from leeward_daemon.pool import sandbox_python
from leeward_daemon.pool.sandbox_python import DEPENDENCY_MODULES, OWN_MODULES, Facts
from leeward_daemon.sandbox import zygote_boot

HERE = Facts.of_this_interpreter()


def fake_python(directory, facts: dict | None = None, *, status: int = 0, text: str = "") -> str:
    """An executable that answers the probe with `facts` (or prints `text`)."""
    path = os.path.join(directory, "python")
    said = json.dumps(facts) if facts is not None else text
    with open(path, "w") as fh:
        fh.write(f"#!/bin/sh\ncat <<'EOF'\n{said}\nEOF\nexit {status}\n")
    os.chmod(path, 0o755)
    return path


def facts_as_probe_prints(facts: Facts) -> dict:
    return {"implementation": facts.implementation, "version": list(facts.version),
            "extension_suffix": facts.extension_suffix, "prefixes": list(facts.prefixes), "path": list(facts.path)}


def code_of(excinfo) -> str:
    assert str(excinfo.value).startswith(excinfo.value.code + ": ")
    return excinfo.value.code


# ---------------------------------------------------------------- rule 1: found

def test_the_default_is_the_daemons_own_interpreter_without_a_probe():
    python = sandbox_python.resolve("")
    assert python.own and python.executable == sys.executable and python.facts == Facts.of_this_interpreter()


def test_a_venv_directory_means_its_bin_python_unresolved(tmp_path):
    (tmp_path / "bin").mkdir()
    target = fake_python(tmp_path / "bin")
    link = tmp_path / "bin" / "python3"
    os.rename(target, link)
    (tmp_path / "bin" / "python").symlink_to(link)
    assert sandbox_python.executable_for(str(tmp_path)) == str(tmp_path / "bin" / "python")


@pytest.mark.parametrize("make", ["missing", "not_executable", "empty_dir"])
def test_python_not_found(tmp_path, make):
    path = tmp_path / "x"
    if make == "not_executable":
        path.write_text("")
    elif make == "empty_dir":
        path.mkdir()
    with pytest.raises(SandboxPythonUnusable) as exc:
        sandbox_python.resolve(str(path))
    assert code_of(exc) == "python_not_found" and str(path) in str(exc.value)


# ---------------------------------------------------------------- rule 2: runnable

def test_the_probe_reads_a_real_interpreter_as_it_reads_itself():
    facts = sandbox_python.probe(sys.executable)
    assert (facts.implementation, facts.version, facts.extension_suffix) == \
           (HERE.implementation, HERE.version, HERE.extension_suffix)
    assert facts.prefixes[0] == sys.prefix


@pytest.mark.parametrize("status, text", [(3, "Traceback: broken venv"), (0, "not json"), (0, '{"version": 3}')])
def test_python_not_runnable(tmp_path, status, text):
    broken = fake_python(tmp_path, status=status, text=text)
    with pytest.raises(SandboxPythonUnusable) as exc:
        sandbox_python.resolve(broken)
    assert code_of(exc) == "python_not_runnable" and f"exit status {status}" in str(exc.value)


# ---------------------------------------------------------------- rule 3: same ABI

@pytest.mark.parametrize("change", [
    {"version": (HERE.version[0], HERE.version[1] + 1, 0)},
    {"extension_suffix": HERE.extension_suffix.replace(".so", "t.so").replace("-linux", "t-linux")},
    {"implementation": "pypy"},
])
def test_python_mismatch(tmp_path, change):
    other = dataclasses.replace(HERE, **change)
    with pytest.raises(SandboxPythonUnusable) as exc:
        sandbox_python.resolve(fake_python(tmp_path, facts_as_probe_prints(other)))
    assert code_of(exc) == "python_mismatch"
    required = f"{HERE.implementation} {HERE.version[0]}.{HERE.version[1]} ({HERE.extension_suffix})"
    assert other.describe() in str(exc.value) and f"must be {required} like" in str(exc.value)


def test_a_matching_interpreter_elsewhere_is_accepted(tmp_path):
    other = dataclasses.replace(HERE, version=HERE.version[:2] + (HERE.version[2] + 1,),
                                prefixes=(str(tmp_path),) * 4, path=(str(tmp_path / "site"),))
    python = sandbox_python.resolve(fake_python(tmp_path, facts_as_probe_prints(other)))
    assert not python.own and python.facts == other


def test_resolving_checks_rule_1_at_once_and_the_probes_rules_when_asked(tmp_path):
    with pytest.raises(SandboxPythonUnusable, match="^python_not_found: "):
        sandbox_python.Resolving(str(tmp_path / "missing"))
    other = dataclasses.replace(HERE, version=(HERE.version[0], HERE.version[1] + 1, 0))
    resolving = sandbox_python.Resolving(fake_python(tmp_path, facts_as_probe_prints(other)))
    assert resolving.executable == str(tmp_path / "python") and not resolving.own  # the zygote may start
    for _ in range(2):  # the probe's answer is kept: a restart gets the same
        with pytest.raises(SandboxPythonUnusable, match="^python_mismatch: "):
            resolving.result()


# ---------------------------------------------------------------- what reaches the sandbox

def test_bound_paths_hold_the_venv_and_leewards_runtime_but_no_system_dir(tmp_path):
    site = tmp_path / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    facts = dataclasses.replace(HERE, prefixes=(str(tmp_path / "venv"), "/usr", str(tmp_path / "venv"), "/usr"),
                                path=("", "/usr/lib/python3.11", str(site)))
    python = sandbox_python.SandboxPython(str(tmp_path / "venv" / "bin" / "python"), facts, own=False)
    bound = python.bound_paths()
    assert str(tmp_path / "venv") in bound and str(site) not in bound  # outermost only
    assert not [p for p in bound if p == "/" or any(p == s or p.startswith(s + "/") for s in SYSTEM_PATHS)]
    import leeward_daemon, msgpack, prctl
    for package in (leeward_daemon, msgpack):
        directory = os.path.dirname(package.__file__)
        assert any(directory == p or directory.startswith(p + "/") for p in bound), directory
    # Not the directories around them (leeward's site-packages, its source tree), unless the
    # interpreter reads them itself: a single-file module is read by the zygote, before any fork.
    assert os.path.dirname(prctl.__file__) not in bound
    assert os.path.dirname(os.path.dirname(leeward_daemon.__file__)) not in bound


def test_only_a_configured_python_puts_its_bin_dir_on_jobs_path(tmp_path):
    assert sandbox_python.resolve("").bin_dir == ""
    python = sandbox_python.SandboxPython(str(tmp_path / "venv" / "bin" / "python"), HERE, own=False)
    assert python.bin_dir == str(tmp_path / "venv" / "bin")


def test_the_runtime_modules_are_where_this_process_imports_them_from():
    first = sandbox_python.first_modules()
    assert sorted(first) == sorted(OWN_MODULES)
    import leeward_daemon
    assert first["leeward_daemon"] == os.path.dirname(os.path.dirname(leeward_daemon.__file__))
    last = sandbox_python.last_modules()
    assert sorted(last) == sorted(DEPENDENCY_MODULES)
    assert last["_prctl"] == os.path.dirname(importlib.util.find_spec("_prctl").origin)


def test_the_runtime_lists_name_every_module_the_zygote_imports_from_outside_the_stdlib():
    """A new dependency of the sandbox side must join DEPENDENCY_MODULES, or a zygote in
    another venv could not import it."""
    code = textwrap.dedent("""
        import sys
        before = set(sys.modules)
        import leeward_daemon.sandbox.zygote
        new = {name.partition(".")[0] for name in set(sys.modules) - before}
        files = {n for n in new if getattr(sys.modules.get(n), "__file__", None)}
        print(" ".join(sorted(n for n in files if n not in sys.stdlib_module_names)))
    """)
    out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True, cwd="/",
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}, check=True)
    assert sorted(out.stdout.split()) == sorted(OWN_MODULES + DEPENDENCY_MODULES)


# ---------------------------------------------------------------- zygote_boot's finders

def _module(directory, name: str, says: str) -> str:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{name}.py"), "w") as fh:
        fh.write(f"SAYS = {says!r}\n")
    return str(directory)


def _import_under_boot(name: str, sys_path_dir: str, environ: dict) -> str:
    """`name` imported by a fresh interpreter whose path has `sys_path_dir` (the venv's
    site-packages) once zygote_boot's finders are installed from `environ`."""
    code = (f"import importlib.util, os, sys; sys.path.insert(1, {sys_path_dir!r}); "
            f"spec = importlib.util.spec_from_file_location('boot', {zygote_boot.__file__!r}); "
            "boot = importlib.util.module_from_spec(spec); spec.loader.exec_module(boot); "
            f"boot.install(os.environ); import {name}; print({name}.SAYS)")
    return subprocess.run([sys.executable, "-s", "-P", "-c", code], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", **environ}, cwd="/").stdout.strip()


def test_first_modules_win_over_the_sandbox_pythons_path(tmp_path):
    venv_site = _module(tmp_path / "venv", "lw_probe_mod", "venv")
    leeward = _module(tmp_path / "leeward", "lw_probe_mod", "leeward")
    environ = {zygote_boot.FIRST_ENV: f"lw_probe_mod={leeward}\n"}
    assert _import_under_boot("lw_probe_mod", venv_site, environ) == "leeward"


def test_last_modules_lose_to_the_sandbox_pythons_path_and_fill_its_gaps(tmp_path):
    venv_site = _module(tmp_path / "venv", "lw_probe_mod", "venv")
    leeward = _module(tmp_path / "leeward", "lw_probe_mod", "leeward")
    _module(tmp_path / "leeward", "lw_probe_other", "leeward")
    environ = {zygote_boot.LAST_ENV: f"lw_probe_mod={leeward}\nlw_probe_other={leeward}\n"}
    assert _import_under_boot("lw_probe_mod", venv_site, environ) == "venv"
    assert _import_under_boot("lw_probe_other", venv_site, environ) == "leeward"


def test_modules_not_named_are_not_found_through_the_finders(tmp_path):
    finder = zygote_boot.NamedModules(zygote_boot.parse_locations(f"lw_probe_mod={_module(tmp_path, 'lw_probe_mod', 'x')}\n"))
    assert finder.find_spec("lw_probe_mod").origin == str(tmp_path / "lw_probe_mod.py")
    _module(tmp_path, "lw_probe_unlisted", "x")
    assert finder.find_spec("lw_probe_unlisted") is None
    assert finder.find_spec("lw_probe_mod.sub") is None
