"""matplotlib (Agg): figures with text render and a PNG lands on the host through a rw mount."""
import os

import pytest

pytestmark = pytest.mark.integration

PLOT = r"""
import io, json, os
import matplotlib
import numpy as np
import matplotlib.pyplot as plt

x = np.linspace(0, 2 * np.pi, 200)
fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 3.2), dpi=100)
left.plot(x, np.sin(x), label="sin")
left.plot(x, np.cos(x), "--", label="cos")
left.set_title("waves")           # text: FreeType and the font cache under $HOME=/tmp
left.legend()
counts, edges, _ = right.hist(np.random.default_rng(3).normal(size=5000), bins=20)
right.set_xlabel("value")
fig.tight_layout()
target = "/out/NAME.png"
fig.savefig(target)

svg = io.StringIO()
fig.savefig(svg, format="svg")
fig.savefig("/tmp/figure.pdf")
fig.canvas.draw()
pixels = np.asarray(fig.canvas.buffer_rgba())
plt.close(fig)

print(json.dumps({
    "backend": matplotlib.get_backend(),
    "png_bytes": os.path.getsize(target),
    "hist_total": int(counts.sum()),
    "hist_bins": len(counts),
    "svg_has_title": "<!-- waves -->" in svg.getvalue(),
    "pdf_magic": open("/tmp/figure.pdf", "rb").read(5).decode(),
    "canvas": list(pixels.shape),
    "ink": bool((pixels[..., :3] < 128).any()),
    "config_dir": matplotlib.get_configdir(),
    "cache_dir": matplotlib.get_cachedir(),
}))
"""


def test_matplotlib_savefig_png_to_rw_mount(run_json, rw_out, unique_name, png_size):
    host_dir, mounts = rw_out
    code = PLOT.replace("NAME", unique_name)
    report = run_json(code, mounts=mounts, env={"MPLBACKEND": "Agg"})

    assert report["backend"].lower() == "agg"
    assert report["hist_total"] == 5000 and report["hist_bins"] == 20
    assert report["svg_has_title"] is True
    assert report["pdf_magic"] == "%PDF-"
    assert report["canvas"] == [320, 640, 4]
    assert report["ink"] is True
    assert report["config_dir"].startswith("/tmp") and report["cache_dir"].startswith("/tmp")

    path = os.path.join(host_dir, f"{unique_name}.png")
    with open(path, "rb") as fh:
        data = fh.read()
    assert len(data) == report["png_bytes"] > 1000
    assert png_size(data) == (640, 320)


def test_matplotlib_use_agg_without_env(run_json, rw_out, unique_name, png_size):
    """matplotlib.use('Agg') in code, no MPLBACKEND: the usual notebook-to-script pattern."""
    host_dir, mounts = rw_out
    code = ("import json, matplotlib\n"
            "matplotlib.use('Agg')\n"
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(2, 1), dpi=50)\n"
            "bars = ax.bar(['a', 'b', 'c'], [3, 1, 2])\n"
            f"fig.savefig('/out/{unique_name}.png')\n"
            "print(json.dumps({'backend': matplotlib.get_backend().lower(), 'bars': [float(b.get_height()) for b in bars]}))\n")
    report = run_json(code, mounts=mounts)
    assert report == {"backend": "agg", "bars": [3.0, 1.0, 2.0]}
    with open(os.path.join(host_dir, f"{unique_name}.png"), "rb") as fh:
        assert png_size(fh.read()) == (100, 50)
