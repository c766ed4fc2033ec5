"""libleeward.so against a real daemon: the example, every function, threads, a daemon
killed between calls, a 20 MB program, leaks under valgrind, RSS over 1000 executes."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from capi_support import REPO, Driven, capi_test, clean_env, compile_c, dlopen_test, run  # noqa: F401
from tests.conftest import start_daemon

from libleeward.build_ffi import ensure_built

pytestmark = pytest.mark.integration

RSS_GROWTH_LIMIT_KB = 2048


def test_hello_example(daemon, tmp_path):
    hello = compile_c(REPO / "examples" / "hello.c", tmp_path / "hello")
    proc = run([hello, daemon.socket_path], expect_pass=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("hello\nexit_code=0 ")


def test_hello_example_default_socket_from_env(daemon, tmp_path):
    hello = compile_c(REPO / "examples" / "hello.c", tmp_path / "hello")
    proc = run([hello], env=clean_env(LEEWARD_SOCKET=daemon.socket_path), expect_pass=False)
    assert proc.returncode == 0 and proc.stdout.startswith("hello\n"), proc.stdout + proc.stderr


def test_call_example(daemon, tmp_path):
    call = compile_c(REPO / "examples" / "call.c", tmp_path / "call")
    proc = run([call, '{"type": "Execute", "code": "print(input())", "stdin": {"$bytes": "aGkK"}}',
                daemon.socket_path], expect_pass=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["result"]["stdout"] == {"$bytes": "aGkK"}  # "hi\n"
    proc = run([call, '{"type": "Execute"', daemon.socket_path], expect_pass=False)
    assert proc.returncode == 2 and "(E1003)" in proc.stderr


def test_every_function(daemon, capi_test):
    run([capi_test, "daemon", daemon.socket_path])


def test_generic_call(daemon, capi_test):
    run([capi_test, "call", daemon.socket_path])


def test_huge_program_is_refused_cleanly(daemon, capi_test):
    run([capi_test, "huge", daemon.socket_path])


def test_one_handle_many_threads(daemon, capi_test):
    run([capi_test, "threads", daemon.socket_path])


def test_dlopen_rtld_local(daemon, dlopen_test):
    proc = run([dlopen_test, ensure_built(), daemon.socket_path], expect_pass=False)
    assert proc.returncode == 0 and "dlopen ok" in proc.stdout, proc.stdout + proc.stderr


def test_daemon_killed_between_calls(capi_test, tmp_path):
    first = start_daemon(str(tmp_path), workers=1)
    second = None
    child = Driven([capi_test, "killed", first.socket_path])
    try:
        child.expect("KILL-NOW")
        first.process.kill()
        first.process.wait()
        child.go()
        child.expect("RESTART-NOW")
        second = start_daemon(str(tmp_path), workers=1)
        child.go()
        assert child.finish() == 0 and "PASS" in child.text, child.text
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
        first.stop()
        if second is not None:
            second.stop()


def test_rss_flat_over_1000_executes(daemon, capi_test):
    proc = run([capi_test, "loop", daemon.socket_path, 1000], timeout=600)
    match = re.search(r"rss_kb_after_warmup=(\d+) rss_kb_after_1000=(\d+)", proc.stdout)
    assert match, proc.stdout
    before, after = map(int, match.groups())
    print(f"RSS after warm-up {before} kB, after 1000 more executes {after} kB")
    assert after - before < RSS_GROWTH_LIMIT_KB


def _valgrind(argv: list) -> dict:
    # PYTHONMALLOC=malloc: let valgrind see every allocation instead of pymalloc's arenas.
    proc = run(["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite", "--num-callers=40", *argv],
               env=clean_env(PYTHONMALLOC="malloc"), timeout=900)
    numbers = {}
    for kind in ("definitely lost", "indirectly lost", "possibly lost"):
        match = re.search(rf"{kind}: ([\d,]+) bytes in ([\d,]+) blocks", proc.stderr)
        numbers[kind] = int(match.group(1).replace(",", "")) if match else 0
    match = re.search(r"ERROR SUMMARY: ([\d,]+) errors", proc.stderr)
    assert match, proc.stderr[-3000:]
    numbers["errors"] = int(match.group(1).replace(",", ""))
    numbers["log"] = proc.stderr
    return numbers


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_no_leak_per_call_under_valgrind(daemon, capi_test):
    """Definite/indirect leaks: none. Interpreter-level reports (CPython is never
    finalized when embedded) are the same for 5 and 40 calls, so none comes per call."""
    few = _valgrind([capi_test, "loop", daemon.socket_path, 5])
    many = _valgrind([capi_test, "loop", daemon.socket_path, 40])
    print({k: v for k, v in few.items() if k != "log"}, {k: v for k, v in many.items() if k != "log"})
    for report in (few, many):
        assert report["definitely lost"] == 0 and report["indirectly lost"] == 0, report["log"][-5000:]
    assert many["errors"] == few["errors"], many["log"][-8000:]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
@pytest.mark.parametrize("mode", ["daemon", "call"])
def test_every_function_under_valgrind(daemon, capi_test, mode):
    report = _valgrind([capi_test, mode, daemon.socket_path])
    assert report["definitely lost"] == 0 and report["indirectly lost"] == 0, report["log"][-5000:]
