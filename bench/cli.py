#!/usr/bin/env python3
"""The `leeward` command end to end (process start to exit), beside a bare `python3 -c`
measured in the same run, interleaved round by round so drift hits every row alike.

Usage: bench/cli.py [--runs N] [--pandas-runs N]   (starts its own daemon)
bench/latency.py (`make bench`) calls measure_cli() with its daemon instead.

Rows besides the CLI and the baseline, the evidence for how the CLI is built
(cli/leeward.c): libleeward.so's generic entry point called from a 20-line C program (the
C ABI route: an embedded CPython starts in every process); `python3 -I -S -c pass`, the
floor of any CPython start; and the raw protocol round trip, which every client adds to
its own start. Not a test: nothing here passes or fails on speed.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from baselines import SYSTEM_PYTHON, VENV_PYTHON  # noqa: E402
from libleeward.client import Connection  # noqa: E402

HELLO = "print('hello')"
# pandas is preloaded by the daemon's zygote (config `preload`); on the host it is imported
# by every process. The system python3 has no pandas: the venv's runs that baseline.
PANDAS = ("import pandas as pd; df = pd.DataFrame({'k': [i % 7 for i in range(1000)], 'v': range(1000)}); "
          "print(df.groupby('k')['v'].sum().sum())")

CABI_PROGRAM = r"""
#include <stdio.h>
#include "leeward.h"
int main(int argc, char **argv) {
    LeewardHandle *handle = leeward_connect(argv[1]);
    char *reply = NULL;
    if (handle == NULL || leeward_call(handle, argv[2], &reply) != 0) {
        fprintf(stderr, "%s\n", leeward_last_error());
        return 125;
    }
    puts(reply);
    leeward_string_free(reply);
    leeward_disconnect(handle);
    return 0;
}
"""


def process(argv: list[str], env: dict | None = None) -> Callable[[], None]:
    """A call that runs `argv` to completion and checks it worked (a failure says why)."""
    def call() -> None:
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()[-300:]}")
    return call


def interleaved(rows: dict[str, Callable[[], None]], runs: int, warmup: int = 3) -> dict[str, list[float]]:
    """Each row's samples in ms, the rows called one after another in each of `runs` rounds."""
    for _ in range(warmup):
        for call in rows.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(runs):
        for name, call in rows.items():
            started = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - started) * 1000.0)
    return samples


def cli_binary() -> str:
    """The C `leeward`, built from this checkout if stale (cli/build.py, loaded by path:
    `cli` is this module's own name)."""
    spec = importlib.util.spec_from_file_location("leeward_cli_build", os.path.join(REPO, "cli", "build.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return str(build.ensure_built())


def cabi_program(directory: str) -> str | None:
    """The C ABI route, compiled against this checkout's libleeward.so; None without cc."""
    source, binary = os.path.join(directory, "cabi.c"), os.path.join(directory, "cabi")
    lib = os.path.join(REPO, "build", "lib")
    with open(source, "w") as fh:
        fh.write(CABI_PROGRAM)
    done = subprocess.run(["cc", "-O2", "-o", binary, source, f"-I{REPO}/include", f"-L{lib}",
                           f"-Wl,-rpath,{lib}", "-lleeward"], capture_output=True)
    return binary if done.returncode == 0 else None


def measure_cli(socket_path: str, runs: int = 30, pandas_runs: int = 10) -> dict[str, list[float]]:
    """Samples in ms by row, for the daemon on `socket_path`: the CLI and the baselines for
    `print('hello')` over `runs` interleaved rounds, then a pandas groupby through the CLI
    and under `python -c` over `pandas_runs`. medians() reduces them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}
    env["LEEWARD_SOCKET"] = socket_path
    cli = cli_binary()
    with tempfile.TemporaryDirectory(prefix="leeward-bench-cli-") as directory, Connection(socket_path) as conn:
        rows = {
            "python3 -c (same run)": process([SYSTEM_PYTHON, "-c", HELLO]),
            "leeward exec (CLI)": process([cli, "exec", HELLO], env),
            "leeward exec (Python CLI)": process([VENV_PYTHON, "-m", "leeward", "exec", HELLO], env),
            "python3 -I -S -c pass (any CPython's floor)": process([SYSTEM_PYTHON, "-I", "-S", "-c", "pass"]),
            # What every client pays after its own start: with CPython's floor, the least
            # an embedded-CPython CLI could take.
            "raw protocol round trip (in-process)": lambda: conn.request({"type": "Execute", "code": HELLO}),
        }
        cabi = cabi_program(directory)
        if cabi is not None:
            request = '{"type": "Execute", "code": "print(\'hello\')"}'
            rows["libleeward.so leeward_call from C"] = process([cabi, socket_path, request], env)
        samples = interleaved(rows, runs)
    samples.update(interleaved({
        "pandas groupby, leeward exec (CLI)": process([cli, "exec", PANDAS], env),
        "pandas groupby, python -c (venv)": process([VENV_PYTHON, "-c", PANDAS]),
    }, pandas_runs, warmup=1))
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def report(samples: dict[str, list[float]]) -> str:
    p50 = medians(samples)
    base, pandas_base = p50["python3 -c (same run)"], p50["pandas groupby, python -c (venv)"]
    lines = [f"{'end to end, ms':<46} {'p50':>8} {'min':>8} {'runs':>5}  ratio"]
    for name, values in samples.items():
        reference = pandas_base if name.startswith("pandas") else base
        against = "python -c" if name.startswith("pandas") else "python3 -c"
        lines.append(f"{name:<46} {p50[name]:>8.2f} {min(values):>8.2f} {len(values):>5}  "
                     f"{p50[name] / reference:.2f}x {against}")
    floor = p50["python3 -I -S -c pass (any CPython's floor)"] + p50["raw protocol round trip (in-process)"]
    lines.append(f"an embedded-CPython CLI cannot beat CPython's floor + the round trip: {floor:.2f} ms, "
                 f"{floor / base:.2f}x python3 -c")
    speedup = pandas_base / p50["pandas groupby, leeward exec (CLI)"]
    lines.append(f"pandas job: the CLI is {speedup:.1f}x faster than python -c")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pandas-runs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from tests.conftest import start_daemon  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="leeward-bench-") as directory:
        daemon = start_daemon(directory, "--metrics-port", "0", workers=args.workers)
        try:
            print(report(measure_cli(daemon.socket_path, args.runs, args.pandas_runs)))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
