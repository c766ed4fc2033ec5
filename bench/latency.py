#!/usr/bin/env python3
"""Latency of `print('hello')`: leeward (client -> daemon -> sandbox -> client) against
plain `python -c` (the system /usr/bin/python3, and the venv's) and bubblewrap + python,
all measured in this one run.

Usage: bench/latency.py [--runs N] [--baseline-runs N] [--workers N] [--clients N]
Prints a table of p50/p99 in milliseconds and each method's ratio to leeward's p50, then
sustained throughput with N concurrent clients (executions/s) against N concurrent
`python -c` processes. Not a test: nothing here passes or fails on speed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from libleeward.client import Connection  # noqa: E402
from tests.conftest import start_daemon  # noqa: E402

CODE = "print('hello')"
PYTHON = sys.executable  # the venv's: leeward's own, slower to start (site-packages)
SYSTEM_PYTHON = "/usr/bin/python3"  # the baseline: a bare interpreter outside any venv


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_calls(fn, runs: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def bench_leeward(runs: int, workers: int, clients: int) -> tuple[list[float], float, float, dict]:
    """(latency samples, daemon start-up ms, executions/s with `clients` concurrent clients,
    session cell samples by row name)."""
    with tempfile.TemporaryDirectory(prefix="leeward-bench-") as directory:
        started = time.perf_counter()
        daemon = start_daemon(directory, workers=workers)
        startup_ms = (time.perf_counter() - started) * 1000.0
        try:
            with Connection(daemon.socket_path) as conn:
                samples = time_calls(lambda: _execute_hello(conn), runs)
                cells = bench_session_cells(conn, daemon.socket_path, runs)

            def client(count: int) -> None:
                with Connection(daemon.socket_path) as own:
                    for _ in range(count):
                        _execute_hello(own)
            return samples, startup_ms, throughput(client, runs, clients), cells
        finally:
            daemon.stop()


def bench_session_cells(conn: Connection, socket_path: str, runs: int) -> dict[str, list[float]]:
    """Cells in one live session: no new sandbox per execution."""
    from leeward import Leeward

    session_id = conn.request({"type": "SessionOpen"})["session"]["id"]
    cell = {"type": "SessionExecute", "session_id": session_id}
    conn.request({**cell, "code": "x = 1"})
    rows = {
        "session cell `pass` (raw protocol)": time_calls(lambda: conn.request({**cell, "code": "pass"}), runs),
        "session cell `x + 1`, display (raw)":
            time_calls(lambda: conn.request({**cell, "code": "x + 1", "display": True}), runs),
    }
    conn.request({"type": "SessionClose", "session_id": session_id})
    with Leeward(socket_path) as lw, lw.session() as session:
        rows["session cell `pass` (Python binding)"] = time_calls(lambda: session.run("pass", display=False), runs)
    return rows


def _execute_hello(conn: Connection) -> None:
    result = conn.execute(CODE)
    assert result.stdout == b"hello\n", result


def throughput(client, total: int, clients: int) -> float:
    """Calls per second when `clients` threads each make total // clients calls."""
    per_client = max(1, total // clients)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client, per_client) for _ in range(clients)]:
            future.result()
    return per_client * clients / (time.perf_counter() - started)


def bench_python(interpreter: str, runs: int) -> list[float]:
    return time_calls(lambda: subprocess.run([interpreter, "-c", CODE], check=True, capture_output=True), runs)


def bwrap_argv() -> list[str] | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    prefix = os.path.realpath(sys.prefix)
    if not prefix.startswith("/usr/"):
        argv += ["--ro-bind", prefix, prefix]
    return argv + [PYTHON, "-c", CODE]


def bench_bwrap(runs: int) -> list[float] | None:
    argv = bwrap_argv()
    if argv is None:
        return None
    return time_calls(lambda: subprocess.run(argv, check=True, capture_output=True), runs)


def python_startup_ms(runs: int) -> float:
    return statistics.median(time_calls(lambda: subprocess.run([SYSTEM_PYTHON, "-c", "pass"], check=True), runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--baseline-runs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    leeward, startup_ms, leeward_rate, cells = bench_leeward(args.runs, args.workers, args.clients)
    rows = [("leeward (client->daemon->sandbox)", leeward), *cells.items(),
            ("python3 -c (system, /usr/bin/python3)", bench_python(SYSTEM_PYTHON, args.baseline_runs)),
            ("python -c (the venv's)", bench_python(PYTHON, args.baseline_runs))]
    bwrap = bench_bwrap(args.baseline_runs)
    rows.append(("bubblewrap + python -c", bwrap))
    base = statistics.median(leeward)
    print(f"\n`{CODE}` on {os.cpu_count()} cores, {args.runs} leeward runs, {args.baseline_runs} per baseline\n")
    print(f"{'method':<40} {'p50 ms':>9} {'p99 ms':>9} {'p50 / leeward':>14}")
    print("-" * 75)
    for name, samples in rows:
        if samples is None:
            print(f"{name:<40} {'(bwrap not installed)':>34}")
            continue
        p50 = statistics.median(samples)
        print(f"{name:<40} {p50:>9.3f} {percentile(samples, 0.99):>9.3f} {p50 / base:>13.1f}x")
    python_rate = throughput(lambda n: [subprocess.run([SYSTEM_PYTHON, "-c", CODE], check=True, capture_output=True)
                                        for _ in range(n)], args.baseline_runs * 2, args.clients)
    print(f"\nthroughput with {args.clients} concurrent clients: leeward {leeward_rate:.0f} executions/s, "
          f"system python3 -c {python_rate:.0f}/s ({leeward_rate / python_rate:.1f}x)")
    bare = python_startup_ms(20)
    print(f"\ndaemon start to first answer: {startup_ms:.0f} ms "
          f"({startup_ms / bare:.1f}x a bare `/usr/bin/python3 -c pass` of {bare:.1f} ms)")


if __name__ == "__main__":
    main()
