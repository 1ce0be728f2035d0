"""ClickHouse rollups kept by materialized views over a signed change stream (DESIGN §6).

Every write of appeals goes through one stream: ``appeal_change`` (ENGINE = Null: nothing is stored)
holds the appeal columns plus ``sign``. A write inserts the new versions of the appeals it writes with
``sign = +1`` and the old versions it removes with ``sign = -1``; the first build feeds every fact with
``+1``. Materialized views turn each inserted block into rows of the rollups, which are
``SummingMergeTree`` tables (``<rollup>_signed``): rows with the same key are added up on merge, and a
row whose sums are all zero (a retracted appeal) is dropped. The metrics read each rollup under its
DuckDB name through a plain VIEW giving DuckDB's columns of the live rows only (``create_view_sql``),
with ``final = 1`` (``data.clickhouse.SETTINGS``), so an answer sees the rows collapsed even before a
merge; the tables are partitioned by month and FINAL never merges across months.

The views are written once, in DuckDB's SQL, from the declarations of ``data.rollup`` (the measures,
durations, stock buckets), and translated by ``data.dialect``:

- counts: ``sum(CASE WHEN cond THEN sign ELSE 0 END)``; the hour sums are kept as integer
  microseconds (``sum_*_us``, so that a retraction cancels exactly, which float sums do not) and read
  as hours through the view, under DuckDB's name; the smaller monthly tables and ``appeal_known_o`` /
  ``_m`` regroup the rows their source table receives (cascading views, as ``rollup._DERIVED``);
- the known changes (``appeal_known``): one view per event of ``rollup.KNOWN_EVENTS``, with the number
  of events as ``events`` (what tells a live row);
- durations: one row per (month, duration, dimensions, microseconds, appeal key) with a signed
  ``weight``: FINAL keeps the live ones, and the quantiles stay exact;
- stocks: one signed row per snapshot end an appeal version is open at, up to the stock horizon
  (the period of the latest receipt). The views read the horizon from ``appeal_stock_bounds``; when
  a write moves the latest receipt to another period, the appeals open across the change get the
  newly reached snapshots (or lose the ones no longer reached) through ``appeal_stock_change``, the
  stream of the stock views alone.

Why not AggregatingMergeTree (which the issue names): with ``SimpleAggregateFunction(sum, …)`` columns
it adds rows up the same way but keeps a row whose sums came to zero (checked on chDB 4.4), so a
retracted duration would stay in the quantiles; SummingMergeTree drops it.

``appeal_open`` (a subset of the facts) is kept by deleting the keys a write removes and inserting
the open ones it adds; ``appeal_quantile`` (exact quantiles, which no state merges) is recomputed for
the months and quarters a write touched, from the live durations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from data import rollup
from data.dialect import to_clickhouse
from data.months import add_months

CHANGE = "appeal_change"
STOCK_CHANGE = "appeal_stock_change"
BOUNDS = "appeal_stock_bounds"
# the rollups the views feed, in the order they are created: each is stored as ``<name>_signed`` (the
# summing table) and read through a view of its own name that keeps the live rows (see ``create_view_sql``)
SUMMED: tuple[str, ...] = ("appeal_monthly", *rollup._DERIVED, "appeal_daily", "appeal_known",
                           *(t for t in rollup.KNOWN_TABLES if t != "appeal_known"), "appeal_duration",
                           "appeal_weekly", *rollup.STOCK_TABLES)
# DuckDB rollups ClickHouse goes without: the known changes of one day up to the data date's time of day,
# rebuilt whole by every import (without them the readers take that one day from the facts); the day
# ranges' durations and the stored medians by region, whose routes are DuckDB's only (``metrics.query``
# answers those questions on ClickHouse from ``appeal_duration`` and the facts)
NOT_KEPT: tuple[str, ...] = ("appeal_known_head", "appeal_known_head_day", "appeal_duration_daily",
                             "appeal_quantile_region", "appeal_quantile_region_map")


def stored(table: str) -> str:
    """The summing table behind the rollup ``table``."""
    return f"{table}_signed"


STORED: tuple[str, ...] = tuple(stored(t) for t in SUMMED)
# hour sums of ``rollup.MEASURES`` as integer microseconds (NULL: 0); the ALIAS turns them into hours
MICROS: dict[str, str] = {
    "sum_response_hours": "epoch_us(first_response_at) - epoch_us(received_at)",
    "sum_answer_hours": "epoch_us(answered_at) - epoch_us(received_at)",
}
_US_PER_HOUR = 3_600_000_000
_KEY = ("source", "source_id")  # an appeal's identity
_EARLIEST = dt.datetime(1900, 1, 1)  # a lower bound before any snapshot
_DATE_TYPE = "Date32"
# the views of one inserted block run side by side (a sixth less time for a first load of 500 000 rows),
# and their rows are not summed on insert (a third less again): merges and FINAL add them up anyway
# a month an import wrote to holds its parts unmerged (the merge selector leaves a small part beside a
# big one), and every read's FINAL then collapses them again: 2–3× the time of a page query at 1 M
# appeals. The engine merges a partition whose parts are this old into one part, in the background.
FORCE_MERGE_SECONDS = 30
_PARALLEL = "SETTINGS parallel_view_processing = 1, optimize_on_insert = 0"


def _dim_type(dim: str) -> str:
    from data.clickhouse import clickhouse_type

    return clickhouse_type(rollup._DIM_TYPES[dim], True)


def _micros_column(name: str) -> str:
    return name.replace("_hours", "_us")


def _dims_of(table: str) -> tuple[str, tuple[str, ...]]:
    """(time column, dimensions) of a summed rollup."""
    if table in rollup.MONTHLY_TABLES:
        return "month", rollup.MONTHLY_TABLES[table]
    if table == "appeal_daily":
        return "day", rollup.DAILY_DIMENSIONS
    if table in rollup.KNOWN_TABLES:
        return "month", rollup.KNOWN_TABLES[table]
    if table == "appeal_duration":
        return "month", rollup.DIMENSIONS
    if table == "appeal_weekly":
        return "week", rollup.WEEKLY_DIMENSIONS
    column, _unit, dims = rollup.STOCK_TABLES[table]
    return column, dims


def create_table_sql(table: str) -> str:
    """CREATE TABLE of the summing table behind a rollup: its key = every column but the sums,
    partitioned by month."""
    column, dims = _dims_of(table)
    cols = [f"`{column}` {_DATE_TYPE}"]
    key = [column]
    if table == "appeal_duration":
        cols.append("duration Int8")
        key.append("duration")
    cols += [f"`{d}` {_dim_type(d)}" for d in dims]
    key += list(dims)
    if table in rollup.KNOWN_TABLES:  # per day of the change; ``events``: how many (non-zero on live rows)
        cols.append(f"day Nullable({_DATE_TYPE})")
        key.append("day")
        cols += [f"`{_micros_column(m) if m in MICROS else m}` Int64" for m in rollup.KNOWN_MEASURES]
        cols.append("events Int64")
    elif table in rollup.MONTHLY_TABLES or table == "appeal_daily":
        for name in rollup.MEASURES:
            if name in MICROS:
                cols.append(f"`{_micros_column(name)}` Int64")
            else:
                cols.append(f"`{name}` Int64")
    elif table == "appeal_duration":
        cols += ["micros Int64", "source String", "source_id String", "weight Int64"]
        key += ["micros", *_KEY]
    elif table == "appeal_weekly":
        cols.append("n Int64")
    else:
        cols += [f"`{name}` Int64" for name, _, _ in rollup.AGE_BUCKETS] + ["overdue Int64"]
    return (f"CREATE TABLE {stored(table)} ({', '.join(cols)}) ENGINE = SummingMergeTree "  # noqa: S608 - registry names
            f"PARTITION BY toYYYYMM(`{column}`) ORDER BY ({', '.join(key)}) SETTINGS allow_nullable_key = 1, "
            f"min_age_to_force_merge_seconds = {FORCE_MERGE_SECONDS}, min_age_to_force_merge_on_partition_only = 1")


def create_view_sql(table: str, database: str) -> str:
    """The rollup as the metrics read it: the columns DuckDB's table has, of the live rows only.

    FINAL (the ``final`` setting) adds up the rows of one key, but over the columns a query reads: a
    query reading only ``micros`` would still get a retracted duration, and one reading only ``n_open``
    would lose a live group whose ``n_open`` is 0. The view always reads the column that is non-zero on
    every live row (the appeals counted: ``n``, ``weight``, the stock buckets' total) and keeps those."""
    column, dims = _dims_of(table)
    cols = [column, *(["duration"] if table == "appeal_duration" else []), *dims]
    if table in rollup.KNOWN_TABLES:
        cols += ["day", *(f"{_micros_column(name)} / {_US_PER_HOUR}.0 AS {name}" if name in MICROS else name
                          for name in rollup.KNOWN_MEASURES)]
        live = "events != 0"
    elif table in rollup.MONTHLY_TABLES or table == "appeal_daily":
        cols += [f"{_micros_column(name)} / {_US_PER_HOUR}.0 AS {name}" if name in MICROS else name
                 for name in rollup.MEASURES]
        live = "n != 0"
    elif table == "appeal_duration":
        cols.append("micros")
        live = "weight != 0"
    elif table == "appeal_weekly":
        cols.append("n")
        live = "n != 0"
    else:
        buckets = [name for name, _, _ in rollup.AGE_BUCKETS]
        cols += [*buckets, "overdue"]
        live = f"{' + '.join(buckets)} != 0"
    return (f"CREATE VIEW {database}.{table} AS SELECT {', '.join(cols)} "  # noqa: S608 - registry names
            f"FROM {database}.{stored(table)} WHERE {live}")


def _signed_measure(name: str, expr: str) -> str:
    if name in MICROS:
        return f"CAST(sum(sign * coalesce({MICROS[name]}, 0)) AS BIGINT) AS {_micros_column(name)}"
    if expr == "TRUE":
        return f"CAST(sum(sign) AS BIGINT) AS {name}"
    return f"CAST(sum(CASE WHEN {expr} THEN sign ELSE 0 END) AS BIGINT) AS {name}"


def _signed_stock(t: str) -> list[str]:
    """``rollup.stock_sql`` with each open appeal counted by its sign."""
    items = []
    for item in rollup.stock_sql(t):
        signed = item.replace("THEN 1 ELSE 0 END) AS INTEGER)", "THEN sign ELSE 0 END) AS BIGINT)")
        if signed == item:
            raise AssertionError(f"stock item not in the expected form: {item}")
        items.append(signed)
    return items


def view_selects() -> list[tuple[str, str, str]]:
    """(view name, target table, DuckDB SELECT) of every view, the stream → stock stream one first."""
    month = "CAST(date_trunc('month', received_at) AS DATE)"
    views = [(f"{STOCK_CHANGE}_feed", STOCK_CHANGE, f"SELECT * FROM {CHANGE}")]  # noqa: S608 - constants
    measures = ", ".join(_signed_measure(name, expr) for name, expr in rollup.MEASURES.items())
    views.append(("appeal_monthly_view", "appeal_monthly", f"SELECT {month} AS month, {', '.join(rollup.DIMENSIONS)}, "  # noqa: S608
                                                           f"{measures} FROM {CHANGE} GROUP BY ALL"))
    # the smaller monthly tables regroup the rows their source table receives (``rollup._DERIVED``): a
    # few sums over the block of aggregated rows instead of every measure over the appeals again
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in (_micros_column(m) if m in MICROS else m
                                                                  for m in rollup.MEASURES))
    for table, (source, dims) in rollup._DERIVED.items():
        views.append((f"{table}_view", table, f"SELECT month, {', '.join(dims)}, {sums} "  # noqa: S608
                                              f"FROM {stored(source)} GROUP BY ALL"))
    views.append(("appeal_daily_view", "appeal_daily",
                  f"SELECT CAST(received_at AS DATE) AS day, {', '.join(rollup.DAILY_DIMENSIONS)}, {measures} "  # noqa: S608
                  f"FROM {CHANGE} GROUP BY ALL"))
    # the known changes: one view per event (its moment's day), the smaller tables regrouped from the full one
    known_dims = ", ".join(rollup.KNOWN_DIMENSIONS)
    for event, (moment, has, _strict) in rollup.KNOWN_EVENTS.items():
        values = []
        for name in rollup.KNOWN_MEASURES:
            value = rollup.known_value_sql(name, event)
            if name in MICROS:
                value = "0" if value == "0" else f"coalesce({MICROS[name]}, 0)"
                values.append(f"CAST(sum(sign * {value}) AS BIGINT) AS {_micros_column(name)}")
            else:
                values.append(f"CAST(sum(sign * ({value})) AS BIGINT) AS {name}")
        views.append((f"appeal_known_view_{event}", "appeal_known",
                      f"SELECT {month} AS month, {known_dims}, CAST({moment} AS DATE) AS day, {', '.join(values)}, "  # noqa: S608
                      f"CAST(sum(sign) AS BIGINT) AS events FROM {CHANGE} WHERE {has} GROUP BY ALL"))
    known_sums = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in (
        *(_micros_column(m) if m in MICROS else m for m in rollup.KNOWN_MEASURES), "events"))
    for table, kept in rollup.KNOWN_TABLES.items():
        if table != "appeal_known":
            views.append((f"{table}_view", table, f"SELECT month, {', '.join(kept)}, day, {known_sums} "  # noqa: S608
                                                  f"FROM {stored('appeal_known')} GROUP BY ALL"))
    dims = ", ".join(rollup.DIMENSIONS)
    for code, (micros, has) in rollup.DURATIONS.items():
        views.append((f"appeal_duration_view_{code}", "appeal_duration",
                      f"SELECT {month} AS month, CAST({code} AS TINYINT) AS duration, {dims}, "  # noqa: S608
                      f"{micros} AS micros, source, source_id, CAST(sign AS BIGINT) AS weight "
                      f"FROM {CHANGE} WHERE {has}"))
    views.append(("appeal_weekly_view", "appeal_weekly",
                  f"SELECT CAST(date_trunc('week', received_at) AS DATE) AS week, "  # noqa: S608
                  f"{', '.join(rollup.WEEKLY_DIMENSIONS)}, CAST(sum(sign) AS BIGINT) AS n FROM {CHANGE} GROUP BY ALL"))
    for table in rollup.STOCK_TABLES:
        views.append((f"{table}_view", table, _stock_select(table)))
    return views


def _stock_select(table: str) -> str:
    """The snapshots of each appeal version in the stock stream between the bounds of its unit in
    ``appeal_stock_bounds``: the ends ``t`` it is open at (received by ``t``, answered after it), from
    ``t_lo`` + step to ``t_hi`` + step — ``data.clickhouse``'s former stock build, signed."""
    column, unit, dims_kept = rollup.STOCK_TABLES[table]
    step = rollup.STOCK_STEPS[unit]
    shift, count = {"month": ("to_months(k)", "date_diff('month', first_t, last_t)"),
                    "week": ("to_days(7 * k)", "date_diff('day', first_t, last_t) // 7"),
                    "day": ("to_days(k)", "date_diff('day', first_t, last_t)")}[unit]
    dims = ", ".join(dims_kept)
    return f"""SELECT CAST(t - {step} AS DATE) AS {column}, {dims}, {', '.join(_signed_stock('t'))}
        FROM (SELECT {dims}, sign, received_at, due_at, first_t + {shift} AS t
              FROM (SELECT {dims}, sign, received_at, due_at, first_t, unnest(range(0, {count} + 1)) AS k
                    FROM (SELECT {dims}, sign, received_at, due_at,
                                 greatest(date_trunc('{unit}', received_at - INTERVAL 1 MICROSECOND) + {step},
                                          t_lo + {step}) AS first_t,
                                 least(coalesce(date_trunc('{unit}', answered_at - INTERVAL 1 MICROSECOND),
                                                t_hi + {step}), t_hi + {step}) AS last_t
                          FROM (SELECT {dims}, sign, received_at, due_at, answered_at, b.t_lo AS t_lo, b.t_hi AS t_hi
                                FROM {STOCK_CHANGE} CROSS JOIN (SELECT t_lo, t_hi FROM {BOUNDS}
                                                                WHERE unit = '{unit}') AS b)
                          WHERE received_at <= t_hi + {step}
                            AND (answered_at IS NULL OR answered_at > t_lo + {step}))))
        GROUP BY ALL"""  # noqa: S608 - registry constants


def create_stream(con, facts: str = "appeal") -> None:
    """The change stream, the stock bounds and every view, in the connection's database (targets: its
    rollup tables, which must exist). ``facts``: the table whose columns the stream carries."""
    cols = con.native("SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                      "ORDER BY position", {"db": con.database, "t": facts}).fetchall()
    columns = ", ".join(f"`{name}` {kind}" for name, kind in cols)
    for table in (CHANGE, STOCK_CHANGE):
        con.command(f"CREATE TABLE {table} ({columns}, sign Int8) ENGINE = Null")
    con.command(f"CREATE TABLE {BOUNDS} (unit String, t_lo DateTime64(6), t_hi DateTime64(6)) ENGINE = Memory")
    for name, target, select in view_selects():
        text, _ = to_clickhouse(select)
        con.command(f"CREATE MATERIALIZED VIEW {name} TO {stored(target) if target in SUMMED else target} AS {text}")


def drop_stream(con) -> None:
    for name, _target, _select in reversed(view_selects()):
        con.command(f"DROP VIEW IF EXISTS {name}")
    for table in (BOUNDS, STOCK_CHANGE, CHANGE):
        con.command(f"DROP TABLE IF EXISTS {table}")


def _step(unit: str, d: dt.date) -> dt.date:
    return add_months(d, 1) if unit == "month" else d + dt.timedelta(days=7 if unit == "week" else 1)


def horizon(unit: str, latest: dt.datetime) -> dt.datetime:
    """The last snapshot period a stock counts an open appeal in: the period of the latest receipt."""
    return dt.datetime.combine(rollup._period_start(unit, latest.date()), dt.time())


def set_bounds(con, latest: dt.datetime, after: dt.datetime | None = None) -> None:
    """The stock views' bounds: snapshots up to the horizon of ``latest``; with ``after``, only those
    past the horizon of ``after`` (the newly reached ones)."""
    con.command(f"TRUNCATE TABLE {BOUNDS}")
    rows = []
    for unit in rollup.STOCK_STEPS:
        lo = _EARLIEST if after is None else dt.datetime.combine(_step(unit, horizon(unit, after).date()), dt.time())
        rows.append(f"('{unit}', '{lo.isoformat(sep=' ')}', '{horizon(unit, latest).isoformat(sep=' ')}')")
    con.command(f"INSERT INTO {BOUNDS} VALUES {', '.join(rows)}")  # noqa: S608 - our own values


def feed(con, select: str, old_latest: dt.datetime | None, new_latest: dt.datetime | None) -> None:
    """Insert the signed rows of ``select`` (a ClickHouse SELECT of the stream's columns, ``sign`` last)
    into the stream, then move the stock horizon from ``old_latest`` to ``new_latest`` (the latest
    receipt before and after the write): the facts' appeals open past the earlier of the two get the
    snapshots between them (added, or retracted when the horizon moves back)."""
    latest = old_latest or new_latest
    if latest is None:
        return
    set_bounds(con, latest)
    con.command(f"INSERT INTO {CHANGE} {select} {_PARALLEL}")
    if old_latest is not None and new_latest is not None and old_latest != new_latest:
        low, high = sorted((old_latest, new_latest))
        set_bounds(con, high, after=low)
        sign = 1 if new_latest > old_latest else -1
        con.command(f"INSERT INTO {STOCK_CHANGE} SELECT *, CAST({sign} AS Int8) FROM appeal "  # noqa: S608
                    f"WHERE answered_at IS NULL OR answered_at > {{low:DateTime64(6)}} {_PARALLEL}",
                    {"low": low.isoformat(sep=" ")} if con.params_as_text else {"low": low})


def months_of(days: Iterable[dt.date | None]) -> list[dt.date]:
    return sorted({d.replace(day=1) for d in days if d is not None})


# --- a write: the facts' removed and added versions recorded, then fed -------------------------------

PENDING = "imp_change"  # in the side database: the signed rows of one write, before they are fed


def create_pending(con) -> None:
    """``imp_change``: the appeal columns and ``sign``, filled by ``remove`` and ``add``."""
    con.command(f"CREATE TABLE {PENDING} ENGINE = MergeTree ORDER BY tuple() "  # noqa: S608 - our names
                "AS SELECT *, CAST(0 AS Int8) AS sign FROM appeal LIMIT 0")


def remove(con, where: str, params: dict | None = None) -> None:
    """The facts matching ``where`` (ClickHouse SQL over ``appeal``) recorded with ``-1``, then deleted."""
    con.command(f"INSERT INTO {PENDING} SELECT *, CAST(-1 AS Int8) FROM appeal WHERE {where}", params)  # noqa: S608
    con.command(f"DELETE FROM appeal WHERE {where}", params)  # noqa: S608 - our names


def add_pending(con) -> None:
    """The ``+1`` rows of ``imp_change`` (pushed there by the writer) into the facts."""
    con.command(f"INSERT INTO appeal SELECT * EXCEPT (sign) FROM {PENDING} WHERE sign = 1")  # noqa: S608


def apply_pending(con, old_latest: dt.datetime | None) -> list[dt.date]:
    """The recorded change into every rollup of the connection's database (the side one): the views
    append the signed rows (nothing is rebuilt), the open appeals follow the removed and added keys, the
    stored quantiles of the touched months and quarters are computed again. The touched months."""
    months = [r[0] for r in con.native(
        f"SELECT DISTINCT toStartOfMonth(received_at) FROM {PENDING} ORDER BY 1").fetchall()]  # noqa: S608
    if not months:
        return []
    from data.clickhouse import latest_receipt, refresh_quantiles

    new_latest = latest_receipt(con)
    create_stream(con)
    try:
        feed(con, f"SELECT * FROM {PENDING}", old_latest, new_latest)  # noqa: S608 - our names
    finally:
        drop_stream(con)
    keys = ", ".join(_KEY)
    con.command(f"DELETE FROM appeal_open WHERE ({keys}) IN "  # noqa: S608 - our names
                f"(SELECT {keys} FROM {PENDING} WHERE sign = -1)")
    con.command(f"INSERT INTO appeal_open SELECT * EXCEPT (sign) FROM {PENDING} "  # noqa: S608
                f"WHERE sign = 1 AND {rollup.OPEN_SQL}")
    if "appeal_duration" not in con.tables():  # the side database: the live durations' view, for a while
        con.command(create_view_sql("appeal_duration", con.database))
    refresh_quantiles(con, [m if isinstance(m, dt.date) else m.date() for m in months])
    return months
