"""cell.run_cell in a plain process: a one-shot cell ends as `python -c` would, and a
display cell behaves as a notebook cell (results, `_`, display(), top-level await,
matplotlib figures). The same code runs in a sandbox through the slot."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leeward_daemon.sandbox import cell

FILENAME = "<leeward>"


def run(code: str, namespace: dict | None = None, **kwargs) -> cell.CellOutcome:
    return cell.run_cell(code, {} if namespace is None else namespace, filename=FILENAME, **kwargs)


@pytest.mark.parametrize("code", ["None", "0", "3", "300", "-1", "256", "2**40 + 3", "2**63", "-2**100", "True",
                                  "'bye'"])
def test_sys_exit_gives_the_status_python_c_gives(code):
    # The worker exits with this status and the reply is that status, as the kernel saw it.
    expected = subprocess.run([sys.executable, "-c", f"import sys; sys.exit({code})"], stderr=subprocess.DEVNULL).returncode
    assert run(f"import sys; sys.exit({code})", display=False).exit_code & 0xFF == expected


def test_an_uncaught_exception_is_reported_from_the_cells_own_frames(capsys):
    outcome = run("def f():\n    raise ValueError('bad')\nf()", display=False)
    assert outcome.exit_code == 1
    assert outcome.error["name"] == "ValueError" and outcome.error["value"] == "bad"
    tb = outcome.error["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n") and 'File "<leeward>", line 3' in tb
    assert "cell.py" not in tb
    assert capsys.readouterr().err == tb


def test_an_unprintable_exception_is_still_reported():
    outcome = run("class E(Exception):\n    def __str__(self): raise RuntimeError\nraise E()", display=False)
    assert outcome.error["value"] == "<unprintable E object>"


def test_a_one_shot_cell_has_no_results_and_no_display():
    outcome = run("x = 1\nx + 1", display=False)
    assert outcome == cell.CellOutcome(0, None, [], False)
    assert run("display(1)", display=False).error["name"] == "NameError"


def test_new_main_namespace_is_sys_modules_main():
    namespace = cell.new_main_namespace()
    assert sys.modules["__main__"].__dict__ is namespace and namespace["__name__"] == "__main__"


# ---------------------------------------------------------------- display cells

def texts(outcome: cell.CellOutcome) -> list[tuple[bool, str]]:
    return [(r["main"], r["data"].get("text/plain")) for r in outcome.results]


def test_the_final_expression_is_the_main_result_and_becomes_underscore():
    namespace = {}
    outcome = run("x = 1\nx + 1", namespace, display=True)
    assert outcome == cell.CellOutcome(0, None, [{"main": True, "data": {"text/plain": "2"}}], False)
    assert namespace["_"] == 2


@pytest.mark.parametrize("code", ["1 + 1;", "1 + 1;  # quiet", "1 + 1;\n\n", "None", "x = 3", "def f(): pass",
                                  "print('out')", "for i in range(2):\n    i"])
def test_no_main_result_when_quiet_none_or_not_an_expression(code):
    namespace = {}
    assert run(code, namespace, display=True).results == []
    assert "_" not in namespace


def test_a_semicolon_inside_a_comment_or_string_does_not_silence():
    assert texts(run("1 + 1  # ;", display=True)) == [(True, "2")]
    assert texts(run("';'", display=True)) == [(True, "';'")]


def test_underscores_hold_the_last_three_values_as_ipython():
    namespace = {}
    for value in (1, 2, 3, 4):
        run(str(value), namespace, display=True)
    assert (namespace["_"], namespace["__"], namespace["___"]) == (4, 3, 2)
    run("None", namespace, display=True)  # nothing shown: history unchanged
    assert namespace["_"] == 4


def test_an_underscore_the_job_bound_itself_is_left_alone():
    namespace = {}
    run("1", namespace, display=True)
    run("for _ in range(5): pass", namespace, display=True)
    run("2", namespace, display=True)
    assert namespace["_"] == 4 and "__" in namespace and namespace["__"] is None


def test_display_adds_results_in_order_before_the_main_result():
    outcome = run("display(1, 'a')\ndisplay()\n3", display=True)
    assert texts(outcome) == [(False, "1"), (False, "'a'"), (True, "3")]


def test_display_is_a_builtin_only_during_a_display_cell():
    import builtins
    assert "display" not in vars(builtins)
    outcome = run("import json\ndisplay(json)\nlen.__self__.display is display", display=True)
    assert texts(outcome)[-1] == (True, "True")
    assert "display" not in vars(builtins)


def test_display_passes_include_exclude_and_raw():
    code = ("class R:\n    def _repr_html_(self): return '<b>r</b>'\n    def __repr__(self): return 'R'\n"
            "display(R(), include=['text/html'])\ndisplay(R(), exclude=['text/html'])\n"
            "display({'text/markdown': '*m*'}, raw=True)\ndisplay(R(), metadata={'k': 1}, display_id='ignored')")
    outcome = run(code, display=True)
    assert [r["data"] for r in outcome.results] == [
        {"text/html": "<b>r</b>"}, {"text/plain": "R"}, {"text/markdown": "*m*"},
        {"text/plain": "R", "text/html": "<b>r</b>"}]


def test_an_object_that_displays_itself_is_not_formatted():
    code = ("class Self:\n    def _ipython_display_(self): display('by itself')\n"
            "class Broken:\n    def _ipython_display_(self): raise RuntimeError\nSelf()\nBroken()\n")
    outcome = run(code + "Self()", display=True)
    assert outcome.exit_code == 0 and texts(outcome) == [(False, "'by itself'")]


def test_a_dataframe_result_is_an_html_table():
    pytest.importorskip("pandas")
    outcome = run("import pandas as pd\npd.DataFrame({'a': [1, 2]})", display=True)
    [result] = outcome.results
    assert result["main"] and "<table" in result["data"]["text/html"] and "text/plain" in result["data"]


def test_top_level_await_and_tasks_that_outlive_their_cell():
    namespace = {}
    outcome = run("import asyncio\nawait asyncio.sleep(0)\ntask = asyncio.ensure_future(asyncio.sleep(0, 'done'))\n"
                  "async def twice(x):\n    return 2 * x\nawait twice(21)", namespace, display=True)
    assert texts(outcome) == [(True, "42")]
    assert texts(run("await task", namespace, display=True)) == [(True, "'done'")]
    namespace["gen"] = _agen
    assert texts(run("async for v in gen():\n    display(v)\n[v async for v in gen()]", namespace,
                     display=True)) == [(False, "0"), (False, "1"), (True, "[0, 1]")]


async def _agen():
    for i in range(2):
        yield i


def test_a_display_cell_without_await_runs_in_no_event_loop():
    # asyncio.run refuses to start inside a running loop
    outcome = run("import asyncio\nasyncio.run(asyncio.sleep(0, 'ran'))", display=True)
    assert outcome.error is None and texts(outcome) == [(True, "'ran'")]


def test_an_error_keeps_the_results_shown_before_it(capsys):
    outcome = run("display('before')\n1 / 0\n'never'", display=True)
    assert outcome.exit_code == 1 and outcome.error["name"] == "ZeroDivisionError"
    assert 'File "<leeward>", line 2' in outcome.error["traceback"] and "cell.py" not in outcome.error["traceback"]
    assert texts(outcome) == [(False, "'before'")]
    assert capsys.readouterr().err == outcome.error["traceback"]


def test_an_error_in_the_final_expression_or_an_awaited_coroutine_is_the_cells():
    outcome = run("async def f():\n    raise KeyError('k')\nawait f()", display=True)
    assert outcome.error["name"] == "KeyError"
    assert outcome.error["traceback"].count('File "<leeward>"') == 2
    assert run("undefined_name", display=True).error["name"] == "NameError"


def test_a_syntax_error_is_reported_as_python_reports_it():
    outcome = run("x = (", display=True)
    assert outcome.exit_code == 1 and outcome.error["name"] == "SyntaxError"
    assert 'File "<leeward>", line 1' in outcome.error["traceback"]


def test_sys_exit_in_a_display_cell_sets_the_exit_code():
    assert run("display(1)\nimport sys; sys.exit(3)", display=True) == cell.CellOutcome(
        3, None, [{"main": False, "data": {"text/plain": "1"}}], False)


def test_results_past_results_max_are_dropped_and_marked():
    # 'a' * 100 takes 112 bytes of 130; 'c' * 100 would pass the cap; 'b' and 'd' would fit but come after it
    outcome = run("display('a' * 100)\ndisplay('c' * 100)\ndisplay('b')\n'd'", display=True, results_max=130)
    assert texts(outcome) == [(False, "'" + "a" * 100 + "'")]
    assert outcome.results_truncated


def test_repr_max_caps_each_text_plain():
    assert texts(run("'x' * 1000", display=True, repr_max=10)) == [(True, "'xxxxxxxxx")]


# ---------------------------------------------------------------- matplotlib, in fresh processes

def in_fresh_process(script: str) -> dict:
    """Runs `script` in a new interpreter (so whether matplotlib is imported is its
    own business) and returns the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


FRESH_PRELUDE = """
import json, sys
from leeward_daemon.sandbox import cell
namespace = {}
def cell_results(code):
    outcome = cell.run_cell(code, namespace, display=True, filename="<leeward>")
    assert outcome.error is None, outcome.error
    return [{"main": r["main"], "types": sorted(r["data"]),
             "png": r["data"].get("image/png", b"")[:8] == b"\\x89PNG\\r\\n\\x1a\\n"} for r in outcome.results]
"""


def test_a_display_cell_never_imports_matplotlib():
    report = in_fresh_process(FRESH_PRELUDE + """
cell_results("x = 1\\nx + 1\\ndisplay(x)")
print(json.dumps({"imported": sorted(m for m in sys.modules if m.startswith("matplotlib"))}))
""")
    assert report == {"imported": []}


def test_plt_show_and_the_cells_end_emit_png_figures_and_close_them():
    pytest.importorskip("matplotlib")
    report = in_fresh_process(FRESH_PRELUDE + """
first = cell_results(
    "import matplotlib\\nmatplotlib.use('Agg')\\nimport matplotlib.pyplot as plt\\n"
    "plt.plot([1, 2])\\nplt.show()\\n"          # shown and closed here
    "display('between')\\n"
    "plt.plot([3, 4])\\nplt.show()\\n"          # a new figure, shown here
    "fig, ax = plt.subplots()\\nax.bar([1], [2])\\n"
    "None")                                      # left open: shown at the cell's end
from matplotlib.pyplot import show as bound_early
second = cell_results("from matplotlib.pyplot import show\\nplt.figure()\\nplt.plot([5])\\nshow()\\n7")
import matplotlib.pyplot as plt
print(json.dumps({"first": first, "second": second, "open": plt.get_fignums(),
                  "outside_show_is_matplotlibs": plt.show._leeward_original is not None}))
""")
    png = {"main": False, "types": ["image/png", "text/plain"], "png": True}
    text = {"main": False, "types": ["text/plain"], "png": False}
    assert report["first"] == [png, text, png, png]
    assert report["second"] == [png, {"main": True, "types": ["text/plain"], "png": False}]
    assert report["open"] == []


def test_pyplot_imported_before_the_cell_is_watched_too():
    pytest.importorskip("matplotlib")
    report = in_fresh_process(FRESH_PRELUDE + """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([1])                      # a figure left open by code before the cell
namespace["plt"] = plt
results = cell_results("plt.show()\\nplt.plot([2])\\n1")
print(json.dumps({"results": results, "open": plt.get_fignums()}))
""")
    assert [r["types"] for r in report["results"]] == [["image/png", "text/plain"], ["text/plain"],
                                                       ["image/png", "text/plain"]]
    assert report["open"] == []
