"""An "agent-like" job end to end: input CSV via files=, pandas, a chart on a rw mount, JSON out."""
import csv
import io
import json
import os

import pytest

pytestmark = pytest.mark.integration

CATEGORIES = ["books", "games", "music", "tools"]


def _make_csv() -> tuple[bytes, list[dict]]:
    rows = []
    for i in range(240):
        rows.append({"order_id": 1000 + i,
                     "date": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
                     "category": CATEGORIES[(i * 7) % 4],
                     "quantity": (i * 13) % 9 + 1,
                     "unit_price": round(1.25 + (i * 37) % 50 * 0.5, 2)})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(), rows


AGENT = r"""
import json, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

df = pd.read_csv("inputs/orders.csv", parse_dates=["date"])
df["revenue"] = df["quantity"] * df["unit_price"]
by_cat = df.groupby("category")["revenue"].sum().sort_values(ascending=False)
monthly = df.groupby(df["date"].dt.month)["quantity"].sum()
describe = df["unit_price"].describe()

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
by_cat.plot.bar(ax=ax1, title="Revenue by category")
monthly.plot(ax=ax2, marker="o", title="Units per month")
fig.tight_layout()
chart = "/out/CHART.png"
fig.savefig(chart)

print("summary follows")
print(json.dumps({
    "rows": int(len(df)),
    "revenue_total": round(float(df["revenue"].sum()), 2),
    "revenue_by_category": {k: round(float(v), 2) for k, v in by_cat.items()},
    "top_category": by_cat.index[0],
    "units_by_month": {int(k): int(v) for k, v in monthly.items()},
    "price_min_max": [float(describe["min"]), float(describe["max"])],
    "chart": chart,
    "chart_bytes": os.path.getsize(chart),
}))
"""


def test_agent_like_csv_to_chart_and_json(run_clean, rw_out, unique_name, png_size):
    host_dir, mounts = rw_out
    data, rows = _make_csv()
    stdout = run_clean(AGENT.replace("CHART", unique_name), mounts=mounts,
                       files={"inputs/orders.csv": data})
    first, report_line = stdout.strip().splitlines()
    assert first == "summary follows"
    report = json.loads(report_line)

    revenue = {}
    months = {}
    for row in rows:
        revenue[row["category"]] = revenue.get(row["category"], 0.0) + row["quantity"] * row["unit_price"]
        month = int(row["date"][5:7])
        months[month] = months.get(month, 0) + row["quantity"]
    assert report["rows"] == 240
    assert report["revenue_total"] == pytest.approx(sum(revenue.values()), abs=0.01)
    assert report["revenue_by_category"] == pytest.approx(revenue, abs=0.01)
    assert report["top_category"] == max(revenue, key=revenue.get)
    assert report["units_by_month"] == {str(m): q for m, q in sorted(months.items())}
    prices = [row["unit_price"] for row in rows]
    assert report["price_min_max"] == [min(prices), max(prices)]
    assert report["chart"] == f"/out/{unique_name}.png"

    with open(os.path.join(host_dir, f"{unique_name}.png"), "rb") as fh:
        png = fh.read()
    assert len(png) == report["chart_bytes"]
    assert png_size(png) == (800, 300)
