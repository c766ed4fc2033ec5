"""isolation.enforcement: what stands in for each Landlock right an older kernel lacks."""
import pytest

from leeward_daemon.isolation.enforcement import enforced_by


@pytest.mark.parametrize("abi", range(0, 8))
def test_every_protection_has_a_layer_on_every_abi(abi):
    for protection, layers in enforced_by(abi, seccomp_notify=True).items():
        assert layers, protection


def test_debian_12_abi_2_has_no_landlock_tcp_or_scopes_and_says_what_replaces_them():
    table = enforced_by(2, seccomp_notify=True)
    assert "landlock" in table["host_filesystem"]
    assert not any("landlock" in layer for layer in table["tcp_and_udp"])
    assert any("AF_INET" in layer for layer in table["tcp_and_udp"])
    assert table["abstract_unix_sockets"] == ["network namespace (per sandbox)"]
    assert "pid namespace" in table["signals_to_other_processes"]
    assert not any("landlock" in layer for layer in table["truncate_outside_writable_paths"])


def test_abi_6_adds_scopes_and_tcp_rules_in_front():
    table = enforced_by(6, seccomp_notify=True)
    assert table["abstract_unix_sockets"][0] == "landlock (scope)"
    assert table["tcp_and_udp"][0] == "landlock (tcp bind/connect)"
    assert table["device_ioctl"][0] == "landlock (ioctl on devices)"


def test_without_notification_seccomp_is_said_not_to_report():
    table = enforced_by(7, seccomp_notify=False)
    assert any("not reported" in layer for layer in table["privileged_syscalls"])


def test_without_landlock_the_mount_namespace_still_hides_the_host():
    table = enforced_by(0, seccomp_notify=True)
    assert table["host_filesystem"] == ["mount namespace (host tree detached)"]
