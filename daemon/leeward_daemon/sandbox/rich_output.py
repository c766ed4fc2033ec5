"""A run's rich output as the sandbox reports it: the cell's display results and, when
the run asked, the files it left in the workdir (collect.py), cut to the run's caps the
way the daemon counts them (messages.fit_results / fit_files), so the reply fits the
frame the daemon allows for it."""
from __future__ import annotations

from ..ipc import messages
from ..model import WORKDIR, Run
from . import collect
from .cell import CellOutcome


def report(run: Run, outcome: CellOutcome) -> messages.RichOutput:
    """Call after the code is done (a one-shot job's: after its interpreter shutdown), so
    files written by atexit handlers and threads are in."""
    results = files = None
    results_cut = files_cut = False
    if run.display:
        results, results_cut = messages.fit_results(
            [messages.RichResult(item["main"], item["data"]) for item in outcome.results], run.results_max)
        results_cut = results_cut or outcome.results_truncated
    if run.collect:
        try:
            found, files_cut = collect.collect(list(run.collect), WORKDIR, max_bytes=run.collect_max,
                                               max_files=run.collect_files_max)
        except OSError:  # the job made its workdir unreadable: nothing to collect
            found = {}
        files, cut = messages.fit_files(found, run.collect_max, run.collect_files_max)
        files_cut = files_cut or cut
    return messages.RichOutput(results, results_cut, files, files_cut)
