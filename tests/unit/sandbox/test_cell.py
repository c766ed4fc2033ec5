"""cell.run_cell in a plain process: a one-shot cell ends as `python -c` would, and a
display cell behaves as a notebook cell (results, `_`, display(), top-level await,
matplotlib figures). The same code runs in a sandbox through the slot."""
from __future__ import annotations

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
