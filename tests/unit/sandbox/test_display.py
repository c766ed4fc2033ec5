"""display.mime_bundle follows IPython's display protocol; Results caps a cell's
results; open_figure_bundles renders pyplot's open figures as PNG and closes them."""
from __future__ import annotations

import base64
import json
import sys

import pytest

from leeward_daemon.sandbox import display

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Rich:
    def __repr__(self):
        return "Rich()"

    def _repr_html_(self):
        return "<b>rich</b>"

    def _repr_markdown_(self):
        return "**rich**"

    def _repr_svg_(self):
        return "<svg/>"

    def _repr_png_(self):
        return PNG_SIGNATURE + b"png"

    def _repr_jpeg_(self):
        return base64.b64encode(b"\xff\xd8jpeg").decode()  # IPython allows base64 text

    def _repr_latex_(self):
        return r"$x$"

    def _repr_json_(self):
        return {"a": [1, 2.5, None, "s"]}

    def _repr_pdf_(self):
        return (b"%PDF-1.4", {"metadata": "is dropped"})


def test_every_repr_method_gives_its_type_with_wire_types():
    assert display.mime_bundle(Rich()) == {
        "text/plain": "Rich()",
        "text/html": "<b>rich</b>",
        "text/markdown": "**rich**",
        "image/svg+xml": "<svg/>",
        "image/png": PNG_SIGNATURE + b"png",
        "application/pdf": b"%PDF-1.4",
        "image/jpeg": b"\xff\xd8jpeg",
        "text/latex": "$x$",
        "application/json": {"a": [1, 2.5, None, "s"]},
    }


def test_a_plain_object_is_its_repr():
    assert display.mime_bundle(41 + 1) == {"text/plain": "42"}


def test_text_plain_is_capped_in_utf8_bytes():
    text = display.mime_bundle("é" * 100, repr_max=11)["text/plain"]
    assert text == "'ééééé"
    assert len(display.mime_bundle("x" * 100, repr_max=10)["text/plain"]) == 10


class Raising:
    def __repr__(self):
        return "Raising()"

    def _repr_html_(self):
        raise RuntimeError("broken")

    def _repr_png_(self):
        return 42  # not image data: skipped too

    def _repr_json_(self):
        return {"unpackable": object()}


def test_a_raising_or_junk_repr_method_is_skipped_not_fatal():
    assert display.mime_bundle(Raising()) == {"text/plain": "Raising()"}


def test_a_raising_repr_leaves_the_other_types():
    class BadRepr:
        def __repr__(self):
            raise ValueError

        def _repr_html_(self):
            return "<i>ok</i>"

    assert display.mime_bundle(BadRepr()) == {"text/html": "<i>ok</i>"}


def test_a_raising_attribute_lookup_is_no_method():
    class Lookup:
        def __getattr__(self, name):
            raise RuntimeError(name)

        def __repr__(self):
            return "Lookup()"

    assert display.mime_bundle(Lookup()) == {"text/plain": "Lookup()"}


def test_a_class_is_shown_by_repr_not_by_its_methods():
    assert display.mime_bundle(Rich) == {"text/plain": repr(Rich)}


class Bundled:
    def __init__(self):
        self.asked = None

    def _repr_mimebundle_(self, include=None, exclude=None):
        self.asked = (include, exclude)
        return ({"text/html": "<p>bundle</p>", "application/vnd.custom+json": {"k": 1},
                 "image/png": base64.b64encode(PNG_SIGNATURE).decode(), "text/plain": "from bundle"},
                {"metadata": 1})

    def _repr_html_(self):
        return "<p>method</p>"  # the bundle's text/html wins

    def _repr_latex_(self):
        return "$b$"  # a type the bundle did not give is still asked for


def test_repr_mimebundle_comes_first_and_methods_fill_in():
    obj = Bundled()
    assert display.mime_bundle(obj) == {
        "text/html": "<p>bundle</p>", "application/vnd.custom+json": {"k": 1}, "image/png": PNG_SIGNATURE,
        "text/plain": "from bundle", "text/latex": "$b$",
    }
    assert obj.asked == (None, None)


def test_include_and_exclude_filter_the_bundle_and_the_methods():
    obj = Bundled()
    assert display.mime_bundle(obj, include={"text/html", "text/latex"}) == {
        "text/html": "<p>bundle</p>", "text/latex": "$b$"}
    assert obj.asked == ({"text/html", "text/latex"}, None)
    assert set(display.mime_bundle(obj, exclude=["text/plain", "image/png", "text/latex"])) == {
        "text/html", "application/vnd.custom+json"}
    assert display.mime_bundle(Rich(), include=["text/plain"]) == {"text/plain": "Rich()"}
    assert display.mime_bundle(Rich(), exclude=list(display.mime_bundle(Rich()))) == {}
    # empty include/exclude filter nothing, as IPython's `if include:`
    assert display.mime_bundle(Rich(), include=[], exclude=[]) == display.mime_bundle(Rich())


def test_raw_bundle_keeps_only_values_the_wire_can_carry():
    given = {"text/plain": b"bytes text", "image/png": "not base64!", "application/json": '{"a": 1}',
             "text/html": 3, 7: "key not a str", "image/jpeg": bytearray(b"\xff\xd8")}
    assert display.raw_bundle(given) == {"text/plain": "bytes text", "application/json": {"a": 1},
                                         "image/jpeg": b"\xff\xd8"}
    assert display.raw_bundle(["not", "a", "map"]) == {}


def test_a_dataframe_is_an_html_table_and_text():
    pandas = pytest.importorskip("pandas")
    bundle = display.mime_bundle(pandas.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert set(bundle) == {"text/plain", "text/html"}
    assert "<table" in bundle["text/html"] and "</table>" in bundle["text/html"]
    assert bundle["text/plain"].split() == ["a", "b", "0", "1", "x", "1", "2", "y"]


def test_results_keep_emission_order_and_drop_all_after_the_cap():
    results = display.Results(limit=display.bundle_size({"text/plain": "a"}) * 2)
    results.add({"text/plain": "a"}, main=False)
    results.add({}, main=False)  # nothing to show: not a result, not truncation
    assert not results.truncated
    results.add({"text/plain": "too long"}, main=True)
    results.add({"text/plain": "b"}, main=False)  # would fit, but comes after a dropped one
    assert results.items == [{"main": False, "data": {"text/plain": "a"}}]
    assert results.truncated


def test_bundle_size_counts_encoded_bytes():
    assert display.bundle_size({"image/png": b"1234"}) == len("image/png") + 4
    assert display.bundle_size({"text/plain": "é"}) == len("text/plain") + 2
    assert display.bundle_size({"application/json": {"a": 1}}) == len("application/json") + len(json.dumps({"a": 1}))


def test_open_figures_become_png_and_are_closed():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    pyplot.close("all")
    pyplot.plot([1, 2, 3])
    pyplot.figure()
    pyplot.bar([1, 2], [3, 4])
    bundles = display.open_figure_bundles()
    assert len(bundles) == 2
    for bundle in bundles:
        assert bundle["image/png"].startswith(PNG_SIGNATURE)
        assert bundle["text/plain"].startswith("<Figure size")
    assert pyplot.get_fignums() == []
    assert display.open_figure_bundles() == []


def test_open_figures_import_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    assert display.open_figure_bundles() == []
    assert "matplotlib.pyplot" not in sys.modules
