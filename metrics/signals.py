"""Signals: a municipality × category whose weekly count jumped well above its own recent baseline.

Method (DESIGN §4), on the weekly rollup ``appeal_weekly`` read through the caller's scope:

- only whole weeks count: the week holding the data date is left out unless the data reach its
  end (``WEEK_END_SLACK`` before Monday 00:00), since a partial week looks like a drop;
- a week *x* is compared with the ``weeks`` weeks before it (weeks without appeals count as 0):
  robust z = (x − median) / scale, scale = max(1.4826 · MAD, √median, 1). The MAD alone is 0 for
  a steady small count, and counts of appeals are Poisson-like, so their noise is at least
  √median: with the floor 1 → 4 is no alarm, while 2–3 a week → 15 is;
- a run of signalling weeks starts with z ≥ ``z_threshold`` and keeps the baseline of the weeks
  before its start (a surge must not become its own baseline); it goes on while each later week
  keeps z ≥ ``z_continue`` against that baseline (hysteresis: a surge easing from 19 to 12 a
  week against a usual 4 is still one event, not a gap). Every week of a run has at least
  ``min_count`` appeals;
- a signal is a run that reaches the latest whole week: ``first_week``, ``weeks_running``, and the
  latest week's ``count``, ``baseline`` (median before the run), ``z`` and ``ratio``. Runs are
  looked for over the last ``weeks`` weeks, so ``weeks_running`` is at most ``weeks``.
- ``same_category_signals``: how many municipalities (in scope) signal in the same category; many
  at once point to a region-wide or seasonal rise (the start of the heating season) rather than
  a local incident.

Three small SQL reads (weekly counts, the first week of data, category sectors) plus cached labels;
the rest is numpy over a groups × weeks matrix, no loop over groups: keys ranked through a table of
the (small) ids, medians by an integer sort, and the z of later weeks only for the few run starts
(at 100 M appeals ~45 ms CPU instead of ~110).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from data.engine import is_clickhouse
from metrics.periods import Period
from metrics.query import _where, data_as_of, reads_rollups, reference
from metrics.scope import REGION, Scope
from metrics.source import reader

MAD_TO_SD = 1.4826  # MAD × this estimates the standard deviation of a normal distribution
# An export taken late on Sunday still counts its week as whole.
WEEK_END_SLACK = dt.timedelta(hours=1)
# municipality × category key tables up to this size are indexed directly (ids are small numbers)
_DENSE_KEYS = 1 << 24

COLUMNS = ["municipality_id", "municipality_name", "sector_code", "category_id", "category_name", "week",
           "count", "baseline", "z", "ratio", "first_week", "weeks_running", "same_category_signals"]


def last_whole_week(as_of: dt.datetime) -> dt.date:
    """Monday of the latest week the data cover completely on ``as_of``."""
    monday = as_of.date() - dt.timedelta(days=as_of.weekday())
    week_end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time())
    return monday if as_of >= week_end - WEEK_END_SLACK else monday - dt.timedelta(days=7)


def detect_signals(
    as_of: dt.datetime | dt.date | None = None,
    weeks: int = 12,
    scope: Scope = REGION,
    min_count: int = 8,
    z_threshold: float = 3.5,
    con: duckdb.DuckDBPyConnection | None = None,
    z_continue: float = 2.0,
) -> pd.DataFrame:
    """Current signals, strongest (highest z) first; columns ``COLUMNS``.

    ``as_of`` is the data date (default: the warehouse's own); a date means up to the end of
    that day. Only weeks before it are read, so a past date replays what the wall showed then.
    """
    if weeks < 3:
        raise ValueError("для базы сравнения нужно не меньше 3 недель")
    z_continue = min(z_continue, z_threshold)
    if con is None:
        with reader() as own:
            return detect_signals(as_of, weeks, scope, min_count, z_threshold, own, z_continue)
    if as_of is None:
        as_of = data_as_of(con)
    elif not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    latest = last_whole_week(as_of)
    # runs start in the last ``weeks`` weeks, each start needing ``weeks`` weeks of baseline before it
    span = 2 * weeks
    first = latest - dt.timedelta(weeks=span - 1)
    counts, data_start = _weekly_counts(con, first, latest + dt.timedelta(days=7), scope)
    if counts.empty:
        return pd.DataFrame(columns=COLUMNS)

    all_weeks = pd.date_range(first, latest, freq="7D").date
    x, group_keys = _weekly_matrix(counts, first, len(all_weeks))
    # a run lasts until the latest week, which must then have enough appeals: only those groups can fire
    live = np.flatnonzero(x[:, -1] >= min_count)
    x, group_keys = x[live], group_keys[live]

    # Candidate run starts j = the last ``weeks`` weeks; the baseline of j is the ``weeks`` weeks before it.
    # counts below 2**29 sort as int32 (twice faster than int64), doubled deviations included
    small = x.astype("int32") if x.size == 0 or x.max() < 2**29 else x
    windows = np.lib.stride_tricks.sliding_window_view(small, weeks, axis=1)[:, :weeks, :]  # groups × j × window
    median, mad = _median_mad(windows)  # groups × j
    scale = np.maximum(np.maximum(MAD_TO_SD * mad, np.sqrt(median)), 1.0)
    recent = x[:, weeks:].astype("float64")  # groups × k (the same weeks as j)
    enough = recent >= min_count
    # weeks before the data begin are not zeros but unknown: a start needs a whole baseline of data
    known = (all_weeks[:weeks] >= data_start)[None, :]
    # a start: week j against its own baseline (z of week k against the baseline frozen before start j
    # is (recent[k] − median[j]) / scale[j]; only the few starts need it for their later weeks)
    starts = ((recent - median) / scale >= z_threshold) & enough & known  # groups × j
    g, j = np.nonzero(starts)
    z_run = (recent[g] - median[g, j, None]) / scale[g, j, None]  # starts × k
    later = np.arange(weeks)[None, :] >= j[:, None]  # k ≥ j
    holds = (((z_run >= z_continue) & enough[g]) | ~later).all(axis=1)  # the run lasts until the latest week
    valid = np.zeros_like(starts)
    valid[g[holds], j[holds]] = True
    hit = valid.any(axis=1)
    if not hit.any():
        return pd.DataFrame(columns=COLUMNS)
    rows = np.flatnonzero(hit)
    start = np.argmax(valid[rows], axis=1)  # the earliest start: the whole run

    keys = group_keys[rows].to_frame(index=False)
    out = keys.assign(
        week=latest,
        count=recent[rows, -1].astype("int64"),
        baseline=median[rows, start],
        z=(recent[rows, -1] - median[rows, start]) / scale[rows, start],
        first_week=(np.datetime64(latest, "D") - 7 * (weeks - 1 - start)).astype(object),  # dt.date values
        weeks_running=(weeks - start).astype("int64"),
    )
    base = out["baseline"].where(out["baseline"] > 0)
    out["ratio"] = out["count"] / base
    out["same_category_signals"] = out.groupby("category_id")["municipality_id"].transform("size").astype("int64")
    out = _label(con, out)
    return out.sort_values(["z", "count"], ascending=False, kind="stable")[COLUMNS].reset_index(drop=True)


def _weekly_matrix(counts: pd.DataFrame, first: dt.date, n_weeks: int) -> tuple[np.ndarray, pd.MultiIndex]:
    """Groups × weeks matrix of counts (int64, oldest week first; weeks without appeals 0) and its
    (municipality_id, category_id) keys in ascending order; rows of one key and week are summed."""
    muni = counts["municipality_id"].to_numpy(dtype="int64")
    cat = counts["category_id"].to_numpy(dtype="int64")
    n = counts["n"].to_numpy(dtype="int64")
    days = (counts["week"].to_numpy(dtype="datetime64[D]") - np.datetime64(first, "D")).astype("int64")
    width = int(cat.max()) + 1
    if muni.min() >= 0 and cat.min() >= 0 and (int(muni.max()) + 1) * width <= _DENSE_KEYS:
        # ids are small sequence numbers: a key's rank comes from a presence table, no sort (np.unique
        # sorted the 300 000 rows of 100 M appeals in ~50 ms)
        code = muni * width + cat
        present = np.zeros((int(muni.max()) + 1) * width, dtype=bool)
        present[code] = True
        keys = np.flatnonzero(present)
        group_codes = (np.cumsum(present) - 1)[code]
    else:
        keys, group_codes = np.unique(muni * 2**32 + cat, return_inverse=True)
        width = 2**32
    group_keys = pd.MultiIndex.from_arrays([keys // width, keys % width], names=["municipality_id", "category_id"])
    week_codes = days // 7
    inside = (days % 7 == 0) & (week_codes >= 0) & (week_codes < n_weeks)
    cells = group_codes[inside] * n_weeks + week_codes[inside]
    # bincount sums in float64: exact for counts below 2**53
    x = np.bincount(cells, weights=n[inside], minlength=len(keys) * n_weeks).astype("int64")
    return x.reshape(len(keys), n_weeks), group_keys


def _median_mad(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and median absolute deviation over the last axis of integer counts, the values
    ``np.median`` gives. Integers sort several times faster than floats, and the axis is short (the
    baseline weeks), so a full sort beats median's partition over many small rows. The deviations
    from a median ending in .5 are doubled to stay integers (their order and median scale exactly);
    int32 counts must stay below 2**29 for that."""
    ordered = np.sort(windows, axis=-1)
    twice = _twice_median(ordered).astype(windows.dtype)  # 2 · median, an integer
    deviations = np.sort(np.abs(2 * windows - twice[..., None]), axis=-1)
    return twice / 2, _twice_median(deviations) / 4


def _twice_median(ordered: np.ndarray) -> np.ndarray:
    n = ordered.shape[-1]
    mid = ordered[..., n // 2].astype("int64")
    return 2 * mid if n % 2 else ordered[..., n // 2 - 1].astype("int64") + mid


def recent_signals(limit: int = 20, **kwargs: object) -> pd.DataFrame:
    """The ``limit`` strongest current signals (arguments as ``detect_signals``)."""
    return detect_signals(**kwargs).head(limit).reset_index(drop=True)  # type: ignore[arg-type]


def _weekly_counts(
    con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date, scope: Scope
) -> tuple[pd.DataFrame, dt.date]:
    """Weekly counts in [start, end) and the first week with any data in scope; a (week, municipality,
    category) may come in several rows (one per sector), to be summed."""
    # ``_where`` writes the period over the rollup's ``month`` column; the weekly rollup's ``week``
    # is given that name so the same clause (with the scope, which must never be forgotten) applies.
    source = "(SELECT week AS month, municipality_id, sector_id, category_id, n FROM appeal_weekly)"
    if not reads_rollups():
        source = ("(SELECT CAST(date_trunc('week', received_at) AS DATE) AS month, municipality_id, sector_id, "
                  "category_id, 1 AS n FROM appeal)")
    where, params = _where({}, scope, _range(start, end), rollup=True)
    # DuckDB's rollup rows are read as they are: hashing 300 000 keys that are already nearly unique
    # (the sector follows the category) cost ~30 ms at 100 M appeals, the sum in numpy ~1 ms
    grouped = not reads_rollups() or is_clickhouse(con)
    select = "month AS week, municipality_id, category_id, " + ("CAST(sum(n) AS INTEGER) AS n" if grouped else "n")
    sql = (
        f"SELECT {select} FROM {source} "  # noqa: S608 - see above
        f"WHERE category_id IS NOT NULL AND municipality_id IS NOT NULL AND {where}"
        + (" GROUP BY ALL" if grouped else "")
    )
    df = con.execute(sql, params).df()
    where, params = _where({}, scope, _range(dt.date(1900, 1, 1), end), rollup=True)
    first = con.execute(f"SELECT min(month) FROM {source} WHERE {where}", params).fetchall()[0][0]  # noqa: S608
    return df, first or start


def _range(start: dt.date, end: dt.date) -> Period:
    return Period(start, end, "range", f"{start:%Y-%m-%d}..{end - dt.timedelta(days=1):%Y-%m-%d}")


def _label(con: duckdb.DuckDBPyConnection, out: pd.DataFrame) -> pd.DataFrame:
    municipalities = reference(con, "municipality")[["municipality_id", "municipality_name"]]
    categories = reference(con, "category")[["category_id", "category_name"]]
    sector_of = reference(con, "category_sector")
    out = out.merge(municipalities, on="municipality_id", how="left")
    out = out.merge(categories, on="category_id", how="left")
    return out.merge(sector_of, on="category_id", how="left")
