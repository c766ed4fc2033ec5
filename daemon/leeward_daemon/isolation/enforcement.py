"""Which layer enforces which protection, for the Landlock ABI the kernel offers.

Older kernels are first-class (Debian 12's 6.1 has Landlock ABI 2): a protection a newer
Landlock adds is never the only one, so what stands in for each missing piece is stated
here, and Status reports it (`isolation.enforced_by`) beside the ABI itself. The README's
security table says the same in prose.
"""
from __future__ import annotations

# Landlock ABI that added each right (Documentation/userspace-api/landlock.rst).
ABI_TRUNCATE = 3      # 6.2: truncate(2) outside the writable paths
ABI_TCP = 4           # 6.7: TCP bind/connect rules
ABI_IOCTL_DEV = 5     # 6.10: ioctl on device files
ABI_SCOPES = 6        # 6.12: abstract Unix sockets and signals scoped to the domain


def enforced_by(landlock_abi: int, seccomp_notify: bool) -> dict[str, list[str]]:
    """Each protection -> the layers that enforce it on this kernel, strongest first.
    An empty list never occurs: every protection has a layer on every supported kernel."""
    def with_landlock(since_abi: int, name: str, others: list[str]) -> list[str]:
        return ([name] if landlock_abi >= since_abi else []) + others

    seccomp = "seccomp (denials reported)" if seccomp_notify else "seccomp (EPERM, not reported)"
    return {
        "host_filesystem": with_landlock(1, "landlock", ["mount namespace (host tree detached)"]),
        "writes_outside_tmp_and_rw_mounts": with_landlock(
            1, "landlock", ["read-only bind mounts", "sandbox uid owns nothing outside /tmp"]),
        "truncate_outside_writable_paths": with_landlock(
            ABI_TRUNCATE, "landlock (truncate)", ["read-only bind mounts", "file ownership"]),
        "tcp_and_udp": with_landlock(ABI_TCP, "landlock (tcp bind/connect)",
                                     [f"{seccomp}: AF_INET/AF_INET6 sockets refused",
                                      "network namespace (per sandbox, no interface up)"]),
        "device_ioctl": with_landlock(ABI_IOCTL_DEV, "landlock (ioctl on devices)",
                                      [f"{seccomp}: ioctl allow-list", "no device nodes but null, zero, full, random, urandom"]),
        "abstract_unix_sockets": with_landlock(ABI_SCOPES, "landlock (scope)",
                                               ["network namespace (per sandbox)"]),
        "signals_to_other_processes": with_landlock(ABI_SCOPES, "landlock (scope)",
                                                    ["pid namespace", "a host uid per sandbox"]),
        "privileged_syscalls": [seccomp, "capabilities dropped", "no_new_privs"],
    }
