"""The internal protocol between the daemon, the zygote and the slots: framed records
over Unix sockets (channel.py, blocking; async_channel.py, the daemon's event loop) and
the typed messages they carry (messages.py). Every record from a slot is bounded and
checked here before anyone reads it: a slot that ran a job is hostile.

Used by both sides, so it imports only libleeward's framing and the top-level data
modules; never frontdoor/, pool/, sandbox/ or ops/.
"""
