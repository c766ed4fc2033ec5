"""Reads the constants of include/leeward.h and writes them as libleeward/abi.py.

    .venv/bin/python -m libleeward.header          # after editing the header's codes or version

The header is the one source of the error codes and the version: Python imports the
generated abi.py (an installed wheel has no include/), Go reads the macros through cgo,
and the Node and Go tests parse the header themselves. tests/libleeward regenerates
abi.py in memory and fails when the committed one differs.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

HEADER = Path(__file__).resolve().parent.parent / "include" / "leeward.h"
GENERATED = Path(__file__).resolve().parent / "abi.py"

_VERSION = re.compile(r'^#define LEEWARD_VERSION "([^"]+)"', re.M)
# `#define LEEWARD_E_NAME "E1234"   /* optional comment */`
_CODE = re.compile(r'^#define LEEWARD_E_([A-Z0-9_]+) "(E\d{4})"[ \t]*(?:/\*(.*?)\*/)?[ \t]*$', re.M)


@dataclass(frozen=True)
class Code:
    name: str  # without the LEEWARD_E_ prefix: the ErrorCode member name
    value: str
    comment: str


def version(text: str) -> str:
    match = _VERSION.search(text)
    if match is None:
        raise ValueError("the header has no LEEWARD_VERSION")
    return match.group(1)


def codes(text: str) -> list[Code]:
    found = [Code(m.group(1), m.group(2), (m.group(3) or "").strip()) for m in _CODE.finditer(text)]
    if not found:
        raise ValueError("the header has no LEEWARD_E_* codes")
    for attr in ("name", "value"):
        seen = [getattr(c, attr) for c in found]
        if len(set(seen)) != len(seen):
            raise ValueError(f"the header repeats a code {attr}")
    return found


def render(text: str) -> str:
    lines = [
        '"""What libleeward shares with include/leeward.h: the version and the stable error codes.',
        "",
        "Generated from the header by `python -m libleeward.header`; do not edit.",
        '"""',
        "from enum import Enum",
        "",
        f"VERSION = {version(text)!r}",
        "",
        "",
        "class ErrorCode(str, Enum):",
        '    """Stable error codes (LEEWARD_E_* in the header). Never renumber: clients match on them."""',
        "",
    ]
    for code in codes(text):
        comment = f"  # {code.comment}" if code.comment else ""
        lines.append(f"    {code.name} = {code.value!r}{comment}")
    return "\n".join(lines) + "\n"


def main() -> int:
    GENERATED.write_text(render(HEADER.read_text()))
    print(f"wrote {GENERATED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
