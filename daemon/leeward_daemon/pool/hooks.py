"""What a request attaches to its running job or cell: where its output goes as it
arrives (a streaming request's Event frames) and the event a Cancel sets."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .output import Sink


@dataclass(frozen=True)
class JobHooks:
    stdout: Sink | None = None
    stderr: Sink | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()
