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
    messages.SpawnFailed("EAGAIN"), messages.Exited(42, 9, 1 << 20, 1500), messages.Ready(), messages.Failed("mount"),
    messages.Started(1234.5), messages.Result(None), messages.Result(messages.ExceptionReport("E", "v", "tb")),
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


# ---------------------------------------------------------------- rich output

ASKED = Run("", display=True, collect=("*",), results_max=1000, repr_max=100, collect_max=10, collect_files_max=2)
PNG = messages.RichResult(False, {"image/png": b"\x89PNG", "text/plain": "<Figure>"})


def reply(output: messages.RichOutput) -> dict:
    return messages.Result(None, output).to_wire()


def test_rich_output_goes_to_the_wire_and_back():
    for message in (messages.Result(None, messages.RichOutput([PNG], False, {"a/b.txt": b"x"}, True)),
                    messages.CellResult(0, None, messages.RichOutput([messages.RichResult(True, {"j": {"k": [1]}})], False, {}))):
        assert messages.from_wire(message.to_wire(), type(message), answering=ASKED) == message


def test_rich_output_a_run_did_not_ask_for_is_dropped():
    wire = reply(messages.RichOutput([PNG], True, {"a": b"x"}, True))
    assert messages.from_wire(wire, messages.Result).output == messages.RichOutput()
    assert messages.from_wire(wire, messages.Result, answering=Run("")).output == messages.RichOutput()


def test_what_was_asked_for_is_there_even_when_the_sandbox_sent_nothing():
    assert messages.from_wire(reply(messages.RichOutput()), messages.Result, answering=ASKED).output == \
        messages.RichOutput([], False, {}, False)


def test_results_and_files_past_the_caps_are_cut_and_marked():
    many = [messages.RichResult(False, {"text/plain": "x" * 300})] * 5
    files = {"a": b"1234", "b": b"123456", "c": b"1"}
    output = messages.from_wire(reply(messages.RichOutput(many, False, files, False)), messages.Result,
                                answering=ASKED).output
    assert output.results == many[:2] and output.results_truncated
    assert output.files == {"a": b"1234", "b": b"123456"} and output.files_truncated


@pytest.mark.parametrize("output", [
    {"results": [{"main": True, "data": {"text/plain": 1}}]},           # a value of no wire type
    {"results": [{"main": 1, "data": {}}]},
    {"results": [{"main": True}]},
    {"files": {"a": "text"}},                                          # file contents are bytes
    {"files": {"../escape": b"x"}}, {"files": {"/etc/passwd": b"x"}}, {"files": {"a//b": b"x"}},
    {"files": {"": b"x"}}, {"files": {"a/./b": b"x"}},
])
def test_rich_output_of_the_wrong_shape_is_malformed(output):
    with pytest.raises(MalformedMessage):
        messages.from_wire({"op": "result", "error": None, "output": output}, messages.Result, answering=ASKED)


def test_the_counted_size_never_falls_below_the_packed_size():
    import msgpack
    tiny = [messages.RichResult(False, {"": ""})] * 10_000
    kept, cut = messages.fit_results(tiny, 100_000)
    assert cut and len(msgpack.packb([messages._encode(r) for r in kept])) <= 100_000
    files = {"d/" * 2000 + str(i): b"" for i in range(50)}
    kept_files, _ = messages.fit_files(files, 0, 50)
    assert len(kept_files) == 50
    run = Run("", display=True, collect=("*",), results_max=100_000, collect_max=0, collect_files_max=50)
    assert len(msgpack.packb(kept_files)) <= messages.frame_max(run) - messages.SLOT_MAX_FRAME - run.results_max


def test_a_collected_name_past_its_length_is_left_out():
    kept, cut = messages.fit_files({"x" * (messages.COLLECT_PATH_MAX + 1): b"", "ok": b"1"}, 10, 10)
    assert kept == {"ok": b"1"} and cut


def test_a_reply_may_be_as_large_as_its_run_allows_and_no_larger():
    plain = Run("")
    assert messages.frame_max(plain) == messages.SLOT_MAX_FRAME
    assert messages.frame_max(ASKED) == messages.SLOT_MAX_FRAME + 1000 + 10 + 2 * (messages.COLLECT_PATH_MAX
                                                                                     + messages.FILE_OVERHEAD)


def test_prepared_schemas_leave_a_slot_nothing_to_work_out(monkeypatch):
    """The zygote prepares them before it forks: a single-use slot decoding its Job (and
    the request, run and mounts inside it) must not call get_type_hints again."""
    for cache in (messages._schema, messages._converter, messages._field_names):
        cache.cache_clear()
    messages.prepare_schemas()
    looked_up = []
    real = messages.typing.get_type_hints
    monkeypatch.setattr(messages.typing, "get_type_hints", lambda kind: looked_up.append(kind) or real(kind))
    job = messages.Job(SandboxRequest((JobMount("/srv", "/data", False),), {"A": "1"}), Run("print(1)"))
    messages.from_wire(job.to_wire(), messages.Job)
    messages.Result(messages.ExceptionReport("E", "v", "tb"), messages.RichOutput()).to_wire()
    assert looked_up == []
