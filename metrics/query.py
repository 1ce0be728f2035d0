"""The one entry point: indicators × dimensions × filters × period × scope → a tidy DataFrame.

Every value from outside is a bound parameter; identifiers come only from the registries below.
Month-aligned periods read the rollups (``data.rollup``); other ranges read the facts with the
same measure definitions, so both paths give the same counts (medians: estimate vs exact).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from data.rollup import DURATIONS, HIST_BUCKETS, HIST_EDGES_HOURS, MEASURES, OPEN_STATUSES_SQL, measure_sql
from metrics import indicators as ind
from metrics.periods import Period
from metrics.scope import REGION, Scope, effective
from metrics.source import reader


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
    codes = list(dict.fromkeys(indicators))
    for code in codes:
        ind.get(code)
    for name in by:
        if name not in DIMENSIONS:
            raise QueryError(f"неизвестное измерение: {name!r}")
    if compare and any(DIMENSIONS[b].is_time for b in by):
        raise QueryError("сравнение с прошлым периодом не строится по измерению времени")
    as_of = as_of or data_as_of(con)
    if period is None:
        from metrics.periods import month

        period = month(as_of.date())
    clean = _clean_filters(con, filters or {})
    keys = [DIMENSIONS[b].column for b in by]

    current = _compute(con, codes, list(by), period, clean, scope, as_of)
    if "growth" in codes or compare:
        previous = _compute(con, codes if compare else ["volume"], list(by), period.previous(), clean, scope, as_of)
        previous = previous.rename(columns={c: f"{c}_prev" for c in previous.columns if c not in keys})
        current = current.merge(previous, on=keys, how="left") if keys else _merge_single(current, previous)
        if "growth" in codes:
            prev_n = current["volume_prev"].astype("float64")
            current["growth"] = (current["volume"] - prev_n) / prev_n.where(prev_n > 0)
            current["growth_base"] = prev_n.fillna(0)
            current["growth_low"] = current["growth_base"] < ind.get("growth").min_volume
    if compare and keys:
        for code in codes:
            _add_rank(current, code)
    current = _attach_labels(con, current, list(by) if labels else [], clean, scope, by_for_rate=list(by))
    return current.reset_index(drop=True)


def data_as_of(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The data's own "now": the last receipt time (meta ``data_as_of``)."""
    rows = con.execute("SELECT value FROM meta WHERE key = 'data_as_of'").fetchall()
    if rows and rows[0][0]:
        return dt.datetime.fromisoformat(rows[0][0])
    last = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
    return last or dt.datetime.now().replace(microsecond=0)


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


# --- the computation of one period ----------------------------------------------------------


def _compute(
    con: duckdb.DuckDBPyConnection,
    codes: list[str],
    by: list[str],
    period: Period,
    filters: dict[str, list],
    scope: Scope,
    as_of: dt.datetime,
) -> pd.DataFrame:
    use_rollup = period.month_aligned and all(DIMENSIONS[b].rollup_sql for b in by)
    keys = [DIMENSIONS[b].column for b in by]
    cutoff_30d = as_of - dt.timedelta(days=30)
    where, params = _where(filters, scope, period, rollup=use_rollup)

    needed = _needed_measures(codes)
    if use_rollup:
        group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
        aggs = [f"sum({m}) AS {m}" for m in MEASURES if m in needed]
        eligible = "sum(CASE WHEN month + INTERVAL 1 MONTH <= $cutoff THEN n ELSE n_answered END) AS eligible_30d"
        source = "appeal_monthly"
    else:
        group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
        aggs = [measure_sql(m, e) for m, e in MEASURES.items() if m in needed]
        eligible = "count(*) FILTER (WHERE answered_at IS NOT NULL OR received_at <= $cutoff) AS eligible_30d"
        source = "appeal"
    if "eligible_30d" in needed:
        aggs.append(eligible)
        params["cutoff"] = cutoff_30d
    sql = (
        f"SELECT {', '.join(group + aggs)} FROM {source} WHERE {where}"  # noqa: S608 - registry identifiers only
        + (f" GROUP BY {', '.join(str(i + 1) for i in range(len(group)))}" if group else "")
    )
    df = con.execute(sql, params).df()
    if not keys and df.empty:
        df = pd.DataFrame([dict.fromkeys(needed & set(df.columns), 0)])
    measure_cols = [c for c in df.columns if c not in keys]
    df[measure_cols] = df[measure_cols].fillna(0)

    needs_open = any(ind.get(c).kind == "open" for c in codes) or "response_share" in codes
    if needs_open:
        df = _merge_open(con, df, by, keys, period, filters, scope, as_of)
    if "due_or_answered" in needed:
        df["due_or_answered"] = df["n_answered"] + df.get("overdue_in_period", 0)

    # columns are collected first and joined once: adding them one by one fragments the frame
    cols: dict[str, pd.Series] = {"volume": df["n"].astype("int64")}
    for code in codes:
        spec = ind.get(code)
        if spec.kind == "count":
            cols[code] = df[spec.numerator].astype("int64")
            cols[f"{code}_base"] = cols[code]
        elif spec.kind in ("ratio", "mean"):
            den = df[spec.denominator].astype("float64")
            cols[code] = df[spec.numerator].astype("float64") / den.where(den > 0)
            cols[f"{code}_base"] = den
        elif spec.kind == "rate":
            cols[code] = df["n"].astype("float64")  # divided by population in _attach_labels
            cols[f"{code}_base"] = df["n"]
        elif spec.kind == "open":
            cols[code] = df[code].astype("int64")
            cols[f"{code}_base"] = cols[code]
            if code == "backlog_open":
                for name, _, _ in AGE_BUCKETS:
                    cols[name] = df[name].astype("int64")
        elif spec.kind == "median":
            cols[f"{code}_base"] = df[spec.denominator]
    out = pd.concat([df[keys], pd.DataFrame(cols, index=df.index)], axis=1)
    medians = [c for c in codes if ind.get(c).kind == "median"]
    if medians:
        out = _add_medians(con, out, medians, by, keys, period, filters, scope, use_rollup)
    low = {
        f"{code}_low": out[f"{code}_base"].fillna(0) < ind.get(code).min_volume
        for code in codes
        if ind.get(code).kind != "growth"
    }
    out = pd.concat([out, pd.DataFrame(low, index=out.index)], axis=1)
    return out


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


def _where(filters: dict[str, list], scope: Scope, period: Period, rollup: bool) -> tuple[str, dict]:
    """The WHERE clause every query shares: period, filters, and always the scope (narrowed to the
    signed-in user's scope, see ``metrics.scope.effective``)."""
    scope = effective(scope)
    if rollup:
        clauses = ["month >= $p_start", "month < $p_end"]
    else:
        clauses = ["received_at >= $p_start", "received_at < $p_end"]
    params: dict[str, object] = {"p_start": period.start, "p_end": period.end}
    for name, values in filters.items():
        column = FILTERS[name][0]
        clauses.append(f"list_contains($f_{name}, {column})")
        params[f"f_{name}"] = values
    if scope.municipality_ids is not None:
        clauses.append("list_contains($scope_m, municipality_id)")
        params["scope_m"] = sorted(scope.municipality_ids)
    if scope.sector_ids is not None:
        clauses.append("list_contains($scope_s, sector_id)")
        params["scope_s"] = sorted(scope.sector_ids)
    return " AND ".join(clauses), params


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


def _merge_open(con, df, by, keys, period, filters, scope, as_of) -> pd.DataFrame:
    """Open appeals on the data date: overdue, backlog by age, overdue of the period's cohort."""
    group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
    where, params = _where(filters, scope, period, rollup=False)
    # backlog counts everything still open that arrived before the period's end
    where = where.replace("received_at >= $p_start AND ", "")
    params.pop("p_start")
    params["as_of"] = as_of
    params["p_start2"] = period.start
    ages = [
        f"count(*) FILTER (WHERE date_diff('day', received_at, $as_of) BETWEEN {lo} AND {hi if hi else 100000}) AS {name}"
        for name, lo, hi in AGE_BUCKETS
    ]
    counts = [
        "count(*) AS backlog_open",
        "count(*) FILTER (WHERE due_at < $as_of) AS overdue_open",
        "count(*) FILTER (WHERE due_at < $as_of AND received_at >= $p_start2) AS overdue_in_period",
    ]
    sql = (
        f"SELECT {', '.join(group + counts + ages)} "  # noqa: S608 - registry identifiers only
        f"FROM appeal_open WHERE status IN {OPEN_STATUSES_SQL} AND {where}"
        + (f" GROUP BY {', '.join(str(i + 1) for i in range(len(group)))}" if group else "")
    )
    open_df = con.execute(sql, params).df()
    if keys:
        df = df.merge(open_df, on=keys, how="outer")
    else:
        df = pd.concat([df.reset_index(drop=True), open_df.reset_index(drop=True)], axis=1)
    fill = [c for c in df.columns if c not in keys]
    df[fill] = df[fill].fillna(0)
    return df


def _add_medians(con, out, codes, by, keys, period, filters, scope, use_rollup) -> pd.DataFrame:
    for code in codes:
        spec = ind.get(code)
        if use_rollup:
            where, params = _where(filters, scope, period, rollup=True)
            params["duration"] = spec.duration
            group = [f"{DIMENSIONS[b].rollup_sql} AS {DIMENSIONS[b].column}" for b in by]
            sql = (
                f"SELECT {', '.join(group + ['bucket', 'sum(n) AS n'])} FROM appeal_monthly_hist "  # noqa: S608
                f"WHERE duration = $duration AND {where} GROUP BY {', '.join(str(i + 1) for i in range(len(group) + 1))}"
            )
            hist = con.execute(sql.replace("FROM appeal_monthly_hist ", f"FROM {_hist_table(by, filters)} "),
                               params).df()
            values = _quantiles(hist, keys, spec.quantile)
        else:
            where, params = _where(filters, scope, period, rollup=False)
            hours = DURATIONS[spec.duration]
            params["q"] = spec.quantile
            group = [f"{DIMENSIONS[b].fact_sql} AS {DIMENSIONS[b].column}" for b in by]
            sql = (
                f"SELECT {', '.join(group + [f'quantile_cont({hours}, $q) AS value'])} FROM appeal "  # noqa: S608
                f"WHERE ({hours}) IS NOT NULL AND {where}"
                + (f" GROUP BY {', '.join(str(i + 1) for i in range(len(group)))}" if group else "")
            )
            values = con.execute(sql, params).df()
        values = values.rename(columns={"value": code})
        values[code] = values[code] / spec.hours_per_unit
        if keys:
            out = out.merge(values[[*keys, code]], on=keys, how="left")
        else:
            out[code] = values[code].iloc[0] if len(values) else np.nan
    return out


def _hist_table(by: Sequence[str], filters: Mapping[str, object]) -> str:
    """The smaller histogram rollup when the question needs only bodies and places (the scope is
    always municipality and sector, both kept there)."""
    body = {"municipality", "sector", "organisation"}
    return "appeal_monthly_hist_body" if set(by) <= body and set(filters) <= body else "appeal_monthly_hist"


def _quantiles(hist: pd.DataFrame, keys: list[str], q: float) -> pd.DataFrame:
    """Quantiles of every group's histogram at once (groups × buckets matrix, no Python loop)."""
    if hist.empty:
        return pd.DataFrame(columns=[*keys, "value"])
    if keys:
        grouped = hist.groupby(keys, dropna=False, sort=False)
        codes = grouped.ngroup().to_numpy()
        groups = grouped.size().reset_index()[keys]
    else:
        codes, groups = np.zeros(len(hist), dtype=int), pd.DataFrame(index=[0])
    matrix = np.zeros((len(groups), HIST_BUCKETS))
    np.add.at(matrix, (codes, hist["bucket"].to_numpy(dtype=int)), hist["n"].to_numpy(dtype=float))
    groups["value"] = quantiles_from_histograms(matrix, q)
    return groups


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


def _merge_single(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([current.reset_index(drop=True), previous.reset_index(drop=True)], axis=1)


def _add_rank(df: pd.DataFrame, code: str) -> None:
    """Rank 1 = best, among rows with enough data; None where the value is «мало данных»."""
    spec = ind.get(code)
    if spec.higher_is_better is None or code not in df:
        return
    ascending = not spec.higher_is_better
    for suffix in ("", "_prev"):
        col = f"{code}{suffix}"
        if col not in df:
            continue
        low = df.get(f"{code}_low{suffix}", pd.Series(False, index=df.index)).fillna(True).astype(bool)
        df[f"{code}_rank{suffix}"] = df[col].where(~low).rank(ascending=ascending, method="min")
    if f"{code}_rank_prev" in df:
        df[f"{code}_rank_change"] = df[f"{code}_rank_prev"] - df[f"{code}_rank"]


_REFERENCE_SQL: dict[str, str] = {
    "municipality": "SELECT id AS municipality_id, name AS municipality_name, population FROM municipality",
    "sector": "SELECT id AS sector_id, code AS sector_code, name AS sector_name FROM sector",
    "category": """SELECT c.id AS category_id, c.name AS category_name, c.parent_id AS category_parent_id,
                          p.name AS category_parent_name, c.is_other AS category_is_other
                   FROM category c LEFT JOIN category p ON p.id = c.parent_id""",
    "organisation": "SELECT id AS organisation_id, name AS organisation_name, kind AS organisation_kind FROM organisation",
    "channel": "SELECT code AS channel, name AS channel_name FROM channel",
    "organisation_home": "SELECT id AS organisation_id, municipality_id FROM organisation",
    "category_sector": """SELECT c.id AS category_id, s.code AS sector_code
                          FROM category c JOIN sector s ON s.id = c.sector_id""",
}
# Reference lists are tiny and change only when a writer replaces or reopens the file, which gives
# a new read connection: caching per connection saves a query per dimension on every call.
_reference_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reference(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """A reference list (municipality, sector, category, organisation, channel) with label columns."""
    cache = _reference_cache.setdefault(con, {})
    if name not in cache:
        cache[name] = con.execute(_REFERENCE_SQL[name]).df()
    return cache[name]


def _attach_labels(
    con: duckdb.DuckDBPyConnection,
    df: pd.DataFrame,
    by: list[str],
    filters: dict[str, list],
    scope: Scope,
    by_for_rate: list[str] | None = None,
) -> pd.DataFrame:
    for name in by:
        if name in _REFERENCE_SQL:
            df = df.merge(reference(con, name), on=DIMENSIONS[name].column, how="left")
    rate_cols = [c for c in ("rate_10k", "rate_10k_prev") if c in df]
    if rate_cols:
        if "municipality" in (by_for_rate if by_for_rate is not None else by):
            ref = reference(con, "municipality")[["municipality_id", "population"]]
            population = df[["municipality_id"]].merge(ref, on="municipality_id", how="left")["population"]
            population = pd.Series(population.to_numpy(dtype="float64"), index=df.index)
        else:
            population = pd.Series(_population_in_scope(con, filters, scope), index=df.index, dtype="float64")
        for col in rate_cols:
            df[col] = df[col] * 10_000 / population.where(population > 0)
    return df


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
