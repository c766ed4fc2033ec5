"""deploy/Containerfile without a container engine: its syntax (instructions, stages,
sources), and that the final stage has no build tools, runs as a non-root user by
default, and installs the Debian packages behind the libraries libleeward.so links."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

CONTAINERFILE = Path(REPO) / "deploy" / "Containerfile"
INSTRUCTIONS = {"FROM", "ARG", "RUN", "COPY", "ENV", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE"}
BUILD_TOOLS = re.compile(r"^(gcc|g\+\+|clang|make|pkg-config|build-essential|.*-dev)$")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        result.append((word, rest.strip()))
        pending = ""
    assert not pending, "the file ends inside a continued line"
    return result


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for word, rest in parsed:
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
        else:
            assert word == "ARG", f"{word} before the first FROM"
    return found


def apt_packages(stage: list[tuple[str, str]]) -> set[str]:
    packages = set()
    for word, rest in stage:
        if word == "RUN":
            for command in rest.split("&&"):
                args = shlex.split(command)
                if args[:2] == ["apt-get", "install"]:
                    packages |= {a for a in args[2:] if not a.startswith("-")}
    return packages


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(CONTAINERFILE.read_text())


def test_every_instruction_is_known_and_every_source_exists(parsed):
    for word, rest in parsed:
        assert word in INSTRUCTIONS, f"unknown instruction {word!r}"
        if word == "COPY" and not rest.startswith("--from="):
            for source in shlex.split(rest)[:-1]:
                assert (Path(REPO) / source).exists(), f"COPY source {source} is not in the repository"


def test_stages_and_their_references(parsed):
    all_stages = stages(parsed)
    names = {shlex.split(s[0][1])[-1] for s in all_stages[:-1]}
    assert len(all_stages) == 2 and names == {"build"}
    assert " AS " not in all_stages[-1][0][1]
    for word, rest in all_stages[-1]:
        if word == "COPY" and rest.startswith("--from="):
            assert rest.split()[0].removeprefix("--from=") in names


def test_installed_the_way_the_readme_does(parsed):
    build = " ".join(rest for word, rest in stages(parsed)[0] if word == "RUN")
    assert "python3 -m venv .venv" in build
    assert ".venv/bin/pip install --no-cache-dir -e ." in build
    assert ".venv/bin/python libleeward/build_ffi.py" in build


def test_final_stage_has_no_build_tools_and_runs_as_non_root(parsed):
    final = stages(parsed)[-1]
    tools = {p for p in apt_packages(final) if BUILD_TOOLS.match(p)}
    assert not tools, f"build tools in the final stage: {tools}"
    assert any(BUILD_TOOLS.match(p) for p in apt_packages(stages(parsed)[0])), "the build stage's tools are not recognised"
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_final_stage_installs_what_libleeward_links(parsed):
    """Each library libleeward.so needs comes from a package the final stage installs, or
    one of their direct dependencies (the image's Debian is the dev machines' Debian)."""
    library = Path(REPO) / "build" / "lib" / "libleeward.so"
    if not library.exists():
        pytest.skip("build/lib/libleeward.so is not built (make lib)")
    final = apt_packages(stages(parsed)[-1])
    depends = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends},", *sorted(final)],
                             capture_output=True, text=True).stdout
    provided = final | {re.split(r"[ :(]", d.strip())[0] for d in re.split(r"[,|]", depends) if d.strip()}
    ldd = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    for path in re.findall(r"=> (/\S+)", ldd):
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
        if owner.returncode != 0:  # /lib vs /usr/lib (merged /usr): ask for the other spelling
            owner = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/")], capture_output=True, text=True)
        package = owner.stdout.split(":")[0]
        assert package in provided or package == "libc6", f"{path} ({package}) is not installed in the final stage"
