"""zygote_link.isolation_in_force: the fail-closed decision on the zygote's findings."""
import pytest

import dataclasses

from leeward_daemon.ipc.messages import Hello
from leeward_daemon.pool.zygote_link import IsolationUnavailable, isolation_in_force

FULL = Hello(pid=1, landlock_abi=7, seccomp_notify=True)


def test_every_layer_present():
    isolation = isolation_in_force(FULL, [])
    assert isolation["landlock_abi"] == 7 and isolation["seccomp"] == "notify"
    assert isolation["layers"][-5:] == ["landlock", "capabilities", "no_new_privs", "fd_hygiene", "seccomp"]


@pytest.mark.parametrize("missing, hello", [
    ("landlock", dataclasses.replace(FULL, landlock_abi=0)),
    ("seccomp_notify", dataclasses.replace(FULL, seccomp_notify=False)),
])
def test_a_missing_required_layer_is_named(missing, hello):
    with pytest.raises(IsolationUnavailable, match=f"'{missing}' is not available"):
        isolation_in_force(hello, [])


def test_optional_layers_may_be_missing():
    isolation = isolation_in_force(dataclasses.replace(FULL, landlock_abi=0, seccomp_notify=False),
                                   ["landlock", "seccomp_notify"])
    assert isolation["seccomp"] == "errno" and "landlock" not in isolation["layers"]
    assert "seccomp" in isolation["layers"]


def test_status_says_which_layer_enforces_what_for_this_abi():
    isolation = isolation_in_force(dataclasses.replace(FULL, landlock_abi=2), [])
    assert isolation["enforced_by"]["abstract_unix_sockets"] == ["network namespace (per sandbox)"]
