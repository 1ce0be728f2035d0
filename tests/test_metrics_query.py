"""Indicators on a hand-built warehouse whose every answer is worked out by hand below."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics import indicators
from metrics.periods import PeriodError, parse_period
from metrics.query import QueryError, query_on, query_periods
from metrics.scope import REGION, Scope
from tests.conftest import finish_warehouse

T = dt.datetime
AS_OF = T(2025, 10, 31, 12, 0)
SMOLENSK, VELIZH = 1, 3  # ids of the reference list


def _appeal(con, source_id, received, muni, sector, category, channel, kind, status, first=None, answered=None,
            due=None, closure=None, merits=None, rework=None, satisfaction=None, repeat_of=None, duplicate_of=None):
    con.execute(
        """INSERT INTO appeal (source, source_id, kind, channel, received_at, municipality_id, sector_id, category_id,
               organisation_id, status, first_response_at, answered_at, due_at, closure_reason, answer_on_merits,
               returned_for_rework, satisfaction, repeat_of, duplicate_of)
           VALUES ('t', ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [source_id, kind, channel, received, muni, sector, category, status, first, answered, due, closure, merits,
         rework, satisfaction, repeat_of, duplicate_of],
    )


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("metrics") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    cat = dict(c.execute("SELECT name, id FROM category").fetchall())
    heat, pothole = cat["Отопление"], cat["Ямы и разрушение покрытия"]
    housing, roads = 4, 7
    # October 2025
    _appeal(c, "a1", T(2025, 10, 1, 10), SMOLENSK, housing, heat, "pos", "message", "resolved",
            T(2025, 10, 1, 12), T(2025, 10, 3, 10), T(2025, 10, 13, 23, 59, 59), "resolved", True, False, 5)
    _appeal(c, "a2", T(2025, 10, 2, 10), SMOLENSK, housing, heat, "pos", "message", "answered",
            T(2025, 10, 2, 14), T(2025, 10, 20, 10), T(2025, 10, 14, 23, 59, 59), "explained", False, True, 2,
            repeat_of="a1")
    _appeal(c, "a3", T(2025, 10, 5, 12), SMOLENSK, housing, heat, "pos", "message", "in_work",
            T(2025, 10, 5, 13), None, T(2025, 10, 15, 23, 59, 59), duplicate_of="a1")
    _appeal(c, "a4", T(2025, 10, 10, 9), SMOLENSK, housing, heat, "pos", "message", "resolved",
            T(2025, 10, 10, 15), T(2025, 10, 11, 9), T(2025, 10, 22, 23, 59, 59), "resolved", True, False, 4)
    _appeal(c, "a5", T(2025, 10, 3, 0), VELIZH, roads, pothole, "letter", "appeal", "answered",
            None, T(2025, 10, 30, 0), T(2025, 11, 2, 23, 59, 59), "explained", True, False)
    _appeal(c, "a6", T(2025, 10, 30, 8), VELIZH, roads, pothole, "letter", "appeal", "new",
            None, None, T(2025, 11, 29, 23, 59, 59))
    # September 2025: the previous period
    for sid, muni, sector, category in (("b1", SMOLENSK, housing, heat), ("b2", SMOLENSK, housing, heat),
                                        ("b3", VELIZH, roads, pothole)):
        _appeal(c, sid, T(2025, 9, 10, 10), muni, sector, category, "pos", "message", "answered",
                T(2025, 9, 10, 11), T(2025, 9, 12, 10), T(2025, 9, 22, 23, 59, 59), "explained", True, False, 3)
    finish_warehouse(c, AS_OF.isoformat(sep=" "))
    yield c
    c.close()


ALL = [i.code for i in indicators.INDICATORS]
OCTOBER = parse_period("2025-10")
OCTOBER_FACTS = parse_period("2025-10-01..2025-10-30")  # not month-aligned: read from the facts


def test_registry_is_valid_and_complete() -> None:
    assert indicators.validate_registry() == []
    design = {"volume", "rate_10k", "growth", "on_time_share", "overdue_open", "response_hours_median",
              "resolve_days_median", "backlog_open", "resolved_share", "distinct_problems", "within_30d_share",
              "satisfaction_share", "rework_share", "merits_share", "repeat_share", "response_share",
              "redirect_share", "resolve_days_p90"}
    assert design <= set(indicators.registry())
    assert indicators.get("on_time_share").format(0.875) == "87,5\u00a0%"
    assert indicators.get("volume").format(12345) == "12\u00a0345"


@pytest.mark.parametrize("period", [OCTOBER, OCTOBER_FACTS], ids=["rollup", "facts"])
def test_every_indicator_for_the_region_by_hand(con, period) -> None:
    row = query_on(con, ALL, period=period).iloc[0]
    assert row["volume"] == 6
    # a1, a4, a5 on time; a2 late; a3 unanswered and overdue counts as late too
    assert row["on_time_share"] == pytest.approx(3 / 5)
    assert row["resolved_share"] == pytest.approx(2 / 4)  # a1, a4 of four answers
    assert row["satisfaction_share"] == pytest.approx(2 / 3)  # ratings 5, 2, 4
    assert row["rework_share"] == pytest.approx(1 / 4)
    assert row["merits_share"] == pytest.approx(3 / 4)
    assert row["repeat_share"] == pytest.approx(1 / 6)
    assert row["distinct_problems"] == 5  # a3 duplicates a1
    assert row["within_30d_share"] == pytest.approx(1.0)  # every answer within 30 days; open ones not due yet
    assert row["overdue_open"] == 1  # a3: due 15.10, still open on 31.10
    assert row["backlog_open"] == 2 and row["backlog_11_30"] == 1 and row["backlog_le3"] == 1
    assert row["response_share"] == pytest.approx(4 / 5)  # 4 answered of 4 answered + 1 overdue
    population = con.execute("SELECT sum(population) FROM municipality").fetchall()[0][0]
    assert row["rate_10k"] == pytest.approx(6 * 10_000 / population)
    assert row["growth"] == pytest.approx((6 - 3) / 3)
    assert bool(row["growth_low"]) and bool(row["on_time_share_low"])  # too few appeals to judge
    assert row["response_hours_mean"] == pytest.approx((2 + 4 + 1 + 6) / 4)
    assert row["redirect_share"] == pytest.approx(0.0)  # four closures, none a redirect
    # exact on both paths
    assert row["response_hours_median"] == pytest.approx(3.0)  # 1, 2, 4, 6 hours
    assert row["resolve_days_median"] == pytest.approx(10.0)  # 1, 2, 18, 27 days
    assert row["resolve_days_p90"] == pytest.approx(18 + 0.7 * 9)  # quantile_cont: rank 2.7 of 0..3


def test_by_municipality_with_previous_period(con) -> None:
    df = query_on(con, ["volume", "on_time_share", "rate_10k"], by=["municipality"], period=OCTOBER,
                  compare=True).set_index("municipality_name")
    assert df.loc["город Смоленск", "volume"] == 4 and df.loc["город Смоленск", "volume_prev"] == 2
    assert df.loc["Велижский", "volume"] == 2 and df.loc["Велижский", "volume_prev"] == 1
    assert df.loc["город Смоленск", "on_time_share"] == pytest.approx(2 / 4)  # a3 overdue counts as late
    assert df.loc["Велижский", "rate_10k"] == pytest.approx(2 * 10_000 / 10117)
    assert df["on_time_share_rank"].isna().all()  # «мало данных»: nobody is ranked on four answers


@pytest.mark.parametrize("periods", [[OCTOBER, OCTOBER.previous()],
                                     [OCTOBER_FACTS, parse_period("2025-09-02..2025-09-30")]],
                         ids=["rollup", "facts"])
def test_several_periods_in_one_pass_equal_each_period_alone(con, periods) -> None:
    codes = [c for c in ALL if c != "growth"]
    both = query_periods(con, codes, ["municipality"], periods)
    for i, period in enumerate(periods):
        alone = query_on(con, codes, ["municipality"], period).set_index("municipality_id").sort_index()
        part = both[both["period_index"] == i].drop(columns="period_index").set_index("municipality_id").sort_index()
        assert list(part.index) == list(alone.index) and len(part) == 2
        for column in alone.columns:
            assert part[column].tolist() == pytest.approx(alone[column].tolist(), nan_ok=True), column
    with pytest.raises(QueryError, match="пересекаются"):
        query_periods(con, ["volume"], [], [OCTOBER, OCTOBER])


def test_previous_period_of_each_kind() -> None:
    assert parse_period("2025-10").previous().code == "2025-09"
    assert parse_period("2025-01").previous().code == "2024-12"
    assert parse_period("2025-Q1").previous().code == "2024-Q4"
    assert parse_period("2025").previous().code == "2024"
    assert parse_period("2025-W01").previous().start == dt.date(2024, 12, 23)
    last30 = parse_period("последние 30 дней", as_of=dt.date(2025, 10, 31))
    assert (last30.start, last30.end) == (dt.date(2025, 10, 2), dt.date(2025, 11, 1))
    assert last30.previous().end == last30.start and last30.previous().days == 30
    assert parse_period("2025-10").year_ago().code == "2024-10"
    with pytest.raises(PeriodError, match="не понят период"):
        parse_period("октябрь")


def test_time_series_by_month_and_category_filter_with_children(con) -> None:
    df = query_on(con, ["volume"], by=["month"], period=parse_period("2025-Q3").previous().previous())
    assert df.empty or df["volume"].sum() == 0
    series = query_on(con, ["volume"], by=["month"], period=parse_period("2025"))
    assert dict(zip(series["month"].astype(str), series["volume"], strict=True)) == {"2025-09-01": 3, "2025-10-01": 6}
    other = con.execute("SELECT id FROM category WHERE is_other AND sector_id = 4").fetchall()[0][0]
    assert query_on(con, ["volume"], period=OCTOBER, filters={"category": [other]}).iloc[0]["volume"] == 0


def test_municipal_scope_never_returns_another_municipality(con) -> None:
    scope = Scope.municipalities({VELIZH})
    for period in (OCTOBER, OCTOBER_FACTS):
        by_muni = query_on(con, ALL, by=["municipality"], period=period, scope=scope, compare=True)
        assert set(by_muni["municipality_id"]) == {VELIZH}
        total = query_on(con, ALL, period=period, scope=scope).iloc[0]
        assert total["volume"] == 2 and total["backlog_open"] == 1 and total["overdue_open"] == 0
        # a filter cannot widen the scope: asking for Smolensk inside Velizh's scope gives nothing
        forged = query_on(con, ["volume", "backlog_open"], period=period, scope=scope,
                          filters={"municipality": [SMOLENSK]}).iloc[0]
        assert forged["volume"] == 0 and forged["backlog_open"] == 0
        for dim in ("sector", "category", "channel", "organisation", "month"):
            df = query_on(con, ["volume"], by=[dim], period=period, scope=scope)
            assert df["volume"].sum() == 2


def test_sector_scope(con) -> None:
    df = query_on(con, ["volume"], by=["sector"], period=OCTOBER, scope=Scope.sectors({7}))
    assert set(df["sector_code"]) == {"roads"} and df["volume"].sum() == 2


def test_unknown_names_are_refused(con) -> None:
    with pytest.raises(KeyError, match="неизвестный показатель"):
        query_on(con, ["volume; DROP TABLE appeal"], period=OCTOBER)
    with pytest.raises(QueryError, match="неизвестное измерение"):
        query_on(con, ["volume"], by=["municipality_id = 1 OR 1"], period=OCTOBER)
    with pytest.raises(QueryError, match="неизвестный фильтр"):
        query_on(con, ["volume"], period=OCTOBER, filters={"1=1": [1]})
    with pytest.raises(QueryError, match="неверное значение"):
        query_on(con, ["volume"], period=OCTOBER, filters={"municipality": ["1 OR 1=1"]})
    # values are bound, never pasted: a hostile channel code simply matches nothing
    assert query_on(con, ["volume"], period=OCTOBER, filters={"channel": ["pos' OR '1'='1"]}).iloc[0]["volume"] == 0
    assert REGION.municipality_ids is None
