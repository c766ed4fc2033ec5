#!/usr/bin/env python3
"""`make bench`: leeward against a fresh interpreter per execution, all from this one run.

Usage: bench/latency.py [--runs N] [--baseline-runs N] [--seconds S] [--clients N] [--workers N]

Prints, for `print('hello')` with a fresh sandbox per execution: latency (idle gaps and
back to back, p50/p99) beside the system /usr/bin/python3 -c, the venv's python -c,
bubblewrap + python and nsjail + python (when installed); throughput with N concurrent
clients against N concurrent bare `python3 -c` loops; whole-machine CPU per execution
by component (cpu.py); session cell latency (raw protocol); the CLI end to end
(bench/cli.py); daemon start to first result against `python3 -c pass`. Every ratio is
to a baseline of this same run. Not a test: nothing here passes or fails on speed.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path[:0] = [REPO, BENCH]

import baselines  # noqa: E402
import cpu  # noqa: E402
import memory  # noqa: E402
import targets  # noqa: E402
from leeward import Leeward  # noqa: E402
from libleeward.client import Connection, DaemonUnavailable  # noqa: E402
from tests.conftest import start_daemon  # noqa: E402

CODE = "print('hello')"
IDLE_GAP_SECS = 0.02  # long enough for the pool to have replaced the slot just used


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_calls(fn, runs: int, warmup: int = 5, gap: float = 0.0) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        if gap:
            time.sleep(gap)
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def execute_hello(conn: Connection) -> None:
    result = conn.execute(CODE)
    assert result.stdout == b"hello\n", result


def saturate(call_factory, clients: int, seconds: float, pids=(None, None)) -> cpu.Breakdown:
    """`clients` threads, each calling its own `call_factory()` back to back for
    `seconds`; whole-machine CPU over the window, per call."""
    idle = cpu.background_rate()
    counts = [0] * clients
    go = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client(index: int) -> None:
        call, done = call_factory()
        try:
            call()  # warm: a connection, a first slot
            go.wait()
            go.wait()
            while time.perf_counter() < deadline[0]:
                call()
                counts[index] += 1
        finally:
            done()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    go.wait()
    before = cpu.snapshot(*pids)
    deadline.append(time.perf_counter() + seconds)
    go.wait()
    for thread in threads:
        thread.join()
    return cpu.breakdown(before, cpu.snapshot(*pids), sum(counts), idle)


def leeward_client(socket_path: str):
    def factory():
        conn = Connection(socket_path).__enter__()
        return (lambda: execute_hello(conn)), (lambda: conn.__exit__(None, None, None))
    return factory


def bare_client(argv: list[str]):
    def factory():
        return baselines.runner(argv), (lambda: None)
    return factory


def saturate_without_preload(args) -> cpu.Breakdown:
    """The throughput window again with an empty preload: a smaller zygote to fork
    (fork cost grows with the zygote's anonymous memory: numpy and pandas are most of it)."""
    with tempfile.TemporaryDirectory(prefix="leeward-bench-") as directory:
        daemon = start_daemon(directory, "--metrics-port", "0", "--set", "preload=", workers=args.workers)
        try:
            with Connection(daemon.socket_path) as conn:
                zygote_pid = conn.request({"type": "Status"})["zygote"]["pid"]
            return saturate(leeward_client(daemon.socket_path), args.clients, args.seconds,
                            (daemon.process.pid, zygote_pid))
        finally:
            daemon.stop()


def session_cells(conn: Connection, runs: int) -> dict[str, list[float]]:
    """Cells in one live session: no new sandbox per execution."""
    session_id = conn.request({"type": "SessionOpen"})["session"]["id"]
    cell = {"type": "SessionExecute", "session_id": session_id}
    conn.request({**cell, "code": "x = 1"})
    rows = {
        "session cell `pass`": time_calls(lambda: conn.request({**cell, "code": "pass"}), runs),
        "session cell `x + 1`, display": time_calls(
            lambda: conn.request({**cell, "code": "x + 1", "display": True}), runs),
    }
    conn.request({"type": "SessionClose", "session_id": session_id})
    return rows


def binding_session_cells(socket_path: str, runs: int) -> list[float]:
    """A session cell `pass` through the Python binding (libleeward.so underneath)."""
    with Leeward(socket_path) as lw, lw.session() as session:
        session.run("x = 1")
        return time_calls(lambda: session.run("pass"), runs)


def cli_rows(socket_path: str, runs: int) -> dict[str, list[float]] | str:
    """The CLI's rows from bench/cli.py (the CLI helper's), or why there are none."""
    try:
        from cli import measure_cli  # noqa: PLC0415  (bench/cli.py is optional)
    except ImportError as exc:
        return f"bench/cli.py has no measure_cli yet ({exc})"
    try:
        rows = measure_cli(socket_path, runs)
    except Exception as exc:  # the CLI row must not take the whole bench down
        return f"measure_cli failed: {type(exc).__name__}: {exc}"
    return rows if isinstance(rows, dict) else {"leeward exec (CLI)": rows}


def daemon_startup_ms(preload: str | None) -> float:
    """Popen of the daemon to the first Execute answered (its socket polled every ms)."""
    with tempfile.TemporaryDirectory(prefix="leeward-bench-start-") as directory:
        socket_path = os.path.join(directory, "leeward.sock")
        argv = [sys.executable, "-m", "leeward_daemon", "--socket", socket_path, "--metrics-port", "0"]
        if preload is not None:
            argv += ["--set", f"preload={preload}"]
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"daemon exited with {process.returncode}")
                try:
                    with Connection(socket_path) as conn:
                        execute_hello(conn)
                    return (time.perf_counter() - started) * 1000.0
                except DaemonUnavailable:  # no socket yet
                    time.sleep(0.001)
        finally:
            process.terminate()
            process.wait(30)


def print_latency(rows: list[tuple[str, list[float] | str]], base: float) -> None:
    print(f"{'latency, ms':<44} {'p50':>8} {'p99':>8} {'p99/p50':>8} {'p50 / python3 -c':>17}")
    print("-" * 89)
    for name, samples in rows:
        if isinstance(samples, str):
            print(f"{name:<44} {samples}")
            continue
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        print(f"{name:<44} {p50:>8.2f} {p99:>8.2f} {p99 / p50:>8.1f} {p50 / base:>16.2f}x")


def print_cpu(runs: dict[str, cpu.Breakdown], clients: int) -> None:
    names = list(runs)
    components = list(dict.fromkeys(c for run in runs.values() for c in run.components))
    print(f"\nthroughput, {clients} clients, fresh sandbox / process per execution; CPU ms per execution "
          "(whole machine, /proc/stat, idle rate taken off)")
    print(f"{'':<30}" + "".join(f"{n:>24}" for n in names))
    print("-" * (30 + 24 * len(names)))
    print(f"{'executions/s':<30}" + "".join(f"{runs[n].rate:>24.0f}" for n in names))
    for component in components:
        print(f"{'  ' + component:<30}" + "".join(f"{runs[n].components.get(component, 0.0):>24.2f}" for n in names))
    print(f"{'  total CPU ms / execution':<30}" + "".join(f"{runs[n].total:>24.2f}" for n in names))
    base = runs[names[-1]]
    print(f"{'throughput / bare':<30}" + "".join(f"{runs[n].rate / base.rate:>23.2f}x" for n in names))
    print(f"{'CPU per execution / bare':<30}" + "".join(f"{runs[n].total / base.total:>23.2f}x" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--baseline-runs", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=6.0, help="of each throughput window")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(f"`{CODE}` on {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"load average before: {os.getloadavg()[0]:.2f}")

    rows: list[tuple[str, list[float] | str]] = []
    with tempfile.TemporaryDirectory(prefix="leeward-bench-") as directory:
        daemon = start_daemon(directory, "--metrics-port", "0", workers=args.workers)
        try:
            with Connection(daemon.socket_path) as conn:
                zygote_pid = conn.request({"type": "Status"})["zygote"]["pid"]
                rows.append(("leeward, idle gaps", time_calls(lambda: execute_hello(conn), args.runs,
                                                              gap=IDLE_GAP_SECS)))
                rows.append(("leeward, back to back", time_calls(lambda: execute_hello(conn), args.runs)))
                rows += [(f"{name} (raw protocol)", samples)
                         for name, samples in session_cells(conn, args.runs).items()]
                rows.append(("session cell `pass` (Python binding)",
                             binding_session_cells(daemon.socket_path, args.runs)))
                time.sleep(1.0)  # the pool back to its idle target
                idle_uss = memory.idle_slot_uss_mib(zygote_pid)
            cli = cli_rows(daemon.socket_path, args.baseline_runs // 2)
            rows += list(cli.items()) if isinstance(cli, dict) else [("leeward CLI", cli)]
            leeward_cpu = saturate(leeward_client(daemon.socket_path), args.clients, args.seconds,
                                   (daemon.process.pid, zygote_pid))
        finally:
            daemon.stop()

    bare = baselines.python_argv(baselines.SYSTEM_PYTHON, CODE)
    bare_samples = time_calls(baselines.runner(bare), args.baseline_runs)
    rows.append(("python3 -c (system /usr/bin/python3)", bare_samples))
    rows.append(("python -c (the venv's)",
                 time_calls(baselines.runner(baselines.python_argv(baselines.VENV_PYTHON, CODE)), args.baseline_runs)))
    for name, argv in (("bubblewrap + python3 -c", baselines.bwrap_argv(CODE)),
                       ("nsjail + python3 -c", baselines.nsjail_argv(CODE))):
        why = "not installed" if argv is None else baselines.works(argv)
        rows.append((name, f"({why})" if why else time_calls(baselines.runner(argv), args.baseline_runs)))
    bare_cpu = saturate(bare_client(bare), args.clients, args.seconds)
    unloaded_cpu = saturate_without_preload(args)

    print()
    print_latency(rows, statistics.median(bare_samples))
    print_cpu({"leeward": leeward_cpu, "leeward, preload = []": unloaded_cpu, "bare python3 -c": bare_cpu},
              args.clients)

    print(f"\nidle sandbox unique memory (USS, median of the ready slots): "
          + (f"{idle_uss:.1f} MiB" if idle_uss is not None else "(no idle slot seen)"))

    python_pass = statistics.median(time_calls(baselines.runner(baselines.python_argv(
        baselines.SYSTEM_PYTHON, "pass")), 20))
    print(f"\ndaemon start to first result (bare `/usr/bin/python3 -c pass`: {python_pass:.1f} ms)")
    startups = {}
    for label, preload in (("default preload (numpy, pandas)", None), ("no preload", "")):
        startups[label] = statistics.median(daemon_startup_ms(preload) for _ in range(3))
        print(f"  {label:<34} {startups[label]:>7.0f} ms  {startups[label] / python_pass:>5.1f}x")
    # What bounds the first figure: the zygote imports the preload before it forks a slot.
    preload_import = statistics.median(time_calls(baselines.runner(baselines.python_argv(
        baselines.VENV_PYTHON, "import numpy, pandas")), 5, warmup=1))
    print(f"  {'(the preload alone: venv python -c import numpy, pandas)':<34} {preload_import:>7.0f} ms  "
          f"{preload_import / python_pass:>5.1f}x")

    print("\nissue 16's targets, judged on this run:")
    print(targets.report(targets.judge(dict(rows), leeward_cpu, bare_cpu, startups["default preload (numpy, pandas)"],
                                       python_pass, idle_uss)))


if __name__ == "__main__":
    main()
