"""A smolagents CodeAgent whose code runs in a leeward session, driven by a scripted model
(no LLM, no network). Two steps: the first computes data, keeps it in a variable and saves
a chart; the second reads the chart file and answers with values from both steps.

    leeward-daemon &                      # or any running daemon ($LEEWARD_SOCKET)
    python examples/smolagents_agent.py [OUTPUT_DIR]

Prints the final answer and saves the chart the sandbox drew to OUTPUT_DIR (default: .).
"""
from __future__ import annotations

import os
import sys

from smolagents import CodeAgent
from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.monitoring import AgentLogger, LogLevel

from leeward.integrations.smolagents import LeewardExecutor

STEPS = [
    # step 1: state (squares), a figure, a file in the sandbox's /tmp
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "squares = [n * n for n in range(10)]\n"
    "plt.plot(squares)\nplt.title('squares')\nplt.savefig('squares.png')\nprint('saved squares.png')",
    # step 2: uses step 1's variable and file
    "with open('squares.png', 'rb') as chart:\n    png_bytes = len(chart.read())\n"
    "final_answer({'total': sum(squares), 'chart_bytes': png_bytes})",
]


class ScriptedModel(Model):
    """Replies with the next step's code, as an LLM would."""

    def __init__(self, steps: list[str]):
        super().__init__(model_id="scripted")
        self.steps = list(steps)

    def generate(self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kwargs):
        return ChatMessage(role=MessageRole.ASSISTANT,
                           content=f"Thought: next step.\n<code>\n{self.steps.pop(0)}\n</code>")


def main(output_dir: str = ".") -> int:
    # The daemon at $LEEWARD_SOCKET, or the per-user default.
    executor = LeewardExecutor(logger=AgentLogger(LogLevel.OFF))
    agent = CodeAgent(tools=[], model=ScriptedModel(STEPS), executor=executor, verbosity_level=LogLevel.OFF)
    try:
        answer = agent.run("Chart the first ten squares, then report their total and the chart's size.")
        chart = executor.session.files.read("squares.png")  # fetched from the sandbox
    finally:
        agent.cleanup()  # closes the session
    path = os.path.join(output_dir, "squares.png")
    with open(path, "wb") as out:
        out.write(chart)
    print(f"answer: total={answer['total']} chart_bytes={answer['chart_bytes']}")
    print(f"chart: {path} ({len(chart)} bytes)")
    return 0 if answer["total"] == 285 and answer["chart_bytes"] == len(chart) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
