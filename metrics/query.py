"""The one entry point: indicators × dimensions × filters × period × scope → a tidy DataFrame.

Every value from outside is a bound parameter; identifiers come only from the registries below.
Month-aligned periods read the rollups (``data.rollup``); other ranges read the facts with the
same measure definitions, so both paths give the same counts (medians: estimate vs exact).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from data.rollup import (
    DURATIONS,
    HIST_BUCKETS,
    HIST_EDGES_HOURS,
    HIST_TABLES,
    MEASURES,
    MONTHLY_TABLES,
    OPEN_STATUSES_SQL,
    measure_sql,
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


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
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
    "municipality": ("municipality_id", int),
    "sector": ("sector_id", int),
    "category": ("category_id", int),
    "organisation": ("organisation_id", int),
    "channel": ("channel", str),
    "kind": ("kind", str),
}
AGE_BUCKETS = (("backlog_le3", 0, 3), ("backlog_4_10", 4, 10), ("backlog_11_30", 11, 30), ("backlog_gt30", 31, None))


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
    """Measures, open appeals, indicator arithmetic, the previous period and the names, all in one
    statement (each pandas step on a small frame costs more than DuckDB's whole rollup query).

    ``mode``: ``single`` (one period), ``pivot`` (period 0 with period 1 as ``*_prev`` columns),
    ``stacked`` (a row per period and group, ``period_index``). Exact quantiles (facts) are part of
    the statement; histogram quantiles (rollups) are read from each row's bucket lists after it.
    Ranks (``compare``) are added by ``query_on``.
    """
    use_rollup = (not _facts_only.get() and all(p.month_aligned for p in periods)
                  and all(DIMENSIONS[b].rollup_sql for b in by))
    keys = [DIMENSIONS[b].column for b in by]
    needed = _needed_measures(codes)
    needs_open = any(ind.get(c).kind == "open" for c in codes) or "due_or_answered" in needed
    period_sql, where, params = _period_where(filters, scope, periods, rollup=use_rollup)

    # 1. additive measures per period and group, from the smallest table that has the columns
    if use_rollup:
        source = _smallest_table(con, MONTHLY_TABLES, by, filters, scope)
        group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
        aggs = [f"sum({m}) AS {m}" if m.startswith("sum_") else f"CAST(sum({m}) AS BIGINT) AS {m}"
                for m in MEASURES if m in needed]
        eligible = ("CAST(sum(CASE WHEN month + INTERVAL 1 MONTH <= $cutoff THEN n ELSE n_answered END) AS BIGINT)"
                    " AS eligible_30d")
    else:
        source = "appeal"
        group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
        aggs = [measure_sql(m, e) for m, e in MEASURES.items() if m in needed]
        eligible = "count(*) FILTER (WHERE answered_at IS NOT NULL OR received_at <= $cutoff) AS eligible_30d"
    if "eligible_30d" in needed:
        aggs.append(eligible)
        params["cutoff"] = as_of - dt.timedelta(days=30)
    ctes = [f"m AS (SELECT {', '.join([f'{period_sql} AS _p', *group, *aggs])} FROM {source} "  # noqa: S608
            f"WHERE {where} GROUP BY ALL)"]
    measure_cols = [m for m in MEASURES if m in needed] + (["eligible_30d"] if "eligible_30d" in needed else [])

    # 2. appeals still open on the data date, per period (a few thousand rows: always the facts)
    open_cols: list[str] = []
    if needs_open:
        open_cols = (["backlog_open", *(n for n, _, _ in AGE_BUCKETS)] if "backlog_open" in codes else []) + (
            ["overdue_open"] if "overdue_open" in codes else []) + (
            ["overdue_in_period"] if "due_or_answered" in needed else [])
        ctes.append(_open_cte(by, periods, filters, scope, params, as_of, open_cols))

    # 3. one row per period and group with every measure (missing = 0)
    zero = {m: "0.0" if m.startswith("sum_") else "0" for m in measure_cols}
    cols = [f"coalesce(m.{m}, {zero[m]}) AS {m}" for m in measure_cols]
    cols += [f"coalesce(o.{c}, 0) AS {c}" for c in open_cols]
    if "due_or_answered" in needed:
        cols.append("coalesce(m.n_answered, 0) + coalesce(o.overdue_in_period, 0) AS due_or_answered")
    if keys:
        head = ["coalesce(m._p, o._p) AS _p", *(f"coalesce(m.{k}, o.{k}) AS {k}" for k in keys)] if open_cols \
            else ["m._p AS _p", *(f"m.{k} AS {k}" for k in keys)]
        same = " AND ".join(["m._p = o._p", *(f"m.{k} IS NOT DISTINCT FROM o.{k}" for k in keys)])
        body = f"m FULL JOIN o ON {same}" if open_cols else "m"
    else:  # a row for every period, even one without appeals
        head = ["per._p AS _p"]
        body = f"(SELECT CAST(unnest(range({len(periods)})) AS INTEGER) AS _p) per LEFT JOIN m ON m._p = per._p"
        body += " LEFT JOIN o ON o._p = per._p" if open_cols else ""
    ctes.append(f"r AS (SELECT {', '.join(head + cols)} FROM {body})")  # noqa: S608 - registry identifiers only

    # 4. the declared arithmetic of every indicator
    population = None
    if "rate_10k" in codes:
        if "municipality" in by:
            population = "pop.population"
        else:
            params["population"] = _population_in_scope(con, filters, scope)
            population = "$population"
    joins = " LEFT JOIN municipality pop ON pop.id = r.municipality_id" if population == "pop.population" else ""
    medians: dict[str, str] = {}
    median_codes = [c for c in codes if ind.get(c).kind == "median"]
    hist_cols: list[str] = []
    hist_table = _smallest_table(con, HIST_TABLES, by, filters, scope) if use_rollup and median_codes else ""
    for j, code in enumerate(median_codes):
        if use_rollup:  # each group's duration histogram as two lists; the quantile is read from them below
            ctes.append(_histogram_cte(f"q{j}", ind.get(code), by, period_sql, where, params, hist_table))
            hist_cols += [f"{code}__hb", f"{code}__hn"]
        else:  # exact quantiles over the facts
            medians[code] = f"q{j}.value / {ind.get(code).hours_per_unit!r}"
            ctes.append(_exact_quantile_cte(f"q{j}", ind.get(code), by, period_sql, where, params))
        same = " AND ".join([f"q{j}._p = r._p", *(f"q{j}.{k} IS NOT DISTINCT FROM r.{k}" for k in keys)])
        joins += f" LEFT JOIN q{j} ON {same}"
    exprs = ["r._p AS _p", *(f"r.{k} AS {k}" for k in keys), "CAST(r.n AS BIGINT) AS volume"]
    for code in codes:
        exprs += _indicator_sql(code, population, medians.get(code))
    for j, code in enumerate(median_codes if use_rollup else []):
        exprs += [f"q{j}.hb AS {code}__hb", f"q{j}.hn AS {code}__hn"]
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
            prev += [f"p.{c} AS {c}_prev" for c in hist_cols]
        if "growth" in codes:
            spec = ind.get("growth")
            prev += [
                "(c.volume - p.volume) / nullif(CAST(p.volume AS DOUBLE), 0) AS growth",
                "CAST(coalesce(p.volume, 0) AS DOUBLE) AS growth_base",
                f"coalesce(p.volume, 0) < {int(spec.min_volume)} AS growth_low",
            ]
        same = " AND ".join(["p._p = 1", *(f"c.{k} IS NOT DISTINCT FROM p.{k}" for k in keys)])
        final = f"SELECT c.* EXCLUDE (_p), {', '.join(prev)} FROM i c LEFT JOIN i p ON {same} WHERE c._p = 0"  # noqa: S608 - registry identifiers only
    elif mode == "stacked":
        final = "SELECT i.* RENAME (_p AS period_index) FROM i"
    else:
        final = "SELECT i.* EXCLUDE (_p) FROM i"
    label_dims = [b for b in by if b in _REFERENCE_SQL] if labels else []
    if label_dims:
        joins = " ".join(
            f"LEFT JOIN ({_REFERENCE_SQL[b]}) l{j} ON l{j}.{DIMENSIONS[b].column} = f.{DIMENSIONS[b].column}"
            for j, b in enumerate(label_dims)
        )
        names = [f"l{j}.{c}" for j, b in enumerate(label_dims) for c in _label_columns(con, b)]
        final = f"SELECT f.*, {', '.join(names)} FROM ({final}) f {joins}"  # noqa: S608 - registry identifiers only
    sql = f"WITH {', '.join(ctes)} {final}"
    df = con.execute(sql, params).df()
    if hist_cols:
        for code in median_codes:
            spec = ind.get(code)
            for suffix in ("", "_prev") if f"{code}__hb_prev" in df else ("",):
                df[f"{code}{suffix}"] = _quantiles_of_lists(
                    df[f"{code}__hb{suffix}"], df[f"{code}__hn{suffix}"], spec.quantile) / spec.hours_per_unit
        df = df.drop(columns=[c for c in df.columns if "__h" in c])
    return df


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
    elif spec.kind == "median":
        value = f"CAST({quantile or 'NULL'} AS DOUBLE)"  # rollup: from the histograms, after the query
        base = f"CAST(r.{spec.denominator} AS BIGINT)"
    else:
        raise QueryError(f"показатель {code}: неизвестный вид {spec.kind}")
    items = [f"{value} AS {code}", f"{base} AS {code}_base",
             f"coalesce({base}, 0) < {int(spec.min_volume)} AS {code}_low"]
    if code == "backlog_open":
        items += [f"CAST(r.{name} AS BIGINT) AS {name}" for name, _, _ in AGE_BUCKETS]
    return items


def _open_cte(by, periods, filters, scope, params, as_of, wanted: list[str]) -> str:
    """Open appeals on the data date: backlog by age, overdue, overdue of the period's own cohort
    (only the ``wanted`` columns). The backlog counts everything still open that arrived before the
    period's end. One scan of ``appeal_open`` counts every period; a group gets a row for a period
    only when it has open appeals then."""
    group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
    keys = [DIMENSIONS[b].column for b in by]
    clauses, _ = _filter_clauses(filters, scope, params)
    params["as_of"] = as_of
    counts = {
        "backlog_open": "TRUE",
        "overdue_open": "due_at < $as_of",
        "overdue_in_period": "due_at < $as_of AND received_at >= $p{i}_start",
        **{name: f"date_diff('day', received_at, $as_of) BETWEEN {lo} AND {hi if hi else 100000}"
           for name, lo, hi in AGE_BUCKETS},
    }
    aggs = []
    for i, _ in enumerate(periods):
        aggs.append(f"count(*) FILTER (WHERE received_at < $p{i}_end) AS _any_{i}")
        aggs += [f"count(*) FILTER (WHERE received_at < $p{i}_end AND {counts[c].format(i=i)}) AS {c}_{i}"
                 for c in wanted]
    where = " AND ".join([f"status IN {OPEN_STATUSES_SQL}", "received_at < $o_end", *clauses])
    params["o_end"] = max(p.end for p in periods)
    scan = (f"o_all AS (SELECT {', '.join([*group, *aggs])} FROM appeal_open WHERE {where}"  # noqa: S608
            + (" GROUP BY ALL)" if group else ")"))
    parts = [
        f"SELECT {', '.join([f'{i} AS _p', *keys, *(f'{c}_{i} AS {c}' for c in wanted)])} FROM o_all"  # noqa: S608
        + (f" WHERE _any_{i} > 0" if keys else "")
        for i, _ in enumerate(periods)
    ]
    return f"{scan}, o AS ({' UNION ALL '.join(parts)})"


def _needed_measures(codes: list[str]) -> set[str]:
    """The rollup measures the requested indicators rest on (summing all 18 costs time)."""
    needed = {"n"}
    for code in codes:
        spec = ind.get(code)
        needed |= {m for m in (spec.numerator, spec.denominator) if m}
    if "due_or_answered" in needed:
        needed.add("n_answered")
    if "eligible_30d" in needed:
        needed.add("n_answered")
    return needed


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


def _period_where(filters: dict[str, list], scope: Scope, periods: list[Period], rollup: bool) -> tuple[str, str, dict]:
    """(period index expression, WHERE clause, parameters) for one or several periods."""
    column = "month" if rollup else "received_at"
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
                    filters: Mapping[str, object], scope: Scope) -> str:
    """The first of ``tables`` (smallest first) present in the warehouse with every column the
    question groups or filters by, the scope's included; a warehouse built before a table existed
    simply lacks it."""
    wanted = {DIMENSIONS[b].column for b in by if not DIMENSIONS[b].is_time} | {FILTERS[f][0] for f in filters}
    scope = effective(scope)
    wanted |= {"municipality_id"} if scope.municipality_ids is not None else set()
    wanted |= {"sector_id"} if scope.sector_ids is not None else set()
    present = _tables(con)
    for table, dims in tables.items():
        if table in present and wanted <= set(dims):
            return table
    return next(reversed(tables))


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    cache = _per_connection.setdefault(con, {})
    if "tables" not in cache:
        cache["tables"] = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return cache["tables"]


def _label_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [c for c in reference(con, name).columns if c != DIMENSIONS[name].column]


def _exact_quantile_cte(name: str, spec: ind.Indicator, by: list[str], period_sql: str, where: str,
                        params: dict) -> str:
    """A CTE ``name`` (``_p``, keys, ``value`` in hours): the exact quantile per period and group."""
    params[f"{name}_q"] = spec.quantile
    hours = DURATIONS[spec.duration]
    group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
    return (f"{name} AS (SELECT {', '.join([f'{period_sql} AS _p', *group])}, "  # noqa: S608 - registry identifiers
            f"quantile_cont({hours}, ${name}_q) AS value FROM appeal WHERE ({hours}) IS NOT NULL AND {where} "
            "GROUP BY ALL)")


def _histogram_cte(name: str, spec: ind.Indicator, by: list[str], period_sql: str, where: str, params: dict,
                   table: str) -> str:
    """A CTE ``name`` (``_p``, keys, ``hb`` buckets, ``hn`` counts): the duration histogram rows of
    each period and group, unsummed (a bucket may repeat across months; ``_quantiles_of_lists`` adds
    them up). Lists instead of a running count: DuckDB's window over many small groups costs more
    than the rest of the statement."""
    params[f"{name}_duration"] = spec.duration
    group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
    return (f"{name} AS (SELECT {', '.join([f'{period_sql} AS _p', *group])}, list(bucket) AS hb, list(n) AS hn "  # noqa: S608
            f"FROM {table} WHERE duration = ${name}_duration AND {where} GROUP BY ALL)")


def _quantiles_of_lists(buckets: pd.Series, counts: pd.Series, q: float) -> np.ndarray:
    """The q-quantile (hours) of each row's histogram given as bucket and count lists (NaN: none)."""
    rows = len(buckets)
    has = [isinstance(b, list | np.ndarray) and len(b) > 0 for b in buckets]
    lengths = np.array([len(b) if h else 0 for b, h in zip(buckets, has, strict=True)], dtype=np.int64)
    matrix = np.zeros((rows, HIST_BUCKETS))
    if lengths.sum():
        where = np.repeat(np.arange(rows), lengths)
        b = np.concatenate([np.asarray(x, dtype=np.int64) for x, h in zip(buckets, has, strict=True) if h])
        k = np.concatenate([np.asarray(x, dtype=float) for x, h in zip(counts, has, strict=True) if h])
        np.add.at(matrix, (where, b), k)
    return quantiles_from_histograms(matrix, q)


def quantile_from_histogram(counts: np.ndarray, q: float) -> float:
    """The q-quantile in hours from bucket counts, by the same rank rule as ``quantile_cont``.

    The k observations of a bucket are taken as spread evenly inside it (at (j + 0.5) / k of its
    width): for many appeals this is linear interpolation, for a handful it lands near the
    bucket middles instead of on an edge.
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return float("nan")
    cum = np.cumsum(counts)
    ratio = HIST_EDGES_HOURS[-1] / HIST_EDGES_HOURS[-2]

    def value_at(rank: float) -> float:
        i = int(np.searchsorted(cum, rank, side="right"))
        i = min(i, len(counts) - 1)
        lo = HIST_EDGES_HOURS[i]
        hi = HIST_EDGES_HOURS[i + 1] if i + 1 < len(HIST_EDGES_HOURS) else lo * ratio
        j = rank - (cum[i] - counts[i])
        return float(lo + (hi - lo) * (j + 0.5) / counts[i])

    r = q * (total - 1)
    lo_rank, frac = int(np.floor(r)), r - np.floor(r)
    low = value_at(lo_rank)
    return low if frac == 0 else low + frac * (value_at(lo_rank + 1) - low)


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
        if name == "category":
            # a parent («Прочие по направлению») stands for its sub-problems too
            children = con.execute(
                "SELECT id FROM category WHERE list_contains($p, parent_id)", {"p": typed}
            ).fetchall()
            typed = sorted(set(typed) | {c for (c,) in children})
        clean[name] = typed
    return clean


def quantiles_from_histograms(matrix: np.ndarray, q: float) -> np.ndarray:
    """``quantile_from_histogram`` for each row of a groups × buckets matrix."""
    counts = np.asarray(matrix, dtype=float)
    total = counts.sum(axis=1)
    cum = np.cumsum(counts, axis=1)
    edges = np.asarray(HIST_EDGES_HOURS, dtype=float)
    upper = np.append(edges[1:], edges[-1] * edges[-1] / edges[-2])
    rows = np.arange(len(counts))

    def value_at(rank: np.ndarray) -> np.ndarray:
        i = np.minimum((cum <= rank[:, None]).sum(axis=1), HIST_BUCKETS - 1)
        k = counts[rows, i]
        j = rank - (cum[rows, i] - k)
        with np.errstate(invalid="ignore", divide="ignore"):
            return edges[i] + (upper[i] - edges[i]) * (j + 0.5) / k

    r = q * np.maximum(total - 1, 0)
    lo = np.floor(r)
    frac = r - lo
    low = value_at(lo)
    high = value_at(np.minimum(lo + 1, np.maximum(total - 1, 0)))
    with np.errstate(invalid="ignore"):
        out = low + frac * (high - low)
    return np.where(total > 0, out, np.nan)


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
    if "municipality" in filters:
        keep &= ref["municipality_id"].isin(filters["municipality"])
    if scope.municipality_ids is not None:
        keep &= ref["municipality_id"].isin(scope.municipality_ids)
    return float(ref.loc[keep, "population"].fillna(0).sum())
