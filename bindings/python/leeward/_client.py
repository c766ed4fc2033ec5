"""The high-level API: `Leeward` (one connection to the daemon) over libleeward.so."""
from __future__ import annotations

import ctypes
import json
import re
import threading
from typing import Any, Callable, Iterable, NamedTuple, Sequence, Union

from libleeward import jsonwire
from libleeward.abi import ErrorCode

from . import _library
from ._results import ExecutionResult, SessionSummary
from ._program import Program, argv_list, program_fields
from ._session import Session, cell_fields
from ._streaming import Execution, callbacks, run_with_events, stream_fields
from .errors import DaemonUnavailable, InvalidRequest, LeewardError, from_code


class Mount(NamedTuple):
    """A host directory exposed at `sandbox` inside the sandbox (read-only unless told)."""

    host: str
    sandbox: str
    read_only: bool = True


MountLike = Union[Mount, tuple, dict]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a size like "256M", "1G", "512k", "1.5GiB" (binary units)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (try 256M or 1G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _mount(item: MountLike) -> Mount:
    if isinstance(item, dict):
        return Mount(item["host"], item["sandbox"], bool(item.get("ro", item.get("read_only", True))))
    return Mount(*item)


def _wire_mounts(mounts: Iterable[MountLike]) -> list[dict]:
    return [{"host": m.host, "sandbox": m.sandbox, "ro": bool(m.read_only)} for m in map(_mount, mounts)]


def _wire_files(files: dict[str, bytes | str]) -> dict[str, bytes]:
    return {path: data.encode() if isinstance(data, str) else bytes(data) for path, data in files.items()}


def _memory_limit(memory: int | str) -> int:
    size = parse_size(memory)
    if size <= 0 or size >= 1 << 64:
        raise ValueError(f"memory must be a positive size, got {memory!r}")
    return size


class Leeward:
    """A connection to the leeward daemon.

        with Leeward() as sandbox:
            result = sandbox.execute("print(1)")
            print(result.stdout, result.exit_code)

    socket_path: None for $LEEWARD_SOCKET or the per-user default. Thread-safe:
    requests from several threads share the connection one after another; open
    one Leeward per thread to run jobs in parallel. Failures raise LeewardError
    subclasses (DaemonUnavailable, UntrustedSocket, InvalidRequest, SandboxError).
    """

    def __init__(self, socket_path: str | None = None):
        self._ll = _library.lowlevel()
        self._lock = threading.Lock()
        self._socket_path = socket_path
        self._control: Leeward | None = None  # cancel()'s own connection: this one may be busy
        handle = self._ll.leeward_connect(None if socket_path is None else socket_path.encode())
        if not handle:
            raise self._error()
        self._handle = handle
        self._features: list[str] | None = None  # Pong's, asked once when first needed

    # ---------------------------------------------------------------- life

    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
            control, self._control = self._control, None
        if control is not None:
            control.close()
        if handle:
            self._ll.leeward_disconnect(handle)

    def __enter__(self) -> "Leeward":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    @property
    def closed(self) -> bool:
        return self._handle is None

    # ---------------------------------------------------------------- requests

    def execute(
        self,
        code: str,
        *,
        mounts: Iterable[MountLike] = (),
        timeout: float | None = None,
        memory: int | str | None = None,
        display: bool = False,
        collect: Iterable[str] = (),
        on_stdout: Callable[[bytes], None] | None = None,
        on_stderr: Callable[[bytes], None] | None = None,
        execution_id: str | None = None,
    ) -> ExecutionResult:
        """Runs `code` in a fresh sandbox and returns what it did.

        mounts: Mount(host, sandbox, read_only=True), (host, sandbox[, read_only]) or
                {"host", "sandbox", "ro"}; host must be under the daemon's allowed paths.
        timeout: wall-clock seconds (default: the daemon's).
        memory: bytes or a size like "256M" (default: the daemon's).
        display: run as a notebook cell: the final expression's value, display() calls
                 and matplotlib figures come back in `results` (`.text`, `.html`, `.png`).
        collect: globs relative to the workdir; the matching files come back in `files`.
        (display and collect need a daemon whose Ping lists them in `features`.)
        on_stdout / on_stderr: called with each chunk of output as it arrives, on this
                 thread, before this returns (the chunks add up to result.stdout_bytes /
                 stderr_bytes). A daemon that does not stream calls them once at the end.
        execution_id: your handle for cancel() from another thread or process (1 to 64
                 of A-Z a-z 0-9 _ -); stream() makes one for you.
        """
        handler = callbacks(on_stdout, on_stderr)
        if handler is not None or execution_id is not None:
            request = self._execute_request(code, mounts, timeout, memory, display, collect)
            request.update(stream_fields(self, execution_id, streaming=handler is not None))
            if handler is None:
                return ExecutionResult.from_wire(self.call(request)["result"])
            return run_with_events(self, request, handler)
        if display or collect:
            return ExecutionResult.from_wire(
                self.call(self._execute_request(code, mounts, timeout, memory, display, collect))["result"])
        ll = self._ll
        mount_list = [_mount(m) for m in mounts]
        # A C string ends at the first NUL: refuse rather than run a truncated program.
        for what, text in [("code", code)] + [(f"mount {m.host!r}", m.host + m.sandbox) for m in mount_list]:
            if "\x00" in text:
                raise InvalidRequest(ErrorCode.WRONG_TYPE.value, f"{what} contains a NUL character")
        c_mounts = (ll.LeewardMount * max(1, len(mount_list)))()
        keep = []  # the encoded paths must outlive the call
        for slot, mount in zip(c_mounts, mount_list):
            host, sandbox = ll.String(mount.host.encode()), ll.String(mount.sandbox.encode())
            keep += [host, sandbox]
            slot.host, slot.sandbox, slot.read_only = host, sandbox, int(bool(mount.read_only))
        options = ll.LeewardOptions()
        options.timeout_secs = 0.0 if timeout is None else float(timeout)
        if timeout is not None and options.timeout_secs == 0:
            raise ValueError("timeout must be > 0 (None means the daemon's default)")
        if memory is not None:
            options.memory_limit = _memory_limit(memory)
        options.mounts = c_mounts
        options.mounts_len = len(mount_list)

        result = ll.leeward_execute(self._live_handle(), code.encode(), ctypes.byref(options))
        if not result:
            raise self._error()
        try:
            return self._convert(result.contents)
        finally:
            ll.leeward_result_free(result)

    def run(
        self,
        argv: Sequence[str],
        *,
        mounts: Iterable[MountLike] = (),
        timeout: float | None = None,
        memory: int | str | None = None,
        stdin: bytes | str | None = None,
        env: dict[str, str] | None = None,
        files: dict[str, bytes | str] | None = None,
        collect: Iterable[str] = (),
        on_stdout: Callable[[bytes], None] | None = None,
        on_stderr: Callable[[bytes], None] | None = None,
        execution_id: str | None = None,
    ) -> ExecutionResult:
        """Runs a program in a fresh sandbox, with the same isolation, limits and result
        as execute(). argv[0] is looked up on the sandbox's PATH (/usr/local/bin:/usr/bin:/bin
        unless env sets PATH); no shell is involved, so pass ["sh", "-c", "a | b"] for one.

            result = sandbox.run(["sh", "-c", "echo hi"])
            result.stdout == "hi\n"

        exit_code is the program's; 128 + N when signal N ended it (as a shell says),
        127 when argv[0] was not found, 126 when it could not be executed; -9 when the
        daemon killed the job (timeout). stdin: its standard input; env: variables laid
        over the sandbox's safe set; files: {relative path: bytes or str} written to the
        workdir (/tmp) first; mounts, timeout, memory, collect, on_stdout, on_stderr,
        execution_id: as for execute(). Needs a daemon whose Ping lists "argv".
        """
        request = self._execute_request(argv_list(argv), mounts, timeout, memory, False, collect)
        if stdin:
            request["stdin"] = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
        if env:
            request["env"] = dict(env)
        if files:
            request["files"] = _wire_files(files)
        handler = callbacks(on_stdout, on_stderr)
        request.update(stream_fields(self, execution_id, streaming=handler is not None))
        if handler is None:
            return ExecutionResult.from_wire(self.call(request)["result"])
        return run_with_events(self, request, handler)

    def _execute_request(self, program: Program, mounts: Iterable[MountLike], timeout: float | None,
                         memory: int | str | None, display: bool, collect: Iterable[str]) -> dict[str, Any]:
        """execute() with v2 fields, which leeward_execute's struct does not carry: the
        same request for leeward_call; `program` is code (str) or argv (a list)."""
        request: dict[str, Any] = {"type": "Execute", **program_fields(self, program)}
        wire_mounts = _wire_mounts(mounts)
        if wire_mounts:
            request["mounts"] = wire_mounts
        if memory is not None:
            request["memory_limit"] = _memory_limit(memory)
        request.update(cell_fields(timeout=timeout, stdin=None, display=display, collect=collect))
        return request

    def stream(
        self,
        code: Program,
        *,
        mounts: Iterable[MountLike] = (),
        timeout: float | None = None,
        memory: int | str | None = None,
        display: bool = False,
        collect: Iterable[str] = (),
        execution_id: str | None = None,
    ) -> Execution:
        """Starts `code` as execute() would (or a program: an argv list, as for run())
        and returns at once: iterate the Execution for its Events as output arrives,
        call .result() for the result, .cancel() to stop it (Ctrl-C: catch
        KeyboardInterrupt around the loop and cancel). Its
        `execution_id` is known from the start. This connection is busy until the job
        ends; cancel() uses a connection of its own."""
        request = self._execute_request(code, mounts, timeout, memory, display, collect)
        request.update(stream_fields(self, execution_id, streaming=True))
        return Execution(self, request)

    def cancel(self, execution_id: str) -> bool:
        """Cancels a running job or session cell of yours by its execution_id, from any
        thread (even while this Leeward runs that job): a one-shot job is killed, a cell
        gets KeyboardInterrupt (then is killed after the daemon's interrupt_grace_secs).
        True if it was running; its result then has `cancelled` True."""
        with self._lock:
            if self._handle is None:
                raise DaemonUnavailable(ErrorCode.CONNECTION_CLOSED.value, "this Leeward is closed")
            if self._control is None:
                self._control = Leeward(self._socket_path)
            control = self._control
        return bool(control.call({"type": "Cancel", "execution_id": execution_id}).get("found"))

    def session(
        self,
        *,
        mounts: Iterable[MountLike] = (),
        files: dict[str, bytes | str] | None = None,
        env: dict[str, str] | None = None,
        memory_limit: int | str | None = None,
        idle_timeout: float | None = None,
        max_lifetime: float | None = None,
    ) -> Session:
        """Opens a session: one sandbox, kept alive between cells, whose globals, imports
        and /tmp files persist. Close it (or use `with`) when done; the daemon also ends
        it after idle_timeout seconds without a cell, or max_lifetime seconds in all.

        mounts: as for execute(). files: {relative path: bytes or str} put in the workdir.
        env: extra environment variables. memory_limit: for the whole session (bytes or
        "512M"). Omitted values are the daemon's defaults (and each is bounded by it).
        """
        request: dict[str, Any] = {"type": "SessionOpen"}
        wire_mounts = _wire_mounts(mounts)
        if wire_mounts:
            request["mounts"] = wire_mounts
        if files:
            request["files"] = _wire_files(files)
        if env:
            request["env"] = dict(env)
        if memory_limit is not None:
            request["memory_limit"] = _memory_limit(memory_limit)
        for key, value in (("idle_timeout_secs", idle_timeout), ("max_lifetime_secs", max_lifetime)):
            if value is not None:
                if not value > 0:
                    raise ValueError(f"{key} must be > 0 (None means the daemon's default)")
                request[key] = float(value)
        return Session(self, self.call(request)["session"])

    def attach(self, session_id: str) -> Session:
        """A handle on an open session by its id (opened by another connection or the
        CLI, by the same user); nothing is sent until it is used."""
        return Session.attach(self, session_id)

    def sessions(self) -> list[SessionSummary]:
        """Your open sessions (SessionList: another user's are never listed)."""
        return [SessionSummary.from_wire(s) for s in self.call({"type": "SessionList"}).get("sessions") or []]

    def features(self) -> list[str]:
        """What the daemon's protocol offers beyond v1 (Pong's `features`: "sessions",
        "display", "collect", "files", ...); [] for a v1 daemon."""
        return list(self.call({"type": "Ping"}).get("features") or [])

    def cached_features(self) -> list[str]:
        """features(), asked of the daemon once per connection."""
        if self._features is None:
            self._features = self.features()
        return self._features

    def ping(self) -> None:
        """Raises unless the daemon answers."""
        if self._ll.leeward_ping(self._live_handle()) != 0:
            raise self._error()

    def status(self) -> dict:
        """The daemon's pool state (its Status response)."""
        ll = self._ll
        text = ll.leeward_status_json(self._live_handle())
        if not text.raw:
            raise self._error()
        try:
            return json.loads(text.data)
        finally:
            ll.leeward_string_free(text)

    def call(self, request: dict, on_event: Callable[[dict], None] | None = None) -> dict:
        """Sends any request of the wire protocol and returns the daemon's reply map
        (leeward_call): the way to a protocol feature that has no method here yet.

            sandbox.call({"type": "Execute", "code": "print(1)", "stdin": b"..."})

        Bytes go and come back as bytes. on_event gets each Event frame of a streaming
        request, in order, before the reply (leeward_call_stream); an exception it raises
        is raised here once the reply has been read. An error reply raises LeewardError.
        """
        ll = self._ll
        raised: list[BaseException] = []

        def forward(event_json, _user) -> None:  # event_json: the ctypes module's String
            if raised:
                return
            try:
                on_event(jsonwire.loads(event_json.data))
            except BaseException as exc:  # noqa: BLE001 - ctypes would print and drop it
                raised.append(exc)

        callback = ll.LeewardEventCallback(forward) if on_event is not None else ll.LeewardEventCallback()
        reply = ctypes.POINTER(ctypes.c_char)()
        request_json = jsonwire.dumps(request).encode("ascii")
        if ll.leeward_call_stream(self._live_handle(), request_json, callback, None, ctypes.byref(reply)) != 0:
            error = self._error()
            if raised:
                raise raised[0] from error
            raise error
        try:
            answer = jsonwire.loads(ctypes.string_at(reply))
        finally:
            ll.leeward_string_free(reply)
        if raised:
            raise raised[0]
        return answer

    # ---------------------------------------------------------------- helpers

    def _live_handle(self):
        handle = self._handle
        if handle is None:
            # A client-side connection failure: the same code in every binding.
            raise DaemonUnavailable(ErrorCode.CONNECTION_CLOSED.value, "this Leeward is closed")
        return handle

    def _error(self) -> LeewardError:
        ll = self._ll
        code = (ll.leeward_last_error_code() or b"").decode("ascii", "replace")
        message = (ll.leeward_last_error() or b"").decode("utf-8", "replace")
        return from_code(code or ErrorCode.INTERNAL.value, message or "libleeward failed without a message")

    @staticmethod
    def _convert(r) -> ExecutionResult:
        """From leeward_execute's struct (the v1 path, no rich results)."""
        details = json.loads(r.details_json.data)
        return ExecutionResult(
            exit_code=r.exit_code,
            stdout_bytes=ctypes.string_at(r.stdout_data.raw, r.stdout_len),
            stderr_bytes=ctypes.string_at(r.stderr_data.raw, r.stderr_len),
            duration_ms=float(details.get("duration_ms", r.duration_us / 1000)),
            memory_peak=r.memory_peak,
            cpu_time_us=r.cpu_time_us,
            timed_out=bool(r.timed_out),
            oom_killed=bool(r.oom_killed),
            stdout_truncated=bool(r.stdout_truncated),
            stderr_truncated=bool(r.stderr_truncated),
            denied_syscalls=list(details.get("denied_syscalls", [])),
            limits=str(details.get("limits", "")),
            error=details.get("error"),
        )
