"""The daemon's front door: an asyncio Unix-socket server speaking the wire protocol.

Every failure a client can cause is answered with a structured error; a frame that
cannot be delimited (length 0, over the limit) is answered and the connection closed,
without ever allocating the declared size. Each request is logged once at INFO (never
the code or its output) and counted in the metrics.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass, field

from libleeward import paths, protocol
from libleeward.protocol import ErrorCode, Execute, ExecutionResult, Ping, ProtocolError, Status

from . import mounts, supervisor
from .config import Config, ConfigError
from .isolation.spec import Job
from .metrics import Metrics, PoolState, failure_reason
from .pool import Pool, Slot
from .zygote_launch import LaunchedZygote

log = logging.getLogger(__name__)
VERSION = "0.1.0"
# After the grace, killed jobs still need their supervisor to collect output and reap
# (bounded by its own EXIT_GRACE_SECS): wait that long before dropping connections.
KILLED_REPLY_WAIT_SECS = 15.0
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class DaemonAlreadyRunning(Exception):
    pass


class MetricsUnavailable(Exception):
    """An explicitly configured metrics endpoint cannot be served."""


@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    task: asyncio.Task | None
    peer_uid: int | None
    busy: bool = False  # between reading a request's header and sending its reply


@dataclass
class _Request:
    """One frame's life, for its log line and its metrics."""
    id: int
    peer_uid: int | None
    started: float = field(default_factory=time.monotonic)
    kind: str = "Error"
    outcome: str = "disconnected"  # "ok", an error code, or the client left mid-request
    result: ExecutionResult | None = None
    details: dict = field(default_factory=dict)


class Server:
    def __init__(self, config: Config, listen_socket: socket.socket | None = None,
                 zygote: LaunchedZygote | None = None):
        self.config = config
        self._zygote = zygote  # started early by the caller; else the pool starts one
        self.pool = Pool(config)
        self.metrics = Metrics(self._pool_state, lambda: len(self._connections))
        self.started_at = time.monotonic()
        self.executions = 0
        self.failed = {"timeout": 0, "oom": 0, "error": 0}
        self.requests = 0  # also the source of request ids
        self.draining = False
        self._connections: dict[asyncio.StreamWriter, _Connection] = {}
        self._running: set[Slot] = set()
        self._killed: set[Slot] = set()  # slots of jobs the shutdown grace ran out on
        self._listen_socket = listen_socket
        self._server: asyncio.AbstractServer | None = None
        self.metrics_error: str | None = None

    @property
    def socket_activated(self) -> bool:
        return self._listen_socket is not None

    async def start(self) -> None:
        if self._listen_socket is None:
            _prepare_socket_path(self.config.socket_path)  # before the pool: fail fast on a live daemon
        else:
            name = self._listen_socket.getsockname()
            if isinstance(name, str) and name.startswith("/"):
                self.config.socket_path = name  # mounts must never expose it
        try:
            self._start_metrics()  # first: a port the operator chose must bind before anything starts
            await self.pool.start(self._zygote)
            await self._listen()
        except BaseException:
            self.pool.stop()
            self.metrics.stop()
            raise
        log.info("leeward daemon listening on %s (workers=%d%s)", self.config.socket_path, self.config.workers,
                 ", socket from systemd" if self.socket_activated else "")

    async def _listen(self) -> None:
        if self._listen_socket is not None:
            self._server = await asyncio.start_unix_server(self._serve_connection, sock=self._listen_socket)
            return
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            self._server = await asyncio.start_unix_server(self._serve_connection, path=self.config.socket_path)
        finally:
            os.umask(old_umask)

    def _start_metrics(self) -> None:
        port, address = self.config.metrics_port, self.config.metrics_address
        if port == 0:
            return
        try:
            endpoint = self.metrics.serve(address, port)
        except OSError as exc:
            message = f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}"
            # A port the operator chose must work; the default one is best effort, so a
            # second daemon on the host still starts (and says so in its status).
            if any(self.config.source(key) != "default" for key in ("metrics_port", "metrics_address")):
                raise MetricsUnavailable(f"metrics_port/metrics_address: {message}") from None
            log.warning("%s; serving without metrics (set metrics_port to another port, or 0)", message)
            self.metrics_error = message
            return
        log.info("metrics on %s", endpoint)

    # ------------------------------------------------------------ shutdown

    async def shutdown(self, hurry: asyncio.Event | None = None) -> None:
        """Stops accepting, lets running jobs finish for up to shutdown_grace_secs (or
        until `hurry` is set), kills what still runs, replies to every client that sent
        a request, then kills every sandbox. The socket file goes first, so no new
        client can connect to a daemon that will not serve it."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        if not self.socket_activated:  # systemd's socket file stays: it starts us again on demand
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.socket_path)
        self.pool.close()
        for conn in list(self._connections.values()):
            if not conn.busy:
                conn.writer.close()  # idle: no request to answer; the client sees EOF
        busy = {c.task for c in self._connections.values() if c.busy and c.task is not None}
        if busy:
            log.info("shutting down: waiting up to %gs for %d running request(s)",
                     self.config.shutdown_grace_secs, len(busy))
            busy = await _wait(busy, self.config.shutdown_grace_secs, hurry)
        if busy:
            log.warning("shutting down: killing %d job(s) still running after the grace", len(self._running))
            self._killed.update(self._running)
            for slot in list(self._running):
                slot.kill()
            busy = await _wait(busy, KILLED_REPLY_WAIT_SECS, None)
        for task in busy:
            task.cancel()
        for conn in list(self._connections.values()):
            conn.writer.close()
        self.pool.stop()
        self.metrics.stop()
        log.info("leeward daemon stopped")

    # ------------------------------------------------------------ connections

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer, asyncio.current_task(), _peer_uid(writer))
        self._connections[writer] = conn
        try:
            while not self.draining and await self._serve_one(reader, conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("unexpected error on a connection")
        finally:
            del self._connections[writer]
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, conn: _Connection) -> bool:
        """Serves one frame; False once the connection should close."""
        try:
            header = await reader.readexactly(protocol.HEADER.size)
        except asyncio.IncompleteReadError:
            return False
        conn.busy = True
        self.requests += 1
        request = _Request(self.requests, conn.peer_uid)
        try:
            return await self._answer(reader, conn.writer, header, request)
        finally:
            conn.busy = False
            self._account(request)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, header: bytes,
                      request: _Request) -> bool:
        try:
            length = protocol.parse_header(header, self.config.max_frame)
        except ProtocolError as exc:
            request.outcome = exc.code.value
            await _send(writer, protocol.error_response("Error", exc))
            return False
        body = await reader.readexactly(length)
        try:
            message = protocol.decode_body(body)
            if message.get("type") in ("Ping", "Status", "Execute"):
                request.kind = message["type"]
            response = await self._dispatch(protocol.parse_request(message, self.config.bounds()), request)
            outcome = "ok"
        except ProtocolError as exc:
            response, outcome = protocol.error_response(request.kind, exc), exc.code.value
            request.details["error"] = exc.message
        except Exception as exc:
            log.exception("internal error serving request %d (%s)", request.id, request.kind)
            response = protocol.error_response(request.kind, ProtocolError(ErrorCode.INTERNAL, f"internal error: {exc}"))
            outcome = ErrorCode.INTERNAL.value
        await _send(writer, response)
        request.outcome = outcome
        return True

    async def _dispatch(self, request, record: _Request) -> dict:
        if isinstance(request, Ping):
            return protocol.pong()
        if isinstance(request, Status):
            return self.status()
        assert isinstance(request, Execute)
        record.details.update(_describe_execute(request))
        record.result = await self._execute(request)
        return protocol.execute_ok(record.result)

    async def _execute(self, request: Execute) -> ExecutionResult:
        job = Job(
            code=request.code,
            mounts=mounts.resolve(request.mounts, self.config.allowed_paths, self.config.socket_path),
            files=request.files,
            env=request.env,
            stdin=request.stdin,
            memory_limit=request.memory_limit or self.config.default_memory_limit,
            pids_max=self.config.pids_max,
            timeout_secs=request.timeout_secs or self.config.default_timeout_secs,
            limits_backend=self.pool.limits.name,
            file_size_max=self.config.file_size_max,
        )
        slot = await self.pool.acquire()
        try:
            result = await self._run(slot, job)
        except ProtocolError:
            if slot not in self._killed:
                raise
        if slot in self._killed:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the daemon shut down and killed this job after its "
                                f"{self.config.shutdown_grace_secs:g}s shutdown grace")
        self.executions += 1
        reason = failure_reason(result)
        if reason is not None:
            self.failed[reason] += 1
        self.metrics.observe_execution(result)
        return result

    async def _run(self, slot: Slot, job: Job) -> ExecutionResult:
        self._running.add(slot)
        try:
            return await supervisor.run(slot, job, self.config)
        finally:
            self._running.discard(slot)
            self.pool.release(slot)

    def _account(self, request: _Request) -> None:
        """The request's one INFO line (no code, no output) and its metrics."""
        elapsed_ms = (time.monotonic() - request.started) * 1000.0
        self.metrics.observe_request(request.kind, request.outcome)
        extra = ""
        if request.result is not None:
            result = request.result
            extra = f" job={failure_reason(result) or 'success'} exit_code={result.exit_code}"
            request.details.update(stdout_bytes=len(result.stdout), stderr_bytes=len(result.stderr),
                                   memory_peak=result.memory_peak, cpu_time_us=result.cpu_time_us,
                                   denied_syscalls=result.denied_syscalls)
        log.info("request id=%d uid=%s type=%s duration_ms=%.2f outcome=%s%s", request.id,
                 "?" if request.peer_uid is None else request.peer_uid, request.kind, elapsed_ms,
                 request.outcome, extra)
        if request.details and log.isEnabledFor(logging.DEBUG):
            log.debug("request id=%d details: %s", request.id,
                      " ".join(f"{key}={value}" for key, value in request.details.items()))

    # ------------------------------------------------------------ status

    def _pool_state(self) -> PoolState:
        return PoolState(self.pool.idle, self.pool.busy, self.pool.starting, self.pool.recycled)

    def status(self) -> dict:
        pool = self.pool
        return {
            "type": "Status", "success": True, "version": VERSION,
            "pool": {"target": self.config.workers, "idle": pool.idle, "busy": pool.busy,
                     "starting": pool.starting, "total": pool.idle + pool.busy + pool.starting,
                     "recycled": pool.recycled, "last_failure": pool.last_failure},
            "executions": self.executions,
            "failed": dict(self.failed),
            "requests": self.requests,
            "connections": len(self._connections),
            "uptime_secs": time.monotonic() - self.started_at,
            "preloaded": pool.link.preloaded,
            "privileged": os.geteuid() == 0,
            "limits": pool.limits.name,
            "isolation": pool.link.isolation,
            "socket": self.config.socket_path,
            "socket_activated": self.socket_activated,
            "metrics": self.metrics.endpoint,
            "metrics_error": self.metrics_error,
            "shutting_down": self.draining,
            "pid": os.getpid(),
        }


def _describe_execute(request: Execute) -> dict:
    """What DEBUG may say about a job: sizes, limits and a digest, never the code itself."""
    code = request.code.encode()
    return {"code_bytes": len(code), "code_sha256": hashlib.sha256(code).hexdigest()[:16],
            "mounts": len(request.mounts), "files": len(request.files), "env": len(request.env),
            "stdin_bytes": len(request.stdin), "timeout_secs": request.timeout_secs,
            "memory_limit": request.memory_limit}


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    try:
        _, uid, _ = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    except (OSError, AttributeError, struct.error):
        return None
    return uid


async def _wait(tasks: set[asyncio.Task], timeout: float, hurry: asyncio.Event | None) -> set[asyncio.Task]:
    """Waits for `tasks` up to `timeout`, or until `hurry` is set; returns those still running."""
    hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
    deadline = time.monotonic() + timeout
    pending = {t for t in tasks if not t.done()}
    try:
        while pending and not (hurry is not None and hurry.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait(pending | ({hurried} if hurried else set()), timeout=remaining,
                               return_when=asyncio.FIRST_COMPLETED)
            pending = {t for t in pending if not t.done()}
    finally:
        if hurried is not None:
            hurried.cancel()
    return pending


async def _send(writer: asyncio.StreamWriter, response: dict) -> None:
    writer.write(protocol.encode_frame(response))
    await writer.drain()


def _prepare_socket_path(path: str) -> None:
    """Creates the socket's directory, or refuses one another user could control (a
    start-up error: exit status 2); removes a stale socket left by a crash, but
    refuses to start over a live daemon."""
    try:
        paths.prepare_socket_directory(path)
    except paths.UnsafeSocketDirectory as exc:
        raise ConfigError(f"socket_path {path}: {exc}") from None
    if not os.path.lexists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # stale: nobody is listening
    else:
        raise DaemonAlreadyRunning(f"a daemon is already listening on {path}")
    finally:
        probe.close()
