"""The daemon's front door, on the asyncio event loop: the Unix socket, the frame loop,
one handler per request type, shutdown, and each request's log line and metrics.

The only package that knows the wire's ErrorCode: the daemon's own exceptions
(leeward_daemon.errors) become codes in one table here (frontdoor/errors.py).
May import libleeward, pool/, ops/, ipc/ and the top-level modules; nothing imports it
but runner.py.
"""
