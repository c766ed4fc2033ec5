"""Every exception the daemon raises on purpose, in one tree (as httpx does):

    DaemonError
    ├── StartupError                  the daemon cannot start: `leeward-daemon` exits 2
    │   ├── ConfigError               a bad key, value or file, or an unsafe socket directory
    │   ├── DaemonAlreadyRunning      a live daemon answers on the socket
    │   ├── MetricsUnavailable        an explicitly configured metrics endpoint cannot be served
    │   ├── ActivationError           systemd passed sockets leeward cannot use
    │   ├── ZygoteError               the zygote could not be started or went away
    │   │   └── IsolationUnavailable  a required layer is missing on this kernel (fail closed)
    │   ├── SandboxPythonUnusable     the `python` key names an interpreter the zygote cannot use (`code`)
    │   └── LimitsUnavailable         a limits backend cannot be used here (also a LimitsError)
    ├── RequestFailed                 one request cannot be served; frontdoor/errors.py gives the code
    │   ├── SandboxUnavailable        no sandbox can be had now (unhealthy, none ready in time)
    │   ├── SandboxFailed             the sandbox could not run the job (its setup, its limits)
    │   ├── ShuttingDown              the daemon is draining, or killed the job after the grace
    │   ├── DaemonBusy                a queue or connection limit is full: retry later
    │   ├── SessionNotFound           no such session, or not the caller's (never told apart)
    │   ├── SessionBusy               the session's earlier cells ran past session_queue_secs
    │   ├── SessionEnded              the session has ended; the message names the reason
    │   ├── SessionLimit              max_sessions or max_sessions_per_uid reached
    │   └── FileRefused               a session file request the sandbox (or its shape) refuses
    ├── LimitsError                   a limit could not be applied or read (names file and value)
    ├── ChannelClosed                 a daemon/zygote/slot channel ended or carried no record
    │   └── DamagedRecord             a record arrived short, garbled or without all its fds
    ├── MalformedMessage              a record that is not the message expected there (ipc/messages.py)
    └── IsolationError                a layer could not be applied in the slot; the code never runs
        ├── MountError                a job mount (names the sandbox path)
        ├── LandlockError, CapabilityError, SeccompError
        └── SandboxIdError            sandbox uids: UidLeaseError, SubidError

A syscall's own failure is `linux.SyscallError`, an OSError naming the syscall.
Only RequestFailed reaches a client, through the one table in frontdoor/errors.py; an
IsolationError reaches the daemon as the slot's text and becomes SandboxFailed there.
Everything else that escapes a request is a bug: E4001, logged with its traceback.
"""
from __future__ import annotations


class DaemonError(Exception):
    """The root: anything the daemon raises on purpose."""


# ---------------------------------------------------------------- start-up

class StartupError(DaemonError):
    """The daemon cannot start; the message says what to change."""


class ConfigError(StartupError):
    """A bad configuration value; the message names the key."""


class DaemonAlreadyRunning(StartupError):
    """A live daemon answers on the socket."""


class MetricsUnavailable(StartupError):
    """An explicitly configured metrics endpoint cannot be served."""


class ActivationError(StartupError):
    """systemd passed something the daemon cannot serve on."""


class ZygoteError(StartupError):
    """The zygote could not be started or went away."""


class IsolationUnavailable(ZygoteError):
    """A layer the configuration requires is missing on this kernel (fail closed)."""


class SandboxPythonUnusable(StartupError):
    """The sandbox's Python (config key `python`) breaks a rule of pool/sandbox_python.py.
    `code` names the rule, stable for scripts and doctor: python_not_found,
    python_not_runnable, python_mismatch."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


# ---------------------------------------------------------------- requests

class RequestFailed(DaemonError):
    """One request cannot be served. Never raised as such: each subclass has its code."""


class SandboxUnavailable(RequestFailed):
    """No sandbox can be had now: the daemon is unhealthy, or none became ready in time."""


class SandboxFailed(RequestFailed):
    """The sandbox could not run the job: its setup or its limits failed."""


class ShuttingDown(RequestFailed):
    """The daemon is draining, or killed this job after its shutdown grace."""


class DaemonBusy(RequestFailed):
    """A queue or connection limit is full: retryable."""


class SessionNotFound(RequestFailed):
    """No such session, or another uid's: the two are never told apart."""


class SessionBusy(RequestFailed):
    """The session's earlier requests held it past session_queue_secs."""


class SessionEnded(RequestFailed):
    """The session has ended; the message names the reason."""


class SessionLimit(RequestFailed):
    """max_sessions or max_sessions_per_uid is reached."""


class FileRefused(RequestFailed):
    """A file request outside the sandbox's files, through a symlink, or of a missing file."""


# ---------------------------------------------------------------- limits

class LimitsError(DaemonError):
    """A limit could not be applied or read; the message names the file and value."""

    def __init__(self, message: str, *, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class LimitsUnavailable(LimitsError, StartupError):
    """A backend cannot be used on this host (or cannot apply this limit): fail closed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- channels

class ChannelClosed(DaemonError):
    """The peer closed the channel (or sent something that is not a frame)."""


class DamagedRecord(ChannelClosed):
    """A record arrived short, garbled, or without all its fds (MSG_CTRUNC: the receiver
    ran out of fds, and the kernel dropped the ones it could not install). The fds that
    did arrive are closed; `message` is what could still be decoded, else None."""

    def __init__(self, reason: str, message: dict | None = None):
        super().__init__(reason)
        self.message = message


class MalformedMessage(DaemonError):
    """A record that is not one of the messages expected at that point: an unknown or
    out-of-place op, a missing or extra key, a value of the wrong type. `wire` is the
    map as received (None when it was not a map)."""

    def __init__(self, reason: str, wire: dict | None = None):
        super().__init__(reason)
        self.wire = wire


# ---------------------------------------------------------------- isolation layers

class IsolationError(DaemonError):
    """A layer could not be applied; the job's code never runs."""


class MountError(IsolationError):
    """A job mount could not be made; the message names the sandbox path."""


class LandlockError(IsolationError):
    """Landlock could not be applied; the message names the step and the path or syscall."""


class CapabilityError(IsolationError):
    """A capability could not be dropped; the message names the step."""


class SeccompError(IsolationError):
    """The policy could not be built or installed; the message names the step."""


class SandboxIdError(IsolationError):
    """The sandbox uids cannot be had (the zygote reports it instead of its hello)."""


class UidLeaseError(SandboxIdError):
    """No block of the sandbox uid range can be leased (or its lock directory is unsafe)."""


class SubidError(SandboxIdError):
    """The subordinate ids are granted but cannot be mapped."""
