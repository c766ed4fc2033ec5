"""The daemon's packages follow the process that runs their code (LAYOUT.md): what runs
inside a sandbox never imports the daemon's event-loop side, and libleeward, shared by
the client and the daemon, imports nothing of the daemon. Imports are read with ast,
relative ones resolved, including those inside functions."""
from __future__ import annotations

import ast
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DAEMON = REPO / "daemon" / "leeward_daemon"
LIBLEEWARD = REPO / "libleeward"

# package (dotted prefix) -> packages its modules may never import
FORBIDDEN = {
    "leeward_daemon.sandbox": ("leeward_daemon.frontdoor", "leeward_daemon.pool", "leeward_daemon.ops"),
    "leeward_daemon.isolation": ("leeward_daemon.frontdoor", "leeward_daemon.pool", "leeward_daemon.ops",
                                 "leeward_daemon.sandbox"),
    "leeward_daemon.ipc": ("leeward_daemon.frontdoor", "leeward_daemon.pool", "leeward_daemon.ops",
                           "leeward_daemon.sandbox"),
    "libleeward": ("leeward_daemon",),
}


def module_name(path: pathlib.Path) -> str:
    root = DAEMON.parent if DAEMON in path.parents else REPO
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module `path` imports, as absolute dotted names (`from a import b` counts
    as both a and a.b: b may be a submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def violations(files) -> list[str]:
    found = []
    for path in files:
        name = module_name(path)
        for package, forbidden in FORBIDDEN.items():
            if name != package and not name.startswith(package + "."):
                continue
            for imported in sorted(imported_modules(path)):
                if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                    found.append(f"{name} imports {imported}")
    return found


def sources():
    return sorted([*DAEMON.rglob("*.py"), *LIBLEEWARD.glob("*.py")])


def test_sandbox_isolation_ipc_and_libleeward_import_only_what_they_may():
    assert violations(sources()) == []


def test_the_packages_the_rules_name_exist():
    # A rule over a package that was renamed away would pass for ever.
    for package in FORBIDDEN:
        top, _, rest = package.partition(".")
        directory = (DAEMON if top == "leeward_daemon" else LIBLEEWARD) / rest.replace(".", "/")
        assert (directory / "__init__.py").is_file(), package


@pytest.mark.parametrize("where, line", [
    ("daemon/leeward_daemon/sandbox/forged.py", "from ..pool import supervisor\n"),
    ("daemon/leeward_daemon/sandbox/forged.py", "def f():\n    from leeward_daemon.frontdoor import server\n"),
    ("daemon/leeward_daemon/isolation/forged.py", "from .. import ops\n"),
    ("daemon/leeward_daemon/isolation/forged.py", "import leeward_daemon.ops.metrics\n"),
    ("libleeward/forged.py", "from leeward_daemon import config\n"),
])
def test_a_forbidden_import_is_caught(tmp_path, monkeypatch, where, line):
    """The rule itself: the same check over a copy of the tree with one bad import added."""
    copy = tmp_path / "repo"
    for source in sources():
        target = copy / source.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
    (copy / where).write_text(line)
    monkeypatch.setattr(sys.modules[__name__], "REPO", copy)
    monkeypatch.setattr(sys.modules[__name__], "DAEMON", copy / "daemon" / "leeward_daemon")
    monkeypatch.setattr(sys.modules[__name__], "LIBLEEWARD", copy / "libleeward")
    found = violations(sorted([*(copy / "daemon").rglob("*.py"), *(copy / "libleeward").glob("*.py")]))
    forged = module_name(copy / where) + " imports "
    assert found and all(line.startswith(forged) for line in found), found


def test_only_the_front_door_knows_the_wire_error_codes():
    """The pool, the supervisor and everything below raise leeward_daemon.errors;
    frontdoor/errors.py alone turns them into ErrorCode."""
    naming = []
    for path in DAEMON.rglob("*.py"):
        if module_name(path).startswith("leeward_daemon.frontdoor"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
        if "ErrorCode" in names:
            naming.append(module_name(path))
    assert naming == []
