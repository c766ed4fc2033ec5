"""An AutoGen team, a coder and a code executor, whose code runs in one leeward session;
the coder is a scripted model (no LLM, no network). Two steps: the first computes data,
keeps it in a variable, draws a chart and writes a CSV file; the second counts the file's
lines with sh and reuses the variable.

    leeward-daemon &                      # or any running daemon ($LEEWARD_SOCKET)
    python examples/autogen_team.py [OUTPUT_DIR]

Prints each executor reply, saves the chart to OUTPUT_DIR (default: .) and copies the CSV.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import warnings

from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_ext.models.replay import ReplayChatCompletionClient

from leeward.integrations.autogen import LeewardCodeExecutor

CODER_REPLIES = [
    # step 1: state (values), a figure, a file
    "```python\nimport csv\nimport matplotlib.pyplot as plt\n"
    "values = [n ** 0.5 for n in range(1, 21)]\n"
    "with open('/tmp/values.csv', 'w', newline='') as out:\n"
    "    csv.writer(out).writerows([n, v] for n, v in enumerate(values, 1))\n"
    "plt.plot(values)\nplt.title('square roots')\nplt.show()\nprint(f'wrote {len(values)} rows')\n```",
    # step 2: the file, read by a shell; the variable, still there
    "```sh\nwc -l < /tmp/values.csv\n```\n```python\nprint(f'largest: {max(values):.3f}')\n```",
    "All done. TERMINATE",
]


async def run(output_dir: str) -> int:
    # The daemon at $LEEWARD_SOCKET, or the per-user default; stateful: one session.
    async with LeewardCodeExecutor(stateful=True, output_dir=os.path.join(output_dir, "figures")) as executor:
        coder = AssistantAgent("coder", model_client=ReplayChatCompletionClient(CODER_REPLIES))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no approval function": the scripted coder is trusted here
            runner = CodeExecutorAgent("executor", code_executor=executor)
        team = RoundRobinGroupChat([coder, runner], termination_condition=TextMentionTermination("TERMINATE"))
        result = await team.run(task="Tabulate and chart square roots, then count the rows and report the largest.")
        replies = [m.content for m in result.messages if m.source == "executor"]
        csv = executor.session.files.read("values.csv")  # fetched from the sandbox
    for reply in replies:
        print(f"executor: {reply.strip()}")
    with open(os.path.join(output_dir, "values.csv"), "wb") as out:
        out.write(csv)
    figures = sorted(os.listdir(os.path.join(output_dir, "figures")))
    print(f"figures: {len(figures)} in {os.path.join(output_dir, 'figures')}; values.csv: {len(csv)} bytes")
    expected = ["wrote 20 rows", "20\nlargest: 4.472"]
    return 0 if [r.strip() for r in replies] == expected and figures else 1


def main(output_dir: str = ".") -> int:
    shutil.rmtree(os.path.join(output_dir, "figures"), ignore_errors=True)
    return asyncio.run(run(output_dir))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
