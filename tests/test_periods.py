"""Period arithmetic against hand-computed cases, and the honest comparison (metrics.compare) against
hand-written SQL on a tiny warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.months import add_months
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics import indicators
from metrics.compare import compare
from metrics.periods import (
    INCOMPLETE,
    UNSETTLED,
    age,
    default_month,
    is_complete,
    is_settled,
    last_complete_days,
    last_complete_month,
    month,
    parse_period,
    quarter_of,
    same_age_as_of,
    status_notes,
)
from metrics.query import query_on
from tests.conftest import finish_warehouse

T = dt.datetime
D = dt.date


# --- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "n", "expected"), [
    (D(2025, 1, 31), 1, D(2025, 2, 1)),
    (D(2025, 12, 15), 1, D(2026, 1, 1)),
    (D(2026, 1, 1), -1, D(2025, 12, 1)),
    (D(2024, 2, 29), 12, D(2025, 2, 1)),
    (D(2024, 3, 1), -13, D(2023, 2, 1)),
    (D(2025, 7, 4), 0, D(2025, 7, 1)),
    (D(2025, 11, 1), -23, D(2023, 12, 1)),
    (D(1999, 12, 31), 25, D(2002, 1, 1)),
])
def test_add_months_by_hand(day: dt.date, n: int, expected: dt.date) -> None:
    assert add_months(day, n) == expected


def test_previous_and_year_ago_across_year_boundaries_quarters_and_leap_years() -> None:
    jan = parse_period("2026-01")
    assert (jan.previous().start, jan.previous().end) == (D(2025, 12, 1), D(2026, 1, 1))
    assert jan.year_ago().code == "2025-01"
    q1 = parse_period("2026-Q1")
    assert (q1.start, q1.end) == (D(2026, 1, 1), D(2026, 4, 1))
    assert q1.previous().code == "2025-Q4" and q1.previous().end == D(2026, 1, 1)
    assert q1.year_ago().code == "2025-Q1"
    assert quarter_of(D(2025, 12, 31)).code == "2025-Q4" and quarter_of(D(2025, 12, 31)).days == 92
    feb24, feb25 = parse_period("2024-02"), parse_period("2025-02")
    assert (feb24.days, feb25.days) == (29, 28)
    assert parse_period("2024-03").previous() == feb24
    assert parse_period("2024").days == 366 and parse_period("2024").previous().code == "2023"
    # a range's year ago keeps its month days
    r = parse_period("2024-02-01..2024-02-29")
    assert (r.year_ago().start, r.year_ago().end) == (D(2023, 2, 1), D(2023, 3, 1))
    assert parse_period("2025-W01").previous().start == D(2024, 12, 23)


# --- where a period stands ---------------------------------------------------------------------


@pytest.mark.parametrize(("data_date", "expected"), [
    (T(2026, 12, 1, 0, 0), "2026-11"),  # 1st at 00:00: November's end has been reached
    (T(2026, 11, 30, 23, 40), "2026-10"),  # twenty minutes short: November is not complete
    (T(2026, 11, 15, 12, 0), "2026-10"),
    (T(2026, 1, 1, 0, 0), "2025-12"),
    (T(2026, 1, 15, 9, 0), "2025-12"),
    (T(2024, 3, 1, 0, 0), "2024-02"),
    (D(2026, 12, 1), "2026-11"),  # a bare date is 00:00 of that day
])
def test_last_complete_month(data_date, expected: str) -> None:
    assert last_complete_month(data_date).code == expected
    assert is_complete(parse_period(expected), data_date)
    assert not is_complete(month(last_complete_month(data_date).end), data_date)


def test_complete_and_settled_by_hand() -> None:
    october = parse_period("2026-10")  # end 01.11 00:00, settled from 01.12 00:00
    assert not is_complete(october, T(2026, 10, 31, 23, 59))
    assert is_complete(october, T(2026, 11, 1, 0, 0))
    assert not is_settled(october, T(2026, 11, 30, 23, 59, 59))
    assert is_settled(october, T(2026, 12, 1, 0, 0))
    q3 = parse_period("2026-Q3")  # end 01.10, settled from 31.10
    assert is_complete(q3, T(2026, 10, 1)) and not is_settled(q3, T(2026, 10, 30, 23))
    assert is_settled(q3, T(2026, 10, 31))
    feb = parse_period("2024-02")  # leap February: end 01.03, settled from 31.03
    assert not is_settled(feb, T(2024, 3, 30, 23, 59)) and is_settled(feb, T(2024, 3, 31))
    assert status_notes(october, T(2026, 10, 20)) == [INCOMPLETE, UNSETTLED]
    assert status_notes(october, T(2026, 11, 20)) == [UNSETTLED]
    assert status_notes(october, T(2026, 11, 20), answer_based=False) == []
    assert status_notes(october, T(2026, 12, 20)) == []


def test_age_and_same_age_by_hand() -> None:
    october, november = parse_period("2026-10"), parse_period("2026-11")
    # complete current period: the previous one as many days after its own end
    now = T(2026, 12, 10, 6, 0)
    assert age(november, now) == dt.timedelta(days=9, hours=6)
    assert same_age_as_of(october, november, now) == T(2026, 11, 10, 6, 0)
    # unfinished current period: the previous one as far into itself
    now = T(2026, 11, 30, 23, 40)
    assert age(november, now) == dt.timedelta(days=29, hours=23, minutes=40)
    assert same_age_as_of(october, november, now) == T(2026, 10, 30, 23, 40)
    # the 1st at 00:00: November complete with age zero, October seen at its own end
    assert same_age_as_of(october, november, T(2026, 12, 1)) == T(2026, 11, 1)
    # across a year and a leap February: March's 30 elapsed days reach past February's end
    assert same_age_as_of(parse_period("2024-02"), parse_period("2024-03"), T(2024, 3, 31)) == T(2024, 3, 2)
    assert same_age_as_of(parse_period("2025-12"), parse_period("2026-01"), T(2026, 2, 3, 12)) == T(2026, 1, 3, 12)
    # quarters: Q3 complete, 20 days old → Q2 as of 21.07
    assert same_age_as_of(parse_period("2026-Q2"), parse_period("2026-Q3"), T(2026, 10, 21)) == T(2026, 7, 21)
    assert age(parse_period("2027-01"), T(2026, 12, 5)) == dt.timedelta(0)


def test_default_month_and_complete_days() -> None:
    months = [D(2026, 11, 1), D(2026, 10, 1), D(2026, 9, 1)]
    assert default_month(months, T(2026, 11, 30, 23, 40)).code == "2026-10"
    assert default_month(months, T(2026, 12, 1)).code == "2026-11"
    assert default_month([D(2026, 11, 1)], T(2026, 11, 30)).code == "2026-11"  # only the current month
    assert default_month([], T(2026, 11, 30)) is None
    week = last_complete_days(7, T(2026, 11, 30, 23, 40))
    assert (week.start, week.end) == (D(2026, 11, 23), D(2026, 11, 30)) and is_complete(week, T(2026, 11, 30))
    assert month(D(2026, 11, 17)).code == "2026-11"


def test_answer_based_flag_covers_everything_but_receipt_counts_and_stocks() -> None:
    not_answer = {i.code for i in indicators.INDICATORS if not i.answer_based}
    assert not_answer == {"volume", "rate_10k", "growth", "distinct_problems", "repeat_share", "overdue_open",
                          "backlog_open", "severe_share", "surge_share", "tension_index"}  # the index rests on receipts


# --- the comparison on a tiny warehouse ---------------------------------------------------------

SMOLENSK = 1
DATA_DATE = T(2025, 11, 10, 12, 0)  # October complete, not settled; September settled


def _appeal(con, sid, received, answered, due, status):
    con.execute(
        """INSERT INTO appeal (source, source_id, kind, channel, received_at, municipality_id, sector_id,
               category_id, status, answered_at, due_at, closure_reason, first_response_at)
           VALUES ('t', ?, 'message', 'pos', ?, ?, 4, ?, ?, ?, ?, ?, ?)""",
        [sid, received, SMOLENSK, CATEGORY[0], status, answered, due,
         None if answered is None else "explained", answered],
    )


CATEGORY: list[int] = []


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("periods") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    CATEGORY[:] = [c.execute("SELECT id FROM category WHERE name = 'Отопление'").fetchall()[0][0]]
    # September: 25 appeals, 20 answered on time by 10.09, 5 answered late on 25.10 (after the same-age
    # moment 10.10 12:00 and after their due date)
    for i in range(25):
        late = i >= 20
        _appeal(c, f"s{i}", T(2025, 9, 1 + i % 9, 10), T(2025, 10, 25) if late else T(2025, 9, 10, 9),
                T(2025, 9, 20, 23, 59, 59), "answered")
    # October: 22 appeals, 20 answered on time, 2 still open and not yet due
    for i in range(22):
        open_ = i >= 20
        _appeal(c, f"o{i}", T(2025, 10, 1 + i % 9, 10), None if open_ else T(2025, 10, 12, 9),
                T(2025, 11, 25, 23, 59, 59) if open_ else T(2025, 10, 20, 23, 59, 59),
                "in_work" if open_ else "answered")
    finish_warehouse(c, DATA_DATE.isoformat(sep=" "))
    yield c
    c.close()


OCTOBER = parse_period("2025-10")


def test_receipt_counts_compare_with_the_whole_previous_period(con) -> None:
    row = compare(["volume", "repeat_share", "growth", "on_time_share"], period=OCTOBER, con=con).iloc[0]
    september = con.execute("SELECT count(*) FROM appeal WHERE received_at >= '2025-09-01' "
                            "AND received_at < '2025-10-01'").fetchall()[0][0]
    assert (row["volume"], row["volume_prev"], september) == (22, 25, 25)
    assert row["growth"] == pytest.approx((22 - 25) / 25)
    assert row["volume_change"] == -3 and pd.isna(row["volume_better"])  # volume: no good direction
    assert not row["volume_unsettled"] and row["on_time_share_unsettled"]
    # October is 9 days 12 hours past its end: September is read at 10.10 12:00 for answer-based ones
    assert row["on_time_share_prev_as_of"] == T(2025, 10, 10, 12, 0)
    assert row["volume_prev_as_of"] == DATA_DATE


def test_a_settled_period_compares_with_the_settled_previous_one(con) -> None:
    september = parse_period("2025-09")
    frame = compare(["on_time_share"], period=september, con=con)
    assert frame.attrs["settled"] and frame.attrs["complete"]
    assert not frame["on_time_share_unsettled"].iloc[0]
    assert frame["on_time_share_prev_as_of"].iloc[0] == DATA_DATE


def _as_of_honoured(con) -> bool:
    """Whether metrics.query reads ``as_of`` as «known at that moment» (the defs branch)."""
    base = query_on(con, ["resolved_share"], [], parse_period("2025-09"), as_of=T(2025, 10, 10, 12))
    return int(base["resolved_share_base"].iloc[0]) == 20


def test_answer_based_indicators_compare_at_the_same_age(con) -> None:
    if not _as_of_honoured(con):
        pytest.skip("needs the defs branch: metrics.query as_of = everything as known at that moment")
    row = compare(["on_time_share", "response_share"], period=OCTOBER, con=con).iloc[0]
    t = T(2025, 10, 10, 12)
    september = "received_at >= '2025-09-01' AND received_at < '2025-10-01' AND received_at < $t"
    # hand-written, September as known at 10.10 12:00: 20 closed on time; the 5 answered on 25.10 were
    # open and overdue then (due 20.09)
    on_time = con.execute(f"""SELECT count(*) FILTER (WHERE answered_at < $t AND answered_at <= due_at)
        / (count(*) FILTER (WHERE answered_at < $t AND due_at IS NOT NULL)
           + count(*) FILTER (WHERE (answered_at IS NULL OR answered_at >= $t) AND due_at < $t))
        FROM appeal WHERE {september}""", {"t": t}).fetchall()[0][0]
    answered = con.execute(f"""SELECT count(*) FILTER (WHERE answered_at < $t)
        / (count(*) FILTER (WHERE answered_at < $t)
           + count(*) FILTER (WHERE (answered_at IS NULL OR answered_at >= $t) AND due_at < $t))
        FROM appeal WHERE {september}""", {"t": t}).fetchall()[0][0]
    assert (on_time, answered) == (pytest.approx(20 / 25), pytest.approx(20 / 25))
    assert row["on_time_share_prev"] == pytest.approx(on_time)
    assert row["response_share_prev"] == pytest.approx(answered)  # settled September: 25 / 25
    assert row["on_time_share"] == pytest.approx(1.0)  # 20 of 20 closed; the 2 open ones are not due yet
    assert row["response_share_change"] == pytest.approx(1.0 - answered)


def test_compare_by_a_dimension_and_by_default_on_the_last_complete_month(con) -> None:
    frame = compare(["volume", "on_time_share"], by=["municipality"], con=con)
    assert frame.attrs["period"].code == "2025-10" and frame.attrs["previous"].code == "2025-09"
    assert frame.attrs["complete"] and not frame.attrs["settled"]
    row = frame.set_index("municipality_id").loc[SMOLENSK]
    assert (row["volume"], row["volume_prev"], row["municipality_name"]) == (22, 25, "город Смоленск")
    assert row["on_time_share_prev_as_of"] == T(2025, 10, 10, 12, 0)
    with pytest.raises(ValueError, match="измерению времени"):
        compare(["volume"], by=["month"], con=con)


def test_an_unfinished_period_compares_with_the_same_elapsed_part_of_the_previous_one(con) -> None:
    if not _as_of_honoured(con):
        pytest.skip("needs the defs branch: metrics.query as_of = everything as known at that moment")
    now = T(2025, 10, 12, 12, 0)  # October unfinished, 11 days 12 hours in
    row = compare(["volume", "response_share"], period=OCTOBER, as_of=now, con=con).iloc[0]
    assert row["response_share_prev_as_of"] == T(2025, 9, 12, 12, 0)
    # hand-written: September's appeals received by 12.09 12:00, answered by then or overdue then
    t = T(2025, 9, 12, 12, 0)
    base = con.execute("""SELECT count(*) FILTER (WHERE answered_at <= $t)
                                 + count(*) FILTER (WHERE (answered_at IS NULL OR answered_at > $t) AND due_at < $t)
                          FROM appeal WHERE received_at >= '2025-09-01' AND received_at <= $t""",
                       {"t": t}).fetchall()[0][0]
    assert base == 20  # the 5 answered on 25.10 were neither answered nor overdue on 12.09
    assert row["response_share_base_prev"] == base
    assert row["volume_prev"] == 25  # a receipt count: the whole previous month
