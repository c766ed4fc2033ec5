"""order.py: which layers are reported, in the order they are applied."""
from leeward_daemon.isolation import order


def test_layers_are_listed_in_the_order_they_are_applied():
    assert order.layers_in_force(7) == [
        "namespaces", "rootfs", "job_mounts", "identity", "workspace", "limits",
        "landlock", "capabilities", "no_new_privs", "fd_hygiene", "seccomp"]


def test_without_landlock_the_layer_is_not_claimed():
    layers = order.layers_in_force(0)
    assert "landlock" not in layers and layers[-1] == "seccomp"
