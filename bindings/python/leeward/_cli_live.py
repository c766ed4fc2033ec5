"""The CLI's interactive half: a job's output printed as it arrives (`stream`), and Ctrl-C
turned into a Cancel of the remote job rather than only the end of this client (PROTOCOL-V2
"Streaming", `Cancel`). Each is used only when the daemon's Pong lists it."""
from __future__ import annotations

import os
import secrets
import sys
import threading
from typing import Callable

from ._client import Leeward

EXIT_CANCELLED = 130  # the shell's status for a Ctrl-C


def print_event(event: dict) -> None:
    """An Event's stdout/stderr chunk to ours, at once; display events are printed with
    the result (their order relative to the text is not the point of --display)."""
    stream = {"stdout": sys.stdout, "stderr": sys.stderr}.get(event.get("event"))
    data = event.get("data")
    if stream is not None and isinstance(data, (bytes, bytearray)):
        stream.buffer.write(data)
        stream.buffer.flush()


def call_live(sandbox: Leeward, socket_path: str | None, request: dict, stream: bool = True) -> tuple[dict, bool]:
    """Sends `request` (an Execute or SessionExecute), streaming its output when asked and
    offered, and cancelling the remote job on Ctrl-C when the daemon can. Returns the
    reply and whether the output was already printed."""
    features = sandbox.cached_features()
    streamed = stream and "stream" in features
    if streamed:
        request["stream"] = True
    on_event = print_event if streamed else None
    if "cancel" not in features:
        return sandbox.call(request, on_event), streamed
    request["execution_id"] = secrets.token_hex(16)
    return _cancellable(lambda: sandbox.call(request, on_event), socket_path, request["execution_id"]), streamed


def _cancellable(call: Callable[[], dict], socket_path: str | None, execution_id: str) -> dict:
    """Runs `call` on a worker thread so that the main thread, where Python delivers
    SIGINT, stays free to send the Cancel (a blocked C call would hold the signal until the
    job ended). A second Ctrl-C leaves at once, as any CLI does."""
    outcome: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["reply"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            outcome["error"] = exc
        finally:
            done.set()

    cancelled = False
    threading.Thread(target=work, name="leeward-call", daemon=True).start()
    while True:  # the try spans the whole wait: a Ctrl-C at any point of it is a Cancel
        try:
            done.wait()
            break
        except KeyboardInterrupt:
            if cancelled:
                os._exit(EXIT_CANCELLED)
            cancelled = True
            # Another connection: the first is busy waiting for this job's reply.
            with Leeward(socket_path) as other:
                other.call({"type": "Cancel", "execution_id": execution_id})
    if "error" in outcome:
        raise outcome["error"]
    return outcome["reply"]
