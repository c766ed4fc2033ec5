"""The daemon's front door: an asyncio Unix-socket server speaking the wire protocol.

Every failure a client can cause is answered with a structured error; a frame that
cannot be delimited (length 0, over the limit) is answered and the connection closed,
without ever allocating the declared size.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from libleeward import protocol
from libleeward.protocol import ErrorCode, Execute, Ping, ProtocolError, Status

from . import mounts, supervisor
from .config import Config
from .isolation.spec import Job
from .pool import Pool

log = logging.getLogger(__name__)
VERSION = "0.1.0"


class DaemonAlreadyRunning(Exception):
    pass


class Server:
    def __init__(self, config: Config):
        self.config = config
        self.pool = Pool(config)
        self.started_at = time.monotonic()
        self.executions = 0
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        await self.pool.start()
        _prepare_socket_path(self.config.socket_path)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            self._server = await asyncio.start_unix_server(self._serve_connection, path=self.config.socket_path)
        finally:
            os.umask(old_umask)
        log.info("leeward daemon listening on %s (workers=%d)", self.config.socket_path, self.config.workers)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.socket_path)
        self.pool.stop()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("unexpected error on a connection")
        finally:
            self.connections -= 1
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serves one frame; False once the connection should close."""
        try:
            header = await reader.readexactly(protocol.HEADER.size)
        except asyncio.IncompleteReadError:
            return False
        try:
            length = protocol.parse_header(header, self.config.max_frame)
        except ProtocolError as exc:
            await _send(writer, protocol.error_response("Error", exc))
            return False
        body = await reader.readexactly(length)
        kind = "Error"
        try:
            message = protocol.decode_body(body)
            if message.get("type") in ("Ping", "Status", "Execute"):
                kind = message["type"]
            request = protocol.parse_request(message, self.config.bounds())
            response = await self._dispatch(request)
        except ProtocolError as exc:
            response = protocol.error_response(kind, exc)
        except Exception as exc:
            log.exception("internal error serving a %s request", kind)
            response = protocol.error_response(kind, ProtocolError(ErrorCode.INTERNAL, f"internal error: {exc}"))
        await _send(writer, response)
        return True

    async def _dispatch(self, request) -> dict:
        if isinstance(request, Ping):
            return protocol.pong()
        if isinstance(request, Status):
            return self.status()
        assert isinstance(request, Execute)
        return protocol.execute_ok(await self._execute(request))

    async def _execute(self, request: Execute) -> protocol.ExecutionResult:
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
            result = await supervisor.run(slot, job, self.config)
        finally:
            self.pool.release(slot)
        self.executions += 1
        return result

    def status(self) -> dict:
        pool = self.pool
        return {
            "type": "Status", "success": True, "version": VERSION,
            "pool": {"target": self.config.workers, "idle": pool.idle, "busy": pool.busy,
                     "starting": pool.starting, "total": pool.idle + pool.busy + pool.starting,
                     "recycled": pool.recycled, "last_failure": pool.last_failure},
            "executions": self.executions,
            "connections": self.connections,
            "uptime_secs": time.monotonic() - self.started_at,
            "preloaded": pool.link.preloaded,
            "privileged": os.geteuid() == 0,
            "limits": pool.limits.name,
        }


async def _send(writer: asyncio.StreamWriter, response: dict) -> None:
    writer.write(protocol.encode_frame(response))
    await writer.drain()


def _prepare_socket_path(path: str) -> None:
    """Creates the socket's private directory; removes a stale socket left by a crash,
    but refuses to start over a live daemon."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755 if os.geteuid() == 0 else 0o700, exist_ok=True)
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
