"""A deepagents agent whose workspace and shell are a leeward session (LeewardSandbox),
driven by a scripted chat model (no LLM, no network). Two steps: write a data file with
deepagents' own write_file tool, then run a shell command on it with execute; the host
downloads the result. A third command prints too much: deepagents keeps that output in a
file of the workspace and shows the agent where.

    leeward-daemon &                      # or any running daemon ($LEEWARD_SOCKET)
    python examples/deepagents_sandbox.py [OUTPUT_DIR]
"""
from __future__ import annotations

import os
import sys

from deepagents import create_deep_agent
from langchain_core.messages import ToolMessage

from langchain_agent import ScriptedChatModel  # examples/langchain_agent.py, beside this script
from leeward.integrations.deepagents import LeewardSandbox

CALLS = [
    ("write_file", {"file_path": "/tmp/cities.txt", "content": "Lisbon\nOslo\nQuito\nLima\n"}),
    ("execute", {"command": "sort /tmp/cities.txt | tee /tmp/sorted.txt | wc -l"}),
    ("execute", {"command": "seq 1 100000"}),  # too long for the model: offloaded to a file
]


def main(output_dir: str = ".") -> int:
    with LeewardSandbox() as sandbox:  # the daemon at $LEEWARD_SOCKET, or the per-user default
        model = ScriptedChatModel(calls=CALLS, answer="Sorted 4 cities into /tmp/sorted.txt.")
        agent = create_deep_agent(model=model, backend=sandbox.backend())
        state = agent.invoke({"messages": [{"role": "user", "content": "Sort these cities: Lisbon Oslo Quito Lima"}]})
        [sorted_file] = sandbox.download_files(["/tmp/sorted.txt"])
    answers = [message for message in state["messages"] if isinstance(message, ToolMessage)]
    for answer in answers:
        print(f"{answer.name}: {answer.content.strip().splitlines()[0]}")
    print(f"agent: {state['messages'][-1].content}")
    with open(os.path.join(output_dir, "sorted.txt"), "wb") as out:
        out.write(sorted_file.content or b"")
    offloaded = "/tmp/large_tool_results/" in answers[-1].content
    return 0 if sorted_file.content == b"Lima\nLisbon\nOslo\nQuito\n" and offloaded else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
