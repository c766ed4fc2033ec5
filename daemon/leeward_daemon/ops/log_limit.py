"""Rate limiting of repeated identical log records: a storm (fd exhaustion, a client
flood) must not turn one failure into hundreds of megabytes of identical tracebacks."""
from __future__ import annotations

import logging
import time

WINDOW_SECS = 60.0
PER_WINDOW = 5  # identical records let through per window; the rest are counted


class RepeatLimiter(logging.Filter):
    """Records of WARNING and above are "identical" when they share logger, level,
    message template and exception type (arguments differ: pids, fds, counts). The
    first PER_WINDOW of a window pass; the first one after the window says how many
    were suppressed."""

    def __init__(self, window: float = WINDOW_SECS, per_window: int = PER_WINDOW):
        super().__init__()
        self._window, self._per_window = window, per_window
        self._seen: dict[tuple, list] = {}  # key -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        key = (record.name, record.levelno, str(record.msg), exc_type)
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self._window:
            suppressed = entry[2] if entry is not None else 0
            if len(self._seen) > 1000:  # never grows without bound either
                self._seen.clear()
            self._seen[key] = [now, 1, 0]
            if suppressed:
                record.msg = f"{record.msg} [{suppressed} identical message(s) suppressed in the last " \
                             f"{self._window:g}s]"
            return True
        if entry[1] < self._per_window:
            entry[1] += 1
            return True
        entry[2] += 1
        return False


def install(logger: logging.Logger | None = None) -> None:
    """Adds the limiter to every handler of `logger` (default: root), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RepeatLimiter) for f in handler.filters):
            handler.addFilter(RepeatLimiter())
