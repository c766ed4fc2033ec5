"""What an object looks like as a rich result: IPython's display protocol without
IPython, and the cell's list of results under its size cap.

A bundle maps MIME types to values of the wire's types: text is str, image/png,
image/jpeg and application/pdf are bytes, JSON is a dict. Objects are the job's own:
any of their methods may raise or return junk, which costs that MIME type only.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import sys
from typing import Any, Callable, Collection

REPR_MAX = 64 * 1024  # bytes of text/plain
RESULTS_MAX = 8 * 1024 * 1024  # bytes of all of a cell's results

# IPython's formatters after text/plain, in its order: (MIME type, method).
REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("application/pdf", "_repr_pdf_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
)
BINARY_TYPES = frozenset({"image/png", "image/jpeg", "application/pdf"})


def mime_bundle(obj: Any, *, repr_max: int = REPR_MAX, include: Collection[str] | None = None,
                exclude: Collection[str] | None = None) -> dict[str, Any]:
    """IPython's DisplayFormatter.format: `_repr_mimebundle_(include=, exclude=)` first
    (filtered by include/exclude), then each `_repr_*_` method for the types it did not
    give, then text/plain from repr. Empty include/exclude filter nothing, as in IPython."""
    def wanted(mime: str) -> bool:
        return (not include or mime in include) and (not exclude or mime not in exclude)

    bundle: dict[str, Any] = {}
    method = formatter_method(obj, "_repr_mimebundle_")
    if method is not None:
        given = _call(lambda: method(include=include, exclude=exclude))
        given = given[0] if isinstance(given, tuple) and given else given  # (data, metadata)
        bundle = raw_bundle(given, repr_max=repr_max, wanted=wanted)
    if "text/plain" not in bundle and wanted("text/plain"):
        _put(bundle, "text/plain", _call(lambda: repr(obj)), repr_max)
    for mime, name in REPR_METHODS:
        if mime in bundle or not wanted(mime):
            continue
        method = formatter_method(obj, name)
        if method is not None:
            value = _call(method)
            _put(bundle, mime, value[0] if isinstance(value, tuple) and value else value, repr_max)
    return bundle


def raw_bundle(given: Any, *, repr_max: int = REPR_MAX, wanted: Callable[[str], bool] = lambda mime: True
               ) -> dict[str, Any]:
    """A bundle given as a mapping (`display(..., raw=True)`, `_repr_mimebundle_`), kept
    to the types asked for and the values the wire can carry."""
    bundle: dict[str, Any] = {}
    if isinstance(given, dict):
        for mime, value in given.items():
            if isinstance(mime, str) and wanted(mime):
                _put(bundle, mime, value, repr_max)
    return bundle


def formatter_method(obj: Any, name: str) -> Callable | None:
    """As IPython looks them up: never on a class (its methods want an instance), and
    an attribute lookup that raises, or a non-callable, means none."""
    if isinstance(obj, type):
        return None
    try:
        method = getattr(obj, name, None)
    except Exception:
        return None
    return method if callable(method) else None


def _call(produce: Callable[[], Any]) -> Any:
    try:
        return produce()
    except Exception:  # a _repr_ that raises is skipped, as IPython skips it
        return None


def _put(bundle: dict[str, Any], mime: str, value: Any, repr_max: int) -> None:
    value = _wire_value(mime, value)
    if value is None:
        return
    if mime == "text/plain":
        value = _cut_utf8(value, repr_max)
    bundle[mime] = value


def _wire_value(mime: str, value: Any) -> str | bytes | dict | None:
    """The value as the wire carries this type, or None when it cannot be one."""
    if mime in BINARY_TYPES:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str):  # Jupyter's convention: base64 text
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return None
        return None
    if mime == "application/json" or mime.endswith("+json"):
        if isinstance(value, str):  # JSON given as text
            try:
                value = json.loads(value)
            except ValueError:
                return None
        return _plain_json(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            return None
    return None


def _plain_json(value: Any) -> dict | None:
    """A JSON object made only of JSON types (so it always packs), or None."""
    if not isinstance(value, dict):
        return None
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None


def _cut_utf8(text: str, limit: int) -> str:
    if len(text) * 4 <= limit:
        return text  # no character is more than 4 bytes: short enough unencoded
    return text.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")


def bundle_size(bundle: dict[str, Any]) -> int:
    """Bytes the bundle's values take on the wire, near enough to cap them."""
    size = 0
    for mime, value in bundle.items():
        size += len(mime)
        if isinstance(value, bytes):
            size += len(value)
        elif isinstance(value, str):
            size += len(value.encode("utf-8", "surrogatepass"))
        else:
            size += len(json.dumps(value))
    return size


class Results:
    """A cell's results in emission order, within `limit` bytes in all: the first that
    would pass it, and every one after, is dropped and the list marked truncated."""

    def __init__(self, limit: int = RESULTS_MAX) -> None:
        self.items: list[dict] = []
        self.truncated = False
        self._room = limit

    def add(self, bundle: dict[str, Any], *, main: bool) -> None:
        if not bundle:
            return  # nothing to show (all excluded, or the object displayed itself)
        size = bundle_size(bundle)
        if self.truncated or size > self._room:
            self.truncated = True
            return
        self._room -= size
        self.items.append({"main": main, "data": bundle})


# ---------------------------------------------------------------- matplotlib figures

def open_figure_bundles(repr_max: int = REPR_MAX) -> list[dict[str, Any]]:
    """Every figure pyplot holds open, as image/png (with its repr as text/plain, as
    IPython's inline backend gives), each closed once rendered. Imports nothing: with
    pyplot not imported by anyone there can be no figure."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    bundles = []
    for manager in sys.modules["matplotlib._pylab_helpers"].Gcf.get_all_fig_managers():
        figure = manager.canvas.figure
        try:
            bundles.append({"image/png": _png(figure), "text/plain": _cut_utf8(repr(figure), repr_max)})
        except Exception:  # a figure that cannot draw (the job's data) is dropped, not fatal
            pass
        finally:
            pyplot.close(figure)
    return bundles


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # As the inline backend draws: the Agg renderer whatever the backend, cropped tight.
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
