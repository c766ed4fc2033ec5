"""Test-only helpers over the isolation modules: what the daemon never needs itself."""
from __future__ import annotations

from typing import Sequence

from leeward_daemon.isolation import landlock

_STATUS_FIELDS = {
    "CapInh": "inheritable",
    "CapPrm": "permitted",
    "CapEff": "effective",
    "CapBnd": "bounding",
    "CapAmb": "ambient",
}


def restrict(read_only: Sequence[str], read_write: Sequence[str], *, allow_tcp: bool = False) -> int:
    """Build and enforce a Landlock ruleset in one go (see landlock.Ruleset); returns the ABI used."""
    ruleset = landlock.Ruleset(allow_tcp=allow_tcp)
    try:
        ruleset.allow(read_only, read_write)
        return ruleset.enforce()
    finally:
        ruleset.close()


def current_capabilities() -> dict:
    """The five capability sets of the calling thread, as ints, from /proc."""
    caps = {}
    with open("/proc/thread-self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in _STATUS_FIELDS:
                caps[_STATUS_FIELDS[key]] = int(value.strip(), 16)
    return caps
