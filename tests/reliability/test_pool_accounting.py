"""The pool's accounting, exact on every path (no daemon, no zygote: a fake link), and
the zygote channel's handling of records that arrive short or without their fds."""
import array
import asyncio
import logging
import os
import resource
import socket
import subprocess
import sys
import textwrap

import pytest

from leeward_daemon.ipc import channel
from leeward_daemon.ops import log_limit
from leeward_daemon.pool import pool as pool_module
from leeward_daemon.config import Config
from leeward_daemon.errors import RequestFailed
from leeward_daemon.frontdoor.errors import for_client, to_protocol_error
from leeward_daemon.pool.hooks import CancelSignal
from leeward_daemon.pool.zygote_link import ZygoteLink, ZygoteState
from libleeward.protocol import ErrorCode, ProtocolError


class FakeLink:
    """Records what the pool asks of the zygote."""

    def __init__(self):
        self.asked: list[int] = []
        self.state = ZygoteState.RUNNING
        self.restarts = 0
        self.restart_error = None

    @property
    def running(self) -> bool:
        return self.state is ZygoteState.RUNNING

    def spawn(self, count: int) -> None:
        self.asked.append(count)

    def stop(self) -> None:
        pass


def _pool(**overrides) -> tuple[pool_module.Pool, FakeLink]:
    config = Config(limits_backend="rlimit", workers=2, max_building=3, max_queue=4, **overrides)
    pool = pool_module.Pool(config)
    pool.link = FakeLink()
    return pool, pool.link


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_are_capped_by_max_building_and_waiters_queue():
    async def scenario():
        pool, link = _pool()
        pool._replenish()
        assert link.asked == [2] and pool.starting == 2
        waiters = [asyncio.create_task(pool.acquire()) for _ in range(4)]
        await asyncio.sleep(0)
        assert pool.waiting == 4 and pool.starting == 3 == sum(link.asked)  # never past max_building
        with pytest.raises(RequestFailed) as raised:
            await pool.acquire()
        busy = to_protocol_error(raised.value)
        assert busy.code is ErrorCode.DAEMON_BUSY and "4 waiting" in busy.message
        for task in waiters:
            task.cancel()
        pool.close()
        await asyncio.gather(*waiters, return_exceptions=True)  # retrieved: none is left to the GC
    run(scenario())


class FakeSlot:
    """A ready slot as _offer sees it; records its discarding."""

    def __init__(self, pid: int):
        self.pid, self.closed, self.killed = pid, True, False
        self.box = FakeBox()

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        pass


class FakeBox:
    destroyed = False

    def destroy(self) -> None:
        self.destroyed = True


def test_a_slot_built_for_a_request_that_stopped_waiting_is_not_kept_past_the_target():
    async def scenario():
        pool, link = _pool()
        cancel = CancelSignal()
        waiter = asyncio.create_task(pool.acquire(cancel))
        await asyncio.sleep(0)
        assert pool.waiting == 1 and pool.starting == 3  # the target's two and the waiter's
        cancel.set()
        assert await waiter is None and pool.waiting == 0
        slots = [FakeSlot(pid) for pid in (101, 102, 103)]
        for slot in slots:  # the three arrive
            pool._offer(slot)
        assert pool.idle == 2 and [s.killed for s in slots] == [False, False, True]
        await asyncio.sleep(0.05)  # the discarded one's box goes in a worker thread
        assert slots[2].box.destroyed
        pool.close()
    run(scenario())


def test_a_slot_lost_on_the_way_is_uncounted_and_asked_for_again():
    async def scenario():
        pool, link = _pool()
        pool._replenish()
        pool._on_slot_lost("a slot arrived with 2 of its 4 fds")
        assert pool.starting == 1
        await asyncio.sleep(pool_module.RETRY_DELAY_SECS + 0.2)  # the retry asks again
        assert pool.starting == 2 and sum(link.asked) == 3
        pool.close()
    run(scenario())


def test_unanswered_requests_expire_and_are_asked_for_again(monkeypatch):
    async def scenario():
        pool, link = _pool()
        pool._replenish()
        for i in range(len(pool._requests)):  # as if the zygote had never answered
            pool._requests[i] -= pool_module.REQUEST_EXPIRY_SECS + 1
        pool._expire_requests()
        assert pool.expired == 2 and pool.starting == 2 and link.asked == [2, 2]
        pool.close()
    run(scenario())


def test_a_dead_zygote_fails_the_waiters_and_its_requests():
    async def scenario():
        pool, link = _pool()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        link.state = ZygoteState.RESTARTING
        pool._on_zygote_died("killed by signal 9")
        with pytest.raises(RequestFailed) as raised:
            await waiter
        died = to_protocol_error(raised.value)
        assert died.code is ErrorCode.SANDBOX_UNAVAILABLE and "zygote died" in died.message
        assert pool.starting == 0
        link.state = ZygoteState.RUNNING
        pool._replenish()  # what the link's "restarted" event does
        assert pool.starting == 2
        pool.close()
    run(scenario())


def test_spawn_requests_wait_for_a_full_socket_instead_of_being_dropped():
    async def scenario():
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        link = ZygoteLink(Config(), "rlimit", events=None)
        link._sock, link.state = ours, ZygoteState.RUNNING
        filled = 0
        while True:  # fill the zygote's queue, as a busy zygote leaves it
            try:
                channel.send(ours, {"op": "spawn", "count": 1})
                filled += 1
            except BlockingIOError:
                break
        link.spawn(3)
        link.spawn(4)
        assert link._unsent == 7
        theirs.setblocking(False)
        for _ in range(filled):
            channel.recv_packet(theirs)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not link._unsent:
                break
        message, _ = channel.recv_packet(theirs)
        assert message == {"op": "spawn", "count": 7}
        asyncio.get_running_loop().remove_writer(ours.fileno())
        ours.close()
        theirs.close()
    run(scenario())


RECEIVER = textwrap.dedent("""
    import os, resource, socket, sys
    from leeward_daemon.ipc import channel
    sock = socket.socket(fileno=int(sys.argv[1]))
    highest = max(int(n) for n in os.listdir("/proc/self/fd"))
    while os.open("/dev/null", os.O_RDONLY) < highest:  # no free fd below the highest
        pass
    before = len(os.listdir("/proc/self/fd"))
    # Room for two of the record's four fds: the kernel drops the rest (MSG_CTRUNC).
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 3, highest + 3))
    try:
        channel.recv_packet(sock)
    except channel.DamagedRecord as exc:
        print(exc.message["op"], len(os.listdir("/proc/self/fd")) == before, flush=True)
""")


def test_a_slot_record_without_all_its_fds_is_damaged_and_leaks_none():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pipes = [os.pipe() for _ in range(2)]
    fds = [fd for pair in pipes for fd in pair]
    channel.send(ours, {"op": "slot", "id": 1, "pid": 1}, fds)
    receiver = subprocess.run([sys.executable, "-c", RECEIVER, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                              capture_output=True, text=True, timeout=60)
    for fd in fds:
        os.close(fd)
    ours.close()
    theirs.close()
    assert receiver.stdout.split() == ["slot", "True"], receiver.stderr


def test_host_paths_are_masked_in_errors_clients_see():
    error = for_client(ProtocolError(ErrorCode.SANDBOX_FAILED, "cannot apply the job's limits: [Errno 16] "
                                      "'/sys/fs/cgroup/memory/leeward/slot-1-2/memory.limit_in_bytes'"))
    assert "/sys" not in error.message and "<host path>" in error.message
    invalid = ProtocolError(ErrorCode.MOUNT_NOT_FOUND, "mount source not found: /srv/in/x")
    assert for_client(invalid) is invalid  # the client's own path, in its own request


def test_repeated_identical_errors_are_rate_limited(caplog):
    limiter = log_limit.RepeatLimiter(window=60, per_window=3)
    records = [logging.LogRecord("leeward", logging.ERROR, __file__, 1, "slot failed: %s", (i,), None)
               for i in range(100)]
    assert sum(limiter.filter(r) for r in records) == 3
    info = logging.LogRecord("leeward", logging.INFO, __file__, 1, "request id=%d", (1,), None)
    assert all(limiter.filter(info) for _ in range(100))
