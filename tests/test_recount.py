"""Acceptance of issue 14: every indicator of DESIGN §4 recounted by hand-written SQL.

The recount below is written from the words of DESIGN §4 alone; it reads ``appeal`` and
``municipality`` and nothing the project computes (no rollup, no measure, no SQL builder). The
project answers through ``metrics.query.query_on`` on the rollup path and inside ``facts_only``;
both must equal the recount: counts exactly, shares / rates / growth to ``RATIO_TOLERANCE``,
medians and the 90th percentile to ``QUANTILE_TOLERANCE`` of ``quantile_cont`` (exact).

The data date. The project's data date is the meta key ``data_as_of`` (the demo sets it to the last
receipt and removes every answer and first response after it). Each warehouse here is consistent
with its data date (checked): nothing is answered or first responded after it, so the recount's
"as known at the data date" guards change nothing and the warehouse is what the centre saw then.
- ``full``: the demo (seed ``SEED``, April–October 2025), data date = its last receipt, 31.10.2025.
- ``cut``: a copy of ``full`` as it was at ``CUT`` = 19.10.2025 00:05, five minutes after the 30-day
  window of the appeals received on 18.09.2025 ended (received later: deleted; answered or first
  responded later: not yet); its rollups are rebuilt by the project's own ``refresh_rollups``.
- ``hand``: twelve appeals whose every indicator is worked out by hand in ``HAND_EXPECTED`` (this
  proves the recount SQL itself); data date 05.11.2025 00:05, five minutes past a 30-day cutoff too.
``query_on(full, as_of=CUT)`` must equal the recount of ``cut``: a data date is the state of
knowledge at that moment, whatever the warehouse learnt later (DESIGN §4: the previous period
"measured at the same age").

Readings of DESIGN §4 where a word leaves a choice (the ``hand`` appeal that pins it in brackets):
- open at t = received at or before t and not answered at or before t (no appeal of these
  warehouses is received exactly at a period end, checked, so only t = the data date makes it matter);
- age at t = calendar days between the day of receipt and the day of t (a11: 3.5 days old, age 4;
  a4: 30 days 4 hours old, age 31);
- the 30-day window ends at date(received_at) + 31 days 00:00, not at received_at + 30 days (a12);
- answered = closed with closure_reason distinct from 'redirected' (a missing reason is an answer);
- satisfaction_share counts every rated appeal of the period, as DESIGN says (redirected ones too);
- response / resolve times are exact durations (hours, days with fractions), quantile_cont;
- growth compares with the whole previous month / quarter, also for an unfinished period
  (DESIGN's "same age" rule is for answer-based indicators and the page's comparison, not growth);
- rate_10k of any dimension other than municipality uses the population of the whole region.

Groups. The recount has a row for every group with an appeal received in the period or in the
previous one or open at the snapshot point. A group absent from one side counts as all counts 0
and every share / median undefined; it is a failure only where the other side has a non-zero count
or a defined value — so the project may omit a group with nothing received in the period and
nothing open at ``t`` (on an omitted row its rate_10k is taken as 0 and its growth, −100 % or
undefined, is not checked).

A failure lists, per indicator, how many groups differ and a few of them as
``code | by <dimension>, <period> (<scenario>, data date, path) | <group> «name»: project=… recount=…``;
one shape alone: ``pytest tests/test_recount.py -k "indicators_equal and cutoff_month-organisation-rollup"``.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.demo import build_demo
from data.rollup import refresh_rollups
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised, set_meta
from metrics.indicators import registry
from metrics.periods import Period, month, quarter_of
from metrics.query import data_as_of, facts_only, query_on, query_periods
from metrics.scope import REGION as REGION_SCOPE
from tests.conftest import finish_warehouse

T = dt.datetime

# Medians and the p90 are exact (quantile_cont); DESIGN allows an estimate within 0.5 %, the team
# makes them exact, so the bound is rounding only. Relative to max(1, |value|).
QUANTILE_TOLERANCE = 1e-9
# Shares, rate per 10 000 and growth divide the same integers on both sides.
RATIO_TOLERANCE = 1e-12

SEED, APPEALS, MONTHS, END_MONTH = 14, 30_000, 7, "2025-10"
CUT = T(2025, 10, 19, 0, 5)
# the cut warehouse's previous month at the same age: its data date 30 days earlier, five minutes after
# the 30-day window of 19.08's receipts ended (``appeal_known_head`` holds that day up to 00:05)
SAME_AGE = CUT - dt.timedelta(days=30)
HAND_AS_OF = T(2025, 11, 5, 0, 5)

# --- the recount: DESIGN §4 word by word ----------------------------------------------------------

# One column per word. $d = the data date, $t = min(period end, data date); the period is
# [$start, $end), the previous one [$prev_start, $start).
_WORDS_SQL = """
WITH base AS (
    SELECT {key} AS grp, a.*,
        a.received_at >= $start AND a.received_at < $end AS in_period,
        a.received_at >= $prev_start AND a.received_at < $start AS in_prev,
        -- closed = has answered_at (any closure), as known at the data date
        a.answered_at IS NOT NULL AND a.answered_at <= $d AS closed,
        -- the 30-day window ends at the end of the 30th calendar day after the day of receipt
        CAST(CAST(a.received_at AS DATE) + INTERVAL 31 DAY AS TIMESTAMP) AS window_end,
        -- stocks: open at t = received by t and not closed by t; age in calendar days at t
        a.received_at <= $t AND NOT coalesce(a.answered_at <= $t, FALSE) AS open_at_t,
        date_diff('day', CAST(a.received_at AS DATE), CAST($t AS DATE)) AS age_at_t
    FROM appeal a
    WHERE a.received_at <= $d
), words AS (
    SELECT *,
        -- answered = closed, and not by a redirect (a hand-off, not a reply)
        closed AND closure_reason IS DISTINCT FROM 'redirected' AS answered,
        -- overdue (cohort) = open at the data date with due_at before it
        NOT closed AND coalesce(due_at < $d, FALSE) AS overdue
    FROM base
)
SELECT grp, {aggregates}
FROM words
WHERE in_period OR in_prev OR open_at_t
GROUP BY grp
"""

# Counts: name -> the rows it counts. Cohort counts look at the appeals received in the period.
COUNT_SNIPPETS: dict[str, str] = {
    "volume": "in_period",
    "volume_prev": "in_prev",
    "distinct_problems": "in_period AND duplicate_of IS NULL",
    "repeats": "in_period AND repeat_of IS NOT NULL",
    "closed": "in_period AND closed",
    "answered": "in_period AND answered",
    "redirected": "in_period AND closed AND closure_reason = 'redirected'",
    "overdue": "in_period AND overdue",
    "closed_with_due": "in_period AND closed AND due_at IS NOT NULL",
    "closed_on_time": "in_period AND closed AND answered_at <= due_at",
    "resolved": "in_period AND answered AND closure_reason = 'resolved'",
    "in_window": "in_period AND answered AND answered_at < window_end",
    "window_decided": "in_period AND (window_end <= $d OR (answered AND answered_at < window_end))",
    "rated": "in_period AND satisfaction IS NOT NULL",
    "satisfied": "in_period AND satisfaction >= 4",
    "reworked": "in_period AND answered AND returned_for_rework",
    "on_merits": "in_period AND answered AND answer_on_merits",
    "responded": "in_period AND first_response_at IS NOT NULL AND first_response_at <= $d",
    # stocks at t, whenever received
    "overdue_open": "open_at_t AND due_at < $t",
    "backlog_open": "open_at_t",
    "backlog_le3": "open_at_t AND age_at_t <= 3",
    "backlog_4_10": "open_at_t AND age_at_t BETWEEN 4 AND 10",
    "backlog_11_30": "open_at_t AND age_at_t BETWEEN 11 AND 30",
    "backlog_gt30": "open_at_t AND age_at_t > 30",
}
# Quantiles: code -> (value of one appeal, q, the appeals it runs over).
_HOURS = "(epoch_us(first_response_at) - epoch_us(received_at)) / 3600e6"
_DAYS = "(epoch_us(answered_at) - epoch_us(received_at)) / 86400e6"
QUANTILE_SNIPPETS: dict[str, tuple[str, float, str]] = {
    "response_hours_median": (_HOURS, 0.5, "in_period AND first_response_at IS NOT NULL AND first_response_at <= $d"),
    "resolve_days_median": (_DAYS, 0.5, "in_period AND answered"),
    "resolve_days_p90": (_DAYS, 0.9, "in_period AND answered"),
}
# Shares: code -> (numerator count, counts summed into the denominator).
RATIOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "on_time_share": ("closed_on_time", ("closed_with_due", "overdue")),
    "resolved_share": ("resolved", ("answered",)),
    "within_30d_share": ("in_window", ("window_decided",)),
    "satisfaction_share": ("satisfied", ("rated",)),
    "rework_share": ("reworked", ("answered",)),
    "merits_share": ("on_merits", ("answered",)),
    "repeat_share": ("repeats", ("volume",)),
    "response_share": ("answered", ("closed", "overdue")),
    "redirect_share": ("redirected", ("closed",)),
}
STOCKS = ("overdue_open", "backlog_open", "backlog_le3", "backlog_4_10", "backlog_11_30", "backlog_gt30")
COUNTS = ("volume", "distinct_problems", *STOCKS)
QUANTILES = tuple(QUANTILE_SNIPPETS)
INDICATORS = ("volume", "rate_10k", "growth", "on_time_share", "overdue_open", "backlog_open",
              "response_hours_median", "resolve_days_median", "resolve_days_p90", "resolved_share",
              "distinct_problems", "within_30d_share", "satisfaction_share", "rework_share", "merits_share",
              "repeat_share", "response_share", "redirect_share")
# The count each indicator rests on (``<code>_base`` of the project): a share's denominator, the
# number of values of a quantile, the previous volume of growth, the count itself otherwise.
BASES: dict[str, tuple[str, ...]] = {
    **{code: den for code, (_, den) in RATIOS.items()},
    "response_hours_median": ("responded",), "resolve_days_median": ("answered",),
    "resolve_days_p90": ("answered",), "growth": ("volume_prev",), "rate_10k": ("volume",),
    **{code: (code,) for code in ("volume", "distinct_problems", "overdue_open", "backlog_open")},
}

DIMENSIONS: dict[str, str | None] = {  # dimension -> key column (None: the region as one row)
    "region": None, "municipality": "municipality_id", "sector": "sector_id", "category": "category_id",
    "organisation": "organisation_id", "channel": "channel",
}


def _add_months(d: dt.date, n: int) -> dt.date:
    k = d.year * 12 + d.month - 1 + n
    return dt.date(k // 12, k % 12 + 1, 1)


def _previous_start(period: Period) -> dt.date:
    """The previous month or quarter (growth's comparison), counted here, not by the project; a range
    of days: as many days before."""
    if period.kind == "range":
        return period.start - (period.end - period.start)
    months = {"month": 1, "quarter": 3}[period.kind]
    return _add_months(period.start, -months)


def recount(con: duckdb.DuckDBPyConnection, period: Period, data_date: dt.datetime, key: str | None) -> pd.DataFrame:
    """Every indicator of DESIGN §4 per group of ``key``: one row per group, ``grp`` its key."""
    aggregates = [f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in COUNT_SNIPPETS.items()]
    aggregates += [f"quantile_cont({value}, {q}) FILTER (WHERE {cond}) AS {code}"
                   for code, (value, q, cond) in QUANTILE_SNIPPETS.items()]
    sql = _WORDS_SQL.format(key=f"a.{key}" if key else "NULL", aggregates=",\n       ".join(aggregates))
    start, end = T.combine(period.start, dt.time()), T.combine(period.end, dt.time())
    params = {"start": start, "end": end, "prev_start": T.combine(_previous_start(period), dt.time()),
              "d": data_date, "t": min(end, data_date)}
    df = con.execute(sql, params).df()
    for code, (num, den) in RATIOS.items():
        denominator = sum(df[c] for c in den)
        df[code] = [n / m if m else None for n, m in zip(df[num], denominator, strict=True)]
    df["growth"] = [(v - p) / p if p else None for v, p in zip(df["volume"], df["volume_prev"], strict=True)]
    population = dict(con.execute("SELECT id, population FROM municipality").fetchall())
    if key == "municipality_id":
        people = [population.get(g) for g in df["grp"]]
    else:  # any other dimension: the whole region's population
        people = [sum(p for p in population.values() if p)] * len(df)
    df["rate_10k"] = [v / p * 10_000 if p else None for v, p in zip(df["volume"], people, strict=True)]
    return df


# --- the hand-computed warehouse ------------------------------------------------------------------

SMOLENSK, HOUSING, SMOLENSK_PEOPLE = 1, 4, 316_600
HAND_OCT, HAND_NOV = month(dt.date(2025, 10, 1)), month(dt.date(2025, 11, 1))


def _hand(sid, received, due, first=None, answered=None, closure=None, satisfaction=None, merits=None,
          rework=None, repeat_of=None, duplicate_of=None, channel="letter", kind="appeal") -> dict:
    status = {None: "in_work" if first else "new", "redirected": "redirected", "resolved": "resolved",
              "refused": "rejected"}.get(closure, "answered")
    return {"source": "hand", "source_id": sid, "kind": kind, "channel": channel, "received_at": received,
            "municipality_id": SMOLENSK, "sector_id": HOUSING, "category_id": None, "organisation_id": None,
            "status": status, "first_response_at": first, "answered_at": answered, "due_at": due,
            "closure_reason": closure, "answer_on_merits": merits, "returned_for_rework": rework,
            "satisfaction": satisfaction, "repeat_of": repeat_of, "duplicate_of": duplicate_of}


HAND_ROWS = [
    # September 2025 (the previous period)
    _hand("a7", T(2025, 9, 20, 10), T(2025, 10, 20, 10), T(2025, 9, 21, 10), T(2025, 11, 2, 10), "explained",
          merits=True, rework=False),  # open and overdue at 01.11, answered 02.11
    _hand("a8", T(2025, 9, 28, 10), T(2025, 10, 28, 10), T(2025, 9, 28, 11), T(2025, 9, 30, 10), "resolved",
          merits=True, rework=False),
    # October 2025
    _hand("a1", T(2025, 10, 1, 10), T(2025, 10, 31, 10), T(2025, 10, 1, 12), T(2025, 10, 3, 10), "resolved",
          5, True, False),
    _hand("a2", T(2025, 10, 2, 9), T(2025, 11, 1, 9), T(2025, 10, 2, 10), T(2025, 10, 4, 9), "redirected",
          2, False, False),
    _hand("a3", T(2025, 10, 5, 8), T(2025, 11, 4, 8), T(2025, 10, 5, 9), T(2025, 11, 4, 23), "explained",
          4, True, True),  # late, but inside its window (ends 05.11 00:00)
    _hand("a4", T(2025, 10, 5, 20), T(2025, 11, 4, 20), T(2025, 10, 6, 20), repeat_of="a1"),  # window ended 5 min ago
    _hand("a5", T(2025, 10, 20, 12), T(2025, 11, 19, 12), duplicate_of="a4"),
    _hand("a6", T(2025, 10, 25, 12), T(2025, 11, 24, 12), T(2025, 10, 25, 18), T(2025, 11, 2, 12), "refused",
          None, True, False),
    _hand("a9", T(2025, 10, 30, 15), T(2025, 11, 29, 15), T(2025, 10, 30, 16), T(2025, 11, 3, 10), "resolved",
          None, False, False),
    # 30 days after receipt have passed (05.11 00:02), but its window runs to the end of 05.11
    _hand("a12", T(2025, 10, 6, 0, 2), T(2025, 11, 6, 0, 2)),
    # November 2025 (the current month): a message overdue since 04.11 09:00
    _hand("a10", T(2025, 11, 2, 9), T(2025, 11, 4, 9), channel="pos", kind="message"),
    # 3.5 days old at the data date, but 4 calendar days
    _hand("a11", T(2025, 11, 1, 12), T(2025, 12, 1, 12)),
]
# Worked out by hand from HAND_ROWS (October: t = 01.11 00:00; November: t = the data date 05.11 00:05).
HAND_EXPECTED: dict[str, dict[str, float | int | None]] = {
    "2025-10": {
        "volume": 8, "distinct_problems": 7, "repeat_share": 1 / 8,
        "rate_10k": 8 / SMOLENSK_PEOPLE * 10_000, "growth": (8 - 2) / 2,
        # closed a1 a2 a3 a6 a9; answered a1 a3 a6 a9 (a2 redirected); overdue at the data date: a4
        "on_time_share": 4 / 6,  # on time a1 a2 a6 a9 / (5 closed with a due date + a4)
        "response_share": 4 / 6, "redirect_share": 1 / 5, "resolved_share": 2 / 4,
        "rework_share": 1 / 4, "merits_share": 3 / 4, "satisfaction_share": 2 / 3,
        # inside the window a1 a3 a6 a9 / (windows ended: a1 a2 a3 a4 + answered inside: a6 a9; not a12)
        "within_30d_share": 4 / 6,
        "response_hours_median": 1.5,  # 1 1 1 2 6 24 hours
        "resolve_days_median": (91 / 24 + 8) / 2,  # 2, 3 19/24, 8, 30 15/24 days
        "resolve_days_p90": 8 + 0.7 * (30.625 - 8),
        # open at 01.11 00:00: a9 (2 days), a6 (7), a5 (12), a12 (26), a3 and a4 (27), a7 (42, overdue)
        "backlog_open": 7, "backlog_le3": 1, "backlog_4_10": 1, "backlog_11_30": 4, "backlog_gt30": 1,
        "overdue_open": 1,
    },
    "2025-11": {
        "volume": 2, "distinct_problems": 2, "repeat_share": 0.0,
        "rate_10k": 2 / SMOLENSK_PEOPLE * 10_000, "growth": (2 - 8) / 8,
        "on_time_share": 0.0, "response_share": 0.0, "redirect_share": None, "resolved_share": None,
        "rework_share": None, "merits_share": None, "satisfaction_share": None, "within_30d_share": None,
        "response_hours_median": None, "resolve_days_median": None, "resolve_days_p90": None,
        # open at 05.11 00:05: a10 (3 days, overdue), a11 (4), a5 (16), a12 (30), a4 (31, overdue)
        "backlog_open": 5, "backlog_le3": 1, "backlog_4_10": 1, "backlog_11_30": 2, "backlog_gt30": 1,
        "overdue_open": 2,
    },
}


# --- warehouses ----------------------------------------------------------------------------------


def _cut_copy(src: Path, dst: Path, at: dt.datetime) -> None:
    """``src`` as it was at ``at``: later receipts gone, later answers and first responses unknown."""
    shutil.copy(src, dst)
    con = connect(dst)
    try:
        con.execute("BEGIN")
        con.execute("DELETE FROM appeal WHERE received_at > $at", {"at": at})
        con.execute(
            """UPDATE appeal SET answered_at = NULL, closure_reason = NULL, satisfaction = NULL,
                   answer_on_merits = NULL, returned_for_rework = NULL,
                   status = CASE WHEN first_response_at <= $at THEN 'in_work' ELSE 'new' END
               WHERE answered_at > $at""", {"at": at})
        con.execute("UPDATE appeal SET first_response_at = NULL, status = 'new' WHERE first_response_at > $at",
                    {"at": at})
        set_meta(con, "data_as_of", at.isoformat(sep=" "))
        refresh_rollups(con)
        con.execute("COMMIT")
    finally:
        con.close()


@dataclass
class Warehouse:
    con: duckdb.DuckDBPyConnection
    data_date: dt.datetime  # meta data_as_of, read by the test itself


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> dict[str, Warehouse]:
    root = tmp_path_factory.mktemp("recount")
    full = root / "full.duckdb"
    build_demo(full, appeals=APPEALS, months=MONTHS, seed=SEED, end_month=END_MONTH)
    _cut_copy(full, root / "cut.duckdb", CUT)
    _cut_copy(root / "cut.duckdb", root / "cut_same_age.duckdb", SAME_AGE)
    with duckdb.connect(str(full), read_only=True) as c:
        full_same_age = c.execute("SELECT max(received_at) FROM appeal").fetchone()[0] - dt.timedelta(days=30)
    _cut_copy(full, root / "full_same_age.duckdb", full_same_age)
    hand = root / "hand.duckdb"
    con = connect(hand)
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
    finish_warehouse(con, HAND_AS_OF.isoformat(sep=" "), HAND_ROWS)
    con.close()
    out = {}
    for name, path in (("full", full), ("cut", root / "cut.duckdb"), ("hand", hand),
                       ("cut_same_age", root / "cut_same_age.duckdb"), ("full_same_age", root / "full_same_age.duckdb")):
        c = duckdb.connect(str(path), read_only=True)
        stored = c.execute("SELECT value FROM meta WHERE key = 'data_as_of'").fetchall()[0][0]
        out[name] = Warehouse(c, dt.datetime.fromisoformat(stored))
    yield out
    for w in out.values():
        w.con.close()


@dataclass(frozen=True)
class Scenario:
    name: str
    warehouse: str
    period: Period
    dims: tuple[str, ...] = tuple(DIMENSIONS)


SCENARIOS = {s.name: s for s in (
    Scenario("month", "full", month(dt.date(2025, 8, 1))),  # settled, t = its end < the data date
    Scenario("quarter", "full", quarter_of(dt.date(2025, 7, 1))),
    Scenario("settled_month", "full", month(dt.date(2025, 9, 1))),  # its last windows ended 22 h ago
    Scenario("current_month", "full", month(dt.date(2025, 10, 1))),  # unfinished: t = the data date
    Scenario("current_quarter", "full", quarter_of(dt.date(2025, 10, 1))),
    Scenario("cutoff_month", "cut", month(dt.date(2025, 9, 1))),  # 30-day windows end day by day
    Scenario("cutoff_current_month", "cut", month(dt.date(2025, 10, 1))),
    Scenario("hand_month", "hand", HAND_OCT, ("region", "municipality")),
    Scenario("hand_current_month", "hand", HAND_NOV, ("region", "municipality")),
)}
PATHS = ("rollup", "facts")


def test_data_dates(warehouses) -> None:
    """The data dates the scenarios rest on, and that every warehouse is consistent with its own."""
    full, cut, hand = warehouses["full"], warehouses["cut"], warehouses["hand"]
    assert full.data_date.date() == dt.date(2025, 10, 31)  # October is unfinished at the data date
    assert (full.data_date,) == full.con.execute("SELECT max(received_at) FROM appeal").fetchone()
    assert cut.data_date == CUT and hand.data_date == HAND_AS_OF
    for name, w in warehouses.items():
        assert data_as_of(w.con) == w.data_date, name  # the project reads the same data date
        late = w.con.execute(
            """SELECT count(*) FILTER (WHERE answered_at > $d), count(*) FILTER (WHERE first_response_at > $d),
                      count(*) FILTER (WHERE received_at > $d),
                      count(*) FILTER (WHERE answered_at IS NULL AND (satisfaction IS NOT NULL
                          OR closure_reason IS NOT NULL))
               FROM appeal""", {"d": w.data_date}).fetchone()
        assert late == (0, 0, 0, 0), name
    # Stocks count what was received by t: with nothing received exactly at a period end used as t,
    # "received before t" and "received by t" agree (at t = the data date the last receipt counts).
    for name, w in warehouses.items():
        at_ends = w.con.execute(
            "SELECT count(*) FROM appeal WHERE received_at IN (SELECT unnest($ends))",
            {"ends": [T.combine(s.period.end, dt.time()) for s in SCENARIOS.values() if s.warehouse == name]},
        ).fetchone()[0]
        assert at_ends == 0, name
    # the cutoff: the windows of 18.09 ended five minutes before the data date, those of 19.09 not yet;
    # both days have appeals, and some of 18.09 are still unanswered (they now count as not in time)
    days = dict(cut.con.execute(
        """SELECT CAST(received_at AS DATE), count(*) FILTER (WHERE answered_at IS NULL) FROM appeal
           WHERE CAST(received_at AS DATE) IN (DATE '2025-09-18', DATE '2025-09-19') GROUP BY ALL""").fetchall())
    assert sorted(days) == [dt.date(2025, 9, 18), dt.date(2025, 9, 19)], days
    assert days[dt.date(2025, 9, 18)] > 0, days


@pytest.mark.parametrize("month_code", sorted(HAND_EXPECTED))
def test_recount_sql_on_hand_computed_appeals(warehouses, month_code: str) -> None:
    """The recount SQL gives the hand-worked values: it says what DESIGN §4 says."""
    hand = warehouses["hand"]
    period = {"2025-10": HAND_OCT, "2025-11": HAND_NOV}[month_code]
    got = recount(hand.con, period, hand.data_date, "municipality_id").set_index("grp").loc[SMOLENSK]
    for code, want in HAND_EXPECTED[month_code].items():
        value = got[code]
        if want is None:
            assert value is None or math.isnan(value), code
        else:
            assert value == pytest.approx(want, rel=1e-12), code


# --- the comparison ------------------------------------------------------------------------------


def _plain(v: object) -> object:
    """A key or value as a plain Python number/str; None for NULL / NaN."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if v.is_integer():
            return int(v)
    return v


def _expected(row: pd.Series | None) -> dict[str, object]:
    if row is None:  # no appeal of the period, nothing open at t
        return {c: 0 for c in COUNTS} | {c: None for c in INDICATORS if c not in COUNTS}
    return {c: _plain(row[c]) for c in (*INDICATORS, *STOCKS[2:])}


def _differs(code: str, project: object, recount_value: object) -> bool:
    if project is None or recount_value is None or isinstance(project, str):
        return not (project is None and recount_value is None)
    if code in COUNTS:
        return project != recount_value
    tolerance = QUANTILE_TOLERANCE if code in QUANTILES else RATIO_TOLERANCE
    return abs(float(project) - float(recount_value)) > tolerance * max(1.0, abs(float(recount_value)))


def compare(project: pd.DataFrame, recounted: pd.DataFrame, dim: str, where: str,
            value_of: Callable[[pd.Series | None, str], object], expected_of: Callable[[pd.Series | None], dict]) -> list[str]:
    """One line per indicator × group that differs, naming both values."""
    key = DIMENSIONS[dim]
    project_rows = {(_plain(r[key]) if key else None): r for _, r in project.iterrows()}
    recount_rows = {_plain(r["grp"]) if key else None: r for _, r in recounted.iterrows()}
    name_col = f"{dim}_name"
    lines = []
    for group in sorted(set(project_rows) | set(recount_rows), key=lambda g: (g is None, str(g))):
        p_row, r_row = project_rows.get(group), recount_rows.get(group)
        want = expected_of(r_row)
        label = f"{dim}={group}" if key else "region"
        if p_row is not None and name_col in p_row:
            label += f" «{p_row[name_col]}»"
        for code, r_value in want.items():
            if p_row is None and code == "growth":
                continue  # an omitted row: nothing received in the period
            p_value = value_of(p_row, code)
            shown = "(no row)" if p_row is None else repr(p_value)
            if _differs(code, p_value, r_value):
                lines.append(f"{code} | {where} | {label}: project={shown} recount={r_value!r}")
    return lines


def _report(lines: list[str], per_indicator: int = 6) -> str:
    """A count per indicator, then a few groups of each (every indicator shows up, not just the first)."""
    by_code: dict[str, list[str]] = {}
    for line in lines:
        by_code.setdefault(line.split(" | ")[0], []).append(line)
    out = ["differs: " + ", ".join(f"{c} ×{len(v)}" for c, v in by_code.items())]
    for group in by_code.values():
        out += group[:per_indicator] + ([f"  … {len(group) - per_indicator} more"] if len(group) > per_indicator else [])
    return "\n".join(out)


_project_cache: dict[tuple, pd.DataFrame] = {}
_recount_cache: dict[tuple, pd.DataFrame] = {}


def _project(warehouses, wh: str, period: Period, dim: str, path: str, as_of: dt.datetime | None) -> pd.DataFrame:
    k = (wh, period.code, dim, path, as_of)
    if k not in _project_cache:
        by = [] if dim == "region" else [dim]
        con = warehouses[wh].con
        # an indicator the project does not declare yet fails as "(no column)", not the whole query
        codes = [c for c in INDICATORS if c in registry()]
        if path == "facts":
            with facts_only():
                _project_cache[k] = query_on(con, codes, by, period, as_of=as_of)
        else:
            _project_cache[k] = query_on(con, codes, by, period, as_of=as_of)
    return _project_cache[k]


def _recount(warehouses, wh: str, period: Period, dim: str) -> pd.DataFrame:
    k = (wh, period.code, dim)
    if k not in _recount_cache:
        w = warehouses[wh]
        _recount_cache[k] = recount(w.con, period, w.data_date, DIMENSIONS[dim])
    return _recount_cache[k]


def _value(row: pd.Series | None, code: str) -> object:
    """The project's value; on an omitted row a count (and rate_10k) is 0, anything else undefined."""
    if row is None:
        return 0 if code in COUNTS or code == "rate_10k" else None
    return _plain(row[code]) if code in row else "(no column)"


CASES = [(s, d, p) for s in SCENARIOS.values() for d in s.dims for p in PATHS]


@pytest.mark.parametrize(("scenario", "dim", "path"), CASES, ids=[f"{s.name}-{d}-{p}" for s, d, p in CASES])
def test_indicators_equal_the_recount(warehouses, scenario: Scenario, dim: str, path: str) -> None:
    w = warehouses[scenario.warehouse]
    where = f"by {dim}, {scenario.period.code} ({scenario.name}, data date {w.data_date}, {path} path)"
    lines = compare(_project(warehouses, scenario.warehouse, scenario.period, dim, path, None),
                    _recount(warehouses, scenario.warehouse, scenario.period, dim), dim, where, _value, _expected)
    assert not lines, _report(lines)


AS_OF_CASES = [(s, d, p) for s in SCENARIOS.values() if s.warehouse == "cut" for d in s.dims for p in PATHS]


@pytest.mark.parametrize(("scenario", "dim", "path"), AS_OF_CASES,
                         ids=[f"{s.name}-{d}-{p}" for s, d, p in AS_OF_CASES])
def test_as_of_is_the_warehouse_of_that_date(warehouses, scenario: Scenario, dim: str, path: str) -> None:
    """``query_on(full, as_of=CUT)`` answers as the warehouse cut at ``CUT`` would (recounted there)."""
    where = f"by {dim}, {scenario.period.code} ({scenario.name}, full warehouse as_of={CUT}, {path} path)"
    lines = compare(_project(warehouses, "full", scenario.period, dim, path, CUT),
                    _recount(warehouses, "cut", scenario.period, dim), dim, where, _value, _expected)
    assert not lines, _report(lines)


# The previous period at the same age (DESIGN §4), as the ratings and the comparisons ask it: the
# data date minus 30 days, after the period's end. The rollup path reads ``appeal_known`` for the days
# before and ``appeal_known_head`` for that day up to the moment (the facts for a category or a
# channel); it must equal the recount of the warehouse cut at that moment.
SAME_AGE_CASES = [(wh, moment_of, p, d, path) for wh, moment_of, p in (
    ("cut", "cut_same_age", month(dt.date(2025, 8, 1))), ("full", "full_same_age", month(dt.date(2025, 9, 1))))
    for d in DIMENSIONS for path in PATHS]


@pytest.mark.parametrize(("wh", "cut", "period", "dim", "path"), SAME_AGE_CASES,
                         ids=[f"{w}-{d}-{p}" for w, _, _, d, p in SAME_AGE_CASES])
def test_same_age_is_the_warehouse_of_that_date(warehouses, monkeypatch, wh: str, cut: str, period: Period,
                                                dim: str, path: str) -> None:
    import metrics.query as mq

    moment = warehouses[cut].data_date
    assert moment == warehouses[wh].data_date - dt.timedelta(days=30)
    where = f"by {dim}, {period.code} ({wh} warehouse as_of={moment}, {path} path)"
    recounted = _recount(warehouses, cut, period, dim)
    lines = compare(_project(warehouses, wh, period, dim, path, moment), recounted, dim, where, _value, _expected)
    lines += compare(_project(warehouses, wh, period, dim, path, moment), recounted, dim, where + ", _base", _base,
                     _expected_bases)
    if path == "rollup" and dim not in ("category", "channel"):
        # the answer durations of the cohort still arrive after the moment, so a question with their
        # medians is recomputed from the facts: without them it is answered by the known changes alone
        con = warehouses[wh].con
        assert mq._known_head(con, moment)
        assert mq._known_table(con, [] if dim == "region" else [dim], {}, REGION_SCOPE)
        calls = []
        compute = mq._compute
        monkeypatch.setattr(mq, "_compute", lambda *a, **k: calls.append(1) or compute(*a, **k))
        by = [] if dim == "region" else [dim]
        codes = [c for c in INDICATORS if c in registry() and c not in QUANTILES]
        project = query_on(con, codes, by, period, as_of=moment)
        assert calls == [1]  # no recomputation from the facts
        lines += compare(project, recounted, dim, where + ", known changes only", _value,
                         lambda row: {k: v for k, v in _expected(row).items() if k in codes})
        # a question no answer changes (the volume alone), an hour earlier (that day from the facts): the
        # day's changes add nothing to it (the cohort was whole long before either moment)
        earlier = moment - dt.timedelta(hours=1)
        assert not mq._known_head(con, earlier) and earlier >= dt.datetime.combine(period.end, dt.time())
        volume = query_on(con, ["volume"], by, period, as_of=earlier)
        lines += compare(volume, recounted, dim, where + ", volume alone", _value,
                         lambda row: {k: v for k, v in _expected(row).items() if k == "volume"})
        # the median first reaction: the data date's durations where none came after the moment
        later = con.execute("SELECT count(*) FROM appeal WHERE received_at >= $s AND received_at < $e "
                            "AND first_response_at > $m", {"s": period.start, "e": period.end, "m": moment}).fetchone()[0]
        calls.clear()
        project = query_on(con, ["response_hours_median"], by, period, as_of=moment)
        assert len(calls) == (1 if later == 0 else 2), later
        lines += compare(project, recounted, dim, where + ", first reaction median", _value,
                         lambda row: {k: v for k, v in _expected(row).items() if k == "response_hours_median"})
    assert not lines, _report(lines)


# Day ranges (the heat map's «свой период»): the cohort measures come from ``appeal_daily`` and the
# medians from ``appeal_duration_daily`` where the question needs only the municipality and the sector,
# both from the facts otherwise; both equal the recount. The full warehouse's range ends at the data date; the cut one's starts on 18.09, whose
# 30-day windows ended five minutes before its data date.
RANGE_CASES = [(wh, Period(a, b, "range", f"{a}..{b - dt.timedelta(days=1)}"), d, path)
               for wh, a, b in (("full", dt.date(2025, 9, 6), dt.date(2025, 11, 1)),
                                ("cut", dt.date(2025, 9, 18), dt.date(2025, 10, 5)))
               for d in DIMENSIONS for path in PATHS]


@pytest.mark.parametrize(("wh", "period", "dim", "path"), RANGE_CASES,
                         ids=[f"{w}-{d}-{path}" for w, _, d, path in RANGE_CASES])
def test_day_ranges_equal_the_recount(warehouses, monkeypatch, wh: str, period: Period, dim: str, path: str) -> None:
    import metrics.query as mq

    w = warehouses[wh]
    by = [] if dim == "region" else [dim]
    codes = [c for c in INDICATORS if c in registry() and c != "growth"]
    days, day_quantiles = [], []
    where_of, day_quantile_of = mq._period_where, mq._day_quantile_cte
    monkeypatch.setattr(mq, "_period_where", lambda *a, **k: days.append(k.get("column")) or where_of(*a, **k))
    monkeypatch.setattr(mq, "_day_quantile_cte", lambda name, duration, *a: day_quantiles.append(duration)
                        or day_quantile_of(name, duration, *a))
    if path == "facts":
        with facts_only():
            project = query_on(w.con, codes, by, period)
    else:
        project = query_on(w.con, codes, by, period)
    # the route under test: the day-grained rollups for a question by municipality or sector, its medians
    # (both kinds) from the day-grained durations
    daily = path == "rollup" and dim in ("region", "municipality", "sector")
    assert ("day" in days) == daily, days
    assert sorted(day_quantiles) == ([0, 1] if daily else []), day_quantiles
    where = f"by {dim}, {period.code} (range, {wh} warehouse, data date {w.data_date}, {path} path)"
    recounted = _recount(warehouses, wh, period, dim)
    lines = compare(project, recounted, dim, where, _value,
                    lambda row: {k: v for k, v in _expected(row).items() if k != "growth"})
    lines += compare(project, recounted, dim, where + ", _base", _base,
                     lambda row: {k: v for k, v in _expected_bases(row).items() if k != "growth"})
    assert not lines, _report(lines)


def _expected_bases(row: pd.Series | None) -> dict[str, object]:
    if row is None:
        return dict.fromkeys(BASES, 0)
    return {code: int(sum(row[c] for c in counts)) for code, counts in BASES.items()}


def _base(row: pd.Series | None, code: str) -> object:
    if row is None:  # an omitted row rests on nothing
        return 0
    return _plain(row[f"{code}_base"]) if f"{code}_base" in row else "(no column)"


@pytest.mark.parametrize(("scenario", "dim", "path"), CASES, ids=[f"{s.name}-{d}-{p}" for s, d, p in CASES])
def test_bases_are_the_denominators(warehouses, scenario: Scenario, dim: str, path: str) -> None:
    """``<code>_base`` (the count an indicator rests on) is its denominator / number of values."""
    w = warehouses[scenario.warehouse]
    where = f"by {dim}, {scenario.period.code} ({scenario.name}, data date {w.data_date}, {path} path), _base"
    lines = compare(_project(warehouses, scenario.warehouse, scenario.period, dim, path, None),
                    _recount(warehouses, scenario.warehouse, scenario.period, dim), dim, where, _base,
                    _expected_bases)
    assert not lines, _report(lines)


SERIES = tuple(month(dt.date(2025, m, 1)) for m in (7, 8, 9, 10))  # the KPI pages' monthly series
SERIES_CASES = [(d, p) for d in DIMENSIONS for p in PATHS]


@pytest.mark.parametrize(("dim", "path"), SERIES_CASES, ids=[f"{d}-{p}" for d, p in SERIES_CASES])
def test_series_equal_the_recount(warehouses, dim: str, path: str) -> None:
    """``query_periods`` (one pass over several months, as the trend pages ask) gives each month the
    values of the recount of that month; growth is left to ``query``, as the project says."""
    w = warehouses["full"]
    by = [] if dim == "region" else [dim]
    codes = [c for c in INDICATORS if c in registry() and c != "growth"]
    if path == "facts":
        with facts_only():
            frame = query_periods(w.con, codes, by, list(SERIES))
    else:
        frame = query_periods(w.con, codes, by, list(SERIES))
    lines = []
    for i, period in enumerate(SERIES):
        where = f"by {dim}, {period.code} (series {SERIES[0].code}..{SERIES[-1].code}, data date {w.data_date}, " \
                f"{path} path)"
        recounted = _recount(warehouses, "full", period, dim)
        lines += compare(frame[frame["period_index"] == i], recounted, dim, where, _value,
                         lambda row: {k: v for k, v in _expected(row).items() if k != "growth"})
    assert not lines, _report(lines)
