"""README.md "Configuration" documents every key with its type and default: read the
table and compare it with the code, so the two cannot drift apart."""
import dataclasses
import os
import re
import tomllib

import pytest

from leeward_daemon import config
from tests.conftest import REPO

TYPE_WORDS = {int: "integer", float: "number", str: "string", list[str]: "list of strings"}
COMPUTED_DEFAULTS = {"socket_path"}  # depends on uid and environment: described, not a literal


def readme_rows() -> dict[str, tuple[str, str]]:
    with open(os.path.join(REPO, "README.md")) as fh:
        text = fh.read()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} documented twice"
            rows[match.group(1)] = (cells[1], cells[2])
    return rows


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config.Config)}


def test_every_key_is_documented_and_nothing_else():
    assert sorted(readme_rows()) == sorted(fields())


@pytest.mark.parametrize("key", sorted(fields()))
def test_documented_type_is_the_keys(key):
    assert readme_rows()[key][0] == TYPE_WORDS[config.field_types()[key]]


@pytest.mark.parametrize("key", sorted(set(fields()) - COMPUTED_DEFAULTS))
def test_documented_default_is_the_keys(key):
    cell = readme_rows()[key][1]
    literal = re.match(r"`([^`]*)`", cell)
    assert literal, f"{key}: the default must start with a TOML literal in backticks, got {cell!r}"
    documented = tomllib.loads(f"value = {literal.group(1)}")["value"]
    assert documented == getattr(config.Config(), key)
    assert type(documented) is type(getattr(config.Config(), key))


def test_computed_defaults_name_their_sources():
    assert "$LEEWARD_SOCKET" in readme_rows()["socket_path"][1]
    assert "/run/leeward/leeward.sock" in readme_rows()["socket_path"][1]
