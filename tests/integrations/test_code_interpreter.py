"""leeward.CodeInterpreter against a real daemon: E2B's own snippets run with only their
import changed, then the parts of the E2B surface they do not reach (callbacks, errors,
contexts, files, timeouts, kill)."""
from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from leeward import CodeInterpreter, Leeward
from leeward.integrations.code_interpreter import Context, EntryInfo, FileType, TimeoutException
from tests.conftest import REPO

pytestmark = pytest.mark.integration

E2B_IMPORT = "from e2b_code_interpreter import Sandbox"
LEEWARD_IMPORT = "from leeward import CodeInterpreter as Sandbox"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# From E2B's README and docs (quickstart, static charts, files), verbatim but for the
# path of the file, which E2B leaves as a placeholder ('/path/to/file').
QUICKSTART = '''
from e2b_code_interpreter import Sandbox

with Sandbox.create() as sandbox:
    sandbox.run_code("x = 1")
    execution = sandbox.run_code("x+=1; x")
    print(execution.text)  # outputs 2
'''

CHART = '''
import base64
from e2b_code_interpreter import Sandbox

code_to_run = """
import matplotlib.pyplot as plt

plt.plot([1, 2, 3, 4])
plt.ylabel('some numbers')
plt.show()
"""

sandbox = Sandbox.create()
execution = sandbox.run_code(code_to_run)
first_result = execution.results[0]

if first_result.png:
    with open('chart.png', 'wb') as f:
        f.write(base64.b64decode(first_result.png))
    print('Chart saved as chart.png')
sandbox.kill()
'''

FILES = '''
from e2b_code_interpreter import Sandbox

sandbox = Sandbox.create()
sandbox.files.write('/tmp/test_file.txt', 'file content')
file_content = sandbox.files.read('/tmp/test_file.txt')
print(file_content)
sandbox.kill()
'''


@pytest.fixture
def socket_env(daemon, monkeypatch):
    """E2B's Sandbox.create() takes no address: the daemon comes from $LEEWARD_SOCKET."""
    monkeypatch.setenv("LEEWARD_SOCKET", daemon.socket_path)
    return daemon.socket_path


@pytest.fixture
def sandbox(socket_env):
    with CodeInterpreter() as interpreter:
        yield interpreter


def run_e2b_snippet(source: str) -> None:
    assert E2B_IMPORT in source
    exec(compile(source.replace(E2B_IMPORT, LEEWARD_IMPORT), "<e2b snippet>", "exec"), {"__name__": "__main__"})


def test_e2b_quickstart(socket_env, capsys):
    run_e2b_snippet(QUICKSTART)
    assert capsys.readouterr().out == "2\n"


def test_e2b_chart(socket_env, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_e2b_snippet(CHART)
    assert capsys.readouterr().out == "Chart saved as chart.png\n"
    assert (tmp_path / "chart.png").read_bytes().startswith(PNG_MAGIC)


def test_e2b_files(socket_env, capsys):
    run_e2b_snippet(FILES)
    assert capsys.readouterr().out == "file content\n"


def test_the_snippets_leave_no_session_open(socket_env, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Leeward(socket_env) as client:
        before = {s.id for s in client.sessions()}
        for snippet in (QUICKSTART, CHART, FILES):
            run_e2b_snippet(snippet)
        assert {s.id for s in client.sessions()} == before


def test_an_error_is_in_the_execution_not_raised(sandbox):
    execution = sandbox.run_code("print('before')\n1/0")
    assert execution.logs.stdout == ["before\n"]
    assert execution.error.name == "ZeroDivisionError" and execution.error.value == "division by zero"
    assert "Traceback" in execution.error.traceback
    assert execution.text is None
    assert sandbox.run_code("'still alive'").text == "'still alive'"


def test_callbacks_and_results(sandbox):
    seen = []
    execution = sandbox.run_code(
        "import matplotlib.pyplot as plt\nprint('a')\nprint('b')\nplt.plot([1, 2])\nplt.show()\n"
        "import sys\nprint('warn', file=sys.stderr)\ndisplay({'k': 1})\n21 * 2",
        on_stdout=lambda m: seen.append(("stdout", m.line, m.error)),
        on_stderr=lambda m: seen.append(("stderr", m.line, m.error)),
        on_result=lambda r: seen.append(("result", r.formats(), r.is_main_result)),
        on_error=lambda e: seen.append(("error", e.name)))
    # How output is cut into chunks is the stream's business: compare what they add up to.
    assert "".join(line for kind, line, error in seen if kind == "stdout" and not error) == "a\nb\n"
    assert "".join(line for kind, line, error in seen if kind == "stderr" and error) == "warn\n"
    assert "".join(execution.logs.stdout) == "a\nb\n" and "".join(execution.logs.stderr) == "warn\n"
    results = [entry for entry in seen if entry[0] == "result"]
    assert len(results) == 3 and results[-1] == ("result", ["text"], True)
    assert "png" in results[0][1] and not results[0][2]
    figure = execution.results[0]
    assert base64.b64decode(figure.png).startswith(PNG_MAGIC) and figure["png"] == figure.png
    assert execution.text == "42" and execution.error is None
    assert execution.execution_count == 1

    errors = []
    sandbox.run_code("raise KeyError('x')", on_error=errors.append)
    assert [e.name for e in errors] == ["KeyError"]


def test_callbacks_run_while_the_cell_runs(patient_daemon):
    """A callback that raises on the first output leaves run_code at once and cancels the
    cell: the cell never reaches its last line, and the context lives on."""
    with Leeward(patient_daemon.socket_path) as client:
        if "stream" not in client.features():
            pytest.skip("the daemon does not stream output")

    class Enough(Exception):
        pass

    def stop(message):
        raise Enough(message.line)

    with CodeInterpreter(patient_daemon.socket_path) as sandbox:
        with pytest.raises(Enough):
            sandbox.run_code("import time\nprint('started', flush=True)\ntime.sleep(60)\nfinished = True",
                             on_stdout=stop, timeout=120)
        assert sandbox.run_code("'finished' in globals()").text == "False"


def test_contexts_are_separate_states(sandbox):
    sandbox.run_code("x = 'default'")
    context = sandbox.create_code_context(cwd="/tmp/work")
    assert isinstance(context, Context) and context.language == "python" and context.cwd == "/tmp/work"
    sandbox.run_code("x = 'other'", context=context)
    assert sandbox.run_code("x").text == "'default'"
    assert sandbox.run_code("x", context=context).text == "'other'"
    assert sandbox.run_code("import os; os.getcwd()", context=context).text == "'/tmp/work'"
    assert [c.id for c in sandbox.list_code_contexts()] == [sandbox.sandbox_id, context.id]

    sandbox.restart_code_context(context)
    assert sandbox.run_code("x", context=context).error.name == "NameError"
    assert sandbox.run_code("import os; os.getcwd()", context=context).text == "'/tmp/work'"
    sandbox.remove_code_context(context)
    assert [c.id for c in sandbox.list_code_contexts()] == [sandbox.sandbox_id]
    with pytest.raises(ValueError):
        sandbox.run_code("1", context=context)


def test_files(sandbox):
    assert sandbox.files.make_dir("data")
    info = sandbox.files.write("data/in.csv", b"a,b\n1,2\n")
    assert (info.name, info.type, info.path) == ("in.csv", FileType.FILE, "/tmp/data/in.csv")
    assert not sandbox.files.make_dir("data")
    sandbox.run_code("open('data/out.txt', 'w').write(open('data/in.csv').read().upper())")
    assert sandbox.files.read("data/out.txt") == "A,B\n1,2\n"
    assert sandbox.files.read("data/in.csv", format="bytes") == bytearray(b"a,b\n1,2\n")
    assert b"".join(sandbox.files.read("data/in.csv", format="stream")) == b"a,b\n1,2\n"
    listed = sandbox.files.list(".", depth=2)
    # By path, not position: a checkout under /tmp puts its own (bound) directory there too.
    data_size = next(entry.size for entry in listed if entry.path == "/tmp/data")
    assert EntryInfo(name="data", type=FileType.DIR, path="/tmp/data", size=data_size) in listed
    assert EntryInfo(name="out.txt", type=FileType.FILE, path="/tmp/data/out.txt", size=8) in listed
    assert all(entry.path != "/tmp/data/in.csv" for entry in sandbox.files.list("."))
    assert sandbox.files.exists("data/out.txt") and not sandbox.files.exists("data/nope")
    sandbox.files.remove("data/out.txt")
    assert not sandbox.files.exists("data/out.txt")


def test_a_timeout_raises(patient_daemon):
    with CodeInterpreter(patient_daemon.socket_path) as sandbox:
        with pytest.raises(TimeoutException):
            sandbox.run_code("import time\nwhile True: time.sleep(0.01)", timeout=1)
        assert sandbox.run_code("1 + 1").text == "2"  # interrupted, the context lives on


def test_what_is_not_supported_says_so(sandbox):
    with pytest.raises(ValueError, match="Python only"):
        sandbox.run_code("echo hi", language="bash")
    with pytest.raises(ValueError, match="envs"):
        sandbox.run_code("1", envs={"A": "1"})


def test_envs_reach_every_context(socket_env):
    with CodeInterpreter(envs={"GREETING": "hello"}) as interpreter:
        context = interpreter.create_code_context()
        assert interpreter.run_code("import os; os.environ['GREETING']").text == "'hello'"
        assert interpreter.run_code("import os; os.environ['GREETING']", context=context).text == "'hello'"


def test_kill_ends_every_session(socket_env):
    interpreter = CodeInterpreter()
    context = interpreter.create_code_context()
    assert interpreter.is_running()
    interpreter.kill()
    interpreter.kill()  # idempotent
    with Leeward(socket_env) as client:
        assert not {interpreter.sandbox_id, context.id} & {s.id for s in client.sessions()}


def test_importing_leeward_imports_no_integration():
    probe = "import sys, leeward; print(sorted(m for m in sys.modules if m.startswith(('leeward.integrations', 'mcp'))))"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert imported.stdout == "[]\n"
    lazily = subprocess.run([sys.executable, "-c", "import leeward; print(leeward.CodeInterpreter.__module__)"],
                            capture_output=True, text=True, check=True)
    assert lazily.stdout == "leeward.integrations.code_interpreter\n"


def test_example_script(daemon, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEEWARD_")}, "LEEWARD_SOCKET": daemon.socket_path}
    ran = subprocess.run([sys.executable, os.path.join(REPO, "examples", "code_interpreter.py"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "stdout: 4 months loaded\n" in ran.stdout
    assert ran.stdout.splitlines()[-1] == "answer: Sold 518 units, best month Apr."
    assert (tmp_path / "figure0.png").read_bytes().startswith(PNG_MAGIC)
