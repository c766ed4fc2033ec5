"""The sandbox's Python: the interpreter the zygote runs, and so every job and the
preload. Config key `python`: an interpreter, or a venv (or install prefix) directory
meaning its bin/python; "" (the default) is the interpreter the daemon runs in. Jobs
import that interpreter's own site-packages; leeward's install is never on their path.

Rules, checked at daemon start (fail closed: SandboxPythonUnusable, whose `code` is
given below) and by `leeward doctor` (check `sandbox_python`):

1. `python_not_found`: the path is an executable file, or a directory with an
   executable bin/python (or bin/python3). A venv's bin/python is kept as configured,
   never resolved through its symlink: the venv is what the link's location makes it.
2. `python_not_runnable`: it starts with `-s` in a scrubbed environment and reports
   itself (one short probe run at start; none when `python` is "").
3. `python_mismatch`: it is the same implementation (CPython), major.minor and ABI as
   the daemon's interpreter — the same extension-module suffix, e.g.
   `.cpython-311-x86_64-linux-gnu.so`, so a free-threaded or debug build does not
   match a default one. Why: the zygote imports leeward's daemon code in it, together
   with leeward's compiled dependencies (python-prctl's `_prctl`, msgpack's
   `_cmsgpack`) as they are built in the daemon's environment. A venv made with
   `python3.X -m venv` from the daemon's python3.X meets it.

How leeward reaches into it (sandbox/zygote_boot.py): the modules in OWN_MODULES come
from the daemon's install ahead of the venv's (the zygote must speak the daemon's
internal protocol, whatever leeward the venv holds); those in DEPENDENCY_MODULES after
the venv's (a copy in the venv is used instead, and then must meet leeward's own
requirements in pyproject.toml). Nothing else of leeward's environment is importable in
a job; a job can import these few modules (they are already loaded in the zygote).

Every directory the interpreter reads (its prefixes and sys.path) and the runtime
packages' own directories are bound read-only into every sandbox, at the same paths (a
symlink on the way stays a symlink: isolation/rootfs.py). A configured Python's bin
directory is first on jobs' PATH, so a program's `python3` is that venv's too.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from ..errors import SandboxPythonUnusable
from ..isolation.rootfs import SYSTEM_PATHS

OWN_MODULES = ("leeward_daemon", "libleeward")
DEPENDENCY_MODULES = ("msgpack", "prctl", "_prctl", "pyseccomp")
# The environment every run of the sandbox's Python gets (the zygote adds its fd).
SCRUBBED_ENV = {"PATH": "/usr/bin:/bin"}
PROBE_TIMEOUT_SECS = 30.0
# Printed by the probe, and read from this process for the daemon's own interpreter.
_FACTS = """
import importlib.machinery, json, sys
print(json.dumps({"implementation": sys.implementation.name, "version": list(sys.version_info[:3]),
                  "extension_suffix": importlib.machinery.EXTENSION_SUFFIXES[0],
                  "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],
                  "path": sys.path}))
"""


@dataclass(frozen=True)
class Facts:
    """What an interpreter says about itself."""
    implementation: str
    version: tuple[int, int, int]
    extension_suffix: str
    prefixes: tuple[str, ...]
    path: tuple[str, ...]

    @classmethod
    def of_this_interpreter(cls) -> "Facts":
        return cls(sys.implementation.name, tuple(sys.version_info[:3]), importlib.machinery.EXTENSION_SUFFIXES[0],
                   (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix), tuple(sys.path))

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def describe(self) -> str:
        return f"{self.implementation} {self.version_text} ({self.extension_suffix})"


@dataclass(frozen=True)
class SandboxPython:
    executable: str
    facts: Facts
    own: bool  # the daemon's own interpreter: the zygote inherits its PYTHONPATH too (a source tree)

    @property
    def bin_dir(self) -> str:
        """First on jobs' PATH, so a program's `python3` is this one too; "" for the
        daemon's own, whose bin dir holds leeward's commands rather than a chosen venv's."""
        return "" if self.own else os.path.dirname(self.executable)

    def bound_paths(self) -> list[str]:
        """Host dirs the sandbox needs beyond the system dirs, outermost only: the
        interpreter's, and the runtime packages' own dirs (a submodule may be imported
        late, in a job). Not the directories around them, which may be leeward's whole
        site-packages or source tree; a single-file module is read once, by the zygote."""
        candidates = set(self.facts.prefixes) | {p for p in self.facts.path if p}
        candidates |= {package for _, package in _locations(OWN_MODULES + DEPENDENCY_MODULES).values() if package}
        dirs = sorted({os.path.realpath(p) for p in candidates} | {os.path.abspath(p) for p in candidates})
        # "/" shows up as sys.path[0] of a `python -m` started in "/": never bind the host root.
        dirs = [d for d in dirs if d != "/" and os.path.isdir(d) and not _under(d, SYSTEM_PATHS)]
        return [d for d in dirs if not _under(d, [o for o in dirs if o != d])]


class Resolving:
    """A `python` value on its way to a SandboxPython: rule 1 is checked at once, rules
    2 and 3 by a probe that runs while the caller starts the zygote with `executable`
    (so the daemon's start waits for one interpreter start-up, not two in a row)."""

    def __init__(self, setting: str):
        self.own = not setting
        self.executable = sys.executable if self.own else executable_for(setting)
        self._probe = None if self.own else _start_probe(self.executable)
        self._outcome: SandboxPython | SandboxPythonUnusable | None = None

    def result(self) -> SandboxPython:
        """Waits for the probe (once); SandboxPythonUnusable names the rule broken."""
        if self._outcome is None:
            try:
                self._outcome = self._check()
            except SandboxPythonUnusable as exc:
                self._outcome = exc
        if isinstance(self._outcome, SandboxPythonUnusable):
            raise self._outcome
        return self._outcome

    def _check(self) -> SandboxPython:
        if self._probe is None:
            return SandboxPython(self.executable, Facts.of_this_interpreter(), own=True)
        facts = _finish_probe(self.executable, self._probe)
        check_compatible(self.executable, facts, Facts.of_this_interpreter())
        return SandboxPython(self.executable, facts, own=False)


def resolve(setting: str) -> SandboxPython:
    """The sandbox's Python for the `python` key's value; SandboxPythonUnusable names
    the rule it breaks."""
    return Resolving(setting).result()


def first_modules() -> dict[str, str]:
    """OWN_MODULES -> the directory each is found in, as the daemon imports them."""
    return {name: directory for name, (directory, _) in _locations(OWN_MODULES).items()}


def last_modules() -> dict[str, str]:
    """DEPENDENCY_MODULES -> their directories, for those installed with the daemon."""
    return {name: directory for name, (directory, _) in _locations(DEPENDENCY_MODULES).items()}


def executable_for(setting: str) -> str:
    """Rule 1: the interpreter a `python` value names."""
    if os.path.isdir(setting):
        for name in ("python", "python3"):
            candidate = os.path.join(setting, "bin", name)
            if _is_executable_file(candidate):
                return candidate
        raise SandboxPythonUnusable("python_not_found", f"{setting} is a directory without an executable "
                                    "bin/python or bin/python3 (python: a venv directory or an interpreter)")
    if not os.path.exists(setting):
        raise SandboxPythonUnusable("python_not_found", f"{setting} does not exist")
    if not _is_executable_file(setting):
        raise SandboxPythonUnusable("python_not_found", f"{setting} is not an executable file")
    return setting


def probe(executable: str) -> Facts:
    """Rule 2: runs the interpreter once, as the zygote will be run, for its facts."""
    return _finish_probe(executable, _start_probe(executable))


def _start_probe(executable: str) -> subprocess.Popen | SandboxPythonUnusable:
    try:
        return subprocess.Popen([executable, "-s", "-c", _FACTS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, cwd="/", env=SCRUBBED_ENV)
    except OSError as exc:
        return SandboxPythonUnusable("python_not_runnable", f"{executable} cannot be run: {exc}")


def _finish_probe(executable: str, started: subprocess.Popen | SandboxPythonUnusable) -> Facts:
    if isinstance(started, SandboxPythonUnusable):
        raise started
    try:
        stdout, stderr = started.communicate(timeout=PROBE_TIMEOUT_SECS)
    except subprocess.TimeoutExpired:
        started.kill()
        started.communicate()
        raise SandboxPythonUnusable("python_not_runnable", f"{executable} did not report itself within "
                                    f"{PROBE_TIMEOUT_SECS:g}s") from None
    try:
        found = json.loads(stdout)
        return Facts(found["implementation"], tuple(found["version"]), found["extension_suffix"],
                     tuple(found["prefixes"]), tuple(found["path"]))
    except (ValueError, KeyError, TypeError):
        said = (stderr.strip() or stdout.strip())[-500:]
        raise SandboxPythonUnusable("python_not_runnable", f"{executable} did not report itself "
                                    f"(exit status {started.returncode}): {said}") from None


def check_compatible(executable: str, sandbox: Facts, daemon: Facts) -> None:
    """Rule 3: the daemon's implementation, major.minor and ABI."""
    same = (sandbox.implementation == daemon.implementation and sandbox.version[:2] == daemon.version[:2]
            and sandbox.extension_suffix == daemon.extension_suffix)
    if not same:
        minor = f"{daemon.version[0]}.{daemon.version[1]}"
        raise SandboxPythonUnusable(
            "python_mismatch", f"{executable} is {sandbox.describe()}; the sandbox's Python must be "
            f"{daemon.implementation} {minor} ({daemon.extension_suffix}) like the daemon's {sys.executable} "
            f"(make the venv with python{minor} -m venv, or install leeward into that Python)")


def _locations(names: tuple[str, ...]) -> dict[str, tuple[str, str | None]]:
    """Each name -> (the directory holding it, the package's own directory or None for
    a single-file module), as this process would import it; names not installed here
    are left out (the sandbox's Python may have them itself)."""
    found = {}
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not os.path.isabs(spec.origin):
            continue
        location = os.path.dirname(spec.origin)
        found[name] = (os.path.dirname(location), location) if spec.submodule_search_locations else (location, None)
    return found


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
