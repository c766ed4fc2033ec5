"""Operating the daemon: Prometheus metrics, systemd socket activation and
notification, log set-up and the log rate limit (doctor.py joins them later).

Daemon side only: imported by frontdoor/, runner.py and cli.py, never by sandbox/ or
isolation/. Imports nothing of the daemon but the top-level modules.
"""
