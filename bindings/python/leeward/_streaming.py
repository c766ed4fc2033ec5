"""Streaming and cancel (PROTOCOL-V2 "Streaming", `Cancel`): a job's output as it
arrives, and the handle that stops it.

    with Leeward() as lw:
        run = lw.stream("for i in range(3): print(i)")
        try:
            for event in run:              # Event("stdout", b"0\\n"), ...
                print(event.text, end="")
        except KeyboardInterrupt:
            run.cancel()                   # the sandbox is killed (a session cell: interrupted)
        result = run.result()              # result.cancelled tells which

Or callbacks, on the calling thread: `lw.execute(code, on_stdout=..., on_stderr=...)`.

A daemon that does not stream (its Ping lacks "stream") still works: the output comes
as one event per stream once the job is over, and cancel() finds nothing.
"""
from __future__ import annotations

import queue
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ._results import DisplayResult, ExecutionResult

if TYPE_CHECKING:
    from ._client import Leeward

# Events held for an Execution's reader; past this the job's connection stops being read
# and the daemon stalls the job (backpressure), so memory stays bounded end to end.
EVENT_QUEUE_MAX = 256
# cancel() right after start may reach the daemon before the job's request: it asks
# again, this often, until the job is found or over.
CANCEL_RETRY_SECS = 0.02
_END = object()


@dataclass(frozen=True)
class Event:
    """One piece of a running job's output: `kind` is "stdout" or "stderr" (`data` is
    bytes) or "display" (`data` is a DisplayResult, sent just before the result)."""

    kind: str
    data: Any
    execution_id: str

    @property
    def text(self) -> str:
        """stdout/stderr as text (UTF-8, undecodable bytes replaced; a chunk may end
        inside a character); a display result's text/plain."""
        if isinstance(self.data, DisplayResult):
            return self.data.text or ""
        return bytes(self.data).decode("utf-8", "replace")

    @classmethod
    def from_wire(cls, wire: dict) -> "Event":
        kind, data = str(wire.get("event")), wire.get("data")
        if kind == "display":
            data = DisplayResult.from_wire(data or {})
        elif isinstance(data, str):
            data = data.encode()
        return cls(kind, data, str(wire.get("execution_id", "")))


def new_execution_id() -> str:
    """An id nobody else can guess (128 random bits), known before the job starts."""
    return secrets.token_urlsafe(16)


def stream_fields(client: "Leeward", execution_id: str | None, streaming: bool) -> dict[str, Any]:
    """`stream` and `execution_id`, each only if the daemon offers it (it refuses a
    field it does not know)."""
    features = client.cached_features()
    fields: dict[str, Any] = {}
    if streaming and "stream" in features:
        fields["stream"] = True
    if "cancel" in features:
        fields["execution_id"] = execution_id or new_execution_id()
    return fields


def callbacks(on_stdout: Callable[[bytes], None] | None, on_stderr: Callable[[bytes], None] | None,
              on_display: Callable[[DisplayResult], None] | None = None) -> Callable[[Event], None] | None:
    """One event handler calling the caller's per-kind callbacks, or None if none is set."""
    handlers = {"stdout": on_stdout, "stderr": on_stderr, "display": on_display}
    if not any(handlers.values()):
        return None

    def dispatch(event: Event) -> None:
        handler = handlers.get(event.kind)
        if handler is not None:
            handler(event.data)

    return dispatch


def run_with_events(client: "Leeward", request: dict, on_event: Callable[[Event], None]) -> ExecutionResult:
    """Sends `request` and feeds on_event; when it could not ask for `stream` (the daemon
    does not offer it), the output is replayed as events once the result is in."""
    result = ExecutionResult.from_wire(client.call(request, on_event=lambda wire: on_event(Event.from_wire(wire)))
                                       ["result"])
    if not request.get("stream"):
        for event in replayed(result, request.get("execution_id", "")):
            on_event(event)
    return result


def replayed(result: ExecutionResult, execution_id: str) -> list[Event]:
    events = [Event(kind, data, execution_id) for kind, data in
              (("stdout", result.stdout_bytes), ("stderr", result.stderr_bytes)) if data]
    return events + [Event("display", r, execution_id) for r in result.results]


class Execution:
    """A job or session cell running on a background thread: iterate it for its Events,
    then result(); cancel() stops it from here or any thread. Made by Leeward.stream()
    and Session.stream(). Events not iterated are dropped by result()."""

    def __init__(self, client: "Leeward", request: dict):
        self._client = client
        self.execution_id: str | None = request.get("execution_id")
        self._events: queue.Queue = queue.Queue(EVENT_QUEUE_MAX)
        self._result: ExecutionResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(request,), name="leeward-stream", daemon=True)
        self._thread.start()

    def _run(self, request: dict) -> None:
        try:
            self._result = run_with_events(self._client, request, self._events.put)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result() on the caller's thread
            self._error = exc
        finally:
            self._events.put(_END)

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self._events.get()
            if event is _END:
                self._events.put(_END)  # iterating again, or result(), ends at once
                return
            yield event

    def result(self) -> ExecutionResult:
        """Waits for the job's end (draining events nobody read) and returns its result,
        or raises what the request raised."""
        for _ in self:
            pass
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> bool:
        """Kills the job (a session cell: KeyboardInterrupt, then killed after the
        daemon's interrupt_grace_secs); True if it was still running. The result then
        has `cancelled` True. Sent on a connection of its own: this one is busy."""
        if self.execution_id is None:
            return False  # the daemon cannot cancel
        while not self._client.cancel(self.execution_id):
            if not self._thread.is_alive():
                return False
            time.sleep(CANCEL_RETRY_SECS)
        return True

    def __enter__(self) -> "Execution":
        return self

    def __exit__(self, *exc: Any) -> None:
        """Leaving early (an exception, a break) cancels the job."""
        if self._thread.is_alive():
            self.cancel()
            try:
                self.result()
            except Exception:  # noqa: BLE001 - the exception that left the block matters more
                pass
