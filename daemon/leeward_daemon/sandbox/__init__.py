"""What runs in sandbox processes: the zygote (a fresh exec, never a fork of the
daemon), each slot (pid 1 of its namespaces: prepare, say ready, run its job) and the
runner (the exec step: the job's code as __main__).

Runs where untrusted code runs or is about to: it never imports frontdoor/, pool/ or
ops/ (the daemon's event loop, metrics, secrets). May import isolation/, limits/
(the in-sandbox part), ipc/ and the top-level modules.
"""
