"""The daemon's front door: an asyncio Unix-socket server speaking the wire protocol.
This module listens, admits connections within the fd budget and reads frames; each
request goes to its handler through HANDLERS (handlers.py), is accounted once
(accounting.py), and the daemon drains through shutdown.py.

Every failure a client can cause is answered with a structured error; a frame that
cannot be delimited (length 0, over the limit) is answered and the connection closed,
without ever allocating the declared size.
"""
from __future__ import annotations

import asyncio
import grp
import logging
import os
import resource
import socket
import struct
import time
from dataclasses import dataclass

from libleeward import paths, protocol
from libleeward.messages import REQUESTS, parse_request
from libleeward.protocol import ErrorCode, ProtocolError

from ..config import Config
from ..errors import ConfigError, DaemonAlreadyRunning, MetricsUnavailable, RequestFailed
from ..ops import log_limit
from ..ops.metrics import Metrics, PoolState
from ..pool.handle import Slot
from ..pool.pool import Pool
from ..pool.sessions import Sessions
from ..pool.zygote_launch import LaunchedZygote
from . import shutdown
from .accounting import Executions, RequestRecord, account
from .errors import for_client, internal, to_protocol_error
from .handlers import HANDLERS
from .running import RunningJobs

log = logging.getLogger(__name__)
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
# File descriptors the daemon keeps for itself whatever its clients do: the interpreter,
# logging, metrics, the zygote's channel, files the supervisor and the limits open.
FDS_RESERVED = 64
# What one sandbox holds in the daemon (pidfd, control socket, two output pipes) and
# what its job adds while it runs (seccomp listener, cgroup files), rounded up.
FDS_PER_SANDBOX = 8
DEFAULT_SOMAXCONN = 4096
ACCEPT_BATCH = 16  # connections accepted per wake-up (within FDS_RESERVED)
@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    task: asyncio.Task | None
    peer_uid: int | None
    busy: bool = False  # between reading a request's first byte and sending its reply
    replying: bool = False  # its reply is made and being written (the client may never read it)


class Server:
    def __init__(self, config: Config, listen_socket: socket.socket | None = None,
                 zygote: LaunchedZygote | None = None):
        self.config = config
        self._zygote = zygote  # started early by the caller; else the pool starts one
        self.pool = Pool(config)
        self.metrics = Metrics(self._pool_state, lambda: len(self._connections))
        self.started_at = time.monotonic()
        self.executions = Executions(self.metrics)
        self.jobs = RunningJobs()  # what a Cancel can reach
        self.sessions = Sessions(self.pool, config,
                                 on_end=lambda reason: self.metrics.sessions_ended.labels(reason).inc())
        self.metrics.sessions_active.set_function(lambda: self.sessions.active)
        self.requests = 0  # also the source of request ids
        self.draining = False
        self._connections: dict[asyncio.StreamWriter, _Connection] = {}
        self.running: set[Slot] = set()
        self.killed: set[Slot] = set()  # slots of jobs the shutdown grace ran out on
        self._listen_socket = listen_socket
        self._server: asyncio.AbstractServer | None = None
        self.metrics_error: str | None = None
        self._per_uid: dict[int | None, int] = {}
        self.max_connections = config.max_connections  # lowered to what the fds allow at start()
        self._fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.refused_connections = 0
        self.dropped_stalled = 0

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
        log_limit.install()
        self.max_connections = self._size_for_fds()
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

    def _size_for_fds(self) -> int:
        """Raises the soft fd limit to the hard one (systemd's LimitNOFILE) and returns
        how many connections fit in it with every connection running a job, after the
        reserve for the daemon itself and the sandboxes being kept and built."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
        self._fd_limit = soft
        pool = FDS_PER_SANDBOX * (self.config.workers + self.config.max_building + self.config.session_cap)
        fitting = max(1, (soft - FDS_RESERVED - pool) // (1 + FDS_PER_SANDBOX))
        if fitting < self.config.max_connections:
            log.warning("max_connections lowered from %d to %d: the fd limit is %d (raise LimitNOFILE / ulimit -n)",
                        self.config.max_connections, fitting, soft)
        return min(self.config.max_connections, fitting)

    def _backlog(self) -> int:
        """As deep as the kernel allows (it clamps to somaxconn): a burst of connects
        waits in the queue instead of failing with EAGAIN."""
        try:
            with open("/proc/sys/net/core/somaxconn") as fh:
                somaxconn = int(fh.read())
        except (OSError, ValueError):
            somaxconn = DEFAULT_SOMAXCONN
        return max(1, min(somaxconn, max(self.max_connections, 128)))

    async def _listen(self) -> None:
        # asyncio accepts up to `backlog` connections per wake-up, each an fd before any
        # refusal can run: a small batch, then the deep queue set by a second listen().
        if self._listen_socket is not None:
            self._server = await asyncio.start_unix_server(self._serve_connection, sock=self._listen_socket,
                                                           backlog=ACCEPT_BATCH)
        else:
            old_umask = os.umask(0o177)  # the socket is born 0600: no window for other users
            try:
                self._server = await asyncio.start_unix_server(self._serve_connection, path=self.config.socket_path,
                                                               backlog=ACCEPT_BATCH)
            finally:
                os.umask(old_umask)
            _share_socket(self.config)
        for listening in self._server.sockets:  # asyncio's wrappers have no listen(): a dup has
            with socket.socket(fileno=os.dup(listening.fileno())) as sock:
                sock.listen(self._backlog())

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

    async def shutdown(self, hurry: asyncio.Event | None = None) -> None:
        await shutdown.drain(self, hurry)

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()

    def connections(self) -> list[_Connection]:
        return list(self._connections.values())

    # ------------------------------------------------------------ connections

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = _peer_uid(writer)
        refusal = self._refusal(uid)
        if refusal is not None:
            await self._refuse(writer, refusal)
            return
        conn = _Connection(writer, asyncio.current_task(), uid)
        self._connections[writer] = conn
        self._per_uid[uid] = self._per_uid.get(uid, 0) + 1
        try:
            while not self.draining and await self._serve_one(reader, conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("unexpected error on a connection")
        finally:
            del self._connections[writer]
            self._per_uid[uid] -= 1
            if not self._per_uid[uid]:
                del self._per_uid[uid]
            writer.close()

    def _refusal(self, uid: int | None) -> str | None:
        """Why a new connection cannot be served, or None. Clients never get the fds
        the pool and running jobs need: past a limit a connection is answered E3004 and
        closed, never left half-open."""
        if len(self._connections) >= self.max_connections:
            return f"daemon busy: {len(self._connections)} connections open (max_connections {self.max_connections})"
        if self._per_uid.get(uid, 0) >= self.config.max_connections_per_uid:
            return (f"daemon busy: uid {uid} has {self._per_uid[uid]} connections open "
                    f"(max_connections_per_uid {self.config.max_connections_per_uid})")
        free = self._fd_limit - _open_fds()
        if free < FDS_RESERVED:
            return f"daemon busy: {free} file descriptors left, keeping them for running jobs"
        return None

    async def _refuse(self, writer: asyncio.StreamWriter, reason: str) -> None:
        self.refused_connections += 1
        self.metrics.observe_request("Error", ErrorCode.DAEMON_BUSY.value)
        log.warning("refusing a connection: %s", reason)
        try:
            await asyncio.wait_for(_send(writer, protocol.error_response(
                "Error", ProtocolError(ErrorCode.DAEMON_BUSY, reason + "; retry later"))), 1.0)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, conn: _Connection) -> bool:
        """Serves one frame; False once the connection should close. An idle connection
        may wait for ever (max_connections bounds them); a frame once begun must arrive
        whole within client_read_timeout_secs, or the connection is dropped."""
        try:
            first = await reader.readexactly(1)
        except asyncio.IncompleteReadError:
            return False
        conn.busy = True
        self.requests += 1
        request = RequestRecord(self.requests, conn.peer_uid, writer=conn.writer)
        try:
            try:
                async with asyncio.timeout(self.config.client_read_timeout_secs):
                    header = first + await reader.readexactly(protocol.HEADER.size - 1)
                    body = await self._read_body(reader, conn.writer, header, request)
            except TimeoutError:
                self.dropped_stalled += 1
                request.outcome = "stalled"
                log.warning("dropping a connection of uid %s: a frame did not arrive whole within %gs",
                            conn.peer_uid, self.config.client_read_timeout_secs)
                return False
            if body is None:
                return False
            return await self._answer(conn, body, request)
        finally:
            conn.busy = conn.replying = False
            account(self.metrics, request)

    async def _read_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, header: bytes,
                         request: RequestRecord) -> bytes | None:
        try:
            length = protocol.parse_header(header, self.config.max_frame)
        except ProtocolError as exc:
            request.outcome = exc.code.value
            await _send(writer, protocol.error_response("Error", exc))
            return None
        return await reader.readexactly(length)

    async def _answer(self, conn: _Connection, body: bytes, request: RequestRecord) -> bool:
        try:
            message = protocol.decode_body(body)
            if message.get("type") in REQUESTS:
                request.kind = message["type"]
            parsed = parse_request(message, self.config.bounds())
            response = await HANDLERS[type(parsed)](self, parsed, request)
            outcome = "ok"
        except (ProtocolError, RequestFailed) as exc:
            error = exc if isinstance(exc, ProtocolError) else to_protocol_error(exc)
            response, outcome = protocol.error_response(request.kind, for_client(error)), error.code.value
            request.details["error"] = error.message
        except Exception as exc:
            log.exception("internal error serving request %d (%s)", request.id, request.kind)
            error = internal(exc)
            response, outcome = protocol.error_response(request.kind, for_client(error)), error.code.value
        conn.replying = True
        await _send(conn.writer, response)
        request.outcome = outcome
        return True

    def _pool_state(self) -> PoolState:
        pool = self.pool
        return PoolState(pool.idle, pool.busy, pool.starting, pool.recycled, waiting=pool.waiting,
                         zygote_restarts=pool.link.restarts, healthy=pool.problem() is None)

def _share_socket(config: Config) -> None:
    """socket_mode / socket_group: a root daemon may serve several local users (as
    docker's group does). Set once the socket exists, born 0600: access only widens."""
    if config.socket_group:
        try:
            gid = grp.getgrnam(config.socket_group).gr_gid
        except KeyError:
            raise ConfigError(f"socket_group: no group named {config.socket_group!r}") from None
        os.chown(config.socket_path, -1, gid)
    if config.socket_mode != 0o600:
        os.chmod(config.socket_path, config.socket_mode)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the listing's own


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    try:
        _, uid, _ = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    except (OSError, AttributeError, struct.error):
        return None
    return uid


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
