"""pandas: merge, groupby, pivot, datetime ops, CSV/JSON/pickle round trips in /tmp."""
import datetime

import pytest

pytestmark = pytest.mark.integration

PRICES = {"north": 2.0, "south": 3.0, "east": 5.0}
REGIONS = {"north": "A", "south": "B", "east": "A"}
STORES = ["north", "south", "east"]

WORKLOAD = r"""
import json, os
import numpy as np
import pandas as pd

sales = pd.DataFrame({
    "date": pd.date_range("2024-01-01", periods=90, freq="D"),
    "store": ["north", "south", "east"] * 30,
    "units": np.arange(90) % 7 + 1,
})
stores = pd.DataFrame({"store": ["north", "south", "east"],
                       "region": ["A", "B", "A"],
                       "price": [2.0, 3.0, 5.0]})
df = sales.merge(stores, on="store", how="left", validate="many_to_one")
df["revenue"] = df["units"] * df["price"]
df["month"] = df["date"].dt.to_period("M").astype(str)
df["weekday"] = df["date"].dt.day_name()

by_region = df.groupby("region")["revenue"].sum()
agg = df.groupby("store").agg(units=("units", "sum"), best=("units", "max"), days=("date", "nunique"))
pivot = df.pivot_table(index="month", columns="store", values="units", aggfunc="sum")
weekly = df.set_index("date")["units"].resample("W-SUN").sum()
rolling = df["units"].rolling(7).mean()
span = df["date"].max() - df["date"].min()
shifted = (df["date"] + pd.Timedelta(days=30) + pd.offsets.MonthEnd(0)).dt.strftime("%Y-%m-%d")

csv_path = "/tmp/sales.csv"
df.to_csv(csv_path, index=False)
back = pd.read_csv(csv_path, parse_dates=["date"])
pd.testing.assert_frame_equal(back, df, check_dtype=False)
df.to_json("/tmp/sales.json", orient="records", date_format="iso")
from_json = pd.read_json("/tmp/sales.json", orient="records", dtype=False)
from_json["date"] = pd.to_datetime(from_json["date"])
df.to_pickle("/tmp/sales.pkl")
from_pickle = pd.read_pickle("/tmp/sales.pkl")
pd.testing.assert_frame_equal(from_pickle, df)

print(json.dumps({
    "rows": len(df),
    "by_region": {k: float(v) for k, v in by_region.items()},
    "agg": {s: [int(r.units), int(r.best), int(r.days)] for s, r in agg.iterrows()},
    "pivot": {m: {s: int(pivot.loc[m, s]) for s in pivot.columns} for m in pivot.index},
    "weekly_first3": [[d.strftime("%Y-%m-%d"), int(v)] for d, v in list(weekly.items())[:3]],
    "weekly_total": int(weekly.sum()),
    "rolling_last": float(rolling.iloc[-1]),
    "rolling_nans": int(rolling.isna().sum()),
    "span_days": span.days,
    "shifted_first": shifted.iloc[0],
    "weekday_counts": {k: int(v) for k, v in df["weekday"].value_counts().sort_index().items()},
    "csv_bytes": os.path.getsize(csv_path),
    "json_revenue": float(from_json["revenue"].sum()),
    "json_first_date": from_json["date"].iloc[0].strftime("%Y-%m-%d"),
}))
"""


def _expected():
    """The same figures from plain Python, independent of pandas."""
    start = datetime.date(2024, 1, 1)
    rows = [(start + datetime.timedelta(days=i), STORES[i % 3], i % 7 + 1) for i in range(90)]
    by_region, agg, pivot, weekdays = {}, {}, {}, {}
    for day, store, units in rows:
        region = REGIONS[store]
        by_region[region] = by_region.get(region, 0.0) + units * PRICES[store]
        total, best, days = agg.get(store, (0, 0, 0))
        agg[store] = (total + units, max(best, units), days + 1)
        month = pivot.setdefault(day.strftime("%Y-%m"), {})
        month[store] = month.get(store, 0) + units
        name = day.strftime("%A")
        weekdays[name] = weekdays.get(name, 0) + 1
    # 2024-01-01 is a Monday: the first W-SUN bin ends on Sunday 2024-01-07.
    weekly_first3 = [[(start + datetime.timedelta(days=6 + 7 * w)).isoformat(),
                      sum(u for d, _, u in rows if 7 * w <= (d - start).days < 7 * w + 7)]
                     for w in range(3)]
    return {
        "rows": 90,
        "by_region": by_region,
        "agg": {s: list(v) for s, v in agg.items()},
        "pivot": pivot,
        "weekly_first3": weekly_first3,
        "weekly_total": sum(u for *_, u in rows),
        "rolling_last": sum(u for *_, u in rows[-7:]) / 7,
        "rolling_nans": 6,
        "span_days": 89,
        "shifted_first": "2024-01-31",
        "weekday_counts": dict(sorted(weekdays.items())),
        "json_revenue": sum(by_region.values()),
        "json_first_date": "2024-01-01",
    }


def test_pandas_dataframe_workload(run_json):
    report = run_json(WORKLOAD)
    assert report.pop("csv_bytes") > 90 * 20  # a header and 90 full rows reached the disk
    expected = _expected()
    assert report.pop("rolling_last") == pytest.approx(expected.pop("rolling_last"))
    assert report == expected
