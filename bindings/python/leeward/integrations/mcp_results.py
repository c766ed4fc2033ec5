"""What an MCP client gets back from leeward-mcp's run tools: one CallToolResult with the
job's output as text (what the model reads), each image as ImageContent, and the same
facts as structured content (what a program reads).

A user's code failing is a result, never an exception: the MCP SDK turns any exception
other than ToolError into a bare "Error executing tool", and the traceback would never
reach the model. So a failed job is `is_error=True` with the traceback in its text.
"""
from __future__ import annotations

import base64

from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from leeward import ExecutionResult

# The images an MCP client can show inline; other MIME types stay in the text as a name.
IMAGE_TYPES = ("image/png", "image/jpeg")


class ErrorInfo(BaseModel):
    """An uncaught exception of the user's code."""

    name: str
    value: str
    traceback: str


class RunOutput(BaseModel):
    """The structured content of run_python and run_command."""

    exit_code: int = Field(description="the process's exit status; negative: killed by that signal")
    stdout: str
    stderr: str
    result: str | None = Field(None, description="text of the final expression's value (run_python)")
    error: ErrorInfo | None = Field(None, description="the uncaught exception, if any")
    images: int = Field(0, description="how many images are attached as image content")
    timed_out: bool = False
    oom_killed: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_ms: float = 0.0
    session_id: str | None = Field(None, description="the session the job ran in; None: a fresh sandbox")
    execution_count: int | None = Field(None, description="the cell's number in its session")
    session_alive: bool | None = Field(None, description="False when this job ended its session")


def failed(result: ExecutionResult) -> bool:
    """The job did not run to a clean end: an exception, a non-zero exit, a timeout, OOM."""
    return not result.ok or result.error is not None or result.cancelled


def to_tool_result(result: ExecutionResult, session_id: str | None = None) -> CallToolResult:
    images = [(mime, r.data[mime]) for r in result.results for mime in IMAGE_TYPES if mime in r.data]
    output = RunOutput(
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        result=result.text,
        error=ErrorInfo(**result.error) if result.error else None,
        images=len(images),
        timed_out=result.timed_out,
        oom_killed=result.oom_killed,
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        duration_ms=result.duration_ms,
        session_id=session_id,
        execution_count=result.execution_count,
        session_alive=result.session.alive if result.session else None,
    )
    content: list[TextContent | ImageContent] = [TextContent(type="text", text=render_text(result))]
    content += [ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type=mime)
                for mime, data in images]
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"),
                          is_error=failed(result))


def render_text(result: ExecutionResult) -> str:
    """The job's output as a notebook shows it: stdout, stderr, then each displayed value,
    then what ended it if it did not end cleanly."""
    parts: list[str] = []
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts.append("[stderr]\n" + result.stderr.rstrip("\n"))
    error = result.error
    if error and error.get("traceback") and error["traceback"] not in result.stderr:
        parts.append(error["traceback"].rstrip("\n"))
    for shown in result.results:
        image = next((mime for mime in IMAGE_TYPES if mime in shown.data), None)
        if image:  # attached as image content; its text/plain is only "<Figure size ...>"
            parts.append(f"[{image} attached]")
            continue
        label = "[result]" if shown.main else "[display]"
        text = shown.text if shown.text is not None else ", ".join(shown.data)
        parts.append(f"{label} {text}")
    parts += _endings(result)
    return "\n".join(parts) if parts else "(no output)"


def _endings(result: ExecutionResult) -> list[str]:
    notes = []
    if result.timed_out:
        notes.append("[timed out]")
    if result.oom_killed:
        notes.append("[killed: out of memory]")
    if result.cancelled:
        notes.append("[cancelled]")
    if result.exit_code != 0 and not result.error and not result.timed_out:
        notes.append(f"[exit code {result.exit_code}]")
    if result.session is not None and not result.session.alive:
        notes.append(f"[the session ended: {result.session.end_reason}]")
    for flag, what in ((result.stdout_truncated, "stdout"), (result.stderr_truncated, "stderr"),
                       (result.results_truncated, "results")):
        if flag:
            notes.append(f"[{what} truncated]")
    return notes
