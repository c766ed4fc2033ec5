"""A LangChain agent (langchain.agents.create_agent) with leeward's Python tool, driven by
a scripted chat model (no LLM, no network). Two tool calls in one conversation
(thread_id), so they share one leeward session: the first computes data, keeps it in a
variable and draws a chart; the second writes a report file from that variable.

    leeward-daemon &                      # or any running daemon ($LEEWARD_SOCKET)
    python examples/langchain_agent.py [OUTPUT_DIR]

Prints what the tool answered, saves the chart (from the tool's artifact) and the report
(from the session's files) to OUTPUT_DIR (default: .).
"""
from __future__ import annotations

import os
import sys

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver

from leeward.integrations.langchain import LeewardPythonTool

STEPS = [
    # step 1: state (temps), a figure
    "import matplotlib.pyplot as plt\n"
    "temps = {'mon': 18.5, 'tue': 21.0, 'wed': 19.2, 'thu': 23.4, 'fri': 22.1}\n"
    "plt.bar(list(temps), list(temps.values()))\nplt.title('temperatures')\nplt.show()\n"
    "max(temps, key=temps.get)",
    # step 2: the same session's variable, and a file
    "mean = sum(temps.values()) / len(temps)\n"
    "with open('report.txt', 'w') as out:\n    out.write(f'days: {len(temps)}\\nmean: {mean:.2f}\\n')\n"
    "print(open('report.txt').read())",
]


class ScriptedChatModel(BaseChatModel):
    """Makes each scripted tool call in turn, then answers; as an LLM would."""

    calls: list[tuple[str, dict]]  # (tool name, its arguments)
    answer: str

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        done = sum(isinstance(m, ToolMessage) for m in messages)
        if done < len(self.calls):
            name, args = self.calls[done]
            reply = AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{done + 1}"}])
        else:
            reply = AIMessage(content=self.answer)
        return ChatResult(generations=[ChatGeneration(message=reply)])


def main(output_dir: str = ".") -> int:
    tool = LeewardPythonTool()  # the daemon at $LEEWARD_SOCKET, or the per-user default
    model = ScriptedChatModel(calls=[(tool.name, {"code": code}) for code in STEPS],
                              answer="Thursday was the warmest day; the report is in report.txt.")
    agent = create_agent(model, [tool], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "weather"}}  # the tool keys its session by this
    try:
        state = agent.invoke({"messages": [{"role": "user", "content": "Which day was warmest? Write a report."}]},
                             config)
        report = tool.session("weather").files.read("report.txt")  # fetched from the sandbox
    finally:
        tool.close()
    answers = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    for answer in answers:
        print(f"tool: {answer.content}")
    print(f"agent: {state['messages'][-1].content}")
    charts = [shown["data"]["image/png"] for shown in answers[0].artifact.get("results", [])
              if "image/png" in shown["data"]]
    with open(os.path.join(output_dir, "temperatures.png"), "wb") as out:
        out.write(charts[0])
    with open(os.path.join(output_dir, "report.txt"), "wb") as out:
        out.write(report)
    print(f"saved temperatures.png ({len(charts[0])} bytes) and report.txt to {output_dir}")
    return 0 if "'thu'" in answers[0].content and report == b"days: 5\nmean: 20.84\n" else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
