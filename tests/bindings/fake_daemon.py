"""A scripted stand-in for the daemon, for the bindings' unit tests (Python imports it;
the Go and Node tests run it as a program): it answers each request by its `type` from
a table, and records every request it got, so a test checks the request shapes a
binding sends and how it decodes replies, without a real daemon or kernel.

    python fake_daemon.py SOCKET REPLIES.json LOG.jsonl
        REPLIES.json: {type: reply} or {type: [reply, reply, ...]} (one each time, the
        last one repeated), in the JSON form of leeward_call ({"$bytes": base64});
        each request is appended to LOG.jsonl in that form; prints "ready" once listening.

A request of a type the table lacks gets E1005, as the daemon answers one it does not know.
Run it with the checkout's .venv python (libleeward is installed there, editable).
"""
from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

from libleeward import jsonwire, protocol


class FakeDaemon:
    def __init__(self, path: str, replies: dict[str, dict | list[dict]], log_path: str | None = None):
        self.path = path
        self.replies = {kind: list(reply) if isinstance(reply, list) else [reply] for kind, reply in replies.items()}
        self.requests: list[dict] = []
        self.log_path = log_path
        self._lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                header = conn.recv(protocol.HEADER.size, socket.MSG_WAITALL)
                if len(header) < protocol.HEADER.size:
                    return
                request = protocol.decode_body(conn.recv(protocol.parse_header(header), socket.MSG_WAITALL))
                self._reply(conn, request, self._answer(request))

    def _reply(self, conn: socket.socket, request: dict, reply: dict) -> None:
        """Sends the answer (a subclass may send Event frames before it)."""
        conn.sendall(protocol.encode_frame(reply))

    def _answer(self, request: dict) -> dict:
        with self._lock:
            self.requests.append(request)
            if self.log_path:
                with open(self.log_path, "a", encoding="ascii") as log:
                    log.write(jsonwire.dumps(request) + "\n")
            kind = str(request.get("type"))
            queue = self.replies.get(kind)
            if not queue:
                return {"type": kind, "success": False,
                        "error": {"code": "E1005", "message": f"unknown request type {kind!r}"}}
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def of_type(self, kind: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r.get("type") == kind]

    def close(self) -> None:
        # shutdown wakes the accept() blocked in our thread (close alone does not, on Linux).
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=10)


def main(argv: list[str]) -> int:
    socket_path, replies_path, log_path = argv
    replies = jsonwire.loads(Path(replies_path).read_text(encoding="utf-8"))
    FakeDaemon(socket_path, replies, log_path)
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
