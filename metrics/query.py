"""The one entry point: indicators × dimensions × filters × period × scope → a tidy DataFrame.

Every value from outside is a bound parameter; identifiers come only from the registries below.
Month-aligned periods read the rollups (``data.rollup``); a day range by municipality / sector reads
``appeal_daily`` (its medians ``appeal_duration_daily``); a moment ``as_of`` earlier than the data
date but after the periods' end (the previous period at the same age) reads the known changes of
``appeal_known``;
anything else reads the facts with the same definitions (DESIGN §4): every path gives the same value
for every indicator, medians and percentiles included (all exact).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import duckdb
import pandas as pd

from data.engine import is_clickhouse, table_names
from data.rollup import (
    AGE_BUCKETS,
    DAILY_DIMENSIONS,
    DURATIONS,
    KNOWN_EVENTS,
    KNOWN_MEASURES,
    KNOWN_TABLES,
    MEASURES,
    MONTHLY_TABLES,
    OPEN_SQL,
    QUANTILE_GRAINS,
    QUANTILE_KINDS,
    STORED_QUANTILES,
    WEEKLY_DIMENSIONS,
    WITHIN_30D_SQL,
    grain_code,
    known_value_sql,
    measure_sql,
    stock_sql,
)
from data.warehouse import region_now
from metrics import indicators as ind
from metrics.periods import Period
from metrics.scope import REGION, Scope, effective
from metrics.source import is_served, reader


class QueryError(ValueError):
    """A request the metrics cannot answer; the message is for a person."""


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str  # key column in the rollup / facts
    fact_sql: str  # expression over the facts
    rollup_sql: str | None  # expression over appeal_monthly; None: facts only
    is_time: bool = False


# A region is a function of the municipality (``data.regions``): grouped by through it, so every table
# that keeps the municipality (facts, rollups, stocks, durations) answers by region, exact medians too.
# The function is a bound list indexed by the municipality id (``_unit_regions``; ids are small
# sequence numbers): both engines read it row by row without a correlated subquery or a join, which
# ClickHouse cannot decorrelate inside these aggregates. An unknown or NULL id has no region (NULL).
REGION_SQL = "$unit_region[municipality_id]"

DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("region", "region_id", REGION_SQL, REGION_SQL),
        Dimension("municipality", "municipality_id", "municipality_id", "municipality_id"),
        Dimension("sector", "sector_id", "sector_id", "sector_id"),
        Dimension("category", "category_id", "category_id", "category_id"),
        Dimension("organisation", "organisation_id", "organisation_id", "organisation_id"),
        Dimension("channel", "channel", "channel", "channel"),
        Dimension("kind", "kind", "kind", "kind"),
        Dimension("month", "month", "CAST(date_trunc('month', received_at) AS DATE)", "month", True),
        Dimension("quarter", "quarter", "CAST(date_trunc('quarter', received_at) AS DATE)",
                  "CAST(date_trunc('quarter', month) AS DATE)", True),
        Dimension("year", "year", "CAST(date_trunc('year', received_at) AS DATE)",
                  "CAST(date_trunc('year', month) AS DATE)", True),
        Dimension("week", "week", "CAST(date_trunc('week', received_at) AS DATE)", None, True),
        Dimension("day", "day", "CAST(received_at AS DATE)", None, True),
    )
}
# filter name -> (column, python type of its values)
FILTERS: dict[str, tuple[str, type]] = {
    "region": ("municipality_id", int),  # region ids, expanded to their municipalities (_clean_filters)
    "municipality": ("municipality_id", int),
    "sector": ("sector_id", int),
    "category": ("category_id", int),
    "organisation": ("organisation_id", int),
    "channel": ("channel", str),
    "kind": ("kind", str),
}


# --- public API ------------------------------------------------------------------------------

_facts_only: ContextVar[bool] = ContextVar("facts_only", default=False)


@contextmanager
def facts_only() -> Iterator[None]:
    """Within this block every query reads the facts, never the rollups: the same answers (exact
    medians) the slow way, for the benchmark's baseline and for tests comparing the two paths."""
    token = _facts_only.set(True)
    try:
        yield
    finally:
        _facts_only.reset(token)


def reads_rollups() -> bool:
    """False inside ``facts_only``."""
    return not _facts_only.get()



def query(
    indicators: Sequence[str],
    by: Sequence[str] = (),
    period: Period | None = None,
    filters: Mapping[str, Iterable[object]] | None = None,
    scope: Scope = REGION,
    compare: bool = False,
    as_of: dt.datetime | None = None,
) -> pd.DataFrame:
    """Indicators for each combination of ``by`` in ``period`` (default: the data's last month).

    Columns: the keys of ``by`` (``municipality_id``, ``month``…) and their names, ``volume``, one
    column per indicator, ``<code>_base`` (the count it rests on) and ``<code>_low`` (below the
    indicator's minimum volume: «мало данных»). With ``compare`` the same for the previous
    comparable period as ``<code>_prev`` plus the rank and its change for each indicator.
    """
    with reader() as con:
        return query_on(con, indicators, by, period, filters, scope, compare, as_of)


def query_on(
    con: duckdb.DuckDBPyConnection,
    indicators: Sequence[str],
    by: Sequence[str] = (),
    period: Period | None = None,
    filters: Mapping[str, Iterable[object]] | None = None,
    scope: Scope = REGION,
    compare: bool = False,
    as_of: dt.datetime | None = None,
    labels: bool = True,
) -> pd.DataFrame:
    """``query`` on an open connection (tests and batch jobs); ``labels=False`` leaves out the name
    columns (a caller that merges many frames attaches them once, at the end)."""
    codes, period, clean, as_of = _prepare_request(con, indicators, by, period, filters, as_of)
    if compare and any(DIMENSIONS[b].is_time for b in by):
        raise QueryError("сравнение с прошлым периодом не строится по измерению времени")
    with_prev = "growth" in codes or compare
    periods = [period, period.previous()] if with_prev else [period]
    out = _compute(con, codes, list(by), periods, clean, scope, as_of,
                   mode="pivot" if with_prev else "single", compare=compare, labels=labels)
    if compare and by:
        ranks = {name: col for code in codes for name, col in _ranks(out, code).items()}
        out = pd.concat([out, pd.DataFrame(ranks, index=out.index)], axis=1)
    return out


def query_periods(
    con: duckdb.DuckDBPyConnection,
    indicators: Sequence[str],
    by: Sequence[str],
    periods: Sequence[Period],
    filters: Mapping[str, Iterable[object]] | None = None,
    scope: Scope = REGION,
    as_of: dt.datetime | None = None,
    labels: bool = True,
) -> pd.DataFrame:
    """The indicators of ``query`` for several periods in one pass over the data: one row per
    period and group, ``period_index`` giving the period's place in ``periods`` (0 = the first).
    The periods must not overlap; each row is computed as ``query`` would for its own period."""
    if not periods:
        raise QueryError("не задан ни один период")
    codes, _, clean, as_of = _prepare_request(con, indicators, by, periods[0], filters, as_of)
    if "growth" in codes:
        raise QueryError("рост к прошлому периоду считает query, а не query_periods")
    ordered = sorted(periods, key=lambda p: p.start)
    if any(a.end > b.start for a, b in zip(ordered, ordered[1:], strict=False)):
        raise QueryError("периоды пересекаются")
    return _compute(con, codes, list(by), list(periods), clean, scope, as_of,
                    mode="stacked", compare=False, labels=labels)


def _prepare_request(con, indicators, by, period, filters, as_of):
    codes = list(dict.fromkeys(indicators))
    for code in codes:
        ind.get(code)
    for name in by:
        if name not in DIMENSIONS:
            raise QueryError(f"неизвестное измерение: {name!r}")
    as_of = as_of or data_as_of(con)
    if period is None:
        from metrics.periods import month

        period = month(as_of.date())
    return codes, period, _clean_filters(con, filters or {}), as_of


def data_as_of(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The data's own "now": the last receipt time (meta ``data_as_of``)."""
    # The served read-only connections see one file for life: the date is read once per connection.
    cache = _per_connection.setdefault(con, {}) if is_served(con) else {}
    if "as_of" not in cache:
        rows = con.execute("SELECT value FROM meta WHERE key = 'data_as_of'").fetchall()
        if rows and rows[0][0]:
            cache["as_of"] = dt.datetime.fromisoformat(rows[0][0])
        else:
            last = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
            return last or region_now(con)  # no appeals yet: the region's clock, as the data keep it
    return cache["as_of"]


# --- the computation: one SQL statement per request ------------------------------------------


def _compute(
    con: duckdb.DuckDBPyConnection,
    codes: list[str],
    by: list[str],
    periods: list[Period],
    filters: dict[str, list],
    scope: Scope,
    as_of: dt.datetime,
    mode: str,
    compare: bool,
    labels: bool,
) -> pd.DataFrame:
    """Measures, stocks, exact quantiles, indicator arithmetic, the previous period and the names, all
    in one statement (each pandas step on a small frame costs more than DuckDB's whole rollup query).

    ``mode``: ``single`` (one period), ``pivot`` (period 0 with period 1 as ``*_prev`` columns),
    ``stacked`` (a row per period and group, ``period_index``). Ranks (``compare``) are added by
    ``query_on``. ``as_of`` is the moment everything is judged at (DESIGN §4): cohort appeals are
    open or overdue at it, 30-day windows have ended by it, stocks are taken at min(period end,
    ``as_of``); earlier than the data date, only answers and first reactions made by then exist:
    ``appeal_known`` sums their changes up to then (a cohort received by then), else the facts are read.
    """
    earlier = as_of < data_as_of(con)
    use_rollup = (not _facts_only.get() and not earlier and all(p.month_aligned for p in periods)
                  and all(DIMENSIONS[b].rollup_sql for b in by))
    # an earlier moment after every period's end (the previous period at the same age): the changes
    # kept in ``appeal_known`` up to that moment, where a table holds the question's columns
    known = _known_table(con, by, filters, scope) if (
        earlier and not _facts_only.get() and not is_clickhouse(con) and not _no_known.get() and all(p.month_aligned for p in periods)
        and all(DIMENSIONS[b].rollup_sql for b in by)
        and as_of >= dt.datetime.combine(max(p.end for p in periods), dt.time())) else None
    rolled = use_rollup or known is not None
    keys = [DIMENSIONS[b].column for b in by]
    needed = _needed_measures(codes)
    # a question by municipality / sector at most (no time dimension) that ``appeal_daily`` can serve
    daily_columns = (not _facts_only.get() and not is_clickhouse(con) and not any(DIMENSIONS[b].is_time for b in by)
                     and _question_columns(by, filters, scope) <= set(DAILY_DIMENSIONS)
                     and "appeal_daily" in _tables(con))
    # a day range at the data date: its cohort measures from ``appeal_daily``
    daily = daily_columns and not rolled and not earlier and needed <= _DAILY_MEASURES
    # ... and its exact medians from the day-grained durations (a warehouse from before them: the facts)
    day_durations = (daily_columns and not rolled and not earlier
                     and "appeal_duration_daily" in _tables(con))
    median_durations = sorted({ind.get(c).duration for c in codes if ind.get(c).kind == "median"})
    if known:  # a median is exact from the data date's durations only where none came after the moment
        needed |= {_DURATION_COUNT[d] for d in median_durations}
    stock_codes = [c for c in codes if ind.get(c).kind == "open"]
    period_sql, where, params = _period_where(filters, scope, periods, rollup=rolled)
    fact_period_sql, fact_where, fact_params = _period_where(filters, scope, periods, rollup=False)
    params.update(fact_params)  # the same names with the same values
    params["now"] = as_of
    facts = _facts_as_known(params, as_of) if earlier else "appeal"
    fact_group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
    # receipts before ``cut`` have seen their 30-day window end by ``as_of``
    cut = dt.datetime.combine((as_of - dt.timedelta(days=31)).date() + dt.timedelta(days=1), dt.time())

    # 1. cohort measures per period and group, from the smallest table that has the columns
    cohort = [m for m in MEASURES if m in needed]
    ctes: list[str] = []
    joins_c = ""
    extra_c: list[str] = []
    if use_rollup:
        # a severe count reads the category of each row: severity is joined at query time, never stored
        source = _smallest_table(con, MONTHLY_TABLES, by, filters, scope,
                                 also={"category_id"} if "n_severe" in needed else set())
        group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
        aggs = [f"sum({m}) AS {m}" if m.startswith("sum_") else f"CAST(sum({m}) AS BIGINT) AS {m}" for m in cohort]
        if "eligible_30d" in needed:
            # whole months whose every window ended count all their appeals, months after the cut only
            # those answered inside the window; the month holding the cut gets its ended part below
            aggs.append("CAST(sum(CASE WHEN month + INTERVAL 1 MONTH <= $cut THEN n ELSE n_within_30d END) "
                        "AS BIGINT) AS eligible_30d")
            cut_month = cut.date().replace(day=1)
            if cut.date().day != 1 and any(p.start <= cut_month < p.end for p in periods) and daily_columns:
                # its days before the cut from the day-grained rollup (the cut is a midnight)
                params["cut_month"], params["cut_day"] = cut_month, cut.date()
                day_period_sql, day_where, _ = _period_where(filters, scope, periods, rollup=False, column="day")
                ctes.append(
                    f"e AS (SELECT {', '.join([f'{day_period_sql} AS _p', *group])}, "  # noqa: S608
                    "CAST(sum(n - n_within_30d) AS BIGINT) AS extra "
                    f"FROM appeal_daily WHERE {day_where} AND day >= $cut_month AND day < $cut_day GROUP BY ALL)")
                joins_c += " LEFT JOIN e ON " + _same("e", "m", keys)
                extra_c.append("m.eligible_30d + coalesce(e.extra, 0) AS eligible_30d")
            elif cut.date().day != 1 and any(p.start <= cut_month < p.end for p in periods):
                params["cut_month"] = cut_month
                ctes.append(
                    f"e AS (SELECT {', '.join([f'{fact_period_sql} AS _p', *fact_group])}, count(*) AS extra "  # noqa: S608
                    f"FROM appeal WHERE {fact_where} AND received_at >= $cut_month AND received_at < $cut "
                    f"AND NOT coalesce({WITHIN_30D_SQL}, FALSE) GROUP BY ALL)")
                joins_c += " LEFT JOIN e ON " + _same("e", "m", keys)
                extra_c.append("m.eligible_30d + coalesce(e.extra, 0) AS eligible_30d")
        if "n_overdue" in needed:
            ctes.append(_open_overdue_cte(fact_period_sql, fact_group, fact_where))
            joins_c += " LEFT JOIN co ON " + _same("co", "m", keys)
            extra_c.append("coalesce(co.n_overdue, 0) AS n_overdue")
    elif daily:
        source = "appeal_daily"
        group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
        aggs = [f"sum({m}) AS {m}" if m.startswith("sum_") else f"CAST(sum({m}) AS BIGINT) AS {m}" for m in cohort]
        if "eligible_30d" in needed:  # the cut is a midnight: each day is wholly before or after it
            params["cut_day"] = cut.date()
            aggs.append("CAST(sum(CASE WHEN day < $cut_day THEN n ELSE n_within_30d END) AS BIGINT) AS eligible_30d")
        if "n_overdue" in needed:
            ctes.append(_open_overdue_cte(fact_period_sql, fact_group, fact_where))
            joins_c += " LEFT JOIN co ON " + _same("co", "m", keys)
            extra_c.append("coalesce(co.n_overdue, 0) AS n_overdue")
    elif known:
        source = _smallest_table(con, MONTHLY_TABLES, by, filters, scope,
                                 also={"category_id"} if "n_severe" in needed else set())
        group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
        # receipt-only measures (and the data date's duration counts) from the monthly rollup
        aggs = [f"CAST(sum({m}) AS BIGINT) AS {m}" for m in cohort if m not in KNOWN_MEASURES and m != "n_open"]
        aggs += [f"CAST(sum({_DURATION_COUNT[d]}) AS BIGINT) AS _full{d}" for d in median_durations]
        counted = [m for m in KNOWN_MEASURES if m in needed or (m == "n_closed" and "n_open" in needed)]
        ctes += _known_ctes(known, period_sql, where, group, fact_period_sql, fact_where, fact_group, counted,
                            params, as_of, head=_known_head(con, as_of))
        joins_c += " LEFT JOIN kd ON " + _same("kd", "m", keys) + " LEFT JOIN kp ON " + _same("kp", "m", keys)
        extra_c += [f"coalesce(kd.{m}, {'0.0' if m.startswith('sum_') else '0'}) + "
                    f"coalesce(kp.{m}, {'0.0' if m.startswith('sum_') else '0'}) AS {m}" for m in counted]
        if "n_open" in needed:
            extra_c.append("m.n - coalesce(kd.n_closed, 0) - coalesce(kp.n_closed, 0) AS n_open")
    else:
        source = facts
        group = fact_group
        aggs = [measure_sql(m, MEASURES[m]) for m in cohort]
        if "eligible_30d" in needed:
            aggs.append(f"CAST(sum(CASE WHEN received_at < $cut OR ({WITHIN_30D_SQL}) THEN 1 ELSE 0 END) AS BIGINT) "
                        "AS eligible_30d")
        if "n_overdue" in needed:
            aggs.append(f"CAST(sum(CASE WHEN {OPEN_SQL} AND due_at < $now THEN 1 ELSE 0 END) AS BIGINT) AS n_overdue")
    if "eligible_30d" in needed:
        params["cut"] = cut
    if "n_severe" in needed:
        params["severe"] = _severe_ids(con)
        aggs.append(f"CAST(sum(CASE WHEN list_contains($severe, category_id) THEN {'n' if rolled else '1'} "
                    "ELSE 0 END) AS BIGINT) AS n_severe")
    if "n_prev" in needed:
        ctes.append(_previous_volume_cte(by, periods, filters, scope, params, rolled, source, facts))
        joins_c += " LEFT JOIN pv ON " + _same("pv", "m", keys)
        extra_c.append("coalesce(pv.n_prev, 0) AS n_prev")
    m_period_sql, m_where = period_sql, where
    if daily:
        m_period_sql, m_where, _ = _period_where(filters, scope, periods, rollup=False, column="day")
    ctes.insert(0, f"m AS (SELECT {', '.join([f'{m_period_sql} AS _p', *group, *aggs])} FROM {source} "  # noqa: S608
                f"WHERE {m_where} GROUP BY ALL)")
    measure_cols = cohort + [m for m in ("eligible_30d", "n_overdue", "n_severe", "n_prev") if m in needed]
    if known:
        measure_cols += [f"_full{d}" for d in median_durations]
    # m's columns (every item of m ends «AS name») named one by one: after two joins ClickHouse names
    # a ``m.*`` column by its table
    replaced = {c.rsplit(" AS ", 1)[1] for c in extra_c}
    m_cols = ["_p", *(item.rsplit(" AS ", 1)[1] for item in [*group, *aggs])]
    star = ", ".join(f"m.{c}" for c in m_cols if c not in replaced)
    ctes.append(f"c AS (SELECT {', '.join([star, *extra_c])} FROM m{joins_c})")  # noqa: S608 - registry identifiers

    # 2. stocks at each snapshot point
    stock_cols: list[str] = []
    if stock_codes:
        # a stock at t ≤ as_of does not depend on what was known at as_of (an answer after it came
        # after t as well), so the snapshots serve an earlier as_of too
        columns = {_stored_column(b) for b in by if not DIMENSIONS[b].is_time} | {FILTERS[f][0] for f in filters}
        columns |= {c for c, ids in (("municipality_id", effective(scope).municipality_ids),
                                     ("sector_id", effective(scope).sector_ids)) if ids is not None}
        points = _snapshot_points(by, periods, as_of, None if _facts_only.get() else data_as_of(con),
                                  weekly=columns <= set(WEEKLY_DIMENSIONS),
                                  # a warehouse copied before the day-end snapshots existed reads the facts
                                  daily=columns <= set(DAILY_DIMENSIONS) and "appeal_stock_daily" in _tables(con))
        if points:
            stock_cols = ["backlog_open", *(n for n, _, _ in AGE_BUCKETS), "overdue_open"]
            ctes.append(_stock_cte(by, points, filters, scope, params, facts, is_clickhouse(con)))

    # 3. one row per period and group with every measure (missing = 0)
    zero = {m: "0.0" if m.startswith("sum_") else "0" for m in measure_cols}
    cols = [f"coalesce(c.{m}, {zero[m]}) AS {m}" for m in measure_cols]
    cols += [f"coalesce(s.{c}, 0) AS {c}" for c in stock_cols]
    if "on_time_base" in needed:
        cols.append("coalesce(c.n_closed_due, 0) + coalesce(c.n_overdue, 0) AS on_time_base")
    if "response_base" in needed:
        cols.append("coalesce(c.n_closed, 0) + coalesce(c.n_overdue, 0) AS response_base")
    if "n_excess" in needed:
        cols.append("greatest(coalesce(c.n, 0) - coalesce(c.n_prev, 0), 0) AS n_excess")
    if stock_codes and not stock_cols:  # no snapshot point (every bucket after the moment)
        cols += [f"CAST(0 AS BIGINT) AS {c}" for c in ("backlog_open", *(n for n, _, _ in AGE_BUCKETS), "overdue_open")]
    if keys:
        head = ["coalesce(c._p, s._p) AS _p", *(f"coalesce(c.{k}, s.{k}) AS {k}" for k in keys)] if stock_cols \
            else ["c._p AS _p", *(f"c.{k} AS {k}" for k in keys)]
        body = f"c FULL JOIN s ON {_same('s', 'c', keys)}" if stock_cols else "c"
    else:  # a row for every period, even one without appeals
        head = ["per._p AS _p"]
        params["period_indexes"] = list(range(len(periods)))
        body = "(SELECT CAST(unnest($period_indexes) AS INTEGER) AS _p) per LEFT JOIN c ON c._p = per._p"
        body += " LEFT JOIN s ON s._p = per._p" if stock_cols else ""
    ctes.append(f"r AS (SELECT {', '.join(head + cols)} FROM {body})")  # noqa: S608 - registry identifiers only

    # 4. the declared arithmetic of every indicator, exact quantiles included
    population = None
    joins_pop = ""
    if "rate_10k" in codes:
        if "municipality" in by:
            population = "pop.population"
        elif "region" in by:  # the residents of the region's units the query covers
            population = "rpop.population"
            clauses, _ = _filter_clauses({k: v for k, v in filters.items() if FILTERS[k][0] == "municipality_id"},
                                         scope, params)
            where_m = " AND ".join(c.replace("municipality_id", "id") for c in clauses
                                   if "municipality_id" in c) or "TRUE"
            joins_pop = (f" LEFT JOIN (SELECT coalesce(region_id, 1) AS region_id, sum(population) AS population "  # noqa: S608
                         f"FROM municipality WHERE {where_m} GROUP BY ALL) rpop ON rpop.region_id = r.region_id")
        else:
            params["population"] = _population_in_scope(con, filters, scope)
            population = "$population"
    joins = " LEFT JOIN municipality pop ON pop.id = r.municipality_id" if population == "pop.population" else ""
    joins += joins_pop if population == "rpop.population" else ""
    medians: dict[str, str] = {}
    median_codes = [c for c in codes if ind.get(c).kind == "median"]
    stored = _stored_quantile_route(by, periods, filters, scope, median_codes,
                                    region=_region_quantiles(con)) if rolled else None
    for duration in sorted({ind.get(c).duration for c in median_codes}):
        name = f"q{duration}"
        wanted = [c for c in median_codes if ind.get(c).duration == duration]
        micros, has = DURATIONS[duration]
        if stored:  # computed by the import for this very grain and period kind
            ctes.append(_stored_quantile_cte(name, duration, by, periods, filters, scope, params, *stored))
            for code in wanted:
                index = STORED_QUANTILES.index(ind.get(code).quantile) + 1
                medians[code] = f"{name}.value[{index}] / {3.6e9 * ind.get(code).hours_per_unit!r}"
            joins += f" LEFT JOIN {name} ON {_same(name, 'r', keys)}"
            continue
        # the levels are declarations, not values from outside: written into the statement (ClickHouse's
        # quantile functions take them only as constants)
        levels = repr([float(ind.get(c).quantile) for c in wanted])
        if rolled:  # the narrow sorted copy of the durations
            select = [f"{period_sql} AS _p", *group, f"quantile_cont(micros, {levels}) AS value"]
            ctes.append(f"{name} AS (SELECT {', '.join(select)} FROM appeal_duration "  # noqa: S608
                        f"WHERE duration = {int(duration)} AND {where} GROUP BY ALL)")
        elif day_durations:
            ctes.append(_day_quantile_cte(name, duration, levels, by, periods, filters, scope))
        else:
            select = [f"{period_sql} AS _p", *group, f"quantile_cont({micros}, {levels}) AS value"]
            ctes.append(f"{name} AS (SELECT {', '.join(select)} FROM {facts} "  # noqa: S608
                        f"WHERE ({has}) AND {where} GROUP BY ALL)")
        for j, code in enumerate(wanted):
            medians[code] = f"{name}.value[{j + 1}] / {3.6e9 * ind.get(code).hours_per_unit!r}"
        joins += f" LEFT JOIN {name} ON {_same(name, 'r', keys)}"
    exprs = ["r._p AS _p", *(f"r.{k} AS {k}" for k in keys), "CAST(r.n AS BIGINT) AS volume"]
    late = [f"_late{d}" for d in median_durations] if known else []
    for d in median_durations if known else []:
        # the data date's durations are those known at the moment when no more of them exist now
        same = f"r._full{d} = r.{_DURATION_COUNT[d]}"
        exprs.append(f"NOT ({same}) AS _late{d}")
        for code in median_codes:
            if ind.get(code).duration == d:
                medians[code] = f"CASE WHEN {same} THEN {medians[code]} END"
    for code in codes:
        exprs += _indicator_sql(code, population, medians.get(code))
    ctes.append(f"i AS (SELECT {', '.join(exprs)} FROM r{joins})")  # noqa: S608 - registry identifiers only

    # 5. the shape asked for
    if mode == "pivot":
        prev = ["p.volume AS volume_prev"]
        if compare:
            for code in codes:
                if ind.get(code).kind == "growth":
                    continue
                names = [code, f"{code}_base", f"{code}_low"]
                if code == "backlog_open":
                    names += [n for n, _, _ in AGE_BUCKETS]
                prev += [f"p.{c} AS {c}_prev" for c in names if c != "volume"]
        if "growth" in codes:
            spec = ind.get("growth")
            prev += [
                "(c.volume - p.volume) / nullif(CAST(p.volume AS DOUBLE), 0) AS growth",
                "CAST(coalesce(p.volume, 0) AS DOUBLE) AS growth_base",
                f"coalesce(p.volume, 0) < {int(spec.min_volume)} AS growth_low",
            ]
        prev += [f"p.{flag} AS {flag}_prev" for flag in late]
        same = " AND ".join(["p._p = 1", *(f"c.{k} IS NOT DISTINCT FROM p.{k}" for k in keys)])
        final = f"SELECT c.* EXCLUDE (_p), {', '.join(prev)} FROM i c LEFT JOIN i p ON {same} WHERE c._p = 0"  # noqa: S608 - registry identifiers only
    elif mode == "stacked":
        final = "SELECT i._p AS period_index, i.* EXCLUDE (_p) FROM i"  # _p is i's first column
    else:
        final = "SELECT i.* EXCLUDE (_p) FROM i"
    label_dims = [b for b in by if b in _REFERENCE_SQL] if labels else []
    # one join per level: after two joins ClickHouse names an ``f.*`` column by its table
    for j, b in enumerate(label_dims):
        names = ", ".join(f"l{j}.{c}" for c in _label_columns(con, b))
        final = (f"SELECT f.*, {names} FROM ({final}) f LEFT JOIN ({_REFERENCE_SQL[b]}) l{j} "  # noqa: S608
                 f"ON l{j}.{DIMENSIONS[b].column} = f.{DIMENSIONS[b].column}")  # registry identifiers only
    sql = f"WITH {', '.join(ctes)} {final}"
    used = set(re.findall(r"\$(\w+)", sql))  # DuckDB refuses parameters the statement does not use
    if "unit_region" in used:  # the region dimension, wherever it was written (REGION_SQL)
        params["unit_region"] = _unit_regions(con)
    out = con.execute(sql, {k: v for k, v in params.items() if k in used}).df()
    if late:
        flags = [c for c in out.columns if c.startswith("_late")]
        if out[flags].fillna(False).to_numpy(dtype=bool).any():
            # a duration came after the moment in some group: its median needs the facts as they stood
            token = _no_known.set(True)
            try:
                return _compute(con, codes, by, periods, filters, scope, as_of, mode, compare, labels)
            finally:
                _no_known.reset(token)
        out = out.drop(columns=flags)
    return out


def _stored_quantile_route(by: list[str], periods: list[Period], filters: dict[str, list], scope: Scope,
                           median_codes: list[str], region: bool = False) -> tuple[str, str] | None:
    """(grain, period kind) when ``appeal_quantile`` holds the exact answer, else None: every
    dimension grouped by or filtered on belongs to one stored grain, a dimension filtered on but not
    grouped by has exactly one allowed value, and each period (or each time bucket) is one calendar
    month or quarter."""
    if not median_codes or any(ind.get(c).quantile not in STORED_QUANTILES for c in median_codes):
        return None
    time_dims = [b for b in by if DIMENSIONS[b].is_time]
    grouped = {DIMENSIONS[b].column for b in by if not DIMENSIONS[b].is_time}
    allowed: dict[str, set] = {}
    for name, values in filters.items():
        column = FILTERS[name][0]
        allowed[column] = allowed.get(column, set(values)) & set(values)
    scope = effective(scope)
    for column, ids in (("municipality_id", scope.municipality_ids), ("sector_id", scope.sector_ids)):
        if ids is not None:
            allowed[column] = allowed.get(column, set(ids)) & set(ids)
    if any(len(v) != 1 for c, v in allowed.items() if c not in grouped):
        return None
    dims = grouped | set(allowed)
    if dims == {"region_id"}:  # by region, the whole warehouse: ``appeal_quantile_region`` where current
        grain_name = REGION_GRAIN if region else None
    else:
        grain = tuple(d for d in QUANTILE_GRAINS if set(d) == dims)
        grain_name = grain_code(grain[0]) if grain else None
    if grain_name is None:
        return None

    def spans(p: Period, months: int) -> bool:
        step = p.start.month - 1 + months
        return p.start.day == 1 and (p.start.month - 1) % months == 0 and \
            p.end == dt.date(p.start.year + step // 12, step % 12 + 1, 1)

    def aligned(p: Period, months: int) -> bool:
        return all(d.day == 1 and (d.month - 1) % months == 0 for d in (p.start, p.end))

    if time_dims:
        kind = time_dims[0]
        if len(time_dims) > 1 or kind not in QUANTILE_KINDS or \
                not all(aligned(p, {"month": 1, "quarter": 3}[kind]) for p in periods):
            return None
    elif all(spans(p, 1) for p in periods):
        kind = "month"
    elif all(spans(p, 3) for p in periods):
        kind = "quarter"
    else:
        return None
    return grain_name, kind


REGION_GRAIN = "region"


def _region_quantiles(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``appeal_quantile_region`` answers by region: a DuckDB warehouse that has it, made with
    the units' regions of today."""
    cache = _per_connection.setdefault(con, {}) if is_served(con) else {}
    if "region_quantiles" not in cache:
        ok = not is_clickhouse(con) and {"appeal_quantile_region", "appeal_quantile_region_map"} <= _tables(con)
        if ok:
            stored = con.execute("SELECT municipality_id, region_id FROM appeal_quantile_region_map "
                                 "ORDER BY municipality_id").fetchall()
            current = [(i + 1, r) for i, r in enumerate(_unit_regions(con)) if r is not None]
            ok = [(int(a), int(b)) for a, b in stored] == current
        cache["region_quantiles"] = ok
    return cache["region_quantiles"]


def _stored_quantile_cte(name: str, duration: int, by: list[str], periods: list[Period], filters: dict[str, list],
                         scope: Scope, params: dict, grain: str, kind: str) -> str:
    """A CTE ``name`` (``_p``, keys, ``value`` = the stored quantiles in microseconds)."""
    params["sq_kind"] = kind
    ranges = [f"start >= $p{i}_start AND start < $p{i}_end" for i in range(len(periods))]
    index = "CASE " + " ".join(f"WHEN {r} THEN {i}" for i, r in enumerate(ranges)) + " END"
    keys = [f"start AS {DIMENSIONS[b].column}" if DIMENSIONS[b].is_time else DIMENSIONS[b].column for b in by]
    clauses, _ = _filter_clauses(filters, scope, params)
    where = ["kind = $sq_kind", f"duration = {int(duration)}", "(" + " OR ".join(f"({r})" for r in ranges) + ")",
             *clauses]
    table = "appeal_quantile_region"
    if grain != REGION_GRAIN:
        params["sq_grain"] = grain
        where.insert(1, "grain = $sq_grain")
        table = "appeal_quantile"
    return (f"{name} AS (SELECT {', '.join([f'{index} AS _p', *keys, 'micros AS value'])} "  # noqa: S608
            f"FROM {table} WHERE {' AND '.join(where)})")


def _day_quantile_cte(name: str, duration: int, levels: str, by: list[str], periods: list[Period],
                      filters: dict[str, list], scope: Scope) -> str:
    """Exact quantiles (``levels``, a literal list) of one duration kind per period and group of a day
    range, from ``appeal_duration_daily`` (DuckDB only; by municipality / sector / region at most):
    the same ``quantile_cont`` over the same microseconds as the facts give, two narrow columns read."""
    period_sql, where, _ = _period_where(filters, scope, periods, rollup=False, column="day")
    select = [f"{period_sql} AS _p", *(f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by),
              f"quantile_cont(micros, {levels}) AS value"]
    return (f"{name} AS (SELECT {', '.join(select)} FROM appeal_duration_daily "  # noqa: S608 - registry identifiers
            f"WHERE duration = {int(duration)} AND {where} GROUP BY ALL)")


def _open_overdue_cte(period_sql: str, group: list[str], where: str) -> str:
    """CTE ``co``: the cohort's appeals still open and past their deadline at ``$now`` — the few rows
    of ``appeal_open``, for the rollup routes (the rollups count cohorts, not deadlines passing)."""
    return (f"co AS (SELECT {', '.join([f'{period_sql} AS _p', *group])}, "  # noqa: S608 - registry identifiers
            f"count(*) FILTER (WHERE due_at < $now) AS n_overdue FROM appeal_open WHERE {where} GROUP BY ALL)")


def _same(a: str, b: str, keys: list[str]) -> str:
    """Join condition: the same period and group in CTEs ``a`` and ``b``."""
    return " AND ".join([f"{a}._p = {b}._p", *(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in keys)])


# duration kind -> the measure counting the appeals that have it (``DURATIONS``)
_DURATION_COUNT: dict[int, str] = {0: "n_responded", 1: "n_answered"}
# set while a question is recomputed from the facts after ``appeal_known`` could not answer it
_no_known: ContextVar[bool] = ContextVar("no_known", default=False)


# measures ``appeal_daily`` answers (the severe count needs the category, growth the span before)
_DAILY_MEASURES = frozenset(MEASURES) | {"eligible_30d", "n_overdue", "on_time_base", "response_base"}


def _question_columns(by: Sequence[str], filters: Mapping[str, object], scope: Scope) -> set[str]:
    """The stored columns a question groups or filters by, the scope's included."""
    wanted = {_stored_column(b) for b in by if not DIMENSIONS[b].is_time} | {FILTERS[f][0] for f in filters}
    scope = effective(scope)
    wanted |= {"municipality_id"} if scope.municipality_ids is not None else set()
    wanted |= {"sector_id"} if scope.sector_ids is not None else set()
    return wanted


def _known_table(con: duckdb.DuckDBPyConnection, by: Sequence[str], filters: Mapping[str, object],
                 scope: Scope) -> str | None:
    """The smallest ``appeal_known`` table holding every column the question groups or filters by;
    None when none does or the warehouse has none (an older copy, ClickHouse): the facts answer."""
    wanted = _question_columns(by, filters, scope)
    present = _tables(con)
    return next((t for t, dims in KNOWN_TABLES.items() if t in present and wanted <= set(dims)), None)


def _known_head(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> bool:
    """True when ``appeal_known_head`` holds the changes of ``as_of``'s day up to ``as_of`` itself."""
    cache = _per_connection.setdefault(con, {}) if is_served(con) else {}
    key = ("known_head", as_of)
    if key not in cache:
        cache[key] = {"appeal_known_head", "appeal_known_head_day"} <= _tables(con) and bool(con.execute(
            "SELECT count(*) FROM appeal_known_head_day WHERE day = $d AND upto = $t",
            {"d": as_of.date(), "t": as_of}).fetchall()[0][0])
    return cache[key]


def _known_ctes(table: str, period_sql: str, where: str, group: list[str], fact_period_sql: str, fact_where: str,
                fact_group: list[str], measures: list[str], params: dict, as_of: dt.datetime,
                head: bool = False) -> list[str]:
    """CTEs ``kd`` (the changes of the days before ``as_of``'s day, from ``table``) and ``kp`` (that
    day's changes up to ``as_of`` itself: from ``appeal_known_head`` when ``head``, else from the
    facts): their sums are ``measures`` as known at ``as_of`` for cohorts received by then."""
    params["k_day"] = as_of.date()
    params["k_from"] = dt.datetime.combine(as_of.date(), dt.time())
    sums = [f"sum({m}) AS {m}" if m.startswith("sum_") else f"CAST(sum({m}) AS BIGINT) AS {m}" for m in measures]
    kd = (f"kd AS (SELECT {', '.join([f'{period_sql} AS _p', *group, *sums])} FROM {table} "  # noqa: S608
          f"WHERE {where} AND day < $k_day GROUP BY ALL)")
    if head:
        return [kd, f"kp AS (SELECT {', '.join([f'{period_sql} AS _p', *group, *sums])} "  # noqa: S608
                    f"FROM appeal_known_head WHERE {where} AND day = $k_day GROUP BY ALL)"]
    events = [e for e in KNOWN_EVENTS if any(e in KNOWN_MEASURES[m] for m in measures)]
    inside = {e: f"({has}) AND {moment} >= $k_from AND {moment} {'<' if strict else '<='} $now"
              for e, (moment, has, strict) in KNOWN_EVENTS.items() if e in events}
    day_sums = []
    for m in measures:
        terms = " + ".join(f"CASE WHEN {inside[e]} THEN {known_value_sql(m, e)} ELSE 0 END" for e in KNOWN_MEASURES[m])
        day_sums.append(f"sum({terms}) AS {m}" if m.startswith("sum_") else f"CAST(sum({terms}) AS BIGINT) AS {m}")
    # measures no answer or reaction changes (the volume): that day adds nothing to them
    changed = " OR ".join(f"({inside[e]})" for e in events) or "FALSE"
    kp = (f"kp AS (SELECT {', '.join([f'{fact_period_sql} AS _p', *fact_group, *day_sums])} FROM appeal "  # noqa: S608
          f"WHERE {fact_where} AND ({changed}) GROUP BY ALL)")
    return [kd, kp]


def _facts_as_known(params: dict, moment: dt.datetime) -> str:
    """The facts as they stood at ``moment``: appeals received by then, answers (with everything
    that comes with one: reason, merits, rework, rating) and first reactions made by then."""
    params["known"] = moment
    after = "CASE WHEN answered_at <= $known THEN {} END AS {}"
    replaced = [after.format(c, c) for c in ("answered_at", "closure_reason", "answer_on_merits",
                                             "returned_for_rework", "satisfaction")]
    replaced.append("CASE WHEN first_response_at <= $known THEN first_response_at END AS first_response_at")
    return f"(SELECT * REPLACE ({', '.join(replaced)}) FROM appeal WHERE received_at <= $known)"  # noqa: S608


_STEPS = {"month": 1, "quarter": 3, "year": 12}


def _bucket_starts(name: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """Starts of the buckets of time dimension ``name`` that meet [start, end), the first truncated."""
    if name in _STEPS:
        step = _STEPS[name]
        first = start.replace(day=1, month=(start.month - 1) // step * step + 1) if step > 1 else start.replace(day=1)
        out = [first]
        while True:
            m = out[-1].year * 12 + out[-1].month - 1 + step
            nxt = dt.date(m // 12, m % 12 + 1, 1)
            if nxt >= end:
                return out
            out.append(nxt)
    first = start - dt.timedelta(days=start.weekday()) if name == "week" else start
    days = 7 if name == "week" else 1
    return [first + dt.timedelta(days=days * i) for i in range((end - first).days // days + 1)
            if first + dt.timedelta(days=days * i) < end]


def _snapshot_points(by: list[str], periods: list[Period], now: dt.datetime, data_date: dt.datetime | None,
                     weekly: bool, daily: bool = False) -> list[dict]:
    """The moments stocks are taken at: t = min(bucket end, period end, ``now``) for each period (and
    each bucket of a time dimension in ``by``). Open at t = received by t and not answered by t.

    ``src`` says where the stock at t is read (``data_date`` None: always the facts): ``month`` /
    ``week`` the snapshot ``snap`` of ``appeal_stock`` / ``appeal_stock_weekly`` (t a month end, or a
    week end when the question needs only the weekly table's dimensions), ``day`` the one of
    ``appeal_stock_daily`` (any other midnight, the question needing only municipality and sector: a
    day range, a daily series), ``open`` the appeals open
    at the data date (t after it), ``facts`` every appeal (any other t)."""
    time_dims = [b for b in by if DIMENSIONS[b].is_time]
    if len(time_dims) > 1:
        raise QueryError("остатки строятся не более чем по одному измерению времени")
    points = []
    for i, period in enumerate(periods):
        if time_dims:
            starts = _bucket_starts(time_dims[0], period.start, period.end)
            ends = [*starts[1:], period.end]
            buckets = [(s, min(e, period.end)) for s, e in zip(starts, ends, strict=True)]
        else:
            buckets = [(None, period.end)]
        for key, end in buckets:
            if key is not None and dt.datetime.combine(max(key, period.start), dt.time()) > now:
                continue  # a bucket that starts after the moment has no stock yet
            t = min(dt.datetime.combine(end, dt.time()), now)
            src, snap = "facts", None
            if data_date is not None and t >= data_date:
                src = "open"  # nothing is received or answered after the data date
            elif data_date is not None and t == dt.datetime.combine(end, dt.time()):
                if end.day == 1:
                    src, snap = "month", _month_before(end)
                elif end.weekday() == 0 and weekly:
                    src, snap = "week", end - dt.timedelta(days=7)
            if src == "facts" and data_date is not None and daily and t.time() == dt.time():
                src, snap = "day", t.date() - dt.timedelta(days=1)
            points.append({"p": i, "k": key, "t": t, "src": src, "snap": snap})
    return points


def _month_before(d: dt.date) -> dt.date:
    m = d.year * 12 + d.month - 2
    return dt.date(m // 12, m % 12 + 1, 1)


def _points_sql(points: list[dict], params: dict, clickhouse: bool) -> str:
    """The snapshot points as rows (p, k, t, src, snap), bound as parameters: DuckDB unnests a list of
    structs; ClickHouse zips parallel arrays (its arrays cannot hold structs with NULL dates)."""
    if not clickhouse:
        params["pts"] = points
        return "SELECT unnest($pts, recursive := true)"
    from data.dialect import Typed

    types = {"p": "Int64", "k": "Nullable(Date)", "t": "DateTime64(6)", "src": "String", "snap": "Nullable(Date)"}
    for field, ch_type in types.items():
        params[f"pts_{field}"] = Typed([pt[field] for pt in points], f"Array({ch_type})")
    params["pts_i"] = list(range(1, len(points) + 1))
    return "SELECT " + ", ".join(f"${'pts_' + f}[i] AS {f}" for f in types) + " FROM (SELECT unnest($pts_i) AS i)"  # noqa: S608


def _stock_cte(by: list[str], points: list[dict], filters: dict[str, list], scope: Scope, params: dict,
               facts: str, clickhouse: bool = False) -> str:
    """A CTE ``s`` (``_p``, keys, ``backlog_open``, age buckets, ``overdue_open``): what was open at
    each snapshot point, read where ``_snapshot_points`` says."""
    clauses, _ = _filter_clauses(filters, scope, params)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    keys = [DIMENSIONS[b].column for b in by]
    time_key = [f"pt.k AS {DIMENSIONS[b].column}" for b in by if DIMENSIONS[b].is_time]
    plain = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" if b in _DERIVED_DIMENSIONS
             else DIMENSIONS[b].column for b in by if not DIMENSIONS[b].is_time]
    head = ["pt.p AS _p", *time_key, *plain]
    buckets = [n for n, _, _ in AGE_BUCKETS]
    sums = [f"sum({c}) AS {c}" for c in [*buckets, "overdue"]]
    facts_from = f"{facts} a"
    facts_t = [p["t"] for p in points if p["src"] == "facts"]
    if facts_t:
        # constant bounds ahead of the range join: only appeals received by the last point and not
        # answered by the first one meet any point (the join sees those, not every appeal)
        params["st_lo"], params["st_hi"] = min(facts_t), max(facts_t)
        facts_from = (f"(SELECT * FROM {facts} f WHERE f.received_at <= $st_hi "  # noqa: S608 - registry identifiers
                      "AND (f.answered_at IS NULL OR f.answered_at > $st_lo)) a")
    sources = {
        "month": f"SELECT {', '.join(head + sums)} FROM appeal_stock JOIN pts pt ON pt.src = 'month' "  # noqa: S608
                 f"AND month = pt.snap{where} GROUP BY ALL",
        "week": f"SELECT {', '.join(head + sums)} FROM appeal_stock_weekly JOIN pts pt ON pt.src = 'week' "  # noqa: S608
                f"AND week = pt.snap{where} GROUP BY ALL",
        "day": f"SELECT {', '.join(head + sums)} FROM appeal_stock_daily JOIN pts pt ON pt.src = 'day' "  # noqa: S608
               f"AND day = pt.snap{where} GROUP BY ALL",
        "open": f"SELECT {', '.join(head + stock_sql('pt.t'))} FROM appeal_open "  # noqa: S608
                f"JOIN pts pt ON pt.src = 'open' AND received_at <= pt.t{where} GROUP BY ALL",
        "facts": f"SELECT {', '.join(head + stock_sql('pt.t'))} FROM {facts_from} JOIN pts pt ON pt.src = 'facts' "  # noqa: S608
                 f"AND a.received_at <= pt.t AND (a.answered_at IS NULL OR a.answered_at > pt.t){where} "
                 "GROUP BY ALL",
    }
    parts = [sql for src, sql in sources.items() if any(p["src"] == src for p in points)]
    cols = ", ".join(["_p", *keys, *(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in buckets),
                      f"CAST(sum({' + '.join(buckets)}) AS BIGINT) AS backlog_open",
                      "CAST(sum(overdue) AS BIGINT) AS overdue_open"])
    return (f"pts AS ({_points_sql(points, params, clickhouse)}), "  # noqa: S608 - registry identifiers
            f"s AS (SELECT {cols} FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL)")


def _indicator_sql(code: str, population: str | None, quantile: str | None) -> list[str]:
    """SELECT items of one indicator over ``r``: value, ``_base`` (what it rests on), ``_low``."""
    spec = ind.get(code)
    if spec.kind == "growth":
        return []  # needs the previous period: see the pivot
    if spec.kind in ("count", "open"):
        column = spec.numerator if spec.kind == "count" else code
        value = base = f"CAST(r.{column} AS BIGINT)"
    elif spec.kind in ("ratio", "mean"):
        value = f"CAST(r.{spec.numerator} AS DOUBLE) / nullif(CAST(r.{spec.denominator} AS DOUBLE), 0)"
        base = f"CAST(r.{spec.denominator} AS DOUBLE)"
    elif spec.kind == "rate":
        value = f"CAST(r.n AS DOUBLE) * 10000 / CASE WHEN {population} > 0 THEN {population} END"
        base = "CAST(r.n AS BIGINT)"
    elif spec.kind == "index":  # 100 × Σ weight × part / Σ weight, the parts being shares of one denominator
        parts = [(ind.get(part), float(weight)) for part, weight in spec.parts]
        terms = " + ".join(f"{weight!r} * CAST(r.{part.numerator} AS DOUBLE)" for part, weight in parts)
        denominator = parts[0][0].denominator
        total = sum(weight for _, weight in parts)
        value = f"100.0 * ({terms}) / nullif({total!r} * CAST(r.{denominator} AS DOUBLE), 0)"
        base = f"CAST(r.{denominator} AS DOUBLE)"
    elif spec.kind == "median":
        value = f"CAST({quantile or 'NULL'} AS DOUBLE)"
        base = f"CAST(r.{spec.denominator} AS BIGINT)"
    else:
        raise QueryError(f"показатель {code}: неизвестный вид {spec.kind}")
    items = [f"{value} AS {code}", f"{base} AS {code}_base",
             f"coalesce({base}, 0) < {int(spec.min_volume)} AS {code}_low"]
    if code == "volume":  # the column every row carries already
        items = items[1:]
    if code == "backlog_open":
        items += [f"CAST(r.{name} AS BIGINT) AS {name}" for name, _, _ in AGE_BUCKETS]
    return items


def _needed_measures(codes: list[str]) -> set[str]:
    """The measures the requested indicators rest on (summing all of them costs time)."""
    needed = {"n"}
    for code in codes:
        spec = ind.get(code)
        needed |= {m for m in (spec.numerator, spec.denominator) if m}
        for part, _ in spec.parts:
            needed |= {m for m in (ind.get(part).numerator, ind.get(part).denominator) if m}
    if "on_time_base" in needed:
        needed |= {"n_closed_due", "n_overdue"}
    if "response_base" in needed:
        needed |= {"n_closed", "n_overdue"}
    if "eligible_30d" in needed:
        needed.add("n_within_30d")
    if "n_excess" in needed:
        needed.add("n_prev")
    return needed


# time dimension -> (months, days) of one bucket
_BUCKET_STEP: dict[str, tuple[int, int]] = {"month": (1, 0), "quarter": (3, 0), "year": (12, 0), "week": (0, 7),
                                            "day": (0, 1)}


def _shift_back(d: dt.date, months: int, days: int) -> dt.date:
    """``d`` moved ``months`` months (the day kept, or the month's last) and ``days`` days earlier."""
    k = d.year * 12 + d.month - 1 - months
    y, m = divmod(k, 12)
    return dt.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1])) - dt.timedelta(days=days)


def _previous_volume_cte(by: list[str], periods: list[Period], filters: dict[str, list], scope: Scope,
                         params: dict, use_rollup: bool, source: str, facts: str) -> str:
    """A CTE ``pv`` (``_p``, keys, ``n_prev``): the appeals of the comparable span just before each
    period and group — the previous period (``Period.previous``), or with a time dimension the same
    span one bucket earlier, each row keyed by the bucket it precedes."""
    time_dims = [b for b in by if DIMENSIONS[b].is_time]
    if len(time_dims) > 1:
        raise QueryError("прирост к прошлому периоду строится не более чем по одному измерению времени")
    if time_dims:
        months, days = _BUCKET_STEP[time_dims[0]]
        spans = [(_shift_back(p.start, months, days), _shift_back(p.end, months, days)) for p in periods]
    else:
        spans = [(q.start, q.end) for q in (p.previous() for p in periods)]
    rollup = use_rollup and all(a.day == 1 and b.day == 1 for a, b in spans)
    column = "month" if rollup else "received_at"
    group = []
    for b in by:
        dim = DIMENSIONS[b]
        if dim.is_time:
            step = f"INTERVAL {months} MONTH" if months else f"INTERVAL {days} DAY"
            group.append(f"CAST(date_trunc('{b}', {column} + {step}) AS DATE) AS {dim.column}")
        else:
            group.append(f"{dim.rollup_sql if rollup else dim.fact_sql} AS {dim.column}")
    clauses, _ = _filter_clauses(filters, scope, params)
    ranges = []
    for i, (start, end) in enumerate(spans):
        params[f"v{i}_start"], params[f"v{i}_end"] = start, end
        ranges.append(f"{column} >= $v{i}_start AND {column} < $v{i}_end")
    count = "CAST(sum(n) AS BIGINT)" if rollup else "CAST(count(*) AS BIGINT)"
    table = source if rollup else facts
    ordered = sorted(spans)
    if all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False)):  # one pass, a row in one span
        index = "CASE " + " ".join(f"WHEN {r} THEN {i}" for i, r in enumerate(ranges)) + " END"
        where = " AND ".join(["(" + " OR ".join(f"({r})" for r in ranges) + ")", *clauses])
        return (f"pv AS (SELECT {', '.join([f'{index} AS _p', *group, f'{count} AS n_prev'])} "  # noqa: S608
                f"FROM {table} WHERE {where} GROUP BY ALL)")
    parts = [f"SELECT {', '.join([f'{i} AS _p', *group, f'{count} AS n_prev'])} FROM {table} "  # noqa: S608
             f"WHERE {' AND '.join([r, *clauses])} GROUP BY ALL" for i, r in enumerate(ranges)]
    return f"pv AS ({' UNION ALL '.join(parts)})"


def _severe_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Categories of high severity (``category.severity``, ``data.severity``)."""
    cache = _per_connection.setdefault(con, {}) if is_served(con) else {}
    if "severe" not in cache:
        try:
            rows = con.execute("SELECT id FROM category WHERE severity = 'high' ORDER BY id").fetchall()
        except duckdb.BinderException as exc:  # a warehouse from before severity, opened read-only
            raise QueryError("в хранилище не задана тяжесть категорий: выполните python -m data severity") from exc
        cache["severe"] = [r[0] for r in rows]
    return cache["severe"]


# a municipality id beyond this is no sequence number: the region list would not be a small lookup
_MAX_UNIT_ID = 1_000_000


def _unit_regions(con: duckdb.DuckDBPyConnection) -> list[int | None]:
    """The region of each municipality, at the position of its id (``REGION_SQL``); None in the gaps.
    A unit without a region belongs to region 1 (a warehouse from before the region level)."""
    cache = _per_connection.setdefault(con, {}) if is_served(con) else {}
    if "unit_region" not in cache:
        rows = con.execute("SELECT id, coalesce(region_id, 1) FROM municipality WHERE id IS NOT NULL").fetchall()
        ids = [int(i) for i, _ in rows]
        if ids and (min(ids) < 1 or max(ids) > _MAX_UNIT_ID):
            raise QueryError("номера муниципалитетов вне диапазона 1…1 000 000: разбивка по регионам недоступна")
        regions: list[int | None] = [None] * max(ids, default=0)
        for i, region in rows:
            regions[int(i) - 1] = int(region)
        cache["unit_region"] = regions
    return cache["unit_region"]


def _filter_clauses(filters: dict[str, list], scope: Scope, params: dict) -> tuple[list[str], dict]:
    """Filters and always the scope (narrowed to the signed-in user's, see ``metrics.scope.effective``)."""
    scope = effective(scope)
    clauses = []
    for name, values in filters.items():
        clauses.append(f"list_contains($f_{name}, {FILTERS[name][0]})")
        params[f"f_{name}"] = values
    if scope.municipality_ids is not None:
        clauses.append("list_contains($scope_m, municipality_id)")
        params["scope_m"] = sorted(scope.municipality_ids)
    if scope.sector_ids is not None:
        clauses.append("list_contains($scope_s, sector_id)")
        params["scope_s"] = sorted(scope.sector_ids)
    return clauses, params


def _where(filters: dict[str, list], scope: Scope, period: Period, rollup: bool) -> tuple[str, dict]:
    """The WHERE clause every query shares: period, filters, and always the scope."""
    column = "month" if rollup else "received_at"
    params: dict[str, object] = {"p_start": period.start, "p_end": period.end}
    clauses, params = _filter_clauses(filters, scope, params)
    return " AND ".join([f"{column} >= $p_start", f"{column} < $p_end", *clauses]), params


def _period_where(filters: dict[str, list], scope: Scope, periods: list[Period], rollup: bool,
                  column: str | None = None) -> tuple[str, str, dict]:
    """(period index expression, WHERE clause, parameters) for one or several periods; ``column``
    the time column (default: ``month`` of the rollups, ``received_at`` of the facts)."""
    column = column or ("month" if rollup else "received_at")
    params: dict[str, object] = {}
    ranges = []
    for i, p in enumerate(periods):
        params[f"p{i}_start"], params[f"p{i}_end"] = p.start, p.end
        ranges.append(f"{column} >= $p{i}_start AND {column} < $p{i}_end")
    clauses, params = _filter_clauses(filters, scope, params)
    if len(periods) == 1:
        return "0", " AND ".join([ranges[0], *clauses]), params
    # the overall bounds let DuckDB skip row groups by their zone maps; the ranges keep gaps out
    params["lo"], params["hi"] = min(p.start for p in periods), max(p.end for p in periods)
    bounds = [f"{column} >= $lo", f"{column} < $hi", "(" + " OR ".join(f"({r})" for r in ranges) + ")"]
    index = "CASE " + " ".join(f"WHEN {r} THEN {i}" for i, r in enumerate(ranges)) + " END"
    return index, " AND ".join(bounds + clauses), params


def _smallest_table(con: duckdb.DuckDBPyConnection, tables: Mapping[str, tuple[str, ...]], by: Sequence[str],
                    filters: Mapping[str, object], scope: Scope, also: set[str] | None = None) -> str:
    """The first of ``tables`` (smallest first) present in the warehouse with every column the
    question groups or filters by, the scope's included; a warehouse built before a table existed
    simply lacks it."""
    wanted = {_stored_column(b) for b in by if not DIMENSIONS[b].is_time} | {FILTERS[f][0] for f in filters}
    scope = effective(scope)
    wanted |= {"municipality_id"} if scope.municipality_ids is not None else set()
    wanted |= {"sector_id"} if scope.sector_ids is not None else set()
    wanted |= also or set()
    present = _tables(con)
    for table, dims in tables.items():
        if table in present and wanted <= set(dims):
            return table
    return next(reversed(tables))


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    cache = _per_connection.setdefault(con, {})
    if "tables" not in cache:
        cache["tables"] = table_names(con)
    return cache["tables"]


# dimensions computed from a stored column (not stored themselves) -> that column
_DERIVED_DIMENSIONS: dict[str, str] = {"region": "municipality_id"}


def _stored_column(name: str) -> str:
    """The stored column a dimension is read from: its own, or the one it is computed from."""
    return _DERIVED_DIMENSIONS.get(name, DIMENSIONS[name].column)


def _label_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [c for c in reference(con, name).columns if c != DIMENSIONS[name].column]


def _clean_filters(con: duckdb.DuckDBPyConnection, filters: Mapping[str, Iterable[object]]) -> dict[str, list]:
    clean: dict[str, list] = {}
    for name, raw in filters.items():
        if raw is None:
            continue
        if name not in FILTERS:
            raise QueryError(f"неизвестный фильтр: {name!r}")
        values = [raw] if isinstance(raw, str | int) else list(raw)
        if not values:
            continue
        if name == "sector":
            sectors = reference(con, "sector")
            codes = dict(zip(sectors["sector_code"], sectors["sector_id"], strict=True))
            values = [codes.get(v, v) if isinstance(v, str) else v for v in values]
        try:
            typed = [FILTERS[name][1](v) for v in values]
        except (TypeError, ValueError) as exc:
            raise QueryError(f"неверное значение фильтра {name}: {values!r}") from exc
        if name == "region":  # a region stands for its municipalities
            units = con.execute(
                "SELECT id FROM municipality WHERE list_contains($r, coalesce(region_id, 1)) ORDER BY id", {"r": typed}
            ).fetchall()
            typed = [u for (u,) in units] or [-1]  # a region without units matches nothing, not everything
        if name == "category":
            # a parent («Прочие по направлению») stands for its sub-problems too
            children = con.execute(
                "SELECT id FROM category WHERE list_contains($p, parent_id)", {"p": typed}
            ).fetchall()
            typed = sorted(set(typed) | {c for (c,) in children})
        clean[name] = typed
    return clean


def _ranks(df: pd.DataFrame, code: str) -> dict[str, pd.Series]:
    """Rank 1 = best, among rows with enough data; None where the value is «мало данных»."""
    spec = ind.get(code)
    out: dict[str, pd.Series] = {}
    if spec.higher_is_better is None or code not in df:
        return out
    ascending = not spec.higher_is_better
    for suffix in ("", "_prev"):
        col = f"{code}{suffix}"
        if col not in df:
            continue
        low = df.get(f"{code}_low{suffix}", pd.Series(False, index=df.index)).fillna(True).astype(bool)
        out[f"{code}_rank{suffix}"] = df[col].where(~low).rank(ascending=ascending, method="min")
    if f"{code}_rank_prev" in out:
        out[f"{code}_rank_change"] = out[f"{code}_rank_prev"] - out[f"{code}_rank"]
    return out


_REFERENCE_SQL: dict[str, str] = {
    "municipality": "SELECT id AS municipality_id, name AS municipality_name, population FROM municipality",
    "sector": "SELECT id AS sector_id, code AS sector_code, name AS sector_name FROM sector",
    "region": "SELECT id AS region_id, name AS region_name, population AS region_population FROM region",
    "category": """SELECT c.id AS category_id, c.name AS category_name, c.parent_id AS category_parent_id,
                          p.name AS category_parent_name, c.is_other AS category_is_other
                   FROM category c LEFT JOIN category p ON p.id = c.parent_id""",
    "organisation": "SELECT id AS organisation_id, name AS organisation_name, kind AS organisation_kind FROM organisation",
    "channel": "SELECT code AS channel, name AS channel_name FROM channel",
    "organisation_home": """SELECT o.id AS organisation_id, o.municipality_id, m.name AS municipality_name
                            FROM organisation o LEFT JOIN municipality m ON m.id = o.municipality_id""",
    "category_sector": """SELECT c.id AS category_id, s.code AS sector_code
                          FROM category c JOIN sector s ON s.id = c.sector_id""",
}
# Reference lists, the table list and the data date change only when a writer replaces or reopens
# the file, which gives a new read connection: caching per connection saves a query each per call.
_per_connection: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reference(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """A reference list (municipality, sector, category, organisation, channel) with label columns."""
    cache = _per_connection.setdefault(con, {})
    if name not in cache:
        cache[name] = con.execute(_REFERENCE_SQL[name]).df()
    return cache[name]


def _population_in_scope(con: duckdb.DuckDBPyConnection, filters: dict[str, list], scope: Scope) -> float:
    """Residents of the municipalities a query covers: its municipality filter within the scope."""
    scope = effective(scope)
    ref = reference(con, "municipality")
    keep = pd.Series(True, index=ref.index)
    for name in ("municipality", "region"):  # a region filter holds its municipalities' ids
        if name in filters:
            keep &= ref["municipality_id"].isin(filters[name])
    if scope.municipality_ids is not None:
        keep &= ref["municipality_id"].isin(scope.municipality_ids)
    return float(ref.loc[keep, "population"].fillna(0).sum())
