"""Signals against a plain reference: DESIGN §4's method written as loops over hand-read weekly counts.

The reference reads the weekly counts from the facts by its own SQL (not the weekly rollup) and walks
every municipality × category and every candidate start week with ``statistics.median``; the
vectorised ``detect_signals`` must flag exactly the same (municipality, category, week) signals with
the same numbers, on a small demo and on a generated warehouse made of edge cases (half medians, zero
baselines, surges that ease or break, counts at ``min_count``, a category filed under two sectors,
data that begin inside the span), for several parameters and data dates.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from pathlib import Path

import duckdb
import numpy as np
import pytest

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics.query import data_as_of
from metrics.signals import detect_signals, last_whole_week
from tests.conftest import finish_warehouse

FIRST_WEEK = dt.date(2025, 3, 3)  # a Monday: the generated data begin here
DATA_DATE = dt.datetime(2025, 10, 29, 12)  # latest whole week: 2025-10-20
PARAMS = [
    {},
    {"min_count": 1},
    {"min_count": 3, "z_threshold": 2.5, "z_continue": 1.0},
    {"weeks": 5},
    {"weeks": 7, "min_count": 0, "z_threshold": 2.0, "z_continue": 2.0},
    {"weeks": 13, "z_continue": -1.0},
]


def reference_signals(con: duckdb.DuckDBPyConnection, as_of: dt.datetime, weeks: int = 12, min_count: int = 8,
                      z_threshold: float = 3.5, z_continue: float = 2.0) -> dict[tuple[int, int], dict]:
    """(municipality_id, category_id) -> the signal's numbers, by the method's words, one group at a time."""
    z_continue = min(z_continue, z_threshold)
    latest = last_whole_week(as_of)
    span = [latest - dt.timedelta(weeks=2 * weeks - 1 - i) for i in range(2 * weeks)]
    end = latest + dt.timedelta(days=7)
    counts: dict[tuple[int, int], dict[dt.date, int]] = {}
    for week, muni, cat, n in con.execute(
        "SELECT CAST(date_trunc('week', received_at) AS DATE), municipality_id, category_id, count(*) FROM appeal "
        "WHERE category_id IS NOT NULL AND municipality_id IS NOT NULL AND received_at >= ? AND received_at < ? "
        "GROUP BY ALL", [span[0], end]).fetchall():
        counts.setdefault((muni, cat), {})[week] = n
    data_start = con.execute("SELECT CAST(date_trunc('week', min(received_at)) AS DATE) FROM appeal "
                             "WHERE received_at < ?", [end]).fetchone()[0]
    found = {}
    for key, by_week in counts.items():
        x = [by_week.get(w, 0) for w in span]
        for j in range(weeks):  # the run starts at week weeks + j, its baseline the weeks j … j + weeks − 1
            if span[j] < data_start:
                continue  # the baseline would hold weeks before the data begin
            base = x[j:j + weeks]
            median = statistics.median(base)
            mad = statistics.median(abs(b - median) for b in base)
            scale = max(1.4826 * mad, math.sqrt(median), 1.0)
            run = x[weeks + j:]
            zs = [(c - median) / scale for c in run]
            if zs[0] < z_threshold or run[0] < min_count:
                continue
            if all(z >= z_continue and c >= min_count for z, c in zip(zs, run, strict=True)):
                found[key] = {"count": x[-1], "baseline": float(median), "z": zs[-1],
                              "ratio": x[-1] / median if median > 0 else math.nan,
                              "first_week": span[weeks + j], "weeks_running": weeks - j, "week": latest}
                break  # the earliest start is the whole run
    per_category: dict[int, int] = {}
    for _, cat in found:
        per_category[cat] = per_category.get(cat, 0) + 1
    for (_, cat), row in found.items():
        row["same_category_signals"] = per_category[cat]
    return found


def assert_same(con: duckdb.DuckDBPyConnection, as_of: dt.datetime, **params) -> int:
    expected = reference_signals(con, as_of, **params)
    df = detect_signals(as_of=as_of, con=con, **params)
    got = {(r.municipality_id, r.category_id): r for r in df.itertuples()}
    assert set(got) == set(expected), params
    for key, want in expected.items():
        row = got[key]
        for name, value in want.items():
            have = getattr(row, name)
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(have), (key, name)
            else:
                assert have == value, (key, name, have, value)  # exactly: the same arithmetic
    # strongest first
    assert df[["z", "count"]].values.tolist() == sorted(df[["z", "count"]].values.tolist(), key=lambda r: (-r[0], -r[1]))
    return len(expected)


def test_small_demo_equals_the_reference(small_demo: Path) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    try:
        as_of = data_as_of(con)
        fired = [assert_same(con, as_of, **p) for p in PARAMS]
        fired.append(assert_same(con, dt.datetime(2025, 9, 1), min_count=2))  # a past data date
        assert fired[0] > 0 and max(fired) > 20  # the demo does signal: the comparison is not empty
    finally:
        con.close()


# --- a generated warehouse of edge cases ------------------------------------------------------------


def _series(rng: np.random.Generator, shape: str, n_weeks: int) -> list[int]:
    """One municipality × category's weekly counts, oldest first, by the kind of case it plays."""
    x = rng.poisson(rng.uniform(1.5, 12), n_weeks)
    tail = int(rng.integers(1, 13))  # weeks of the surge at the end
    if shape == "surge":
        x[-tail:] = x[-tail:] + rng.integers(8, 30, tail)
    elif shape == "easing":  # strong start, then weaker weeks that may or may not keep z ≥ z_continue
        x[-tail:] = np.maximum(x[-tail:], np.linspace(30, 9, tail).round().astype(int))
    elif shape == "broken":  # a surge with one ordinary week inside: two runs
        x[-tail:] += 20
        x[-max(1, tail // 2)] = x[0]
    elif shape == "zeros":  # nothing, then a burst
        x[:] = 0
        x[-tail:] = rng.integers(6, 12, tail)
    elif shape == "halves":  # alternating counts: medians and MADs ending in .5
        x = np.where(np.arange(n_weeks) % 2, 3, 2)
        x[-tail:] = 8 + (np.arange(tail) % 3)
    elif shape == "threshold":  # the latest week right at min_count
        x[-1] = 8
    return [int(v) for v in x]


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("signals_edge") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    categories = c.execute("SELECT id, sector_id FROM category ORDER BY id").fetchall()[:8]
    other_sector = categories[-1][1]
    rng = np.random.default_rng(20251205)
    n_weeks = (last_whole_week(DATA_DATE) - FIRST_WEEK).days // 7 + 2  # the incomplete week included
    ids = itertools.count(1)
    rows = []
    shapes = ("surge", "easing", "broken", "zeros", "halves", "threshold", "plain")
    for muni in range(1, 8):
        for k, (cat, sector) in enumerate(categories):
            shape = shapes[(muni + k) % len(shapes)]
            # late groups begin in week 20: their first weeks are zeros, not unknown
            begin = 20 if (muni * k) % 5 == 4 else 0
            for w, n in enumerate(_series(rng, shape, n_weeks)):
                if w < begin:
                    continue
                week = FIRST_WEEK + dt.timedelta(weeks=w)
                for i in range(n):
                    rows.append({
                        "source": "t", "source_id": f"e{next(ids)}", "kind": "message", "channel": "pos",
                        "received_at": dt.datetime.combine(week + dt.timedelta(days=i % 7), dt.time(9, i % 60)),
                        "municipality_id": muni, "category_id": cat, "status": "new",
                        # a category filed under two sectors: its weekly rows must be summed
                        "sector_id": other_sector if (muni == 2 and i % 3 == 0) else sector})
    finish_warehouse(c, DATA_DATE.isoformat(sep=" "), rows)
    yield c
    c.close()


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "defaults")
def test_edge_cases_equal_the_reference(edge, params) -> None:
    assert assert_same(edge, DATA_DATE, **params) > 0


def test_data_beginning_inside_the_span(edge) -> None:
    # 2025-07-06 (a Sunday night): the 24-week span begins before the data, so early starts are not allowed
    as_of = dt.datetime(2025, 7, 6, 23, 30)
    assert last_whole_week(as_of) - dt.timedelta(weeks=23) < FIRST_WEEK
    for params in ({}, {"min_count": 1, "z_threshold": 2.0}, {"weeks": 8, "min_count": 2}):
        assert_same(edge, as_of, **params)
