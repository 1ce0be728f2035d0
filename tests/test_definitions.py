"""DESIGN §4, one meaning per word: hand-computed fixtures for each definition, and the rollup path
equal to the facts path for every indicator, period shape and grouping (including a data date a few
minutes after a 30-day cutoff and the current month)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised, set_meta
from metrics import indicators
from metrics.periods import parse_period
from metrics.query import facts_only, query_on, query_periods
from tests.conftest import finish_warehouse

T = dt.datetime
AS_OF = T(2025, 11, 10, 12, 0)
ALL = [i.code for i in indicators.INDICATORS]


def _row(source_id: str, received: dt.datetime, answered: dt.datetime | None, due: dt.datetime | None,
         closure: str | None = None) -> dict:
    return {"source": "t", "source_id": source_id, "kind": "appeal", "channel": "pos", "received_at": received,
            "municipality_id": 1, "sector_id": 4, "category_id": None, "status": "answered" if answered else "in_work",
            "answered_at": answered, "due_at": due, "closure_reason": closure if answered else None}


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    c = connect(tmp_path_factory.mktemp("definitions") / "w.duckdb")
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    rows = [
        # a redirect: closed, on time, but not an answer
        _row("r1", T(2025, 10, 1, 10), T(2025, 10, 5, 10), T(2025, 10, 31, 23, 59, 59), "redirected"),
        _row("r2", T(2025, 10, 2, 10), T(2025, 10, 4, 10), T(2025, 10, 31, 23, 59, 59), "resolved"),
        # never answered, deadline passed: late for on_time_share, in every later stock
        _row("o1", T(2025, 10, 3, 9), None, T(2025, 10, 20, 23, 59, 59)),
        # the last second of the 30-day window (4.10 + 31 days = 4.11 00:00): inside
        _row("w1", T(2025, 10, 4, 15), T(2025, 11, 3, 23, 59, 59), T(2025, 11, 10, 23, 59, 59), "explained"),
        # answered at the window's end (5.10 + 31 days = 5.11 00:00): outside
        _row("w2", T(2025, 10, 5, 8), T(2025, 11, 5, 0, 0), T(2025, 10, 31, 23, 59, 59), "explained"),
        # answered after October's end: still open (and overdue) in October's stock
        _row("l1", T(2025, 10, 20, 10), T(2025, 11, 2, 10), T(2025, 10, 30, 23, 59, 59), "explained"),
        # September's appeal answered in November: in October's stock too, 37 days old at its end
        _row("s1", T(2025, 9, 25, 10), T(2025, 11, 1, 12), T(2025, 10, 5, 23, 59, 59), "explained"),
    ]
    finish_warehouse(c, AS_OF.isoformat(sep=" "), rows)
    yield c
    c.close()


OCTOBER = parse_period("2025-10")


@pytest.mark.parametrize("path", ["rollup", "facts"])
def test_each_definition_by_hand(hand, path) -> None:
    if path == "facts":
        with facts_only():
            row = query_on(hand, ALL, period=OCTOBER).iloc[0]
    else:
        row = query_on(hand, ALL, period=OCTOBER).iloc[0]
    assert row["volume"] == 6  # r1, r2, o1, w1, w2, l1
    # closed r1 r2 w1 w2 l1; answered: the same without the redirect r1
    assert row["redirect_share"] == pytest.approx(1 / 5)
    # on time r1 r2 w1 of 5 closed with a deadline + o1 overdue unanswered
    assert row["on_time_share"] == pytest.approx(3 / 6) and row["on_time_share_base"] == 6
    assert row["response_share"] == pytest.approx(4 / 6)  # 4 answered / (5 closed + 1 overdue)
    assert row["resolved_share"] == pytest.approx(1 / 4)  # r2 of 4 answers (the redirect is none)
    # windows ended by 10.11 12:00 for receipts before 11.10: r1 r2 o1 w1 w2; l1 answered inside its own
    # window; answered inside: r2, w1 (last second), l1 — w2 at 00:00 of the 31st day is outside
    assert row["within_30d_share"] == pytest.approx(3 / 6) and row["within_30d_share_base"] == 6
    # stock at the end of October (1.11 00:00): o1, w1, w2, l1, s1 open then; overdue o1, w2, l1, s1
    assert row["backlog_open"] == 5 and row["overdue_open"] == 4
    assert (row["backlog_11_30"], row["backlog_gt30"], row["backlog_le3"]) == (4, 1, 0)
    # answer durations of the answers only (the redirect's 4 days are not one): 2, 13, 30.37…, 30.67 days
    days = sorted([2.0, 13.0, 30 + (8 * 3600 + 59 * 60 + 59) / 86400, 30 + 16 / 24])
    assert row["resolve_days_median"] == pytest.approx((days[1] + days[2]) / 2)
    assert row["resolve_days_p90"] == pytest.approx(days[2] + 0.7 * (days[3] - days[2]))


def test_the_current_period_takes_its_stock_at_the_data_date(hand) -> None:
    for period in (parse_period("2025-11"), parse_period("2025-Q4"), parse_period("2025-11-01..2025-11-30")):
        row = query_on(hand, ["backlog_open", "overdue_open"], period=period).iloc[0]
        assert (row["backlog_open"], row["overdue_open"], row["backlog_gt30"]) == (1, 1, 1), period.code  # o1


def test_as_of_earlier_than_the_data_date(hand) -> None:
    """Five minutes after the 30-day cutoff of 1.10's receipts: answers made later do not exist yet."""
    moment = T(2025, 11, 1, 0, 5)
    row = query_on(hand, ALL, period=OCTOBER, as_of=moment).iloc[0]
    # closed by then: r1, r2; answered: r2; overdue at that moment: o1, w2, l1
    assert row["on_time_share"] == pytest.approx(2 / 5)
    assert row["response_share"] == pytest.approx(1 / 5)
    assert row["redirect_share"] == pytest.approx(1 / 2)
    # windows ended: receipts of 1.10 only (r1, not answered); answered inside: r2
    assert row["within_30d_share"] == pytest.approx(1 / 2)
    assert row["resolve_days_median"] == pytest.approx(2.0)
    # the stock at 1.11 00:00 is the same as known later
    assert (row["backlog_open"], row["overdue_open"]) == (5, 4)
    # the current month at that moment: only what was open five minutes into November
    now = query_on(hand, ["backlog_open", "overdue_open", "volume"], period=parse_period("2025-11"),
                   as_of=moment).iloc[0]
    assert (now["volume"], now["backlog_open"], now["overdue_open"]) == (0, 5, 4)
    # as_of = the data date is the default
    a = query_on(hand, ALL, period=OCTOBER)
    b = query_on(hand, ALL, period=OCTOBER, as_of=AS_OF)
    assert a.iloc[0].to_dict() == pytest.approx(b.iloc[0].to_dict(), nan_ok=True)


# --- rollup path == facts path on a demo ---------------------------------------------------------


@pytest.fixture(scope="module")
def cutoff_demo(small_demo: Path, tmp_path_factory) -> Path:
    """The small demo with its data date set five minutes after the end of 1.10's 30-day window."""
    db = tmp_path_factory.mktemp("cutoff") / "demo.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = connect(db)
    set_meta(con, "data_as_of", "2025-11-01 00:05:00")
    con.close()
    return db


def _same(con, codes, by, period, compare=False) -> None:
    fast = query_on(con, codes, by, period, compare=compare)
    with facts_only():
        slow = query_on(con, codes, by, period, compare=compare)
    keys = [c for c in fast.columns if c.endswith("_id") or c in ("channel", "month", "quarter")][: len(by)]
    fast, slow = (f.sort_values(keys).reset_index(drop=True) if keys else f for f in (fast, slow))
    assert len(fast) == len(slow) > 0, (period.code, by)
    assert list(fast.columns) == list(slow.columns)
    for column in fast.columns:
        if fast[column].dtype.kind in "fiub":
            a, b = (f[column].astype("float64").tolist() for f in (fast, slow))
            assert a == pytest.approx(b, rel=1e-12, nan_ok=True), (period.code, by, column)
        else:
            assert fast[column].astype(str).tolist() == slow[column].astype(str).tolist(), (period.code, by, column)


PERIODS = ["2025-09", "2025-Q3", "2025-10", "2025-11", "2025"]
GROUPINGS = [[], ["municipality"], ["sector"], ["category"], ["organisation"], ["channel"], ["month"]]


@pytest.mark.parametrize("db_name", ["small_demo", "cutoff_demo"])
@pytest.mark.parametrize("period_code", PERIODS)
def test_rollup_path_equals_facts_path(request, db_name, period_code) -> None:
    con = duckdb.connect(str(request.getfixturevalue(db_name)), read_only=True)
    period = parse_period(period_code)
    for by in GROUPINGS:
        if not (period_code == "2025-11" and by):  # nothing was received in November
            _same(con, ALL, by, period, compare=not by or by[0] != "month")
    con.close()


def test_several_periods_and_a_range_read_the_same_on_both_paths(cutoff_demo: Path) -> None:
    con = duckdb.connect(str(cutoff_demo), read_only=True)
    codes = [c for c in ALL if c != "growth"]
    periods = [parse_period("2025-10"), parse_period("2025-09"), parse_period("2025-06")]
    fast = query_periods(con, codes, ["municipality"], periods)
    with facts_only():
        slow = query_periods(con, codes, ["municipality"], periods)
    fast, slow = (f.sort_values(["period_index", "municipality_id"]).reset_index(drop=True) for f in (fast, slow))
    for column in fast.columns:
        if fast[column].dtype.kind in "fiub":
            assert fast[column].astype("float64").tolist() == pytest.approx(
                slow[column].astype("float64").tolist(), rel=1e-12, nan_ok=True), column
    # an arbitrary date range is the facts on both paths: it equals its month-aligned twin (but for
    # what rests on the previous period: a range's is as many days before, a month's the month before)
    codes = [c for c in codes if c not in ("surge_share", "tension_index")]
    twin = query_on(con, codes, ["sector"], parse_period("2025-10-01..2025-10-31"))
    month = query_on(con, codes, ["sector"], parse_period("2025-10"))
    assert twin.drop(columns=[]).shape == month.shape
    for column in month.columns:
        if month[column].dtype.kind in "fiub":
            assert twin[column].astype("float64").tolist() == pytest.approx(
                month[column].astype("float64").tolist(), rel=1e-12, nan_ok=True), column
    con.close()


def test_within_30d_by_hand_on_the_demo_just_past_a_cutoff(cutoff_demo: Path) -> None:
    """October as of 1.11 00:05: only 1.10's windows have ended; independent SQL over the facts."""
    con = duckdb.connect(str(cutoff_demo), read_only=True)
    value = query_on(con, ["within_30d_share"], ["municipality"], OCTOBER)
    expected = con.execute(
        """SELECT municipality_id,
                  count(*) FILTER (WHERE answered_at IS NOT NULL AND coalesce(closure_reason, '') <> 'redirected'
                                   AND answered_at < CAST(received_at AS DATE) + 31) AS inside,
                  count(*) FILTER (WHERE CAST(received_at AS DATE) + 31 <= TIMESTAMP '2025-11-01 00:05:00'
                                   OR (answered_at IS NOT NULL AND coalesce(closure_reason, '') <> 'redirected'
                                       AND answered_at < CAST(received_at AS DATE) + 31)) AS base
           FROM appeal WHERE received_at >= '2025-10-01' AND received_at < '2025-11-01' GROUP BY 1"""
    ).df()
    both = value.merge(expected, on="municipality_id")
    assert len(both) == len(expected) > 10
    assert both["within_30d_share_base"].tolist() == both["base"].astype(float).tolist()
    assert both["within_30d_share"].tolist() == pytest.approx((both["inside"] / both["base"]).tolist())
    con.close()


@pytest.mark.parametrize("db_name", ["small_demo", "cutoff_demo"])
def test_stocks_by_week_and_at_odd_ends_read_the_same_snapshots_as_the_facts(request, db_name) -> None:
    """Week ends come from the weekly snapshots (or the facts when a dimension is not kept there),
    month ends from the monthly ones, the moment itself from the open appeals; all equal the facts."""
    con = duckdb.connect(str(request.getfixturevalue(db_name)), read_only=True)
    stocks = ["backlog_open", "overdue_open", "volume"]
    weeks = parse_period("2025-08-04..2025-10-31")
    for by, filters in (([], {}), (["week"], {}), (["week", "sector"], {"municipality": [1, 3]}),
                        (["week"], {"organisation": [5]}), (["day"], {"sector": [4]}),
                        (["day", "municipality"], {}), (["day"], {"category": [3]}), (["region"], {}),
                        (["municipality"], {"sector": [2, 4]})):
        period = parse_period("2025-10-20..2025-10-31") if "day" in by else weeks
        fast = query_on(con, stocks, by, period, filters)
        with facts_only():
            slow = query_on(con, stocks, by, period, filters)
        keys = [c for c in ("week", "day", "sector_id", "municipality_id", "region_id") if c in fast.columns]
        fast, slow = (f.sort_values(keys).reset_index(drop=True) if keys else f for f in (fast, slow))
        assert len(fast) == len(slow) > 0, by
        for column in ("backlog_open", "overdue_open", "backlog_le3", "backlog_gt30", "volume"):
            assert fast[column].tolist() == slow[column].tolist(), (by, column)
    # a range that ends on a Monday, and one that ends mid-week
    # (a mid-week end by municipality or sector: the day-end snapshots)
    for code in ("2025-09-01..2025-09-28", "2025-09-01..2025-09-24"):
        _same(con, stocks, [], parse_period(code))
        _same(con, stocks, ["municipality"], parse_period(code))
        _same(con, stocks, ["sector"], parse_period(code))
    con.close()


def test_as_of_earlier_reads_the_same_on_both_paths(small_demo: Path) -> None:
    """The periods' «same age» comparison: September as known on 15.10 00:05 (stocks from the
    month-end snapshot, everything else from the facts as they stood) equals the facts alone."""
    con = duckdb.connect(str(small_demo), read_only=True)
    moment = T(2025, 10, 15, 0, 5)
    codes = [c for c in ALL if c != "growth"]
    for by in ([], ["municipality"], ["organisation"]):
        fast = query_on(con, codes, by, parse_period("2025-09"), as_of=moment)
        with facts_only():
            slow = query_on(con, codes, by, parse_period("2025-09"), as_of=moment)
        keys = [c for c in fast.columns if c.endswith("_id")][: len(by)]
        fast, slow = (f.sort_values(keys).reset_index(drop=True) if keys else f for f in (fast, slow))
        for column in fast.columns:
            if fast[column].dtype.kind in "fiub":
                assert fast[column].astype("float64").tolist() == pytest.approx(
                    slow[column].astype("float64").tolist(), rel=1e-12, nan_ok=True), (by, column)
    con.close()


def test_a_warehouse_without_day_end_snapshots_reads_stocks_from_the_facts(small_demo: Path, tmp_path: Path) -> None:
    """A warehouse copied before ``appeal_stock_daily`` existed (opened read-only, never migrated)
    answers a day range's stocks from the facts, with the same numbers."""
    db = tmp_path / "old.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE appeal_stock_daily")
    con.close()
    con = duckdb.connect(str(db), read_only=True)
    stocks = ["backlog_open", "overdue_open"]
    period = parse_period("2025-09-03..2025-09-17")
    old = query_on(con, stocks, ["municipality"], period).sort_values("municipality_id").reset_index(drop=True)
    con.close()
    con = duckdb.connect(str(small_demo), read_only=True)
    new = query_on(con, stocks, ["municipality"], period).sort_values("municipality_id").reset_index(drop=True)
    con.close()
    assert len(new) > 5
    for column in ("backlog_open", "overdue_open", "backlog_le3", "backlog_gt30"):
        assert old[column].tolist() == new[column].tolist(), column
