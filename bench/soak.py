#!/usr/bin/env python3
"""Soak: N minutes of mixed traffic against a fresh daemon (`make soak`, not in CI).

Usage: bench/soak.py [--minutes N] [--clients N] [--workers N] [--interval SECS]
Clients loop over a mix of jobs (ok, exceptions, non-zero exits, timeouts, memory
hogs, output floods), invalid requests, Status and Ping. Every interval one line shows
the outcome counts so far and the daemon's resources: RSS, open fds, its processes,
cgroup boxes, host mounts. At the end: totals, wrong outcomes (a job whose result is
not the one its code must give), and the first and last resource lines for the trend.
Exit status 1 when any outcome was wrong or the daemon died.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from libleeward.client import DaemonUnavailable, LeewardError  # noqa: E402
from tests.conftest import start_daemon  # noqa: E402
from tests.reliability import leaks  # noqa: E402

MiB = 1 << 20
# (name, request options, check of the result) -- each check says what a correct daemon returns.
MIX = [
    ("ok", dict(code="print(sum(range(10)))"), lambda r: r.exit_code == 0 and r.stdout == b"45\n"),
    ("raises", dict(code="raise ValueError('x')"), lambda r: r.exit_code == 1 and r.error["name"] == "ValueError"),
    ("exit3", dict(code="import sys; sys.exit(3)"), lambda r: r.exit_code == 3),
    ("timeout", dict(code="while True: pass", timeout_secs=0.5), lambda r: r.timed_out),
    ("memory", dict(code="x = bytearray(512 << 20); x[::4096] = b'x' * len(x[::4096])", memory_limit=64 * MiB),
     lambda r: r.oom_killed or r.exit_code != 0),
    ("flood", dict(code="import sys; sys.stdout.write('x' * (4 << 20))"), lambda r: r.stdout_truncated),
]
INVALID = [{"type": "Execute", "code": 5}, {"type": "Nope"}, {"type": "Ping", "junk": 1}]


class Soak:
    def __init__(self, running, deadline: float):
        self.running = running
        self.deadline = deadline
        self.outcomes: collections.Counter = collections.Counter()
        self.wrong: list[str] = []
        self.lock = threading.Lock()

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < self.deadline:
            roll = rng.random()
            try:
                with self.running.connect(timeout=120) as conn:
                    if roll < 0.8:
                        name, options, check = rng.choice(MIX)
                        result = conn.execute(**options)
                        if check(result):
                            self.count(f"job:{name}")
                        else:
                            self.count("WRONG")
                            self.wrong.append(f"{name}: {result!r}"[:500])
                    elif roll < 0.9:
                        try:
                            conn.request(rng.choice(INVALID))
                            self.count("WRONG")
                            self.wrong.append("an invalid request succeeded")
                        except LeewardError as exc:
                            self.count(f"invalid:{exc.code}")
                    else:
                        conn.status() if roll < 0.95 else conn.ping()
                        self.count("status/ping")
            except DaemonUnavailable as exc:
                self.count("E1006")
                if self.running.process.poll() is not None:
                    self.wrong.append(f"daemon died: {exc}")
                    return
            except LeewardError as exc:
                self.count(exc.code)  # E3004 (busy) is a correct answer under load


def resources(pid: int) -> str:
    with open(f"/proc/{pid}/status") as fh:
        rss = next(line.split()[1] for line in fh if line.startswith("VmRSS:"))
    return (f"rss={int(rss) // 1024}MiB fds={leaks.open_fds(pid)} processes={len(leaks.descendants(pid))} "
            f"boxes={len(leaks.box_dirs(pid))} mounts={len(leaks.mounts())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=30.0)
    args = parser.parse_args()
    running = start_daemon(tempfile.mkdtemp(prefix="leeward-soak-"), "--metrics-port", "0", workers=args.workers)
    pid = running.process.pid
    soak = Soak(running, time.monotonic() + args.minutes * 60)
    threads = [threading.Thread(target=soak.client, args=(i,), daemon=True) for i in range(args.clients)]
    trend = [resources(pid)]
    print(f"soak: {args.minutes:g} min, {args.clients} clients, {args.workers} workers; start {trend[0]}", flush=True)
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            time.sleep(min(args.interval, max(0.1, soak.deadline - time.monotonic() + 1)))
            trend.append(resources(pid))
            print(f"[{time.monotonic() - started:7.0f}s] {trend[-1]}  {dict(sorted(soak.outcomes.items()))}",
                  flush=True)
    finally:
        running.stop()
    total = sum(soak.outcomes.values())
    print(f"\n{total} requests: {dict(sorted(soak.outcomes.items()))}")
    print(f"wrong outcomes: {len(soak.wrong)}")
    for line in soak.wrong[:20]:
        print(f"  {line}")
    print(f"resources: first {trend[0]}\n           last  {trend[-1]}")
    return 1 if soak.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
