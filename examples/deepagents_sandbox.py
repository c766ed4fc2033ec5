"""A deepagents agent whose workspace and shell are a leeward session (LeewardSandbox),
driven by a scripted chat model (no LLM, no network). Two steps: write a data file with
deepagents' own write_file tool, then run a shell command on it with execute; the host
downloads the result.

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
]


def main(output_dir: str = ".") -> int:
    with LeewardSandbox() as sandbox:  # the daemon at $LEEWARD_SOCKET, or the per-user default
        model = ScriptedChatModel(calls=CALLS, answer="Sorted 4 cities into /tmp/sorted.txt.")
        agent = create_deep_agent(model=model, backend=sandbox)
        state = agent.invoke({"messages": [{"role": "user", "content": "Sort these cities: Lisbon Oslo Quito Lima"}]})
        [sorted_file] = sandbox.download_files(["/tmp/sorted.txt"])
    for message in state["messages"]:
        if isinstance(message, ToolMessage):
            print(f"{message.name}: {message.content.strip()}")
    print(f"agent: {state['messages'][-1].content}")
    with open(os.path.join(output_dir, "sorted.txt"), "wb") as out:
        out.write(sorted_file.content or b"")
    return 0 if sorted_file.content == b"Lima\nLisbon\nOslo\nQuito\n" else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
