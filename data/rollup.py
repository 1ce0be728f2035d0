"""Rollups of appeals: what the metrics read instead of the facts for month-aligned periods.

Measured on the demo (bench/metrics_bench.py): a day-grained rollup over every dimension hardly
shrinks (≈ 0.8 rows per appeal), so the time grain is the month:

- ``appeal_monthly``: month × municipality × sector × category × organisation × channel × kind,
  additive counts and sums (``MEASURES``);
- ``appeal_monthly_hist``: the same grain × duration kind × log-spaced bucket → count, from which
  medians and p90 are estimated (error stated in the bench);
- ``appeal_weekly``: week × municipality × sector × category → count, for signals;
- ``appeal_open``: appeals still without an answer (few rows), for the "right now" indicators.

All are refreshed by every import (only the months it touched) and by the demo build, inside
the writer's transaction. Arbitrary date ranges are answered from the facts by the metrics layer.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

import duckdb

from data.months import add_months

HIST_BUCKETS = 40
_FIRST_EDGE_HOURS, _LAST_EDGE_HOURS = 0.25, 4000.0
_RATIO = (_LAST_EDGE_HOURS / _FIRST_EDGE_HOURS) ** (1 / (HIST_BUCKETS - 2))
# Rows are inserted in time order so that DuckDB's zone maps skip the months a query does not need.
# Bucket i holds durations in [EDGES[i], EDGES[i + 1]) hours; the last one is open-ended.
HIST_EDGES_HOURS: tuple[float, ...] = (0.0,) + tuple(_FIRST_EDGE_HOURS * _RATIO**i for i in range(HIST_BUCKETS - 1))
# duration kind code -> hours of one appeal (NULL when it has none)
DURATIONS: dict[int, str] = {
    0: "epoch(first_response_at - received_at) / 3600.0",  # first reaction
    1: "epoch(answered_at - received_at) / 3600.0",  # answer
}
OPEN_STATUSES_SQL = "('new', 'in_work')"

# measure column -> condition over one appeal row (counted) or, for sum_*, a value (summed)
MEASURES: dict[str, str] = {
    "n": "TRUE",
    "n_distinct": "duplicate_of IS NULL",
    "n_repeat": "repeat_of IS NOT NULL",
    "n_answered": "answered_at IS NOT NULL",
    "n_answered_due": "answered_at IS NOT NULL AND due_at IS NOT NULL",
    "n_on_time": "answered_at IS NOT NULL AND answered_at <= due_at",
    "n_resolved": "closure_reason = 'resolved'",
    "n_merits": "coalesce(answer_on_merits, FALSE)",
    "n_rework": "coalesce(returned_for_rework, FALSE)",
    "n_rated": "satisfaction IS NOT NULL",
    "n_satisfied": "satisfaction >= 4",
    "n_within_30d": "answered_at IS NOT NULL AND answered_at <= received_at + INTERVAL 30 DAY",
    "n_open": f"status IN {OPEN_STATUSES_SQL}",
    "n_responded": "first_response_at IS NOT NULL",
    "n_first_due": "first_response_due_at IS NOT NULL AND coalesce(first_response_at, answered_at) IS NOT NULL",
    "n_first_on_time": "coalesce(first_response_at, answered_at) <= first_response_due_at",
    "sum_response_hours": "coalesce(epoch(first_response_at - received_at) / 3600.0, 0)",
    "sum_answer_hours": "coalesce(epoch(answered_at - received_at) / 3600.0, 0)",
}
DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id", "category_id", "organisation_id", "channel", "kind")
WEEKLY_DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id", "category_id")
BODY_DIMENSIONS: tuple[str, ...] = ("municipality_id", "sector_id", "organisation_id")

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
HIST_TABLES: dict[str, tuple[str, ...]] = {
    "appeal_monthly_hist_ms": ("municipality_id", "sector_id"),
    "appeal_monthly_hist_o": ("organisation_id",),
    "appeal_monthly_hist_body": BODY_DIMENSIONS,
    "appeal_monthly_hist": DIMENSIONS,
}
# table -> (the smallest table it can be regrouped from, its dimensions), in build order
_DERIVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "appeal_monthly_mc": ("appeal_monthly", MONTHLY_TABLES["appeal_monthly_mc"]),
    "appeal_monthly_mk": ("appeal_monthly", MONTHLY_TABLES["appeal_monthly_mk"]),
    "appeal_monthly_ms": ("appeal_monthly_mk", MONTHLY_TABLES["appeal_monthly_ms"]),
    "appeal_monthly_o": ("appeal_monthly", MONTHLY_TABLES["appeal_monthly_o"]),
    "appeal_monthly_hist_ms": ("appeal_monthly_hist_body", HIST_TABLES["appeal_monthly_hist_ms"]),
    "appeal_monthly_hist_o": ("appeal_monthly_hist_body", HIST_TABLES["appeal_monthly_hist_o"]),
}
_DIM_TYPES = {"municipality_id": "INTEGER", "sector_id": "SMALLINT", "category_id": "INTEGER",
              "organisation_id": "INTEGER", "channel": "VARCHAR", "kind": "VARCHAR"}


def bucket_of_sql(hours_sql: str) -> str:
    """SQL for the histogram bucket of a duration in hours."""
    return (
        f"CASE WHEN ({hours_sql}) < {_FIRST_EDGE_HOURS} THEN 0 "
        f"ELSE least({HIST_BUCKETS - 1}, 1 + CAST(floor(ln(({hours_sql}) / {_FIRST_EDGE_HOURS}) "
        f"/ {math.log(_RATIO)!r}) AS INTEGER)) END"
    )


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
    con.execute(f"CREATE TABLE IF NOT EXISTS appeal_monthly (month DATE NOT NULL, {', '.join(dims + measures)})")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_monthly_hist (month DATE NOT NULL, {', '.join(dims)},
            duration TINYINT NOT NULL, bucket TINYINT NOT NULL, n INTEGER NOT NULL)"""
    )
    # The same histograms over fewer dimensions: questions about bodies and places (ratings, the
    # median on the map) read ~10× fewer rows than from the full grain.
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS appeal_monthly_hist_body (month DATE NOT NULL,
            {', '.join(d for d in dims if d.split()[0] in BODY_DIMENSIONS)},
            duration TINYINT NOT NULL, bucket TINYINT NOT NULL, n INTEGER NOT NULL)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS appeal_weekly (week DATE NOT NULL, municipality_id INTEGER,
           sector_id SMALLINT, category_id INTEGER, n INTEGER NOT NULL)"""
    )
    con.execute("CREATE TABLE IF NOT EXISTS appeal_open AS SELECT * FROM appeal LIMIT 0")
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for table, (source, dimensions) in _DERIVED.items():
        dims_sql = ", ".join(f"{d} {_DIM_TYPES[d]}" for d in dimensions)
        if source in MONTHLY_TABLES:
            measures_sql = ", ".join(measures)
        else:
            measures_sql = "duration TINYINT NOT NULL, bucket TINYINT NOT NULL, n INTEGER NOT NULL"
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} (month DATE NOT NULL, {dims_sql}, {measures_sql})")
        if table not in present:  # a warehouse from before this table: fill it whole
            _refresh_derived(con, None, [table])
            present.add(table)


def _refresh_derived(con: duckdb.DuckDBPyConnection, months: list[dt.date] | None,
                     tables: Iterable[str] = tuple(_DERIVED)) -> None:
    """Rebuild the smaller monthly tables from the full-grain ones for ``months`` (None: all)."""
    for table in tables:
        source, dimensions = _DERIVED[table]
        dims = ", ".join(dimensions)
        if source in MONTHLY_TABLES:
            sums = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
            extra = ""
        else:
            sums, extra = "CAST(sum(n) AS INTEGER) AS n", "duration, bucket, "
        where = "" if months is None else "WHERE list_contains($months, month)"
        params = {} if months is None else {"months": months}
        con.execute(f"DELETE FROM {table} {where}", params)  # noqa: S608 - constant names
        con.execute(
            f"""INSERT INTO {table} SELECT month, {dims}, {extra}{sums} FROM {source} {where}
                GROUP BY ALL""",  # noqa: S608 - constant names (small tables: no sort by month needed)
            params,
        )


def _next_month(d: dt.date) -> dt.date:
    return add_months(d, 1)


def _monday(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def refresh_rollups(con: duckdb.DuckDBPyConnection, days: Iterable[dt.date] | None = None) -> None:
    """Rebuild the rollups for the months holding ``days`` (everything when None), and ``appeal_open``.

    Call inside the writer's transaction, after the facts changed.
    """
    create_rollup_tables(con)
    dims = ", ".join(DIMENSIONS)
    if days is None:
        months_where, week_where, params = "", "", {}
        for table in ("appeal_monthly", "appeal_monthly_hist", "appeal_monthly_hist_body", "appeal_weekly"):
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
            con.execute("DELETE FROM appeal_monthly_hist WHERE list_contains($m, month)", {"m": months})
            con.execute("DELETE FROM appeal_monthly_hist_body WHERE list_contains($m, month)", {"m": months})
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
        parts = [
            f"""SELECT CAST(date_trunc('month', received_at) AS DATE) AS month, {dims},
                       CAST({code} AS TINYINT) AS duration, CAST({bucket_of_sql(hours)} AS TINYINT) AS bucket
                FROM appeal {months_where} {'AND' if months_where else 'WHERE'} ({hours}) IS NOT NULL"""  # noqa: S608 - constants only
            for code, hours in DURATIONS.items()
        ]
        con.execute(
            f"""INSERT INTO appeal_monthly_hist
                SELECT month, {dims}, duration, bucket, CAST(count(*) AS INTEGER) AS n
                FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL ORDER BY month, duration""",  # noqa: S608
            month_params,
        )
        body = ", ".join(BODY_DIMENSIONS)
        con.execute(
            f"""INSERT INTO appeal_monthly_hist_body
                SELECT month, {body}, duration, bucket, CAST(sum(n) AS INTEGER) AS n FROM appeal_monthly_hist
                {'WHERE list_contains($months, month)' if months_where else ''}
                GROUP BY ALL ORDER BY month, duration""",  # noqa: S608 - constants only
            {"months": params["months"]} if months_where else {},
        )
        _refresh_derived(con, params["months"] if months_where else None)
        con.execute(
            f"""INSERT INTO appeal_weekly
                SELECT CAST(date_trunc('week', received_at) AS DATE) AS week, {', '.join(WEEKLY_DIMENSIONS)},
                       CAST(count(*) AS INTEGER) AS n
                FROM appeal {week_where} GROUP BY ALL ORDER BY week""",  # noqa: S608 - constants only
            {k: v for k, v in params.items() if k in ("wlo", "whi")},
        )
    con.execute("DELETE FROM appeal_open")
    con.execute(f"INSERT INTO appeal_open SELECT * FROM appeal WHERE status IN {OPEN_STATUSES_SQL}")  # noqa: S608
