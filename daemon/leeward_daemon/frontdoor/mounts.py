"""Resolves a request's mounts on the host: real paths only, under allowed_paths."""
from __future__ import annotations

import os

from libleeward.protocol import ErrorCode, Mount, ProtocolError

from ..model import JobMount


def resolve(mounts: tuple[Mount, ...], allowed_paths: list[str], socket_path: str) -> list[JobMount]:
    resolved = []
    for mount in mounts:
        normal = os.path.normpath(mount.host)
        if not os.path.lexists(normal):
            raise ProtocolError(ErrorCode.MOUNT_NOT_FOUND, f"mount source {mount.host!r} does not exist")
        try:
            real = os.path.realpath(normal)
        except OSError as exc:
            # realpath saw a symlink that was gone (or a directory again) by the time it
            # read it: someone is swapping the path under us. Refuse it like any symlink.
            raise ProtocolError(ErrorCode.MOUNT_SYMLINK,
                                f"mount source {mount.host!r} changed while it was resolved: {exc.strerror}") from None
        if real != normal:
            # Any symlink on the way could be re-pointed after this check; require the real path.
            raise ProtocolError(ErrorCode.MOUNT_SYMLINK,
                                f"mount source {mount.host!r} goes through a symlink (real path {real!r})")
        if not any(_within(real, allowed) for allowed in allowed_paths):
            raise ProtocolError(ErrorCode.MOUNT_NOT_ALLOWED,
                                f"mount source {mount.host!r} is not under the daemon's allowed_paths")
        if _within(os.path.realpath(socket_path), real):
            raise ProtocolError(ErrorCode.MOUNT_NOT_ALLOWED,
                                f"mount source {mount.host!r} contains the daemon's socket")
        resolved.append(JobMount(real, mount.sandbox, mount.ro))
    return resolved


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
