"""Operating the daemon: Prometheus metrics, systemd socket activation and
notification, log set-up and the log rate limit, and the host checks of
`leeward-daemon doctor`.

Daemon side only: imported by frontdoor/, runner.py and cli.py, never by sandbox/ or
isolation/. Imports the top-level modules; doctor.py also asks isolation/ and limits/
what this kernel offers (it runs their probes, never a sandbox).
"""
