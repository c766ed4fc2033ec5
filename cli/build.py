"""Builds the `leeward` command (cli/*.c) and installs it where users run it.

    .venv/bin/python cli/build.py [--out build/bin] [--install .venv/bin] [--if-stale]

The program hands every command it does not run itself to the Python CLI, as
`<this interpreter> -m leeward ...`: that interpreter's path is baked in here, so the
binary belongs to the environment that built it (as pip's console scripts do).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCES = [HERE / "leeward.c", HERE / "msgpack.c", HERE / "wire.c"]
HEADERS = [HERE / "msgpack.h", HERE / "wire.h"]
DEFAULT_OUT = REPO / "build" / "bin"
NAME = "leeward"


def c_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build(out: Path = DEFAULT_OUT, python: str = sys.executable) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    target = out / NAME
    staging = out / f".{NAME}.new"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-D_FORTIFY_SOURCE=2", f"-DLW_PYTHON_CLI={c_string(python)}",
                    "-o", str(staging), *map(str, SOURCES), "-lm"], check=True)
    os.replace(staging, target)  # a running `leeward` keeps its old inode
    return target


def is_stale(out: Path = DEFAULT_OUT) -> bool:
    target = out / NAME
    if not target.exists():
        return True
    newest = max(p.stat().st_mtime for p in [*SOURCES, *HEADERS, Path(__file__).resolve()])
    return target.stat().st_mtime < newest


def ensure_built(out: Path = DEFAULT_OUT) -> Path:
    """The binary in `out`, rebuilt first if stale (what tests call)."""
    return build(out) if is_stale(out) else out / NAME


def install(binary: Path, bindir: Path) -> Path:
    """Replaces `bindir/leeward` (pip's Python console script) with the binary."""
    target = bindir / NAME
    staging = bindir / f".{NAME}.new"
    shutil.copy2(binary, staging)
    os.replace(staging, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output dir (default build/bin)")
    parser.add_argument("--install", type=Path, metavar="BINDIR", help="then copy it to BINDIR/leeward")
    parser.add_argument("--if-stale", action="store_true", help="do not rebuild an up-to-date binary")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    binary = ensure_built(out) if args.if_stale else build(out)
    print(f"built {binary} (hands other commands to {sys.executable} -m leeward)")
    if args.install:
        print(f"installed {install(binary, args.install)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
