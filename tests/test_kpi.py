"""KPI series against targets on a hand-built warehouse: every number is worked out below."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics.kpi import SERIES_COLUMNS, kpi_series, kpi_small_multiples
from metrics.query import QueryError
from metrics.scope import Scope
from tests.conftest import finish_warehouse

T = dt.datetime
AS_OF = T(2025, 10, 31, 12, 0)
SMOLENSK, VELIZH = 1, 3  # ids of the reference list
HOUSING, ROADS = 4, 7
_seq = iter(range(1, 10_000))


def _appeal(con, day: dt.date, on_time: bool = True, sector: int = HOUSING, muni: int = SMOLENSK,
            repeat: bool = False) -> None:
    received = T(day.year, day.month, day.day, 10)
    con.execute(
        """INSERT INTO appeal (source, source_id, kind, channel, received_at, municipality_id, sector_id,
               status, answered_at, due_at, repeat_of)
           VALUES ('t', ?, 'message', 'pos', ?, ?, ?, 'answered', ?, ?, ?)""",
        [str(next(_seq)), received, muni, sector, received + dt.timedelta(days=2 if on_time else 15),
         received + dt.timedelta(days=10), "earlier" if repeat else None],
    )


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("kpi") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    d = dt.date
    # a year ago: August 2024 half on time, October 2024 on time (week of 30.09–06.10.2024)
    _appeal(c, d(2024, 8, 5))
    _appeal(c, d(2024, 8, 6), on_time=False)
    _appeal(c, d(2024, 10, 2))
    # August 2025: 4 of 4 on time
    for day in (4, 5, 6, 7):
        _appeal(c, d(2025, 8, day))
    # September 2025: 1 of 2 on time, one repeat; the 30th falls into the week of 29.09
    _appeal(c, d(2025, 9, 10), repeat=True)
    _appeal(c, d(2025, 9, 30), on_time=False)
    # October 2025 housing: 3 of 4 on time, one repeat; roads: 0 of 2 in Velizh
    _appeal(c, d(2025, 10, 1))
    _appeal(c, d(2025, 10, 8), repeat=True)
    _appeal(c, d(2025, 10, 9))
    _appeal(c, d(2025, 10, 28), on_time=False)
    _appeal(c, d(2025, 10, 15), on_time=False, sector=ROADS, muni=VELIZH)
    _appeal(c, d(2025, 10, 16), on_time=False, sector=ROADS, muni=VELIZH)
    heat = c.execute("SELECT id FROM category WHERE name = 'Отопление'").fetchall()[0][0]
    c.executemany(
        "INSERT INTO target (indicator, sector_id, category_id, municipality_id, channel, period_start, value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("on_time_share", None, None, None, None, d(2024, 1, 1), 0.9),  # region-wide
            ("on_time_share", HOUSING, None, None, None, d(2025, 9, 1), 0.7),  # housing from September
            ("on_time_share", HOUSING, None, SMOLENSK, None, d(2025, 10, 1), 0.8),  # housing in Smolensk
            ("on_time_share", ROADS, None, None, None, d(2024, 1, 1), 0.2),  # another sector
            ("on_time_share", None, None, None, "pos", d(2024, 1, 1), 0.1),  # a channel target: not the series'
            ("repeat_share", None, None, None, None, d(2024, 1, 1), 0.3),  # lower is better
            ("on_time_share", None, heat, None, None, d(2025, 10, 1), 0.95),  # one category
        ],
    )
    finish_warehouse(c, AS_OF.isoformat(sep=" "))
    yield c
    c.close()


def _dates(series: pd.Series) -> list[dt.date]:
    return [t.date() for t in series]


def test_three_months_with_a_sector_target(con) -> None:
    df = kpi_series("on_time_share", months=3, sector="housing", con=con)
    assert list(df.columns) == list(SERIES_COLUMNS)
    assert _dates(df["period_start"]) == [dt.date(2025, 8, 1), dt.date(2025, 9, 1), dt.date(2025, 10, 1)]
    assert df["value"].tolist() == pytest.approx([1.0, 0.5, 0.75])
    assert df["base"].tolist() == [4, 2, 4] and df["low"].all()  # fewer than 20 answers
    # August: the housing target is not in force yet → region-wide 0.9; then housing 0.7
    assert df["target"].tolist() == pytest.approx([0.9, 0.7, 0.7])
    # October is not settled at 31.10 12:00: missing answers must not read as a target met
    assert df["meets_target"].iloc[:2].tolist() == [True, False] and pd.isna(df["meets_target"].iloc[2])
    assert df["partial"].tolist() == [False, False, True]  # the data run to 31.10 12:00, October ends 01.11
    assert df["settled"].tolist() == [True, True, False]  # September settled at 31.10 00:00


def test_most_specific_target_wins_and_year_ago(con) -> None:
    df = kpi_series("on_time_share", months=3, sector=HOUSING, municipality=SMOLENSK, con=con)
    assert df["target"].tolist() == pytest.approx([0.9, 0.7, 0.8])  # October: housing in Smolensk
    assert df["meets_target"].iloc[:2].tolist() == [True, False] and pd.isna(df["meets_target"].iloc[2])
    assert df["year_ago"].iloc[0] == pytest.approx(0.5)  # August 2024
    assert pd.isna(df["year_ago"].iloc[1])  # September 2024: no answers, no share
    assert df["year_ago"].iloc[2] == pytest.approx(1.0)  # October 2024


def test_a_category_implies_its_sector_for_targets(con) -> None:
    heat = con.execute("SELECT id FROM category WHERE name = 'Отопление'").fetchall()[0][0]
    df = kpi_series("on_time_share", months=3, category=heat, con=con)
    assert df["target"].tolist() == pytest.approx([0.9, 0.7, 0.95])  # region, housing, the category itself
    assert df["value"].isna().all()  # the hand-made appeals carry no category


def test_region_wide_series_falls_back_to_the_region_target(con) -> None:
    df = kpi_series("on_time_share", months=3, con=con)
    assert df["value"].tolist() == pytest.approx([1.0, 0.5, 3 / 6])  # October with the two late roads answers
    assert df["target"].tolist() == pytest.approx([0.9, 0.9, 0.9])  # neither the channel nor a sector target
    assert df["meets_target"].iloc[:2].tolist() == [True, False] and pd.isna(df["meets_target"].iloc[2])
    roads = kpi_series("on_time_share", months=1, sector="roads", con=con)
    assert roads["target"].tolist() == [0.2] and pd.isna(roads["meets_target"].iloc[0])  # not settled
    later = kpi_series("on_time_share", months=3, sector="roads", as_of=T(2025, 12, 1), con=con)
    assert bool(later["settled"].iloc[0]) and later["meets_target"].iloc[0] == False  # noqa: E712 - October


def test_lower_is_better_and_counts(con) -> None:
    repeat = kpi_series("repeat_share", months=3, sector=HOUSING, con=con)
    assert repeat["value"].tolist() == pytest.approx([0, 0.5, 0.25])
    assert repeat["meets_target"].tolist() == [True, False, True]  # at most 30 %; receipts: no waiting
    volume = kpi_series("volume", months=3, con=con)
    assert volume["value"].tolist() == [4, 2, 6]
    assert volume["year_ago"].tolist() == [2, 0, 1]  # September 2024 had none: zero, not unknown
    assert volume["meets_target"].isna().all()  # no direction, no target
    growth = kpi_series("growth", months=3, con=con)
    assert growth["value"].iloc[1:].tolist() == pytest.approx([(2 - 4) / 4, (6 - 2) / 2])
    assert pd.isna(growth["value"].iloc[0])  # July 2025 had no appeals
    early = kpi_series("volume", months=16, con=con)  # reaches back before the first month of data
    assert early["value"].isna().iloc[0] and early["value"].iloc[1] == 2  # July 2024: no data yet, not zero


def test_week_grain(con) -> None:
    df = kpi_series("volume", grain="week", months=1, con=con)
    mondays = [dt.date(2025, 9, 29), dt.date(2025, 10, 6), dt.date(2025, 10, 13), dt.date(2025, 10, 20),
               dt.date(2025, 10, 27)]
    assert _dates(df["period_start"]) == mondays  # the first week is whole, starting in September
    assert df["value"].tolist() == [2, 2, 2, 0, 1]  # 30.09 and 01.10; 08 and 09; 15 and 16; —; 28
    assert df["year_ago"].tolist() == [1, 0, 0, 0, 0]  # 02.10.2024 is in the week of 30.09.2024
    assert df["partial"].tolist() == [False] * 4 + [True]  # the data ends on Friday 31.10
    on_time = kpi_series("on_time_share", grain="week", months=1, sector="housing", con=con)
    assert on_time["value"].iloc[:2].tolist() == pytest.approx([0.5, 1.0])
    assert on_time["target"].tolist() == pytest.approx([0.7] * 5)  # the September housing row still in force


def test_small_multiples_by_sector(con) -> None:
    df = kpi_small_multiples("on_time_share", months=3, con=con)
    sectors = con.execute("SELECT count(*) FROM sector").fetchall()[0][0]
    assert len(df) == sectors * 3
    housing = df[df["sector_code"] == "housing"]
    assert housing["value"].tolist() == pytest.approx([1.0, 0.5, 0.75])
    assert housing["target"].tolist() == pytest.approx([0.9, 0.7, 0.7])
    roads = df[df["sector_code"] == "roads"]
    assert roads["value"].iloc[2] == 0 and roads["target"].tolist() == pytest.approx([0.2] * 3)
    health = df[df["sector_code"] == "health"]
    assert health["value"].isna().all() and health["target"].tolist() == pytest.approx([0.9] * 3)
    scoped = kpi_small_multiples("volume", months=1, scope=Scope.municipalities({VELIZH}), con=con)
    assert scoped.set_index("sector_code")["value"].to_dict()["roads"] == 2
    assert scoped["value"].sum() == 2  # nothing from Smolensk
    only = kpi_small_multiples("volume", months=1, scope=Scope.sectors({ROADS}), con=con)
    assert only["sector_code"].tolist() == ["roads"]


def test_municipal_scope_limits_the_series(con) -> None:
    df = kpi_series("volume", months=1, scope=Scope.municipalities({VELIZH}), con=con)
    assert df["value"].tolist() == [2]


def test_bad_arguments_have_a_clear_message(con) -> None:
    with pytest.raises(QueryError, match="детализация"):
        kpi_series("volume", grain="day", con=con)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="число месяцев"):
        kpi_series("volume", months=0, con=con)
    with pytest.raises(QueryError, match="направление"):
        kpi_series("volume", sector="космос", con=con)
    with pytest.raises(KeyError, match="неизвестный показатель"):
        kpi_series("nonsense", con=con)
