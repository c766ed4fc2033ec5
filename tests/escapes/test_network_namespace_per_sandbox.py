"""Two sandboxes running at the same time share nothing of a network namespace.

Landlock's abstract-socket scope (ABI >= 6) refuses connect() across sandboxes, so
test_network's concurrent-job probe passes even in one shared namespace; but bind()
is not scoped: there, a name one sandbox binds makes the other's bind() fail with
EADDRINUSE (one bit per name, a covert channel), and /proc/net/unix lists the other
sandbox's names. This probe fails if sandboxes ever share a network namespace (the
performance lever bench/README weighed and rejected for that reason)."""
from __future__ import annotations

import os

from ._probe import lines, probe_beside_job


def test_a_concurrent_sandbox_s_abstract_names_are_neither_taken_nor_listed(daemon, probe_dir):
    name = f"\0leeward-netns-{os.urandom(6).hex()}"
    holder_code = ("import os, socket, time\n"
                   "s = socket.socket(socket.AF_UNIX)\n"
                   f"s.bind({name!r}); s.listen(1)\n"
                   f"print('listed by its holder', {name[1:]!r} in open('/proc/net/unix').read())\n"
                   "open('/shared/bound', 'w').close()\n"
                   "deadline = time.monotonic() + 60\n"
                   "while not os.path.exists('/shared/done') and time.monotonic() < deadline: time.sleep(0.05)\n")
    code = ("import os, socket, time, errno\n"
            "deadline = time.monotonic() + 60\n"
            "while not os.path.exists('/shared/bound') and time.monotonic() < deadline: time.sleep(0.05)\n"
            "print('bound', os.path.exists('/shared/bound'))\n"
            f"print('listed', {name[1:]!r} in open('/proc/net/unix').read())\n"
            "try:\n"
            f"    socket.socket(socket.AF_UNIX).bind({name!r}); print('bind OK')\n"
            "except OSError as e:\n"
            "    print('bind', errno.errorcode[e.errno])\n")
    holder, result = probe_beside_job(daemon, probe_dir, holder_code, code)
    assert holder.stdout == b"listed by its holder True\n", holder  # the probe can see a name
    assert lines(result) == ["bound True", "listed False", "bind OK"], result
