"""The one shape every isolation layer has: a name (what Status reports), a `prepare`
hook run in the slot ahead of demand, and an `apply` hook run in the slot once its job
arrived. order.py lists the layers; either hook may be absent."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import SandboxRequest, SandboxSpec


@dataclass
class SlotContext:
    """What the layers of one slot share: its spec, the fds it must keep, each layer's
    prepared state by name, and what the job hands over (the seccomp listener)."""
    spec: SandboxSpec
    channel_fd: int
    stdout_fd: int
    stderr_fd: int
    states: dict[str, object] = field(default_factory=dict)
    listener: int | None = None


@dataclass(frozen=True)
class Layer:
    name: str
    prepare: Callable[[SlotContext], object] | None = None
    apply: Callable[[SlotContext, SandboxRequest, object], None] | None = None
