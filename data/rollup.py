"""Rollups of appeals: what the metrics read instead of the facts for month-aligned periods.

Words as DESIGN §4 defines them: **closed** = has ``answered_at``; **answered** = closed and not
redirected (a redirect is a hand-off, not a reply); **open** = not closed. Measured on the demo
(bench/metrics_bench.py): a day-grained rollup over every dimension hardly shrinks (≈ 0.8 rows per
appeal), so the time grain is the month:

- ``appeal_monthly``: month × municipality × sector × category × organisation × channel × kind,
  additive cohort counts and sums (``MEASURES``), all as known at the data date;
- ``appeal_duration``: one row per duration of an appeal (first reaction, answer) with its month and
  dimensions, sorted by month and value: the exact medians and percentiles are ``quantile_cont``
  over a month slice of this narrow table (several times faster than over the facts, and exact);
- ``appeal_stock``: the stock at every month end ``t`` (open at ``t``: received by ``t``, not
  answered by ``t``) by age at ``t`` in calendar days and overdue at ``t``, per month × dimensions;
- ``appeal_stock_weekly``: the same at every week end (Monday 00:00) by municipality × sector ×
  category, for weekly series;
- ``appeal_stock_daily``: the same at every day end (00:00) by municipality × sector, for day ranges
  and daily series (a day range's heat map reads ~3 000 rows instead of every appeal received before
  its end; with the category too it would be ~8× larger, so a category question reads the facts);
- ``appeal_weekly``: week × municipality × sector × category → count, for signals;
- ``appeal_open``: appeals still open at the data date (few rows), for the "right now" indicators;
- ``appeal_daily``: day of receipt × municipality × sector, the cohort measures of ``appeal_monthly``
  (as known at the data date), for day ranges (a 35-day heat map reads ~100 000 rows, not millions of
  appeals);
- ``appeal_duration_daily``: ``appeal_duration``'s rows by day of receipt × municipality × sector, sorted
  by kind, day, municipality, sector and value: a day range's exact medians by municipality / sector
  select among two narrow columns instead of computing every duration from the facts (100 M appeals, a
  35-day heat map's medians: ~130 → ~60 ms CPU; ~10 bytes per duration on disk);
- ``appeal_known`` (and ``_o``, ``_m``): the changes of the answer-based cohort measures per receipt
  month × dimensions × day of the change, for a cohort measured at an earlier moment (the previous
  period at the same age) without reading the facts (``KNOWN_EVENTS``).

All are refreshed by every import (only the months it touched; month-end stocks from the first
touched month on, since an answer moves every snapshot between receipt and answer) and by the demo
build, inside the writer's transaction. Arbitrary date ranges are answered from the facts by the
metrics layer with the same definitions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb

from data.months import add_months

# Rows are inserted in time order so that DuckDB's zone maps skip the months a query does not need.
CLOSED_SQL = "answered_at IS NOT NULL"
ANSWERED_SQL = "answered_at IS NOT NULL AND closure_reason IS DISTINCT FROM 'redirected'"
# the 30-day window ends at the end of the 30th calendar day after the day of receipt
WINDOW_END_SQL = "(CAST(received_at AS DATE) + INTERVAL 31 DAY)"
WITHIN_30D_SQL = f"{ANSWERED_SQL} AND answered_at < {WINDOW_END_SQL}"
# duration kind code -> (microseconds of one appeal, which appeals have it); whole microseconds keep
# the quantiles exact, and an integer column sorted by value is the cheapest for quantile_cont
DURATIONS: dict[int, tuple[str, str]] = {
    0: ("epoch_us(first_response_at) - epoch_us(received_at)", "first_response_at IS NOT NULL"),  # first reaction
    1: ("epoch_us(answered_at) - epoch_us(received_at)", ANSWERED_SQL),  # answer (a redirect is not one)
}
OPEN_SQL = "answered_at IS NULL"
# age at the snapshot point in calendar days: column -> (lowest, highest or None)
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("backlog_le3", 0, 3), ("backlog_4_10", 4, 10), ("backlog_11_30", 11, 30), ("backlog_gt30", 31, None))

# measure column -> condition over one appeal row (counted) or, for sum_*, a value (summed)
MEASURES: dict[str, str] = {
    "n": "TRUE",
    "n_distinct": "duplicate_of IS NULL",
    "n_repeat": "repeat_of IS NOT NULL",
    "n_closed": CLOSED_SQL,
    "n_answered": ANSWERED_SQL,
    "n_redirected": "answered_at IS NOT NULL AND closure_reason = 'redirected'",
    "n_closed_due": "answered_at IS NOT NULL AND due_at IS NOT NULL",
    "n_on_time": "answered_at IS NOT NULL AND answered_at <= due_at",
    "n_resolved": "answered_at IS NOT NULL AND closure_reason = 'resolved'",
    "n_merits": f"{ANSWERED_SQL} AND coalesce(answer_on_merits, FALSE)",
    "n_rework": f"{ANSWERED_SQL} AND coalesce(returned_for_rework, FALSE)",
    "n_rated": "satisfaction IS NOT NULL",
    "n_satisfied": "satisfaction >= 4",
    "n_within_30d": WITHIN_30D_SQL,
    "n_open": OPEN_SQL,
    "n_responded": "first_response_at IS NOT NULL",
    "n_first_due": "first_response_due_at IS NOT NULL AND coalesce(first_response_at, answered_at) IS NOT NULL",
    "n_first_on_time": "coalesce(first_response_at, answered_at) <= first_response_due_at",
    "sum_response_hours": "coalesce(epoch(first_response_at - received_at) / 3600.0, 0)",
    "sum_answer_hours": "coalesce(epoch(answered_at - received_at) / 3600.0, 0)",
}
DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id", "category_id", "organisation_id", "channel", "kind")
WEEKLY_DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id", "category_id")
DAILY_DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id")

# The same monthly measures over fewer dimensions, derived from ``appeal_monthly``. A query reads the
# first table that has every column it groups or filters by: the heat map's municipality × sector
# question reads ~250 rows a month instead of ~28 000 at 10 M appeals (bench/metrics_bench.py).
# A table without municipality or sector serves only questions whose scope and filters need neither.
MONTHLY_TABLES: dict[str, tuple[str, ...]] = {
    "appeal_monthly_ms": ("municipality_id", "sector_id"),
    "appeal_monthly_o": ("organisation_id",),
    "appeal_monthly_mc": ("municipality_id", "sector_id", "category_id"),
    "appeal_monthly_mk": ("municipality_id", "sector_id", "channel", "kind"),
    "appeal_monthly": DIMENSIONS,
}
# table -> (the smallest table it can be regrouped from, its dimensions), in build order
_DERIVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "appeal_monthly_mc": ("appeal_monthly", MONTHLY_TABLES["appeal_monthly_mc"]),
    "appeal_monthly_mk": ("appeal_monthly", MONTHLY_TABLES["appeal_monthly_mk"]),
    "appeal_monthly_ms": ("appeal_monthly_mk", MONTHLY_TABLES["appeal_monthly_ms"]),
    "appeal_monthly_o": ("appeal_monthly", MONTHLY_TABLES["appeal_monthly_o"]),
}
_DIM_TYPES = {"municipality_id": "INTEGER", "sector_id": "SMALLINT", "category_id": "INTEGER",
              "organisation_id": "INTEGER", "channel": "VARCHAR", "kind": "VARCHAR"}
# Exact quantiles the pages ask for most, computed once per import: period kind (a calendar month or
# quarter) × grain (the dimensions a question groups or filters by, one value each) × duration →
# ``quantile_cont`` at ``STORED_QUANTILES`` (microseconds). A rating, a heat map or a KPI series then
# reads a few hundred rows instead of selecting among millions of durations (bench/metrics_bench.py);
# any other question computes them from ``appeal_duration``. The same by region (the country rating):
# ``appeal_quantile_region``, with the units' regions it was made with (``_refresh_region_quantiles``).
STORED_QUANTILES: tuple[float, ...] = (0.5, 0.9)
QUANTILE_KINDS: tuple[str, ...] = ("month", "quarter")
QUANTILE_GRAINS: tuple[tuple[str, ...], ...] = (
    (), ("municipality_id",), ("sector_id",), ("organisation_id",), ("municipality_id", "sector_id"))
_QUANTILE_DIMS = ("municipality_id", "sector_id", "organisation_id")

# tables of earlier versions (duration histograms: estimated medians), dropped on sight
_OBSOLETE = ("appeal_monthly_hist_ms", "appeal_monthly_hist_o", "appeal_monthly_hist_body", "appeal_monthly_hist")


# --- cohort measures as known at an earlier moment -------------------------------------------------
# A cohort measure judged at a moment ``as_of`` before the data date (DESIGN §4: the previous period
# measured at the same age) counts only the answers and first reactions made by then. Each appeal
# changes such a measure at a few moments (its answer, its first reaction, its deadline passing
# unanswered, its 30-day window ending); ``appeal_known`` keeps those changes as signed counts per
# receipt month × municipality × sector × organisation × day of the change, so a measure as known at
# ``as_of`` is the sum of the changes of the days before as_of's day, plus that day's changes up to
# as_of itself (read from the facts: one day of one cohort). The receipt-only measures (``n``,
# ``n_distinct``, ``n_repeat``) stay in ``appeal_monthly``.
# event -> (its moment, which appeals have it, whether the moment must be strictly before as_of)
KNOWN_EVENTS: dict[str, tuple[str, str, bool]] = {
    "answer": ("answered_at", "answered_at IS NOT NULL", False),
    "response": ("first_response_at", "first_response_at IS NOT NULL", False),
    # overdue from the deadline on (strictly after it), until the answer; never when answered in time
    "due": ("due_at", "due_at IS NOT NULL AND (answered_at IS NULL OR due_at < answered_at)", True),
    # the 30-day window's end (a midnight) counts an appeal not answered inside it as eligible
    "window": (WINDOW_END_SQL, f"NOT coalesce({WITHIN_30D_SQL}, FALSE)", False),
}
_FIRST_BY_ANSWER = "(first_response_at IS NULL OR answered_at < first_response_at)"
# measure -> event -> the change it brings (a condition counted as 1, or a signed number / sum)
KNOWN_MEASURES: dict[str, dict[str, str]] = {
    **{m: {"answer": MEASURES[m]} for m in (
        "n_closed", "n_answered", "n_redirected", "n_closed_due", "n_on_time", "n_resolved", "n_merits",
        "n_rework", "n_rated", "n_satisfied", "n_within_30d")},
    "n_responded": {"response": "TRUE"},
    # the first reaction's deadline is judged on the first reaction, or on the answer while it is unknown
    "n_first_due": {"answer": f"first_response_due_at IS NOT NULL AND {_FIRST_BY_ANSWER}",
                    "response": "first_response_due_at IS NOT NULL AND (answered_at IS NULL OR "
                                "first_response_at <= answered_at)"},
    "n_first_on_time": {"answer": f"answered_at <= first_response_due_at AND {_FIRST_BY_ANSWER}",
                        "response": "#(CASE WHEN first_response_at <= first_response_due_at THEN 1 ELSE 0 END"
                                    " - CASE WHEN answered_at < first_response_at AND answered_at <= "
                                    "first_response_due_at THEN 1 ELSE 0 END)"},
    "sum_response_hours": {"response": MEASURES["sum_response_hours"]},
    "sum_answer_hours": {"answer": MEASURES["sum_answer_hours"]},
    "n_overdue": {"due": "TRUE", "answer": "#(CASE WHEN due_at < answered_at THEN -1 ELSE 0 END)"},
    "eligible_30d": {"answer": WITHIN_30D_SQL, "window": "TRUE"},
}
KNOWN_DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id", "organisation_id")
# the same over fewer dimensions (smallest first); a question whose columns none holds reads the facts
KNOWN_TABLES: dict[str, tuple[str, ...]] = {
    "appeal_known_o": ("organisation_id",),
    "appeal_known_m": ("municipality_id",),
    "appeal_known": KNOWN_DIMENSIONS,
}


# The day holding the moment itself: its changes up to that moment come from ``appeal_known_head``
# where the moment is the data date's time of day on one of the days a previous period is measured at
# the same age (the data date minus a month's, a quarter's or a year's days), else from the facts.
SAME_AGE_DAYS: tuple[int, ...] = (28, 29, 30, 31, 89, 90, 91, 92, 365, 366)


def known_value_sql(measure: str, event: str) -> str:
    """The change ``event`` brings to ``measure`` for one appeal row, as a number (0 when none)."""
    expr = KNOWN_MEASURES[measure].get(event)
    if expr is None:
        return "0"
    if expr.startswith("#"):
        return expr[1:]
    if measure.startswith("sum_"):
        return expr
    return "1" if expr == "TRUE" else f"CASE WHEN {expr} THEN 1 ELSE 0 END"


def _refresh_daily(con: duckdb.DuckDBPyConnection, months_where: str, params: dict,
                   months: list[dt.date] | None) -> None:
    """``appeal_daily`` for the receipt months selected by ``months_where`` (all when ``months`` is None)."""
    if months is None:
        con.execute("DELETE FROM appeal_daily")
    else:
        con.execute("DELETE FROM appeal_daily WHERE list_contains($m, CAST(date_trunc('month', day) AS DATE))",
                    {"m": months})
    measures = ", ".join(measure_sql(name, expr) for name, expr in MEASURES.items())
    con.execute(
        f"""INSERT INTO appeal_daily SELECT CAST(received_at AS DATE) AS day, {', '.join(DAILY_DIMENSIONS)}, {measures}
            FROM appeal {months_where} GROUP BY ALL ORDER BY day""",  # noqa: S608 - constants only
        params,
    )
    _refresh_day_durations(con, months_where, params, months)


def _refresh_day_durations(con: duckdb.DuckDBPyConnection, months_where: str, params: dict,
                           months: list[dt.date] | None) -> None:
    """``appeal_duration_daily`` for the receipt months selected by ``months_where`` (all when None)."""
    if months is None:
        con.execute("DELETE FROM appeal_duration_daily")
    else:
        con.execute("DELETE FROM appeal_duration_daily WHERE list_contains($m, CAST(date_trunc('month', day) AS DATE))",
                    {"m": months})
    dims = ", ".join(DAILY_DIMENSIONS)
    parts = [
        f"""SELECT CAST(received_at AS DATE) AS day, CAST({code} AS TINYINT) AS duration, {dims}, {micros} AS micros
            FROM appeal {months_where} {'AND' if months_where else 'WHERE'} {has}"""  # noqa: S608 - constants only
        for code, (micros, has) in DURATIONS.items()
    ]
    # by kind, then day (zone maps skip the other kind and the days a range leaves out), then group: a
    # day range's quantile_cont by municipality runs ~30 % faster on values arriving group by group
    con.execute(f"INSERT INTO appeal_duration_daily {' UNION ALL '.join(parts)} "  # noqa: S608 - constants only
                f"ORDER BY duration, day, {', '.join(DAILY_DIMENSIONS)}, micros", params)


def _refresh_known(con: duckdb.DuckDBPyConnection, months_where: str, params: dict,
                   months: list[dt.date] | None) -> None:
    """``appeal_known`` and its smaller copies for the receipt months selected by ``months_where``."""
    dims = ", ".join(KNOWN_DIMENSIONS)
    where = "" if months is None else "WHERE list_contains($m, month)"
    for table in KNOWN_TABLES:
        con.execute(f"DELETE FROM {table} {where}", {} if months is None else {"m": months})  # noqa: S608
    parts = []
    for event, (moment, has, _strict) in KNOWN_EVENTS.items():
        values = [f"{known_value_sql(m, event)} AS {m}" for m in KNOWN_MEASURES]
        cond = f"{months_where} AND ({has})" if months_where else f"WHERE {has}"
        parts.append(f"SELECT CAST(date_trunc('month', received_at) AS DATE) AS month, {dims}, "  # noqa: S608
                     f"CAST({moment} AS DATE) AS day, {', '.join(values)} FROM appeal {cond}")
    sums = ", ".join(f"sum({m}) AS {m}" if m.startswith("sum_") else f"CAST(sum({m}) AS INTEGER) AS {m}"
                     for m in KNOWN_MEASURES)
    con.execute(f"INSERT INTO appeal_known SELECT month, {dims}, day, {sums} FROM ({' UNION ALL '.join(parts)}) "  # noqa: S608
                "GROUP BY ALL ORDER BY month, day", params)
    for table, kept in KNOWN_TABLES.items():
        if table == "appeal_known":
            continue
        con.execute(f"INSERT INTO {table} SELECT month, {', '.join(kept)}, day, {sums} FROM appeal_known {where} "  # noqa: S608
                    "GROUP BY ALL ORDER BY month, day", {} if months is None else {"m": months})
    _refresh_known_head(con)


def _refresh_known_head(con: duckdb.DuckDBPyConnection) -> None:
    """``appeal_known_head``: the changes of each ``SAME_AGE_DAYS`` day before the data date up to the
    data date's time of day on it (``appeal_known_head_day`` lists those moments). Rebuilt whole: a
    new data date moves every such moment."""
    con.execute("DELETE FROM appeal_known_head")
    con.execute("DELETE FROM appeal_known_head_day")
    last = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
    stated = con.execute("SELECT max(value) FROM meta WHERE key = 'data_as_of'").fetchall()[0][0] \
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta'").fetchall()[0][0] else None
    # the data date the readers will see: the importer states the last receipt after this refresh
    anchors = [m for m in (last, dt.datetime.fromisoformat(stated) if stated else None) if m is not None]
    if not anchors:
        return
    anchor = max(anchors)
    moments = sorted({anchor - dt.timedelta(days=k) for k in SAME_AGE_DAYS})
    params: dict[str, object] = {}
    for i, m in enumerate(moments):
        params[f"d{i}"], params[f"t{i}"] = dt.datetime.combine(m.date(), dt.time()), m
        # the window ends at a midnight: that of the receipts 31 days before
        params[f"w{i}"] = params[f"d{i}"] - dt.timedelta(days=31)
        params[f"x{i}"] = params[f"d{i}"] - dt.timedelta(days=30)
    dims = ", ".join(KNOWN_DIMENSIONS)
    parts = []
    for event, (moment, has, strict) in KNOWN_EVENTS.items():
        values = [f"{known_value_sql(m, event)} AS {m}" for m in KNOWN_MEASURES]
        # ranges on a stored column, so that DuckDB skips the row groups outside every day
        if event == "window":
            ranges = [f"(received_at >= $w{i} AND received_at < $x{i})" for i in range(len(moments))]
        else:
            ranges = [f"({moment} >= $d{i} AND {moment} {'<' if strict else '<='} $t{i})" for i in range(len(moments))]
        parts.append(f"SELECT CAST(date_trunc('month', received_at) AS DATE) AS month, {dims}, "  # noqa: S608
                     f"CAST({moment} AS DATE) AS day, {', '.join(values)} FROM appeal "
                     f"WHERE ({' OR '.join(ranges)}) AND ({has})")
    sums = ", ".join(f"sum({m}) AS {m}" if m.startswith("sum_") else f"CAST(sum({m}) AS INTEGER) AS {m}"
                     for m in KNOWN_MEASURES)
    con.execute(f"INSERT INTO appeal_known_head SELECT month, {dims}, day, {sums} FROM ({' UNION ALL '.join(parts)}) "  # noqa: S608
                "GROUP BY ALL ORDER BY day, month", params)
    con.executemany("INSERT INTO appeal_known_head_day VALUES (?, ?)", [[m.date(), m] for m in moments])


def measure_sql(name: str, expr: str) -> str:
    if name.startswith("sum_"):
        return f"sum({expr}) AS {name}"
    if expr == "TRUE":
        return f"CAST(count(*) AS INTEGER) AS {name}"
    # a sum of 0/1 costs DuckDB a quarter less than count(*) FILTER over many small groups (measured
    # on the import bench); over no rows at all it is NULL, which the readers coalesce to 0
    return f"CAST(sum(CASE WHEN {expr} THEN 1 ELSE 0 END) AS INTEGER) AS {name}"


def create_rollup_tables(con: duckdb.DuckDBPyConnection) -> None:
    dims = [f"{d} {_DIM_TYPES[d]}" for d in DIMENSIONS]
    measures = [f"{name} {'DOUBLE' if name.startswith('sum_') else 'INTEGER'}" for name in MEASURES]
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for table in _OBSOLETE:
        if table in present:
            con.execute(f"DROP TABLE {table}")  # noqa: S608 - constant names
    con.execute(f"CREATE TABLE IF NOT EXISTS appeal_monthly (month DATE NOT NULL, {', '.join(dims + measures)})")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_duration (month DATE NOT NULL, duration TINYINT NOT NULL,
            {', '.join(dims)}, micros BIGINT NOT NULL)"""
    )
    stock = ", ".join(f"{name} INTEGER" for name, _, _ in AGE_BUCKETS)
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_stock (month DATE NOT NULL, {', '.join(dims)}, {stock},
            overdue INTEGER)"""
    )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_quantile (kind VARCHAR NOT NULL, start DATE NOT NULL,
            grain VARCHAR NOT NULL, {', '.join(f"{d} {_DIM_TYPES[d]}" for d in _QUANTILE_DIMS)},
            duration TINYINT NOT NULL, micros DOUBLE[] NOT NULL)"""
    )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_stock_weekly (week DATE NOT NULL,
            {', '.join(f"{d} {_DIM_TYPES[d]}" for d in WEEKLY_DIMENSIONS)}, {stock}, overdue INTEGER)"""
    )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_stock_daily (day DATE NOT NULL,
            {', '.join(f"{d} {_DIM_TYPES[d]}" for d in DAILY_DIMENSIONS)}, {stock}, overdue INTEGER)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS appeal_weekly (week DATE NOT NULL, municipality_id INTEGER,
           sector_id SMALLINT, category_id INTEGER, n INTEGER NOT NULL)"""
    )
    con.execute("""CREATE TABLE IF NOT EXISTS appeal_quantile_region (kind VARCHAR NOT NULL, start DATE NOT NULL,
                   region_id INTEGER, duration TINYINT NOT NULL, micros DOUBLE[] NOT NULL)""")
    con.execute("CREATE TABLE IF NOT EXISTS appeal_quantile_region_map (municipality_id INTEGER, region_id INTEGER)")
    con.execute(f"""CREATE TABLE IF NOT EXISTS appeal_daily (day DATE NOT NULL,
                    {', '.join(f"{d} {_DIM_TYPES[d]}" for d in DAILY_DIMENSIONS)}, {', '.join(measures)})""")
    con.execute(f"""CREATE TABLE IF NOT EXISTS appeal_duration_daily (day DATE NOT NULL, duration TINYINT NOT NULL,
                    {', '.join(f"{d} {_DIM_TYPES[d]}" for d in DAILY_DIMENSIONS)}, micros BIGINT NOT NULL)""")
    known_cols = [f"{m} {'DOUBLE' if m.startswith('sum_') else 'INTEGER'}" for m in KNOWN_MEASURES]
    for table, kept in {**KNOWN_TABLES, "appeal_known_head": KNOWN_DIMENSIONS}.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} (month DATE NOT NULL, "  # noqa: S608 - constant names
                    f"{', '.join(f'{d} {_DIM_TYPES[d]}' for d in kept)}, day DATE, {', '.join(known_cols)})")
    con.execute("CREATE TABLE IF NOT EXISTS appeal_known_head_day (day DATE NOT NULL, upto TIMESTAMP NOT NULL)")
    con.execute("CREATE TABLE IF NOT EXISTS appeal_open AS SELECT * FROM appeal LIMIT 0")
    columns = {(r[0], r[1]) for r in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE table_name LIKE 'appeal_%'").fetchall()}
    # a warehouse from before today's definitions
    stale = not {("appeal_monthly", m) for m in MEASURES} | {("appeal_duration", "micros")} <= columns
    for table, (_source, dimensions) in _DERIVED.items():
        if stale:
            con.execute(f"DROP TABLE IF EXISTS {table}")  # noqa: S608 - constant names
        dims_sql = ", ".join(f"{d} {_DIM_TYPES[d]}" for d in dimensions)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} (month DATE NOT NULL, {dims_sql}, {', '.join(measures)})")
    if stale or any(t not in present for t in ("appeal_duration", "appeal_quantile", *STOCK_TABLES)):
        if stale:
            for table in ("appeal_monthly", "appeal_duration"):
                con.execute(f"DROP TABLE {table}")  # noqa: S608 - constant names
            create_rollup_tables(con)
            return
        if con.execute("SELECT count(*) FROM appeal").fetchall()[0][0]:
            refresh_rollups(con)  # a warehouse from before these tables or definitions: rebuild them whole
        return
    if any(t not in present for t in _DERIVED):
        _refresh_derived(con, None, [t for t in _DERIVED if t not in present])
    if any(t not in present for t in (*KNOWN_TABLES, "appeal_known_head")):  # a warehouse from before them
        _refresh_known(con, "", {}, None)
    if "appeal_quantile_region" not in present:
        _refresh_region_quantiles(con, None)
    if "appeal_daily" not in present:
        _refresh_daily(con, "", {}, None)
    elif "appeal_duration_daily" not in present:
        _refresh_day_durations(con, "", {}, None)


def grain_code(dims: Iterable[str]) -> str:
    """The name of a quantile grain: its dimensions in declaration order, comma-separated."""
    wanted = set(dims)
    return ",".join(d for d in _QUANTILE_DIMS if d in wanted)


def period_starts(kind: str, months: list[dt.date]) -> list[dt.date]:
    """The starts of the calendar months or quarters (``kind``) holding ``months``."""
    return sorted({d.replace(month=(d.month - 1) // 3 * 3 + 1) if kind == "quarter" else d for d in months})


def _refresh_quantiles(con: duckdb.DuckDBPyConnection, months: list[dt.date] | None) -> None:
    """Stored quantiles of the months (and the quarters holding them) in ``months`` (None: all)."""
    for kind in QUANTILE_KINDS:
        if months is None:
            con.execute("DELETE FROM appeal_quantile WHERE kind = $k", {"k": kind})
            where, params = "", {}
        else:
            starts = period_starts(kind, months)
            con.execute("DELETE FROM appeal_quantile WHERE kind = $k AND list_contains($s, start)",
                        {"k": kind, "s": starts})
            where = f"WHERE list_contains($s, CAST(date_trunc('{kind}', month) AS DATE))"
            params = {"s": starts}
        for grain in QUANTILE_GRAINS:
            dims = [d if d in grain else f"CAST(NULL AS {_DIM_TYPES[d]}) AS {d}" for d in _QUANTILE_DIMS]
            con.execute(
                f"""INSERT INTO appeal_quantile
                    SELECT '{kind}', CAST(date_trunc('{kind}', month) AS DATE) AS start, '{grain_code(grain)}',
                           {', '.join(dims)}, duration,
                           quantile_cont(micros, {list(STORED_QUANTILES)!r}) AS micros
                    FROM appeal_duration {where}
                    GROUP BY ALL""",  # noqa: S608 - constants only
                params,
            )


def _refresh_region_quantiles(con: duckdb.DuckDBPyConnection, months: list[dt.date] | None) -> None:
    """Stored quantiles by region (a function of the municipality) of the months in ``months`` (None:
    all), made with the units' regions of ``appeal_quantile_region_map``; all months again when the
    regions of the units changed since (the readers use the table only while the map is current)."""
    has_region = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'municipality' "
                             "AND column_name = 'region_id'").fetchall()[0][0]
    units = con.execute(
        f"SELECT id, {'coalesce(region_id, 1)' if has_region else '1'} FROM municipality WHERE id IS NOT NULL "  # noqa: S608
        "ORDER BY id").fetchall()
    if units != con.execute("SELECT municipality_id, region_id FROM appeal_quantile_region_map "
                            "ORDER BY municipality_id").fetchall():
        months = None
        con.execute("DELETE FROM appeal_quantile_region_map")
        con.executemany("INSERT INTO appeal_quantile_region_map VALUES (?, ?)", units)
    for kind in QUANTILE_KINDS:
        if months is None:
            con.execute("DELETE FROM appeal_quantile_region WHERE kind = $k", {"k": kind})
            where, params = "", {}
        else:
            starts = period_starts(kind, months)
            con.execute("DELETE FROM appeal_quantile_region WHERE kind = $k AND list_contains($s, start)",
                        {"k": kind, "s": starts})
            where = f"WHERE list_contains($s, CAST(date_trunc('{kind}', d.month) AS DATE))"
            params = {"s": starts}
        con.execute(
            f"""INSERT INTO appeal_quantile_region
                SELECT '{kind}', CAST(date_trunc('{kind}', d.month) AS DATE) AS start, u.region_id, d.duration,
                       quantile_cont(d.micros, {list(STORED_QUANTILES)!r}) AS micros
                FROM appeal_duration d LEFT JOIN appeal_quantile_region_map u ON u.municipality_id = d.municipality_id
                {where} GROUP BY ALL""",  # noqa: S608 - constants only
            params,
        )


def _refresh_derived(con: duckdb.DuckDBPyConnection, months: list[dt.date] | None,
                     tables: Iterable[str] = tuple(_DERIVED)) -> None:
    """Rebuild the smaller monthly tables from the full-grain ones for ``months`` (None: all)."""
    for table in tables:
        source, dimensions = _DERIVED[table]
        dims = ", ".join(dimensions)
        sums = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
        where = "" if months is None else "WHERE list_contains($months, month)"
        params = {} if months is None else {"months": months}
        con.execute(f"DELETE FROM {table} {where}", params)  # noqa: S608 - constant names
        con.execute(
            f"""INSERT INTO {table} SELECT month, {dims}, {sums} FROM {source} {where}
                GROUP BY ALL""",  # noqa: S608 - constant names (small tables: no sort by month needed)
            params,
        )


def _next_month(d: dt.date) -> dt.date:
    return add_months(d, 1)


def _previous_month(d: dt.date) -> dt.date:
    return dt.date(d.year - (d.month == 1), (d.month - 2) % 12 + 1, 1)


def _monday(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def _period_start(unit: str, d: dt.date) -> dt.date:
    """The start of the month, week or day holding ``d``."""
    return d.replace(day=1) if unit == "month" else _monday(d) if unit == "week" else d


def stock_sql(t: str) -> list[str]:
    """SELECT items counting one open appeal's place in the stock at the moment ``t`` (an SQL
    expression): its age bucket in calendar days at ``t`` and whether it is overdue at ``t``."""
    items = [f"CAST(sum(CASE WHEN date_diff('day', received_at, {t}) "
             f"{f'BETWEEN {lo} AND {hi}' if hi is not None else f'>= {lo}'} THEN 1 ELSE 0 END) AS INTEGER) AS {name}"
             for name, lo, hi in AGE_BUCKETS]
    return [*items, f"CAST(sum(CASE WHEN due_at < {t} THEN 1 ELSE 0 END) AS INTEGER) AS overdue"]


# snapshot table -> (its time column, the step between snapshots, the dimensions it keeps)
STOCK_TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "appeal_stock": ("month", "month", DIMENSIONS),
    "appeal_stock_weekly": ("week", "week", WEEKLY_DIMENSIONS),
    "appeal_stock_daily": ("day", "day", DAILY_DIMENSIONS),
}
# snapshot unit -> the SQL interval between two snapshots
STOCK_STEPS: dict[str, str] = {"month": "INTERVAL 1 MONTH", "week": "INTERVAL 7 DAY", "day": "INTERVAL 1 DAY"}


def _refresh_stock(con: duckdb.DuckDBPyConnection, first: dt.date | None) -> None:
    """Month-end, week-end and day-end stocks from the period holding ``first`` (None: all) to the last period
    with appeals.

    An appeal is open at the end ``t`` of every month (week) from the one of its receipt (received by
    ``t``) until the one before its answer (answered after ``t``): one row per such end.
    """
    for table, (column, unit, dims_kept) in STOCK_TABLES.items():
        step = STOCK_STEPS[unit]
        sql = f"SELECT CAST(date_trunc('{unit}', min(received_at)) AS DATE), CAST(date_trunc('{unit}', max(received_at)) AS DATE) FROM appeal"  # noqa: S608, E501 - constants
        bounds = con.execute(sql).fetchall()[0]
        lo = bounds[0] if first is None else _period_start(unit, first)
        if first is None:
            con.execute(f"DELETE FROM {table}")  # noqa: S608 - constant names
        else:
            con.execute(f"DELETE FROM {table} WHERE {column} >= $lo", {"lo": lo})  # noqa: S608 - constant names
        if bounds[1] is None or lo is None or lo > bounds[1]:
            continue
        dims = ", ".join(dims_kept)
        t_lo = dt.datetime.combine(lo, dt.time())
        t_hi = dt.datetime.combine(bounds[1], dt.time())
        con.execute(
            f"""INSERT INTO {table}
                SELECT CAST(t - {step} AS DATE) AS {column}, {dims}, {', '.join(stock_sql('t'))}
                FROM (SELECT {dims}, received_at, due_at,
                             unnest(generate_series(
                                 greatest(date_trunc('{unit}', received_at - INTERVAL 1 MICROSECOND) + {step},
                                          $t_lo + {step}),
                                 least(coalesce(date_trunc('{unit}', answered_at - INTERVAL 1 MICROSECOND),
                                                $t_hi + {step}), $t_hi + {step}),
                                 {step})) AS t
                      FROM appeal
                      WHERE received_at <= $t_hi + {step} AND (answered_at IS NULL OR answered_at > $t_lo + {step}))
                GROUP BY ALL ORDER BY {column}""",  # noqa: S608 - constants only
            {"t_lo": t_lo, "t_hi": t_hi},
        )


def refresh_rollups(con: duckdb.DuckDBPyConnection, days: Iterable[dt.date] | None = None) -> None:
    """Rebuild the rollups for the months holding ``days`` (everything when None), and ``appeal_open``.

    Call inside the writer's transaction, after the facts changed.
    """
    create_rollup_tables(con)
    dims = ", ".join(DIMENSIONS)
    months: list[dt.date] = []
    if days is None:
        months_where, week_where, params = "", "", {}
        for table in ("appeal_monthly", "appeal_duration", "appeal_weekly"):
            con.execute(f"DELETE FROM {table}")  # noqa: S608 - constant names
    else:
        months = sorted({d.replace(day=1) for d in days if d is not None})
        if not months:
            months_where = None
        else:
            # the range lets DuckDB skip row groups by zone maps; the list keeps untouched months out
            # (when the months run without a gap the range says it all, and a per-row test is saved)
            contiguous = all(_next_month(a) == b for a, b in zip(months, months[1:], strict=False))
            months_where = "WHERE received_at >= $lo AND received_at < $hi" + (
                "" if contiguous else " AND list_contains($months, CAST(date_trunc('month', received_at) AS DATE))"
            )
            # whole weeks are rebuilt: every week starting from the Monday before the first month
            week_where = "WHERE received_at >= $wlo AND received_at < $whi"
            params = {
                "lo": months[0], "hi": _next_month(months[-1]), "months": months,
                "wlo": _monday(months[0]), "whi": _monday(_next_month(months[-1])) + dt.timedelta(days=7),
            }
            con.execute("DELETE FROM appeal_monthly WHERE list_contains($m, month)", {"m": months})
            con.execute("DELETE FROM appeal_duration WHERE list_contains($m, month)", {"m": months})
            con.execute("DELETE FROM appeal_weekly WHERE week >= $wlo AND week < $whi",
                        {"wlo": params["wlo"], "whi": params["whi"]})
    if days is None or months_where is not None:
        measures = ", ".join(measure_sql(name, expr) for name, expr in MEASURES.items())
        month_params = {k: v for k, v in params.items() if k in ("lo", "hi", "months") and f"${k}" in months_where}
        con.execute(
            f"""INSERT INTO appeal_monthly
                SELECT CAST(date_trunc('month', received_at) AS DATE) AS month, {dims}, {measures}
                FROM appeal {months_where} GROUP BY ALL ORDER BY month""",  # noqa: S608 - constants only
            month_params,
        )
        _refresh_known(con, months_where, month_params, months if months_where else None)
        _refresh_daily(con, months_where, month_params, months if months_where else None)
        parts = [
            f"""SELECT CAST(date_trunc('month', received_at) AS DATE) AS month, CAST({code} AS TINYINT) AS duration,
                       {dims}, {micros} AS micros
                FROM appeal {months_where} {'AND' if months_where else 'WHERE'} {has}"""  # noqa: S608 - constants only
            for code, (micros, has) in DURATIONS.items()
        ]
        # sorted by value inside each month and kind: quantile_cont's selection runs ~1.5× faster on it
        con.execute(
            f"INSERT INTO appeal_duration {' UNION ALL '.join(parts)} ORDER BY month, duration, micros",  # noqa: S608
            month_params,
        )
        _refresh_derived(con, months if months_where else None)
        _refresh_quantiles(con, months if months_where else None)
        _refresh_region_quantiles(con, months if months_where else None)
        con.execute(
            f"""INSERT INTO appeal_weekly
                SELECT CAST(date_trunc('week', received_at) AS DATE) AS week, {', '.join(WEEKLY_DIMENSIONS)},
                       CAST(count(*) AS INTEGER) AS n
                FROM appeal {week_where} GROUP BY ALL ORDER BY week""",  # noqa: S608 - constants only
            {k: v for k, v in params.items() if k in ("wlo", "whi")},
        )
        # from the month before: an appeal received at 00:00 on the 1st is open at the previous month's end
        # (and at the end of the week before)
        _refresh_stock(con, _previous_month(months[0]) if months else None)
    con.execute("DELETE FROM appeal_open")
    con.execute(f"INSERT INTO appeal_open SELECT * FROM appeal WHERE {OPEN_SQL}")  # noqa: S608
