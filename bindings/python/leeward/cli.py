"""`leeward`: run code in a sandbox from the shell, through libleeward.so.

    leeward exec "print('hello')"          # exit status = the code's
    leeward exec -f script.py --mount /data:/data --timeout 5 --memory 256M
    echo 'print(1)' | leeward exec -
    leeward exec --json "print(1)"         # the protocol's result map as JSON
    leeward status [--json] | leeward ping | leeward daemon [daemon args...]
    leeward doctor [--json]                # can this host run leeward, and what to fix (runs leeward-daemon doctor)

`leeward exec` starts a per-user daemon in the background when none answers on
the default socket (logs next to the socket), unless --no-autostart. The socket's
directory must then be ours (libleeward.paths), and the log is never opened through
a symlink or someone else's file.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from libleeward.abi import ErrorCode

from . import DaemonUnavailable, Leeward, LeewardError, Mount, UntrustedSocket, parse_size

# Exit statuses of leeward itself, chosen like docker run / timeout(1) so they
# do not pass for the code's own: 125 leeward failed, 124 the job timed out.
EXIT_LEEWARD_ERROR = 125
EXIT_TIMED_OUT = 124
AUTOSTART_WAIT_ENV = "LEEWARD_AUTOSTART_TIMEOUT"
AUTOSTART_WAIT_SECS = 30.0
LOG_NAME = "leeward-daemon.log"


# ---------------------------------------------------------------- arguments

def _mount(text: str) -> Mount:
    parts = text.split(":")
    if len(parts) == 3 and parts[2] in ("rw", "ro"):
        return Mount(parts[0], parts[1], read_only=parts[2] == "ro")
    if len(parts) == 2 and parts[0] and parts[1]:
        return Mount(parts[0], parts[1])
    raise argparse.ArgumentTypeError(f"expected HOST:SANDBOX[:rw], got {text!r}")


def _size(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return size


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leeward", description="Run untrusted Python in a leeward sandbox.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", help="daemon socket (default: $LEEWARD_SOCKET or the per-user socket)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("exec", parents=[common], help="run code in a fresh sandbox; exit with its status")
    run.add_argument("code", nargs="?", help="Python source, or - to read it from stdin")
    run.add_argument("-f", "--file", help="read the source from FILE (- for stdin)")
    run.add_argument("--mount", action="append", type=_mount, default=[], metavar="HOST:SANDBOX[:rw]",
                     help="expose a host directory, read-only unless :rw (repeatable)")
    run.add_argument("--timeout", type=_seconds, metavar="SECS", help="wall-clock limit (default: the daemon's)")
    run.add_argument("--memory", type=_size, metavar="SIZE", help="memory limit, e.g. 256M, 1G (default: the daemon's)")
    run.add_argument("--json", action="store_true", help="print the result as JSON instead of the output")
    run.add_argument("--no-autostart", action="store_true", help="fail instead of starting a daemon")

    status = commands.add_parser("status", parents=[common], help="show the daemon's pool, counters and layers")
    status.add_argument("--json", action="store_true", help="print the raw Status response as JSON")

    doctor = commands.add_parser("doctor", parents=[common],
                                 help="check what this host gives leeward (exit 1 when a required check fails)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--config", help="the daemon's config file (default: found as the daemon finds it)")

    commands.add_parser("ping", parents=[common], help="check that the daemon answers")
    # Listed for --help only: main() hands everything after "daemon" to leeward_daemon.
    commands.add_parser("daemon", help="run the daemon in the foreground (arguments go to leeward-daemon)")
    return parser


# ---------------------------------------------------------------- commands

def _read_code(args: argparse.Namespace) -> str:
    if args.file is not None and args.code is not None:
        raise SystemExit("leeward exec: give CODE or -f FILE, not both")
    source = args.file if args.file is not None else args.code
    if source is None:
        raise SystemExit("leeward exec: nothing to run (give CODE, -f FILE or - for stdin)")
    if source == "-":
        return sys.stdin.read()
    if args.file is not None:
        return Path(source).read_text(encoding="utf-8")
    return source


def _exit_status(result) -> int:
    if result.timed_out:
        return EXIT_TIMED_OUT
    if result.exit_code < 0:  # killed by signal N: the shell's 128+N
        return 128 + (-result.exit_code & 0x7F)
    return result.exit_code & 0xFF


def cmd_exec(args: argparse.Namespace) -> int:
    code = _read_code(args)
    with _connect(args.socket, autostart=not args.no_autostart) as sandbox:
        result = sandbox.execute(code, mounts=args.mount, timeout=args.timeout, memory=args.memory)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        sys.stdout.buffer.write(result.stdout_bytes)
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(result.stderr_bytes)
        for flag, note in [(result.timed_out, "timed out"), (result.oom_killed, "killed: out of memory"),
                           (result.stdout_truncated, "stdout truncated"),
                           (result.stderr_truncated, "stderr truncated")]:
            if flag:
                print(f"leeward: {note}", file=sys.stderr)
        sys.stderr.flush()
    return _exit_status(result)


def cmd_status(args: argparse.Namespace) -> int:
    with Leeward(args.socket) as sandbox:
        status = sandbox.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(format_status(status), end="")
    return 0


def format_status(status: dict) -> str:
    """The Status response for people; fields an older daemon lacks show as "?"."""
    pool = status.get("pool") or {}
    failed = status.get("failed") or {}
    isolation = status.get("isolation") or {}
    lines = [
        f"leeward daemon {status.get('version', '?')} (pid {status.get('pid', '?')}) on {status.get('socket', '?')}"
        + (" (socket from systemd)" if status.get("socket_activated") else "")
        + f", up {_duration(status.get('uptime_secs'))}"
        + (", shutting down" if status.get("shutting_down") else ""),
        f"sandboxes:  {pool.get('total', '?')} = {pool.get('idle', '?')} idle + {pool.get('busy', '?')} busy + "
        f"{pool.get('starting', '?')} starting (target {pool.get('target', '?')}); "
        f"{pool.get('recycled', '?')} used and discarded",
        f"executions: {status.get('executions', '?')} (failed: {failed.get('timeout', '?')} timeout, "
        f"{failed.get('oom', '?')} oom, {failed.get('error', '?')} error); {status.get('requests', '?')} requests, "
        f"{status.get('connections', '?')} open connections",
        f"limits:     {status.get('limits', '?')}",
        f"isolation:  {', '.join(isolation.get('layers') or ['?'])} "
        f"(landlock ABI {isolation.get('landlock_abi', '?')}, seccomp {isolation.get('seccomp', '?')})",
        f"preloaded:  {', '.join(status.get('preloaded') or []) or 'nothing'}",
        f"metrics:    {status.get('metrics') or status.get('metrics_error') or 'off'}",
    ]
    zygote = status.get("zygote")
    if zygote:
        lines.append(f"zygote:     {zygote.get('state', '?')} (pid {zygote.get('pid') or '-'}), "
                        f"{zygote.get('restarts', '?')} restart(s)"
                        + (f"; last exit: {zygote['last_exit']}" if zygote.get("last_exit") else "")
                        + (f"; restart failing: {zygote['restart_error']}" if zygote.get("restart_error") else ""))
    if "waiting" in pool:
        lines.append(f"queue:      {pool['waiting']} waiting (max_queue {pool.get('max_queue', '?')}), "
                        f"{status.get('refused_connections', 0)} connections refused busy")
    if status.get("healthy") is False:
        lines.insert(0, f"UNHEALTHY: {status.get('problem')}")
    if pool.get("last_failure"):
        lines.append(f"last sandbox failure: {pool['last_failure']}")
    return "\n".join(lines) + "\n"


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def cmd_doctor(args: argparse.Namespace) -> int:
    # The checks live with the daemon (they probe what it will use) and need no running
    # daemon: `leeward-daemon doctor` runs them, so this client never imports the daemon.
    forwarded = (["--json"] if args.json else []) + (["--config", args.config] if args.config else []) \
        + (["--socket", args.socket] if args.socket else [])
    return run_daemon(["doctor", *forwarded])


def cmd_ping(args: argparse.Namespace) -> int:
    with Leeward(args.socket) as sandbox:
        started = time.perf_counter()
        sandbox.ping()
        elapsed = time.perf_counter() - started
    print(f"pong in {elapsed * 1000:.2f} ms")
    return 0


def run_daemon(daemon_args: list[str]) -> int:
    """Replaces this process with the daemon, so signals and the exit status are its own."""
    os.execv(sys.executable, [sys.executable, "-m", "leeward_daemon", *daemon_args])
    return EXIT_LEEWARD_ERROR  # not reached


# ---------------------------------------------------------------- autostart

def _connect(socket_path: str | None, autostart: bool) -> Leeward:
    """A connection; with autostart, a daemon started on the default socket if none answers."""
    try:
        return Leeward(socket_path)
    except DaemonUnavailable:
        if not autostart or socket_path is not None:
            raise
    from libleeward.paths import default_socket_path, secure_getenv

    path = default_socket_path()
    process, log_path = start_daemon(path)
    deadline = time.monotonic() + float(secure_getenv(AUTOSTART_WAIT_ENV) or AUTOSTART_WAIT_SECS)
    while True:
        try:
            sandbox = Leeward(path)
        except DaemonUnavailable:
            # A daemon that exited may have lost a race with another autostart:
            # keep waiting for the socket until the deadline either way.
            if time.monotonic() > deadline:
                raise DaemonUnavailable(
                    ErrorCode.CONNECTION_CLOSED.value, f"started a daemon on {path} but it did not answer "
                             f"(exit status {process.poll()}); see {log_path}") from None
            time.sleep(0.05)
        else:
            return sandbox


def start_daemon(socket_path: str) -> tuple[subprocess.Popen, str]:
    """Starts `python -m leeward_daemon` detached (own session, no tty, cwd /), once its
    socket directory has passed the daemon's own rules (else UntrustedSocket, E1007)."""
    from libleeward.paths import UnsafeSocketDirectory, prepare_socket_directory

    try:
        directory = prepare_socket_directory(socket_path)
    except UnsafeSocketDirectory as exc:
        raise UntrustedSocket(ErrorCode.UNTRUSTED_SOCKET.value, str(exc)) from None
    log_path = os.path.join(directory, LOG_NAME)
    with open_log(log_path) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "leeward_daemon", "--socket", socket_path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd="/", start_new_session=True, close_fds=True,
        )
    print(f"leeward: started a daemon on {socket_path} (pid {process.pid}, log {log_path})", file=sys.stderr)
    return process, log_path


def open_log(path: str):
    """`path` for appending, created 0600 if missing; refused (UntrustedSocket) when it
    is a symlink, not a regular file, or not ours. O_NOFOLLOW: the log sits next to the
    socket, and a symlink planted there would make us append to whatever it names;
    O_NONBLOCK: a FIFO planted there must not hang us before fstat rejects it."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(path, flags)
    except OSError as exc:
        raise UntrustedSocket(ErrorCode.UNTRUSTED_SOCKET.value,
                              f"cannot open the daemon log {path} safely: {exc.strerror or exc} "
                              f"(a symlink there is refused)") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        what = "is not a regular file" if not stat.S_ISREG(info.st_mode) else f"belongs to uid {info.st_uid}"
        raise UntrustedSocket(ErrorCode.UNTRUSTED_SOCKET.value, f"the daemon log {path} {what}; refusing to write to it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "ab")


# ---------------------------------------------------------------- main

COMMANDS = {"exec": cmd_exec, "status": cmd_status, "ping": cmd_ping, "doctor": cmd_doctor}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["daemon"]:
        return run_daemon(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LeewardError as exc:
        print(f"leeward: {exc}", file=sys.stderr)
        return EXIT_LEEWARD_ERROR
    except OSError as exc:  # -f FILE unreadable
        print(f"leeward: {exc}", file=sys.stderr)
        return EXIT_LEEWARD_ERROR


if __name__ == "__main__":
    sys.exit(main())
