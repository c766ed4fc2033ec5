"""Issue 16's targets, each checked against figures of this one run: met or not, and
the figures it was judged on. Printed, never asserted (benchmarks are not tests)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class Target:
    name: str
    met: bool | None  # None: not measured in this run
    figures: str


def p50(samples) -> float | None:
    return statistics.median(samples) if isinstance(samples, list) and samples else None


def p99(samples) -> float | None:
    if not isinstance(samples, list) or not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def judge(rows: dict, leeward_cpu, bare_cpu, startup_ms: float, python_pass_ms: float,
          idle_uss_mib: float | None) -> list[Target]:
    idle, b2b = rows["leeward, idle gaps"], rows["leeward, back to back"]
    cell = p50(rows.get("session cell `pass` (raw protocol)"))
    cli, bare = p50(rows.get("leeward exec (CLI)")), p50(rows.get("python3 -c (same run)"))
    ratio = leeward_cpu.rate / bare_cpu.rate
    return [
        Target("throughput >= 2x four bare python3 -c loops (stretch 3x)", ratio >= 2.0,
               f"{leeward_cpu.rate:.0f}/s vs {bare_cpu.rate:.0f}/s = {ratio:.2f}x"),
        Target("whole-machine CPU per execution <= 4 ms", leeward_cpu.total <= 4.0,
               f"{leeward_cpu.total:.1f} ms (bare python3 -c: {bare_cpu.total:.1f} ms)"),
        Target("p50 <= 1 ms with idle gaps", p50(idle) <= 1.0, f"{p50(idle):.2f} ms"),
        Target("p50 <= 2 ms back to back", p50(b2b) <= 2.0, f"{p50(b2b):.2f} ms"),
        Target("p99 <= 3x p50", p99(idle) <= 3 * p50(idle) and p99(b2b) <= 3 * p50(b2b),
               f"idle {p99(idle) / p50(idle):.1f}x, back to back {p99(b2b) / p50(b2b):.1f}x"),
        Target("session cell p50 <= 0.3 ms (raw protocol)", None if cell is None else cell <= 0.3,
               "not measured" if cell is None else f"{cell:.2f} ms"),
        Target("leeward exec <= 1.0x bare python3 -c", None if cli is None or bare is None else cli <= bare,
               "not measured" if cli is None or bare is None else f"{cli:.1f} vs {bare:.1f} ms = {cli / bare:.2f}x"),
        Target("daemon start to first result <= 3x python3 -c pass", startup_ms <= 3 * python_pass_ms,
               f"{startup_ms:.0f} ms = {startup_ms / python_pass_ms:.1f}x (default preload)"),
        Target("idle sandbox USS <= 3 MiB", None if idle_uss_mib is None else idle_uss_mib <= 3.0,
               "not measured" if idle_uss_mib is None else f"{idle_uss_mib:.1f} MiB"),
    ]


def report(targets: list[Target]) -> str:
    mark = {True: "met", False: "NOT met", None: "n/a"}
    return "\n".join(f"  {mark[t.met]:<8} {t.name:<58} {t.figures}" for t in targets)
