"""Signals: planted weekly series on a hand-built warehouse, then the stories of a small demo.

Weeks W0 = 2025-07-21 … W13 = 2025-10-20 are whole; the data date (Wed 2025-10-29) leaves
W14 = 2025-10-27 incomplete.

- Smolensk, Отопление: 2, 3, 2, 3 … over W0–W11, then 14 and 15. The run starts at W12 against
  W0–W11 (median 2.5, MAD 0.5 → scale max(0.74, √2.5, 1) = √2.5; z = 11.5 / √2.5 = 7.27) and
  goes on at W13 against the same baseline: z = 12.5 / √2.5 = 7.91, ratio 6.
- Velizh, Отопление: 1 every week, then 4 (scale 1: z = 3, no alarm even with min_count 1).
- Velizh, Ямы: 39, 40, 41 … then 47 (MAD 1 but √40 = 6.3: z = 1.1, a steady high count).
- Velizh, Ремонт дорог: nothing, then 10 at W13 (median 0, scale 1: z = 10, ratio unknown).
- Smolensk, Газификация: 50 in the incomplete W14 only: not read.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.demo import build_demo
from data.demo_stories import CHRONIC, SPIKES, resolve_stories
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics.scope import Scope
from metrics.signals import COLUMNS, detect_signals, last_whole_week, recent_signals
from tests.conftest import finish_warehouse

SMOLENSK, VELIZH = 1, 3
W0 = dt.date(2025, 7, 21)
W12, W13, W14 = (W0 + dt.timedelta(weeks=k) for k in (12, 13, 14))
_ids = itertools.count(1)


def _week_rows(week: dt.date, n: int, muni: int, sector: int, category: int) -> list[dict]:
    # spread over the week's days, as appeals arrive
    return [
        {"source": "t", "source_id": f"s{next(_ids)}", "kind": "message", "channel": "pos",
         "received_at": dt.datetime.combine(week + dt.timedelta(days=i % 5), dt.time(10, i % 60)),
         "municipality_id": muni, "sector_id": sector, "category_id": category, "status": "new"}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("signals") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    cat = {n: (i, s) for i, s, n in c.execute("SELECT id, sector_id, name FROM category").fetchall()}
    heat, pothole, repair, gas = (cat[n] for n in (
        "Отопление", "Ямы и разрушение покрытия", "Ремонт дорог и тротуаров", "Газификация"))
    rows: list[dict] = []
    for k in range(14):
        week = W0 + dt.timedelta(weeks=k)
        rows += _week_rows(week, {12: 14, 13: 15}.get(k, 2 + k % 2), SMOLENSK, heat[1], heat[0])
        rows += _week_rows(week, 4 if k == 13 else 1, VELIZH, heat[1], heat[0])
        rows += _week_rows(week, 47 if k == 13 else 39 + k % 3, VELIZH, pothole[1], pothole[0])
    rows += _week_rows(W13, 10, VELIZH, repair[1], repair[0])
    rows += _week_rows(W14, 50, SMOLENSK, gas[1], gas[0])
    finish_warehouse(c, "2025-10-29 12:00:00", rows)
    yield c
    c.close()


def test_planted_jump_fires_with_its_baseline_and_first_week(con) -> None:
    df = detect_signals(con=con)
    assert list(df.columns) == COLUMNS
    assert df["category_name"].tolist() == ["Ремонт дорог и тротуаров", "Отопление"]  # z 10, then 7.91
    heat = df.iloc[1]
    assert (heat["municipality_name"], heat["sector_code"]) == ("город Смоленск", "housing")
    assert (heat["week"], heat["first_week"], heat["weeks_running"]) == (W13, W12, 2)
    assert (heat["count"], heat["baseline"]) == (15, 2.5)
    assert heat["z"] == pytest.approx(12.5 / math.sqrt(2.5))
    assert heat["ratio"] == pytest.approx(6.0)
    roads = df.iloc[0]
    assert (roads["municipality_name"], roads["count"], roads["baseline"], roads["z"]) == ("Велижский", 10, 0, 10)
    assert math.isnan(roads["ratio"]) and roads["weeks_running"] == 1
    assert df["same_category_signals"].tolist() == [1, 1]


def test_small_and_steady_counts_do_not_fire(con) -> None:
    loose = detect_signals(con=con, min_count=1)
    pairs = set(zip(loose["municipality_name"], loose["category_name"], strict=True))
    assert ("Велижский", "Отопление") not in pairs  # 1 → 4
    assert ("Велижский", "Ямы и разрушение покрытия") not in pairs  # 39–41 → 47
    assert ("город Смоленск", "Газификация") not in pairs  # only in the incomplete week


def test_only_whole_weeks_up_to_the_data_date(con) -> None:
    assert last_whole_week(dt.datetime(2025, 10, 29, 12)) == W13
    assert last_whole_week(dt.datetime(2025, 10, 26, 23, 30)) == W13  # late Sunday: the week is whole
    assert last_whole_week(dt.datetime(2025, 10, 26, 12)) == W12
    # a past data date replays the wall: on Sunday night of W12 the run has just begun
    then = detect_signals(as_of=dt.datetime(2025, 10, 19, 23, 30), con=con)
    assert then[["category_name", "week", "first_week", "weeks_running", "count"]].values.tolist() == [
        ["Отопление", W12, W12, 1, 14]]
    assert then.loc[0, "z"] == pytest.approx(11.5 / math.sqrt(2.5))
    # a date means the whole day
    pd.testing.assert_frame_equal(detect_signals(as_of=dt.date(2025, 10, 26), con=con), detect_signals(con=con))


def test_scope_excludes_other_municipalities_signals(con) -> None:
    velizh = detect_signals(scope=Scope.municipalities({VELIZH}), con=con)
    assert velizh["municipality_id"].tolist() == [VELIZH]
    smolensk = detect_signals(scope=Scope.municipalities({SMOLENSK}), con=con)
    assert smolensk["category_name"].tolist() == ["Отопление"]
    roads_id = con.execute("SELECT id FROM sector WHERE code = 'roads'").fetchall()[0][0]
    assert detect_signals(scope=Scope.sectors({roads_id}), con=con)["sector_code"].tolist() == ["roads"]
    assert recent_signals(limit=1, con=con)["category_name"].tolist() == ["Ремонт дорог и тротуаров"]


def test_no_baseline_before_the_data_begin(con) -> None:
    # with a 20-week baseline no week has a whole baseline of data yet: nothing can start
    assert detect_signals(weeks=20, con=con).empty


# --- the demo's planted stories ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    db = tmp_path_factory.mktemp("signals_demo") / "demo.duckdb"
    build_demo(db, appeals=60_000, months=6, seed=20251, end_month="2025-10")
    c = duckdb.connect(str(db), read_only=True)
    yield c
    c.close()


def test_demo_spikes_are_among_the_top_signals(demo) -> None:
    top = recent_signals(limit=20, con=demo)
    found = {(r.municipality_name, r.category_name): r for r in top.itertuples()}
    data_end = dt.date(2025, 11, 1)
    starts = {s["municipality"]: dt.date.fromisoformat(s["start"]) for s in resolve_stories(data_end)["spikes"]}
    for spike in SPIKES:
        row = found.get((spike.municipality, spike.category))
        assert row is not None, f"нет сигнала: {spike.municipality}, {spike.category}"
        # the run cannot begin before the week the surge began
        start = starts[spike.municipality]
        assert row.first_week >= start - dt.timedelta(days=start.weekday()), spike
        assert row.ratio > 2
    # chronic problems are high all along: not news
    all_signals = detect_signals(con=demo)
    pairs = set(zip(all_signals["municipality_name"], all_signals["category_name"], strict=True))
    assert not pairs & {(c.municipality, c.category) for c in CHRONIC}
    # the planted spikes are the only local signals (one municipality in the category) but one
    local = all_signals[all_signals["same_category_signals"] == 1]
    planted = {(s.municipality, s.category) for s in SPIKES}
    assert len(set(zip(local["municipality_name"], local["category_name"], strict=True)) - planted) <= 1


def test_demo_municipal_scope(demo) -> None:
    yartsevo = demo.execute("SELECT id FROM municipality WHERE name = 'Ярцевский'").fetchall()[0][0]
    df = detect_signals(scope=Scope.municipalities({yartsevo}), con=demo)
    assert set(df["municipality_id"]) == {yartsevo}
    assert "Отключения электроэнергии" in set(df["category_name"])
