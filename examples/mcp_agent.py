"""An agent using leeward through MCP, with a scripted model in place of an LLM (no network).

The task, in two steps: load sales figures into the sandbox and keep them (state, a file),
then chart them (a figure) and write a summary file that is read back. The "model" is a
function from what it has seen so far to its next tool call, as an LLM's tool-calling
loop would be; leeward-mcp runs as a child process over stdio, as a desktop client runs it.

    .venv/bin/python examples/mcp_agent.py [OUT_DIR]     # the chart is written to OUT_DIR

The daemon is $LEEWARD_SOCKET's or the per-user one (started when none answers).
"""
from __future__ import annotations

import asyncio
import base64
import os
import sys
import tempfile

from mcp import Client, StdioServerParameters
from mcp.types import ImageContent, TextContent

SALES_CSV = "month,units\nJan,120\nFeb,95\nMar,143\nApr,160\n"

STEP_1 = """\
import csv
rows = list(csv.DictReader(open('sales.csv')))
total = sum(int(r['units']) for r in rows)
best = max(rows, key=lambda r: int(r['units']))['month']
total, best"""

STEP_2 = """\
import matplotlib.pyplot as plt
plt.bar([r['month'] for r in rows], [int(r['units']) for r in rows])
plt.title(f'units sold: {total}')
plt.savefig('sales.png')
open('summary.txt', 'w').write(f'{total} units, best month {best}\\n')
plt.show()"""


def scripted_model(seen: list[tuple[str, object]]) -> tuple[str, dict] | str:
    """The next tool call (name, arguments), or the final answer once the task is done."""
    done = [name for name, _ in seen]
    session = {"session_id": seen[0][1].structured_content["session_id"]} if seen else {}
    if not done:
        return "session_open", {}
    if len(done) == 1:
        return "file_write", {**session, "path": "sales.csv", "content": SALES_CSV}
    if len(done) == 2:
        return "run_python", {**session, "code": STEP_1}
    if len(done) == 3:
        return "run_python", {**session, "code": STEP_2}
    if len(done) == 4:
        return "file_read", {**session, "path": "summary.txt"}
    if len(done) == 5:
        return "session_close", session
    summary = seen[4][1].structured_content["content"].strip()
    return f"Sold {summary}; the chart is attached."


async def run(out_dir: str) -> str:
    server = StdioServerParameters(command=sys.executable, args=["-m", "leeward.integrations.mcp"],
                                   env={k: v for k, v in os.environ.items() if k in ("LEEWARD_SOCKET", "PYTHONPATH")})
    seen: list[tuple[str, object]] = []
    async with Client(server) as client:
        while isinstance(step := scripted_model(seen), tuple):
            name, arguments = step
            result = await client.call_tool(name, arguments)
            text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
            if result.is_error:
                raise SystemExit(f"{name} failed: {text}")
            print(f"-> {name}: {text if name == 'run_python' else result.structured_content}")
            for image in (block for block in result.content if isinstance(block, ImageContent)):
                path = os.path.join(out_dir, "sales.png")
                with open(path, "wb") as out:
                    out.write(base64.b64decode(image.data))
                print(f"   (figure saved as {path})")
            seen.append((name, result))
    return step


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="leeward-mcp-")
    print("answer:", asyncio.run(run(out_dir)))


if __name__ == "__main__":
    main()
