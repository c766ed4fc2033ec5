"""The two systemd protocols the daemon speaks, without libsystemd: socket activation
(sd_listen_fds(3)) and readiness notification (sd_notify(3))."""
from __future__ import annotations

import os
import socket
import stat

from ..errors import ActivationError

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START: passed sockets start at fd 3
ACTIVATION_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def listen_socket(environ: dict | None = None) -> socket.socket | None:
    """The listening socket systemd passed, or None when not socket-activated.

    The variables are removed whatever happens, as sd_listen_fds(unset_environment=1)
    does: left set, they would tell any process the daemon starts that fd 3 is a socket
    meant for it. A LISTEN_PID that is not ours means the variables were inherited from
    a parent that was activated, not meant for us.
    """
    environ = os.environ if environ is None else environ
    values = {name: environ.pop(name, None) for name in ACTIVATION_ENV}
    if values["LISTEN_PID"] is None or values["LISTEN_FDS"] is None:
        return None
    if values["LISTEN_PID"] != str(os.getpid()):
        return None
    try:
        count = int(values["LISTEN_FDS"])
    except ValueError:
        raise ActivationError(f"LISTEN_FDS is not a number: {values['LISTEN_FDS']!r}") from None
    if count != 1:
        raise ActivationError(f"expected exactly one socket from systemd, got LISTEN_FDS={count} "
                              "(give the socket unit a single ListenStream=)")
    return _checked_socket(LISTEN_FDS_START)


def _checked_socket(fd: int) -> socket.socket:
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise ActivationError(f"fd {fd} from systemd is not open: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise ActivationError(f"fd {fd} from systemd is not a socket")
    sock = socket.socket(fileno=fd)  # the kernel's family and type, not assumed ones
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise ActivationError(f"fd {fd} from systemd must be a listening AF_UNIX stream socket "
                              "(ListenStream=/path in the socket unit)")
    # systemd hands the fd over inheritable; no child of the daemon may get it.
    os.set_inheritable(fd, False)
    return sock


def notify(state: str, environ: dict | None = None) -> bool:
    """Sends `state` (e.g. "READY=1") to the service manager; False when there is none."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False  # the manager went away; nothing the daemon could do about it
    return True
