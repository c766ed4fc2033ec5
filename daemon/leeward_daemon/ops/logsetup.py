"""Logging for the daemon process: one format, to stderr, at the configured level."""
from __future__ import annotations

import logging
import os


def configure(level: str) -> None:
    # systemd sets JOURNAL_STREAM when stderr is the journal, which stamps every line
    # with its own time: a second timestamp would only be noise there.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(level=level, format=stamp + "%(levelname)s %(name)s: %(message)s", force=True)
