"""One cell of Python in a namespace: a one-shot job's code run as `python -c` runs it,
or (display) as a notebook cell runs it, IPython's way without IPython. A plain
library: it imports nothing of the daemon, so it runs and is tested in a plain process
as in a sandbox.

The caller owns the namespace (one per job, or one per session, kept between cells)
and the process's end (runner.py): a cell never joins threads or runs atexit handlers.

A display cell: top-level `await`; the value of a final expression statement (unless
None, or the source ends with `;`) is the main result and becomes `_` (`__`, `___`
before it); a `display(*objs)` builtin adds results; matplotlib figures still open at
`plt.show()` or at the cell's end become image/png results and are closed.
"""
from __future__ import annotations

import ast
import builtins
import importlib.machinery
import io
import sys
import tokenize
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from . import display as rich


@dataclass
class CellOutcome:
    exit_code: int  # 0, or what `python -c` would exit with
    error: dict | None  # the uncaught exception: {name, value, traceback}
    results: list[dict] = field(default_factory=list)  # [{main, data: {mime: value}}]
    results_truncated: bool = False


def new_main_namespace() -> dict:
    """Fresh globals of a new `__main__` module, which becomes sys.modules["__main__"]
    (pickle and `if __name__ == "__main__"` rely on it)."""
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    return main.__dict__


def run_cell(code: str, namespace: dict, *, display: bool, filename: str,
             results_max: int = rich.RESULTS_MAX, repr_max: int = rich.REPR_MAX) -> CellOutcome:
    """Runs `code` in `namespace`. An uncaught exception is printed to stderr, as the
    interpreter prints it, and reported; SystemExit sets the exit code instead. Results
    come only from a display cell: at most `results_max` bytes in all, each text/plain
    at most `repr_max` bytes."""
    results = rich.Results(results_max)
    exit_code, error = 0, None
    try:
        if display:
            _run_displayed(code, namespace, filename, _Cell(results, repr_max))
        else:
            exec(compile(code, filename, "exec"), namespace)
    except SystemExit as exc:
        exit_code = _system_exit_code(exc)
    except BaseException as exc:  # the job's own failure, reported like the interpreter would
        exit_code, error = 1, _report(exc, filename)
    return CellOutcome(exit_code, error, results.items, results.truncated)


# ---------------------------------------------------------------- display cells

# The display cell running now: where display() and plt.show() put their results.
_current: "_Cell | None" = None
# Where a namespace keeps what its displayhook last bound to _, __, ___ (IPython keeps
# it on the hook; here it must live as long as the namespace does).
HISTORY_KEY = "__leeward_outputs__"
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect into every sandbox


@dataclass
class _Cell:
    results: rich.Results
    repr_max: int

    def show(self, obj: Any, *, main: bool = False, include=None, exclude=None, raw: bool = False) -> None:
        if raw:
            self.results.add(rich.raw_bundle(obj, repr_max=self.repr_max), main=main)
            return
        displays_itself = rich.formatter_method(obj, "_ipython_display_")
        if displays_itself is not None:  # IPython's rule: it calls display() itself
            try:
                displays_itself()
            except Exception:
                pass  # a raising display method is skipped like a raising _repr_
            return
        self.results.add(rich.mime_bundle(obj, repr_max=self.repr_max, include=include, exclude=exclude), main=main)

    def flush_figures(self) -> None:
        for bundle in rich.open_figure_bundles(self.repr_max):
            self.results.add(bundle, main=False)


def _run_displayed(code: str, namespace: dict, filename: str, cell: _Cell) -> None:
    global _current
    tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | _TOP_LEVEL_AWAIT)
    final = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    previous_display = builtins.__dict__.get("display", _ABSENT)
    _current, builtins.display = cell, display
    _watch_pyplot()
    try:
        _evaluate(compile(tree, filename, "exec", _TOP_LEVEL_AWAIT), namespace)
        if final is not None:
            expression = ast.Expression(final.value)
            value = _evaluate(compile(expression, filename, "eval", _TOP_LEVEL_AWAIT), namespace)
            if value is not None and not _ends_with_semicolon(code):
                cell.show(value, main=True)
                _bind_underscores(namespace, value)
    finally:
        try:
            cell.flush_figures()  # as IPython's post_execute: after an error too
        finally:
            _unwatch_pyplot()
            _current = None
            if previous_display is _ABSENT:
                builtins.__dict__.pop("display", None)
            else:
                builtins.display = previous_display


_ABSENT = object()


def display(*objs: Any, include=None, exclude=None, raw: bool = False, **_ipython_only: Any) -> None:
    """IPython's display(): each object's rich representation becomes a result of the
    running cell. (`metadata`, `transient`, `display_id`, `clear` are accepted for
    IPython's sake and have no effect here.)"""
    cell = _current
    if cell is None:
        return  # called after its cell ended (a thread): no cell to show it in
    for obj in objs:
        cell.show(obj, include=include, exclude=exclude, raw=raw)


def _evaluate(code: types.CodeType, namespace: dict) -> Any:
    """The code's value; code with a top-level await is a coroutine, run to its end on
    the cell's event loop (one per process, so tasks outlive their cell)."""
    value = eval(code, namespace)
    if code.co_flags & CO_COROUTINE:
        value = _event_loop().run_until_complete(value)
    return value


_loop = None


def _event_loop():
    global _loop
    if _loop is None or _loop.is_closed():
        import asyncio  # only a cell that awaits pays for asyncio
        _loop = asyncio.new_event_loop()
    return _loop


def _ends_with_semicolon(code: str) -> bool:
    """IPython's rule: the last token that is not a comment or a line end is `;`."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    for token in reversed(tokens):
        if token.type in (tokenize.ENDMARKER, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT,
                          tokenize.DEDENT, tokenize.INDENT):
            continue
        return token.type == tokenize.OP and token.string == ";"
    return False


def _bind_underscores(namespace: dict, value: Any) -> None:
    """IPython's displayhook: `_` is the newest value, `__` and `___` the two before;
    the names are left alone once the job has bound one of them itself (gettext's `_`,
    `for _ in ...`), but the history moves on."""
    history = namespace.get(HISTORY_KEY)
    if not isinstance(history, dict):
        history = namespace[HISTORY_KEY] = {}
    names = ("_", "__", "___")
    unchanged = all(name not in namespace or namespace[name] is history.get(name) for name in names)
    history["___"], history["__"], history["_"] = history.get("__"), history.get("_"), value
    if unchanged:
        namespace.update(history)


# ---------------------------------------------------------------- plt.show()

_PYPLOT = "matplotlib.pyplot"


def _watch_pyplot() -> None:
    """plt.show() in a display cell shows the open figures as results, as IPython's
    inline backend does. pyplot is patched where it is already imported, else when the
    cell imports it: matplotlib is never imported here."""
    pyplot = sys.modules.get(_PYPLOT)
    if pyplot is not None:
        _patch_show(pyplot)
    elif not any(isinstance(finder, _PyplotImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PyplotImportHook())


def _unwatch_pyplot() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _PyplotImportHook)]


def _patch_show(pyplot: types.ModuleType) -> None:
    original = pyplot.show
    if getattr(original, "_leeward_original", None) is not None:
        return

    def show(*args: Any, **kwargs: Any) -> Any:
        cell = _current
        if cell is None:  # outside a display cell: matplotlib's own show
            return original(*args, **kwargs)
        cell.flush_figures()
        return None

    show._leeward_original = original
    show.__doc__ = original.__doc__
    pyplot.show = show


class _PyplotImportHook:
    """A meta path finder that patches pyplot right after it is first executed, before
    the importing code can bind `show` from it."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != _PYPLOT:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, _patch_show)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader: Any, after: Callable[[types.ModuleType], None]) -> None:
        self._loader, self._after = loader, after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        self._after(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ... of the real loader
        return getattr(self._loader, name)


# ---------------------------------------------------------------- errors and exit status


def _report(exc: BaseException, filename: str) -> dict:
    tb = "".join(traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__, filename)))
    safe_write(sys.stderr, tb)
    return {"name": type(exc).__name__, "value": _text(exc), "traceback": tb}


def _system_exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of SystemExit's code: None is 0, an int (a bool too)
    is itself, or -1 when it does not fit a C long; anything else is printed and is 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return int(exc.code) if -(1 << 63) <= exc.code < (1 << 63) else -1
    safe_write(sys.stderr, f"{exc.code}\n")
    return 1


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a job's __str__ may raise anything
        return f"<unprintable {type(exc).__name__} object>"


def _user_frames(tb: types.TracebackType | None, filename: str) -> types.TracebackType | None:
    """Drop leeward's own frames so the traceback starts in the cell's code."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def safe_write(stream: io.TextIOBase, text: str) -> None:
    try:
        stream.write(text)
    except (OSError, ValueError):
        pass  # stderr closed by the job or cut by the output cap
