"""leeward's daemon, laid out by the process that runs the code (LAYOUT.md):

    cli.py, runner.py    `leeward-daemon`: configuration, then the event loop until a signal
    config.py            every key, its sources and its bounds
    errors.py            the one exception tree (StartupError, RequestFailed, ...)
    model.py             SandboxSpec, SandboxRequest (applied once), Run (what the sandbox runs)
    linux.py, procfs.py  the kernel's interfaces, named after their syscalls and files
    frontdoor/           asyncio: socket, frame loop, HANDLERS, shutdown, accounting; the only ErrorCode user
    pool/                daemon side of the sandboxes: zygote link, slots, the supervisor
    ipc/                 the internal protocol: channels and typed messages, checked where read
    sandbox/             zygote, slot and runner: the processes untrusted code runs in or next to
    isolation/           one module per layer; order.py: the SLOT and JOB lists
    limits/              cgroup v2, v1 and rlimit backends (daemon side) + inside.py (in the sandbox)
    ops/                 metrics, systemd, logging, doctor (host checks)

Import rules (tests/unit/test_import_rules.py): sandbox/, isolation/ and ipc/ never
import frontdoor/, pool/ or ops/ (isolation/ and ipc/ not sandbox/ either); only
frontdoor/ names ErrorCode; libleeward, shared with the client, imports nothing of the
daemon.
"""
