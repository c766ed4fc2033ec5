"""Starting the zygote process: a fresh exec of the sandbox's Python (sandbox_python.py)
with a scrubbed environment and one control socket. Kept apart from zygote_link.py and
light on imports, so the daemon can start it first thing: the zygote's own interpreter
start-up and imports then overlap the daemon's (about 80 ms each here)."""
from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass

from ..ipc.channel import ZYGOTE_FD_ENV
from ..sandbox import zygote_boot
from . import sandbox_python

DISCARD_GRACE_SECS = 5.0  # for the zygote to kill any slots it made before it is killed


@dataclass
class LaunchedZygote:
    process: subprocess.Popen
    control: socket.socket  # SOCK_SEQPACKET; the zygote waits on it for its configuration
    python: sandbox_python.Resolving  # what it runs in (its probe may still run): a restart runs the same

    def discard(self) -> None:
        """For a daemon that stops before (or after) using it; idempotent. EOF on the
        control socket is the zygote's signal to exit."""
        self.control.close()
        if self.process.poll() is None:
            try:
                self.process.wait(DISCARD_GRACE_SECS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch(python: sandbox_python.Resolving) -> LaunchedZygote:
    """Starts the zygote in `python` before its probe has answered: the link checks the
    answer before it configures the zygote (an unusable one is discarded unconfigured)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = {**sandbox_python.SCRUBBED_ENV, ZYGOTE_FD_ENV: str(theirs.fileno()),
           zygote_boot.FIRST_ENV: _lines(sandbox_python.first_modules()),
           zygote_boot.LAST_ENV: _lines(sandbox_python.last_modules())}
    if python.own and os.environ.get("PYTHONPATH"):  # a daemon run from a source tree
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    try:
        process = subprocess.Popen(
            [python.executable, "-s", "-P", zygote_boot.__file__], env=env, cwd="/",
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return LaunchedZygote(process, ours, python)


def _lines(locations: dict[str, str]) -> str:
    return "".join(f"{name}={directory}\n" for name, directory in locations.items())
