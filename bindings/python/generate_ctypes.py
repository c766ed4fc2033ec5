"""Regenerates leeward/_ffi/ (the ctypes declarations) from include/leeward.h with ctypesgen.

    .venv/bin/python bindings/python/generate_ctypes.py [OUT_DIR]

The header is the single source of truth: tests/bindings/python regenerates into a
temporary dir and fails if the committed files differ. Run this after editing the header.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEADER = "include/leeward.h"
PACKAGE_DIR = REPO / "bindings" / "python" / "leeward" / "_ffi"
# What the files' "Generated with" line says, whatever OUT_DIR is.
COMMAND = f"ctypesgen -l leeward --no-embed-preamble -o bindings/python/leeward/_ffi/lowlevel.py {HEADER}"
GENERATED = ("lowlevel.py", "ctypes_preamble.py", "ctypes_loader.py")
# ctypesgen reads sys.argv for that line, so it runs in a child with a fixed argv.
RUNNER = "import sys; from ctypesgen.main import main; args = sys.argv[1:]; sys.argv = {command!r}.split(); main(args)"


def generate(out_dir: Path = PACKAGE_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["-l", "leeward", "--no-embed-preamble", "--no-macro-warnings",
            f"--strip-build-path={REPO}", "-o", str(out_dir / "lowlevel.py"), str(REPO / HEADER)]
    # Its log (including harmless parse errors in glibc's macros) is shown only on failure.
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(command=COMMAND), *args],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"ctypesgen failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return [out_dir / name for name in GENERATED]


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE_DIR):
        print(f"wrote {path}")
