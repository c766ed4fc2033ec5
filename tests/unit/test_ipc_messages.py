"""ipc/messages.py: every internal message goes to the wire and back unchanged, and a
map that is not exactly one of the expected messages is refused there."""
import pytest

from leeward_daemon.errors import MalformedMessage
from leeward_daemon.ipc import messages
from leeward_daemon.model import JobMount, Run, SandboxRequest

EXAMPLES = [
    messages.Configure(["numpy"], True, ["/opt/py"], 1 << 20, 100000, 64, "cgroup1", 64),
    messages.Hello(7, ["numpy"], 7, True), messages.Hello(7, error="no landlock"),
    messages.Spawn(3), messages.SlotMade(1, 42, None), messages.SlotMade(1, 42, 100001),
    messages.SpawnFailed("EAGAIN"), messages.Exited(42, 9), messages.Ready(), messages.Failed("mount"),
    messages.Started(), messages.Result(None), messages.Result(messages.ExceptionReport("E", "v", "tb")),
    messages.Job(SandboxRequest((JobMount("/srv", "/data", False),), {"A": "1"}, 1 << 26, 64, "rlimit", 1 << 30, 5.0),
                 Run("print(1)", b"in", {"a.txt": b"x"}, 5.0)),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message):
    assert messages.from_wire(message.to_wire(), type(message)) == message


@pytest.mark.parametrize("wire", [
    {"op": "result"},                                            # a field missing
    {"op": "result", "error": None, "exit_code": 0},             # a field too many
    {"op": "result", "error": {"name": "E", "value": 1, "traceback": ""}},
    {"op": "exited", "pid": True, "status": 0},                  # a bool is no pid
    {"op": "spawn", "count": "3"},
    {"op": "started"} | {"fd": 3},
    {"op": 7}, {}, [1, 2], "started",
])
def test_anything_else_is_malformed(wire):
    with pytest.raises(MalformedMessage):
        messages.from_wire(wire, messages.Result, messages.Exited, messages.Spawn, messages.Started)


def test_an_op_out_of_place_is_malformed():
    with pytest.raises(MalformedMessage, match="'result'"):
        messages.from_wire(messages.Result(None).to_wire(), messages.Started, messages.Failed)


def test_what_a_slot_says_is_bounded_where_it_is_read():
    huge = "x" * (messages.FIELD_MAX * 2)
    failed = messages.from_wire({"op": "failed", "error": huge}, messages.Failed)
    result = messages.from_wire({"op": "result", "error": {"name": huge, "value": huge, "traceback": huge}},
                                messages.Result)
    assert len(failed.error) == messages.FIELD_MAX
    assert {len(text) for text in vars(result.error).values()} == {messages.FIELD_MAX}


def test_the_code_the_daemon_sends_is_never_cut():
    job = messages.Job(SandboxRequest(), Run("x = 1\n" * messages.FIELD_MAX))
    assert messages.from_wire(job.to_wire(), messages.Job).run.code == job.run.code
