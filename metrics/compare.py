"""A period against the previous one, told honestly (DESIGN §4): the one comparison every page, the wall,
the pack and the brief use for a change, an arrow or a colour.

Receipt counts (volume, rate, distinct, repeat) and the stocks are compared with the previous period
as the data show it now. An answer-based indicator (``Indicator.answer_based``) of a period that is not
settled is still missing the answers that will come later, which flatters it (a late answer does not
exist yet); it is compared with the previous period *measured at the same age*:
``query(..., period=previous, as_of=same_age_as_of(previous, period, data_date))`` — the previous
period as it was known when it was as old as this one is now (``metrics.periods``). A settled period
is compared with the previous period's value at the data date.

Columns (``compare``): the keys and names of ``by``, every indicator with ``_base`` and ``_low`` as
``metrics.query.query`` gives them, and for each indicator but ``growth``: ``<code>_prev``,
``<code>_base_prev``, ``<code>_low_prev`` (the previous period, same age where it applies),
``<code>_prev_as_of`` (the moment the previous value is measured at), ``<code>_unsettled`` (answer-based
and the period not settled: «ответы ещё поступают»), ``<code>_change`` (value − previous, NaN where
either side is «мало данных») and ``<code>_better`` (True / False by the indicator's good direction,
NA without a change or a direction). ``growth`` is the receipts' change and comes with ``volume_prev``.
``attrs``: ``period``, ``previous``, ``data_date``, ``complete``, ``settled``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import duckdb
import pandas as pd

from metrics import indicators as ind
from metrics.periods import Period, is_complete, is_settled, last_complete_month, same_age_as_of
from metrics.query import DIMENSIONS, QueryError, data_as_of, query_on
from metrics.scope import REGION, Scope
from metrics.source import reader


def compare(
    indicators: Sequence[str],
    by: Sequence[str] = (),
    period: Period | None = None,
    filters: Mapping[str, Iterable[object]] | None = None,
    scope: Scope = REGION,
    as_of: dt.datetime | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """The indicators of ``period`` (default: the last complete month) beside the previous period's,
    answer-based ones at the same age while ``period`` is not settled; see the module text."""
    if con is None:
        with reader() as own:
            return compare(indicators, by, period, filters, scope, as_of, own)
    if any(DIMENSIONS[b].is_time for b in by if b in DIMENSIONS):
        raise QueryError("сравнение с прошлым периодом не строится по измерению времени")
    data_date = as_of or data_as_of(con)
    period = period or last_complete_month(data_date)
    previous = period.previous()
    codes = list(dict.fromkeys(indicators))
    settled = is_settled(period, data_date)
    aged_as_of = same_age_as_of(previous, period, data_date)

    out = query_on(con, codes, by, period, filters, scope, as_of=data_date)
    keys = [DIMENSIONS[b].column for b in by]
    compared = [c for c in codes if ind.get(c).kind != "growth"]
    aged = [c for c in compared if ind.get(c).answer_based and not settled]
    plain = [c for c in compared if c not in aged]
    for group, moment in ((plain, data_date), (aged, aged_as_of)):
        if not group:
            continue
        prev = query_on(con, group, by, previous, filters, scope, as_of=moment, labels=False)
        wanted = [c for code in group for c in (code, f"{code}_base", f"{code}_low")]
        prev = prev[keys + wanted].rename(columns={c: f"{c}_prev" for c in wanted})
        out = out.drop(columns=[c for c in prev.columns if c in out and c not in keys])  # growth's volume_prev
        out = out.merge(prev, on=keys, how="left") if keys else pd.concat(
            [out.reset_index(drop=True), prev.reset_index(drop=True)], axis=1)
        for code in group:
            out[f"{code}_prev_as_of"] = pd.Timestamp(moment)
    for code in compared:
        spec = ind.get(code)
        out[f"{code}_low_prev"] = out[f"{code}_low_prev"].astype("boolean").fillna(True).astype(bool)
        out[f"{code}_unsettled"] = bool(spec.answer_based and not settled)
        known = ~out[f"{code}_low"].astype(bool) & ~out[f"{code}_low_prev"]
        change = (out[code].astype("float64") - out[f"{code}_prev"].astype("float64")).where(known)
        out[f"{code}_change"] = change
        better = pd.Series(pd.NA, index=out.index, dtype="boolean")
        if spec.higher_is_better is not None:
            moved = change.notna() & (change != 0)
            better[moved] = (change[moved] > 0) == spec.higher_is_better
        out[f"{code}_better"] = better
    out.attrs.update(period=period, previous=previous, data_date=data_date,
                     complete=is_complete(period, data_date), settled=settled)
    return out


def direction(better: object) -> str:
    """«better» / «worse» / «» from a ``<code>_better`` cell: pages colour by it, nothing else."""
    if better is None or better is pd.NA or (isinstance(better, float) and better != better):
        return ""
    return "better" if bool(better) else "worse"
