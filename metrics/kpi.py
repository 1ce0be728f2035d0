"""An indicator as a time series against its published target (the ``target`` table).

``kpi_series`` gives one row per month (or ISO week) over the last ``months`` months ending with
the data's last month; ``kpi_small_multiples`` the same for every sector in one long frame. Both
read the indicator through ``metrics.query.query_on`` once over a range widened by a year, so
``year_ago`` needs no query of its own; with the target look-up that is a handful of queries.

The target of a period is chosen among the rows of ``target`` for the indicator without a
channel (channel targets, e.g. «8 рабочих часов в соцсетях», describe one channel, not the
series) whose sector / category / municipality are either empty or those asked for. The most
specific row wins (category before municipality before sector; region-wide last), and of those
the one in force: the latest ``period_start`` on or before the period's start. A category
implies its sector, so a sector target applies to the series of one of its categories.
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from metrics import indicators as ind
from metrics.periods import Period, add_months, is_complete, is_settled, month_start
from metrics.query import QueryError, data_as_of, query_on, reference
from metrics.scope import REGION, Scope, effective
from metrics.source import is_served, reader

Grain = Literal["month", "week"]
GRAINS: tuple[str, ...] = ("month", "week")
MAX_MONTHS = 120
YEAR_AGO_STEPS = {"month": 12, "week": 52}  # 52 weeks keep the weekday: a Monday a year ago
TARGET_LEVELS = ("category_id", "municipality_id", "sector_id")  # most specific first

SERIES_COLUMNS: tuple[str, ...] = (
    "period_start", "period_end", "partial", "settled", "value", "base", "low", "target", "year_ago",
    "meets_target",
)
COLUMN_LABELS: dict[str, str] = {
    "period_start": "Начало периода",
    "period_end": "Конец периода (не включая)",
    "partial": "Неполный период",
    "settled": "Ответы получены (прошло 30 дней)",
    "value": "Значение",
    "base": "Опирается на обращений",
    "low": "Мало данных",
    "target": "Целевое значение",
    "year_ago": "Год назад",
    "meets_target": "Цель достигнута",
    "sector_id": "Код направления",
    "sector_code": "Направление (код)",
    "sector_name": "Направление",
}


def kpi_series(
    indicator: str,
    grain: Grain = "month",
    months: int = 24,
    sector: int | str | None = None,
    category: int | None = None,
    municipality: int | None = None,
    scope: Scope = REGION,
    as_of: dt.datetime | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    until: dt.date | None = None,
    channel: str | None = None,
    organisation: int | None = None,
) -> pd.DataFrame:
    """One row per period up to the one holding ``until`` (default: the data date), values as known at
    the data date ``as_of``: ``period_start``, ``period_end``, ``partial`` (not complete: the data date
    inside it), ``settled`` (30 days past its end, ``metrics.periods.is_settled``), ``value``, ``base``,
    ``low``, ``target``, ``year_ago``, ``meets_target`` (NA without a target, and for an answer-based
    indicator of an unsettled period: missing answers must not read as a target met)."""
    if con is None:
        with reader() as c:
            return kpi_series(indicator, grain, months, sector, category, municipality, scope, as_of, c, until,
                              channel, organisation)
    spec, as_of = _check(con, indicator, grain, months, as_of)
    sector_id = _sector_id(con, sector)
    if category is not None and sector_id is None:
        rows = con.execute("SELECT sector_id FROM category WHERE id = $c", {"c": int(category)}).fetchall()
        sector_id = int(rows[0][0]) if rows else None
    filters = {"sector": sector, "category": category, "municipality": municipality,
               "channel": None if channel is None else [channel],  # the meeting pack of a page with a channel
               "organisation": organisation}  # the drill-down's organisation
    frame = _frame(con, spec, grain, months, [], filters, scope, as_of, until)
    targets = _targets(con, spec.code, None if category is None else int(category),
                       None if municipality is None else int(municipality))
    frame["target"] = _target_values(targets, frame["period_start"], sector_id)
    frame["meets_target"] = _meets(frame, spec)
    return frame[list(SERIES_COLUMNS)].reset_index(drop=True)


def kpi_small_multiples(
    indicator: str,
    months: int = 24,
    scope: Scope = REGION,
    grain: Grain = "month",
    municipality: int | None = None,
    as_of: dt.datetime | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """``kpi_series`` for every sector of the scope, long: ``sector_id``, ``sector_code``,
    ``sector_name`` and the series columns; each sector has its own target (else region-wide)."""
    if con is None:
        with reader() as c:
            return kpi_small_multiples(indicator, months, scope, grain, municipality, as_of, c, until)
    spec, as_of = _check(con, indicator, grain, months, as_of)
    sectors = reference(con, "sector")
    allowed = effective(scope).sector_ids
    if allowed is not None:
        sectors = sectors[sectors["sector_id"].isin(allowed)]
    sectors = sectors.assign(sector_id=sectors["sector_id"].astype("int64")).sort_values("sector_id")
    if sectors.empty:
        return pd.DataFrame(columns=["sector_id", "sector_code", "sector_name", *SERIES_COLUMNS])
    frame = _frame(con, spec, grain, months, sectors["sector_id"].tolist(),
                   {"municipality": municipality}, scope, as_of, until)
    targets = _targets(con, spec.code, None, None if municipality is None else int(municipality))
    target = np.full(len(frame), np.nan)
    for sector_id, rows in frame.groupby("sector_id").indices.items():
        target[rows] = _target_values(targets, frame["period_start"].iloc[rows], int(sector_id))
    frame["target"] = target
    frame["meets_target"] = _meets(frame, spec)
    frame = frame.merge(sectors[["sector_id", "sector_code", "sector_name"]], on="sector_id", how="left")
    return frame[["sector_id", "sector_code", "sector_name", *SERIES_COLUMNS]].reset_index(drop=True)


# --- the series -----------------------------------------------------------------------------


def _check(
    con: duckdb.DuckDBPyConnection, indicator: str, grain: str, months: int, as_of: dt.datetime | None
) -> tuple[ind.Indicator, dt.datetime]:
    spec = ind.get(indicator)
    if grain not in GRAINS:
        raise QueryError(f"неизвестная детализация: {grain!r} (допустимы: месяц — month, неделя — week)")
    if not 1 <= int(months) <= MAX_MONTHS:
        raise QueryError(f"число месяцев должно быть от 1 до {MAX_MONTHS}, получено {months}")
    return spec, as_of or data_as_of(con)


def _sector_id(con: duckdb.DuckDBPyConnection, sector: int | str | None) -> int | None:
    if sector is None:
        return None
    if isinstance(sector, str) and not sector.isdigit():
        ref = reference(con, "sector")
        match = ref.loc[ref["sector_code"] == sector, "sector_id"]
        if match.empty:
            raise QueryError(f"неизвестное направление: {sector!r}")
        return int(match.iloc[0])
    return int(sector)


def _starts(grain: str, months: int, last_day: dt.date) -> tuple[list[dt.date], int]:
    """Period starts from a year before the shown span to the period holding ``last_day``; how many
    are shown.

    Weeks start on the Monday of the week holding the span's first day, so the first week is whole.
    """
    last_month = month_start(last_day)
    first = add_months(last_month, -(months - 1))
    if grain == "month":
        shown = [add_months(first, i) for i in range(months)]
        before = [add_months(first, i - 12) for i in range(12)]
        return before + shown, len(shown)
    monday = first - dt.timedelta(days=first.weekday())
    shown = []
    day = monday
    while day <= last_day:
        shown.append(day)
        day += dt.timedelta(days=7)
    before = [monday - dt.timedelta(weeks=52 - i) for i in range(52)]
    return before + shown, len(shown)


def _frame(
    con: duckdb.DuckDBPyConnection,
    spec: ind.Indicator,
    grain: str,
    months: int,
    sector_ids: list[int],
    filters: dict[str, object],
    scope: Scope,
    as_of: dt.datetime,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Value, base and low on the full grid (sector ×) period, plus ``year_ago``; shown periods only."""
    starts, shown = _starts(grain, months, min(until, as_of.date()) if until else as_of.date())
    step = dt.timedelta(weeks=1) if grain == "week" else None
    end = starts[-1] + step if step else add_months(starts[-1], 1)
    span = Period(starts[0], end, "range", f"{starts[0]:%Y-%m-%d}..{end - dt.timedelta(days=1):%Y-%m-%d}")
    # growth is the change to the previous period of the series itself: computed from volume here,
    # since query_on compares a whole range with the range before it
    code = "volume" if spec.kind == "growth" else spec.code
    by = [grain, "sector"] if sector_ids else [grain]
    clean = {k: v for k, v in filters.items() if v is not None}
    raw = query_on(con, [code], by, span, clean, scope, as_of=as_of)

    raw = raw.rename(columns={grain: "period_start", code: "value", f"{code}_base": "base", f"{code}_low": "low"})
    raw["period_start"] = pd.to_datetime(raw["period_start"]).astype("datetime64[us]")
    keys = ["sector_id", "period_start"] if sector_ids else ["period_start"]
    if sector_ids:
        raw["sector_id"] = raw["sector_id"].astype("int64")
        grid = pd.MultiIndex.from_product([sector_ids, pd.DatetimeIndex(starts).astype("datetime64[us]")],
                                          names=keys)
    else:
        grid = pd.Index(pd.DatetimeIndex(starts).astype("datetime64[us]"), name="period_start")
    df = raw.set_index(keys)[["value", "base"]].reindex(grid).reset_index()
    # A period without appeals: counts are 0, shares and medians have no value. Before the
    # warehouse's first month there is no data at all, which is not the same as zero appeals.
    if grain == "week":
        period_end = df["period_start"] + pd.Timedelta(weeks=1)
    else:
        # the first day of the next month (add_months(start, 1)), for the whole column at once
        following = df["period_start"].to_numpy().astype("datetime64[M]") + 1
        period_end = pd.Series(following.astype("datetime64[us]"), index=df.index)
    covered = period_end > pd.Timestamp(_data_start(con) or end)
    # a unit outside the scope has no value («—»), never a count of 0
    covered &= _in_scope(con, clean, scope)
    df["base"] = df["base"].fillna(0).astype("float64").where(covered)
    if spec.kind in ("count", "open", "rate"):
        df["value"] = df["value"].fillna(0.0)
    df["value"] = df["value"].astype("float64").where(covered)

    grouped = df.groupby("sector_id", sort=False) if sector_ids else None
    if spec.kind == "growth":
        prev = grouped["value"].shift(1) if grouped is not None else df["value"].shift(1)
        df["value"] = (df["value"] - prev) / prev.where(prev > 0)
        df["base"] = prev
        grouped = df.groupby("sector_id", sort=False) if sector_ids else None
    df["low"] = ~(df["base"] >= spec.min_volume)  # no data is «мало данных» too
    lag = YEAR_AGO_STEPS[grain]
    df["year_ago"] = grouped["value"].shift(lag) if grouped is not None else df["value"].shift(lag)

    df["period_end"] = period_end
    # where each period stands against the data date (metrics.periods): an incomplete one is still
    # receiving appeals, an unsettled one still receiving answers
    pairs = list(zip(df["period_start"], df["period_end"], strict=True))
    standing = {(a, b): (not is_complete(period, as_of), is_settled(period, as_of))  # once per period, not per row
                for a, b in set(pairs) for period in [Period(a.date(), b.date(), grain, "")]}
    df["partial"] = [standing[k][0] for k in pairs]
    df["settled"] = [standing[k][1] for k in pairs]
    position = df.groupby("sector_id", sort=False).cumcount() if sector_ids else pd.Series(range(len(df)))
    return df[position.to_numpy() >= len(starts) - shown].reset_index(drop=True)


def _in_scope(con: duckdb.DuckDBPyConnection, filters: dict[str, object], scope: Scope) -> bool:
    """Whether the scope (narrowed to the request's) may see the municipality, sector or category asked for."""
    seen = effective(scope)
    if seen.municipality_ids is not None:
        wanted = filters.get("municipality")
        if not seen.municipality_ids or (wanted is not None and not seen.allows_municipality(int(wanted))):
            return False
    if seen.sector_ids is not None:
        sector = _sector_id(con, filters.get("sector"))  # type: ignore[arg-type]
        if sector is None and filters.get("category") is not None:
            rows = con.execute("SELECT sector_id FROM category WHERE id = $c", {"c": int(filters["category"])}).fetchall()
            sector = int(rows[0][0]) if rows else None
        if not seen.sector_ids or (sector is not None and not seen.allows_sector(sector)):
            return False
    return True


_first_month: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _data_start(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The first month with appeals (from the monthly rollup: a few thousand rows, not the facts).
    A served read-only connection sees one file for life: asked once per connection."""
    if con in _first_month:
        return _first_month[con]
    first = con.execute("SELECT min(month) FROM appeal_monthly").fetchall()[0][0]
    if is_served(con):
        _first_month[con] = first
    return first


# --- targets --------------------------------------------------------------------------------


def _targets(
    con: duckdb.DuckDBPyConnection, indicator: str, category_id: int | None, municipality_id: int | None
) -> pd.DataFrame:
    """Every channel-free target row of the indicator that may apply (any sector: chosen later)."""
    df = con.execute(
        """SELECT sector_id, category_id, municipality_id, period_start, value FROM target
           WHERE indicator = $indicator AND channel IS NULL
             AND (category_id IS NULL OR category_id = $category)
             AND (municipality_id IS NULL OR municipality_id = $municipality)""",
        {"indicator": indicator, "category": category_id, "municipality": municipality_id},
    ).df()
    df["period_start"] = pd.to_datetime(df["period_start"]).astype("datetime64[us]")
    return df


def _target_values(targets: pd.DataFrame, starts: pd.Series, sector_id: int | None) -> np.ndarray:
    """The target in force at each start: the most specific level that has one, its latest row."""
    result = np.full(len(starts), np.nan)
    if targets.empty:
        return result
    sectors = targets["sector_id"].to_numpy(dtype="float64", na_value=np.nan)
    keep = np.isnan(sectors) | (sectors == sector_id) if sector_id is not None else np.isnan(sectors)
    if not keep.any():
        return result
    known = targets[list(TARGET_LEVELS)].notna().to_numpy()[keep]
    # lexicographic: category, municipality, sector; region-wide rows score 0
    level = known[:, 0] * 4 + known[:, 1] * 2 + known[:, 2]
    at = pd.to_datetime(starts).to_numpy().astype("datetime64[us]")
    since = targets["period_start"].to_numpy().astype("datetime64[us]")[keep]
    value = targets["value"].to_numpy(dtype="float64", na_value=np.nan)[keep]
    for lvl in sorted(set(level.tolist()), reverse=True):
        order = np.flatnonzero(level == lvl)
        order = order[np.argsort(since[order], kind="stable")]
        # the row in force: the last one starting on or before the period (of equal starts, the last)
        found = np.searchsorted(since[order], at, side="right") - 1
        values = np.where(found >= 0, value[order][np.maximum(found, 0)], np.nan)
        fill = np.isnan(result) & ~np.isnan(values)
        result[fill] = values[fill]
    return result


def _meets(frame: pd.DataFrame, spec: ind.Indicator) -> pd.Series:
    """True / False against the target in the good direction; NA without a target, value or direction,
    and for an answer-based indicator while its period is not settled."""
    out = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    if spec.higher_is_better is None:
        return out
    known = frame["value"].notna() & frame["target"].notna()
    if spec.answer_based:
        known &= frame["settled"]
    ok = frame["value"] >= frame["target"] if spec.higher_is_better else frame["value"] <= frame["target"]
    out[known] = ok[known]
    return out


def current_target(
    indicator: str,
    on: dt.date | None = None,
    channel: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> float | None:
    """The region-wide target of an indicator in force on a day (default: the data date), or None.

    ``channel`` asks for a channel's own target instead («8 рабочих часов в соцсетях» is the
    target of the channel ``im``, not of all appeals); the series above never use those.
    """
    spec = ind.get(indicator)
    if con is None:
        with reader() as c:
            return current_target(indicator, on, channel, c)
    on = on or data_as_of(con).date()
    rows = con.execute(
        """SELECT value FROM target
           WHERE indicator = $indicator AND channel IS NOT DISTINCT FROM $channel
             AND sector_id IS NULL AND category_id IS NULL AND municipality_id IS NULL
             AND period_start <= $on
           ORDER BY period_start DESC LIMIT 1""",
        {"indicator": spec.code, "channel": channel, "on": on},
    ).fetchall()
    return float(rows[0][0]) if rows else None
