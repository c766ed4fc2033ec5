"""The daemon's side of the sandboxes, on the event loop: the sandbox's Python (checked
once), the zygote's launch and link, the pool of ready slots and their handles, and the
supervisor that runs one job on one slot (its output pipes, its denied syscalls, its
limits box, its exit status).

Raises the daemon's own errors (leeward_daemon.errors), never a wire ProtocolError.
May import ipc/, isolation/ (names and data only: nothing here applies a layer),
limits/, the top-level modules and libleeward's data types, and sandbox/zygote_boot.py
for its path and variable names (the zygote's entry point); never frontdoor/.
"""
