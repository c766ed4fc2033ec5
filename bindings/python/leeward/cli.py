"""`leeward`: run code in a sandbox from the shell, through libleeward.so.

The `leeward` users run is cli/leeward.c: it runs `exec` and `run` itself and hands every
other command line to this module (`python -m leeward`), which is the reference for all of
them; both accept the same options and give the same exit statuses.

    leeward exec "print('hello')"          # exit status = the code's
    leeward exec -f script.py --mount /data:/data --timeout 5 --memory 256M
    echo 'print(1)' | leeward exec -
    leeward exec --env MODE=fast --file in.csv=./data.csv --stdin input.txt -f job.py
    leeward run -- sh -c 'ls / | wc -l'    # a command (argv job) instead of Python
    leeward exec --json "print(1)"         # the protocol's result map as JSON (bytes as {"$bytes": base64})
    leeward exec --display "1 + 1"         # notebook cell: prints the final expression's value
    leeward exec --collect '*.csv' --out results/ -f job.py   # files the job made, written under results/
    ID=$(leeward session open)             # a live sandbox: globals, imports and /tmp persist
    leeward session run --session $ID "x = 1"; leeward session run --session $ID "x + 1"   # prints 2
    leeward session list | leeward session close --session $ID
    leeward status [--json] | leeward ping | leeward daemon [daemon args...]
    leeward doctor [--json]                # can this host run leeward, and what to fix (runs leeward-daemon doctor)

`leeward exec` starts a per-user daemon in the background when none answers on
the default socket (logs next to the socket), unless --no-autostart. The socket's
directory must then be ours (libleeward.paths), and the log is never opened through
a symlink or someone else's file.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from libleeward import jsonwire
from libleeward.abi import ErrorCode

from . import ExecutionResult, InvalidRequest, Leeward, LeewardError, Mount, parse_size
from ._autostart import connect
from ._cli_live import EXIT_CANCELLED, call_live
from ._outdir import UnsafeName, write_files
from ._session import cell_fields

# Exit statuses of leeward itself, chosen like docker run / timeout(1) so they
# do not pass for the code's own: 125 leeward failed, 124 the job timed out, 130 the
# job was cancelled (Ctrl-C, as the shell reports it).
EXIT_LEEWARD_ERROR = 125
EXIT_TIMED_OUT = 124


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


def _env(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _inline_file(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", nargs="?", help="Python source, or - to read it from stdin")
    parser.add_argument("-f", "--script", metavar="FILE", help="read the source from FILE (- for stdin)")


def _add_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdin", metavar="FILE", help="the job's standard input, from FILE (- for ours)")


def _add_job_inputs(parser: argparse.ArgumentParser) -> None:
    """What a one-shot job (`exec`, `run`) is given: mounts, limits, environment, input."""
    parser.add_argument("--mount", action="append", type=_mount, default=[], metavar="HOST:SANDBOX[:rw]",
                        help="expose a host directory, read-only unless :rw (repeatable)")
    parser.add_argument("--memory", type=_size, metavar="SIZE", help="memory limit, e.g. 256M, 1G (default: the daemon's)")
    parser.add_argument("--env", action="append", type=_env, default=[], metavar="NAME=VALUE",
                        help="an environment variable of the job (repeatable)")
    parser.add_argument("--file", action="append", type=_inline_file, default=[], metavar="NAME=PATH",
                        help="put the host file PATH in the job's workdir as NAME (repeatable)")
    _add_stdin(parser)


def _add_live(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-stream", action="store_true",
                        help="print the output when the job ends (default: as it arrives)")


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_seconds, metavar="SECS", help="wall-clock limit (default: the daemon's)")
    parser.add_argument("--collect", action="append", default=[], metavar="GLOB",
                        help="bring back files matching GLOB (relative to the workdir; repeatable); "
                             "needs --out or --json")
    parser.add_argument("--out", metavar="DIR", help="write collected files under DIR (never outside it)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the output")


def _add_session_parsers(commands, common: argparse.ArgumentParser) -> None:
    session = commands.add_parser("session", help="stateful sandboxes: open, run cells, list, close")
    actions = session.add_subparsers(dest="action", required=True, metavar="ACTION")

    opened = actions.add_parser("open", parents=[common], help="open a session; prints its id")
    opened.add_argument("--mount", action="append", type=_mount, default=[], metavar="HOST:SANDBOX[:rw]",
                        help="expose a host directory, read-only unless :rw (repeatable)")
    opened.add_argument("--env", action="append", type=_env, default=[], metavar="NAME=VALUE",
                        help="an environment variable of the session (repeatable)")
    opened.add_argument("--memory", type=_size, metavar="SIZE", help="memory limit of the whole session")
    opened.add_argument("--idle-timeout", type=_seconds, metavar="SECS", help="end it after SECS without a cell")
    opened.add_argument("--max-lifetime", type=_seconds, metavar="SECS", help="end it SECS after it opened")
    opened.add_argument("--json", action="store_true", help="print the SessionOpen reply's session as JSON")
    opened.add_argument("--no-autostart", action="store_true", help="fail instead of starting a daemon")

    run = actions.add_parser("run", parents=[common], help="run a cell in a session; exit with its status")
    run.add_argument("--session", required=True, metavar="ID", help="the session (from `leeward session open`)")
    _add_source(run)
    run.add_argument("--no-display", action="store_true", help="do not print the final expression's value")
    _add_stdin(run)
    _add_outputs(run)
    _add_live(run)

    closed = actions.add_parser("close", parents=[common], help="end a session and destroy its sandbox")
    closed.add_argument("--session", required=True, metavar="ID")
    closed.add_argument("--json", action="store_true", help="print {\"closed\": ID} as JSON")

    listed = actions.add_parser("list", parents=[common], help="your open sessions")
    listed.add_argument("--json", action="store_true", help="print the sessions as JSON")


EXEC_EXAMPLES = """examples:
  leeward exec "print('hello')"
  leeward exec -f job.py --timeout 5 --memory 256M --mount /srv/in:/data
  leeward exec --env MODE=fast --file in.csv=./data.csv -f job.py    # /tmp/in.csv in the sandbox
  leeward exec --stdin input.txt "import sys; print(len(sys.stdin.read()))"
  leeward exec --collect '*.png' --out plots/ -f plot.py
  echo 'print(1)' | leeward exec -
exit status: the code's; 124 timed out, 125 leeward failed, 130 cancelled (Ctrl-C cancels the job)"""

MAIN_EXAMPLES = """examples (`leeward COMMAND --help` for each command's options):
  leeward exec "print('hello')"
  leeward exec --env MODE=fast --file in.csv=./data.csv --stdin input.txt -f job.py
  leeward run -- sh -c 'ls / | wc -l'
  ID=$(leeward session open); leeward session run --session $ID "x = 1"
  leeward status; leeward doctor"""

RUN_EXAMPLES = """examples:
  leeward run -- sh -c 'echo $((6 * 7))'
  leeward run --timeout 5 --stdin data.txt -- grep -c error
  leeward run --mount /srv/src:/src -- python3 /src/tool.py --verbose
  leeward run --file in.txt=./in.txt --collect 'out/*' --out results/ -- sh -c 'mkdir out; sort in.txt > out/s'
exit status: the command's; 124 timed out, 125 leeward failed, 130 cancelled (Ctrl-C cancels the job)"""


def _subcommand(commands, name: str, common: argparse.ArgumentParser, help: str, examples: str = ""):
    return commands.add_parser(name, parents=[common], help=help, description=help, epilog=examples or None,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leeward", description="Run untrusted code in a leeward sandbox.",
                                     epilog=MAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", help="daemon socket (default: $LEEWARD_SOCKET or the per-user socket)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _subcommand(commands, "exec", common, "run Python code in a fresh sandbox; exit with its status",
                      EXEC_EXAMPLES)
    _add_source(run)
    _add_job_inputs(run)
    run.add_argument("--display", action="store_true",
                     help="run as a notebook cell: print the final expression's value and display() output")
    _add_outputs(run)
    _add_live(run)
    run.add_argument("--no-autostart", action="store_true", help="fail instead of starting a daemon")

    argv_job = _subcommand(commands, "run", common, "run a command (not Python) in a fresh sandbox; exit with its "
                                                    "status", RUN_EXAMPLES)
    _add_job_inputs(argv_job)
    _add_outputs(argv_job)
    _add_live(argv_job)
    argv_job.add_argument("--no-autostart", action="store_true", help="fail instead of starting a daemon")
    argv_job.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]",
                          help="the command, looked up on the sandbox's PATH, and its arguments")

    _add_session_parsers(commands, common)

    status = commands.add_parser("status", parents=[common], help="show the daemon's pool, counters and layers")
    status.add_argument("--json", action="store_true", help="print the raw Status response as JSON")

    doctor = commands.add_parser("doctor", parents=[common],
                                 help="check what this host gives leeward (exit 1 when a required check fails)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--config", help="the daemon's config file (default: found as the daemon finds it)")

    ping = commands.add_parser("ping", parents=[common], help="check that the daemon answers")
    ping.add_argument("--json", action="store_true", help="print the Pong (version, features) and the time as JSON")
    # Listed for --help only: main() hands everything after "daemon" to leeward_daemon.
    commands.add_parser("daemon", help="run the daemon in the foreground (arguments go to leeward-daemon)")
    return parser


# ---------------------------------------------------------------- commands

def _what(args: argparse.Namespace) -> str:
    return "leeward session run" if args.command == "session" else f"leeward {args.command}"


def _check_outputs(args: argparse.Namespace) -> None:
    if args.collect and not (args.out or args.json):
        raise SystemExit(f"{_what(args)}: --collect needs --out DIR (or --json)")


def _read_code(args: argparse.Namespace) -> str:
    what = _what(args)
    if args.script is not None and args.code is not None:
        raise SystemExit(f"{what}: give CODE or -f FILE, not both")
    source = args.script if args.script is not None else args.code
    if source is None:
        raise SystemExit(f"{what}: nothing to run (give CODE, -f FILE or - for stdin)")
    if source == "-" and args.stdin == "-":
        raise SystemExit(f"{what}: the code and --stdin cannot both come from stdin")
    _check_outputs(args)
    if source == "-":
        return sys.stdin.read()
    if args.script is not None:
        return Path(source).read_text(encoding="utf-8")
    return source


def _read_stdin(args: argparse.Namespace) -> bytes | None:
    if args.stdin is None:
        return None
    return sys.stdin.buffer.read() if args.stdin == "-" else Path(args.stdin).read_bytes()


def _job_request(args: argparse.Namespace, program: dict) -> dict:
    """The Execute request of `exec` or `run`; `program` is its {"code": ...} or {"argv": [...]}."""
    request: dict = {"type": "Execute", **program}
    if args.mount:
        request["mounts"] = [{"host": m.host, "sandbox": m.sandbox, "ro": m.read_only} for m in args.mount]
    if args.memory is not None:
        request["memory_limit"] = args.memory
    if args.env:
        request["env"] = dict(args.env)
    if args.file:
        request["files"] = {name: Path(path).read_bytes() for name, path in args.file}
    request.update(cell_fields(timeout=args.timeout, stdin=_read_stdin(args),
                               display=getattr(args, "display", False), collect=args.collect))
    return request


def _interactive() -> bool:
    # Only then is a Ping spent on discovering stream and cancel: a script reading our
    # output gets it whole at the end anyway (cli/leeward.c, the usual path, always streams).
    return sys.stdin.isatty() or sys.stdout.isatty()


def _exit_status(result) -> int:
    if result.cancelled:
        return EXIT_CANCELLED
    if result.timed_out:
        return EXIT_TIMED_OUT
    if result.exit_code < 0:  # killed by signal N: the shell's 128+N
        return 128 + (-result.exit_code & 0x7F)
    return result.exit_code & 0xFF


def print_json(value) -> None:
    """Prints any result as indented JSON, bytes as {"$bytes": base64} (leeward_call's form)."""
    print(json.dumps(json.loads(jsonwire.dumps(value)), indent=2))


def _report(result, args: argparse.Namespace, streamed: bool = False) -> int:
    """Prints a job's or a cell's result (or writes it as JSON), writes collected files
    under --out, and returns the exit status. streamed: stdout and stderr were printed
    as they arrived."""
    if args.out and result.files:
        for path in write_files(result.files, args.out):
            if not args.json:
                print(f"leeward: wrote {path}", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
        return _exit_status(result)
    if not streamed:
        sys.stdout.buffer.write(result.stdout_bytes)
    for shown in result.results:
        # What a notebook shows for a value: its text/plain (a figure's is "<Figure ...>").
        text = shown.text if shown.text is not None else f"[{', '.join(shown.data)}]"
        sys.stdout.buffer.write(text.encode() + b"\n")
    sys.stdout.buffer.flush()
    if not streamed:
        sys.stderr.buffer.write(result.stderr_bytes)
    ended = result.session is not None and not result.session.alive
    for flag, note in [(result.timed_out, "timed out"), (result.oom_killed, "killed: out of memory"),
                       (result.stdout_truncated, "stdout truncated"),
                       (result.stderr_truncated, "stderr truncated"),
                       (result.results_truncated, "results truncated"),
                       (result.files_truncated, "collected files truncated"),
                       (ended, f"the session ended ({result.session and result.session.end_reason})"),
                       (result.cancelled, "cancelled")]:
        if flag:
            print(f"leeward: {note}", file=sys.stderr)
    sys.stderr.flush()
    return _exit_status(result)


def cmd_exec(args: argparse.Namespace) -> int:
    return _run_job(args, {"code": _read_code(args)})


def cmd_run(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise SystemExit("leeward run: no command (give -- CMD [ARGS...])")
    _check_outputs(args)
    return _run_job(args, {"argv": argv})


def _run_job(args: argparse.Namespace, program: dict) -> int:
    with connect(args.socket, autostart=not args.no_autostart) as sandbox:
        if "argv" in program and "argv" not in sandbox.cached_features():
            raise InvalidRequest(ErrorCode.FEATURE_DISABLED.value, "the daemon does not run commands "
                                 "(no \"argv\" in its features)")
        request = _job_request(args, program)
        # `run` has asked for the features already: streaming and cancel cost it nothing more.
        if (_interactive() or "argv" in program) and not args.json:
            reply, streamed = call_live(sandbox, args.socket, request, stream=not args.no_stream)
        else:
            reply, streamed = sandbox.call(request), False
    return _report(ExecutionResult.from_wire(reply["result"]), args, streamed)


def cmd_session(args: argparse.Namespace) -> int:
    return SESSION_ACTIONS[args.action](args)


def session_open(args: argparse.Namespace) -> int:
    with connect(args.socket, autostart=not args.no_autostart) as sandbox:
        session = sandbox.session(mounts=args.mount, env=dict(args.env), memory_limit=args.memory,
                                  idle_timeout=args.idle_timeout, max_lifetime=args.max_lifetime)
    # Closing the connection leaves the session open: it is the daemon's, until closed or expired.
    if args.json:
        print_json({"id": session.id, "idle_timeout_secs": session.idle_timeout_secs,
                    "max_lifetime_secs": session.max_lifetime_secs})
    else:
        print(session.id)
    return 0


def session_run(args: argparse.Namespace) -> int:
    code = _read_code(args)
    with Leeward(args.socket) as sandbox:
        # display: on when the daemon offers it, as Session.run decides; the cell is sent
        # here rather than by Session.run to stream it and cancel it on Ctrl-C.
        display = not args.no_display and "display" in sandbox.cached_features()
        request = {"type": "SessionExecute", "session_id": args.session, "code": code,
                   **cell_fields(timeout=args.timeout, stdin=_read_stdin(args), display=display,
                                 collect=args.collect)}
        reply, streamed = call_live(sandbox, args.socket, request, stream=not (args.no_stream or args.json))
    return _report(ExecutionResult.from_wire(reply["result"]), args, streamed)


def session_close(args: argparse.Namespace) -> int:
    with Leeward(args.socket) as sandbox:
        sandbox.attach(args.session).close()
    if args.json:
        print_json({"closed": args.session})
    return 0


def session_list(args: argparse.Namespace) -> int:
    with Leeward(args.socket) as sandbox:
        sessions = sandbox.sessions()
    if args.json:
        print_json([dataclasses.asdict(s) for s in sessions])
        return 0
    now = time.time()
    for s in sessions:
        print(f"{s.id}  {s.executions} cell(s)  {'busy' if s.busy else 'idle'}  "
              f"last used {_duration(max(0, now - s.last_used_at))} ago  "
              f"expires in {_duration(max(0, s.expires_at - now))}")
    return 0


SESSION_ACTIONS = {"open": session_open, "run": session_run, "close": session_close, "list": session_list}


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
        pong = sandbox.call({"type": "Ping"})
        elapsed = time.perf_counter() - started
    if args.json:
        print_json({**pong, "elapsed_ms": round(elapsed * 1000, 3)})
    else:
        print(f"pong in {elapsed * 1000:.2f} ms")
    return 0


def run_daemon(daemon_args: list[str]) -> int:
    """Replaces this process with the daemon, so signals and the exit status are its own."""
    os.execv(sys.executable, [sys.executable, "-m", "leeward_daemon", *daemon_args])
    return EXIT_LEEWARD_ERROR  # not reached


# ---------------------------------------------------------------- main

COMMANDS = {"exec": cmd_exec, "run": cmd_run, "session": cmd_session, "status": cmd_status, "ping": cmd_ping, "doctor": cmd_doctor}


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
    except (OSError, UnsafeName) as exc:  # -f FILE unreadable; a collected file that cannot be written safely
        print(f"leeward: {exc}", file=sys.stderr)
        return EXIT_LEEWARD_ERROR
    except KeyboardInterrupt:  # a daemon without Cancel: the job runs on until its timeout
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
