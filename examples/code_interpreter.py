"""An agent loop on leeward.CodeInterpreter (E2B's Sandbox shape), with a scripted model in
place of an LLM (no network).

The task, in two steps: load sales figures into the sandbox and keep them (state, a file),
then chart them (a figure) and write a summary file that is read back. The "model" maps
what it has seen to its next cell, as an LLM's code-writing loop would; output streams
to the terminal through on_stdout, figures arrive through on_result.

    .venv/bin/python examples/code_interpreter.py [OUT_DIR]   # the chart is written to OUT_DIR

The daemon is $LEEWARD_SOCKET's or the per-user one (`leeward-daemon` must be running).
"""
from __future__ import annotations

import base64
import os
import sys
import tempfile

from leeward import CodeInterpreter as Sandbox  # the one line that differs from E2B

SALES_CSV = "month,units\nJan,120\nFeb,95\nMar,143\nApr,160\n"

CELLS = [
    """\
import csv
rows = list(csv.DictReader(open('sales.csv')))
total = sum(int(r['units']) for r in rows)
best = max(rows, key=lambda r: int(r['units']))['month']
print(f'{len(rows)} months loaded')
total, best""",
    """\
import matplotlib.pyplot as plt
plt.bar([r['month'] for r in rows], [int(r['units']) for r in rows])
plt.title(f'units sold: {total}')
open('summary.txt', 'w').write(f'{total} units, best month {best}\\n')
plt.show()""",
]


def scripted_model(seen: list) -> str | None:
    """The next cell to run, or None when the task is done."""
    return CELLS[len(seen)] if len(seen) < len(CELLS) else None


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="leeward-ci-")
    figures: list[str] = []
    seen = []
    with Sandbox.create() as sandbox:
        sandbox.files.write("sales.csv", SALES_CSV)
        while (code := scripted_model(seen)) is not None:
            execution = sandbox.run_code(
                code,
                on_stdout=lambda message: print("stdout:", message.line, end=""),
                on_result=lambda result: figures.append(result.png) if result.png else None)
            if execution.error:
                raise SystemExit(f"the cell failed: {execution.error.name}: {execution.error.value}")
            print(f"cell {execution.execution_count}: {execution.text or '(no value)'}")
            seen.append(execution)
        summary = sandbox.files.read("summary.txt").strip()
    for index, png in enumerate(figures):
        path = os.path.join(out_dir, f"figure{index}.png")
        with open(path, "wb") as out:
            out.write(base64.b64decode(png))
        print(f"figure saved as {path}")
    print(f"answer: Sold {summary}.")


if __name__ == "__main__":
    main()
