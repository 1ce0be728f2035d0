"""Priority problems: which categories of appeals deserve attention first (DESIGN §4).

The priority score of a category within a list (a sector's categories, or all of a
municipality's) is, in points:

    score = 100 · share · (1 + WEIGHTS["growth"] · growth_damped)
                        · (1 + WEIGHTS["dissatisfaction"] · dissatisfaction)

- ``share`` = volume / volume of the whole list (the sector; for ``municipality_problems`` the
  municipality, since sectors differ tenfold in size and a share of a small sector would outrank
  a large problem of a big one). Appeals without a category count in the denominator.
- ``growth_damped`` = (volume − volume_prev) / (volume_prev + ``GROWTH_PSEUDO_COUNT``), clipped to
  [−1, 1]; ``volume_prev`` is the previous comparable period (``Period.previous``). The pseudo
  count keeps 1 → 3 from looking like +200 % (it gives +0.18, while 100 → 150 gives +0.45).
- ``dissatisfaction`` = 1 − satisfaction_share, shrunk towards the list's own level by
  ``SATISFACTION_PRIOR_RATINGS`` virtual ratings: (unsatisfied + k · d_list) / (rated + k), so two
  bad ratings do not make a priority; 0 when nobody in the list rated anything (imported data
  without ratings: the factor is then 1 for all and does not change the order).

So the score is the share in per cent, raised by up to half for fast growth (lowered by up to
half for a fall) and by up to half for dissatisfaction. The product, not a sum, is deliberate:
growth and dissatisfaction reorder problems of comparable size, but a small category cannot
climb over a large one by growth alone (snow in the first cold week: 6 → 34 appeals among
4 000); sudden local surges are what ``metrics.signals`` is for.

A child of «Прочие по направлению» counts under its parent when the list is ranked, so «Прочие»
competes as a whole; its ``volume_prev`` includes every child that had appeals in the previous period,
also a child with none in this one. When it lands among the top N it is replaced by its children with data, each
with its own numbers (``decomposed_from`` names the parent), or, when the data put appeals straight
on «Прочие» (imported data), by the ``TOPICS_SHOWN`` most frequent ``topic`` values of those appeals
(``is_topic``; ``category_id`` stays the parent's; appeals without a topic are not listed). Without
children and topics «Прочие» stays itself. The rows of a list are then ordered by their own score
and ranked 1, 2, … — so a list has at least N rows (fewer only when fewer categories have data).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from metrics.periods import Period, month, parse_period
from metrics.query import QueryError, _where, data_as_of, query_periods, reference
from metrics.scope import REGION, Scope, effective
from metrics.source import reader

WEIGHTS: dict[str, float] = {"growth": 0.5, "dissatisfaction": 0.5}
GROWTH_PSEUDO_COUNT = 10.0
SATISFACTION_PRIOR_RATINGS = 20.0
TOPICS_SHOWN = 5

COLUMNS = ["sector_id", "sector_code", "sector_name", "rank", "category_id", "category_name", "volume",
           "volume_prev", "growth", "satisfaction_share", "score", "share", "growth_damped", "dissatisfaction",
           "decomposed_from", "is_topic"]
_NUMBERS = ["volume", "volume_prev", "n_rated", "n_satisfied"]


def priority_score(
    volume: pd.Series,
    volume_prev: pd.Series,
    list_volume: float | pd.Series,
    n_rated: pd.Series,
    n_satisfied: pd.Series,
    list_dissatisfaction: float | pd.Series,
) -> pd.DataFrame:
    """The score and its three terms (columns share, growth_damped, dissatisfaction, score).

    ``list_dissatisfaction`` is the dissatisfaction of the whole list (NaN: nobody rated).
    """
    n = len(volume)
    terms = _terms(volume.to_numpy(dtype="float64"), np.nan_to_num(volume_prev.to_numpy(dtype="float64")),
                   np.broadcast_to(np.asarray(list_volume, dtype="float64"), n),
                   np.nan_to_num(n_rated.to_numpy(dtype="float64")), np.nan_to_num(n_satisfied.to_numpy(dtype="float64")),
                   np.broadcast_to(np.asarray(list_dissatisfaction, dtype="float64"), n))
    return pd.DataFrame(terms, index=volume.index)


def _terms(volume: np.ndarray, prev: np.ndarray, list_volume: np.ndarray, rated: np.ndarray,
           satisfied: np.ndarray, prior: np.ndarray) -> dict[str, np.ndarray]:
    """``priority_score`` on arrays (missing counts given as 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = volume / np.where(list_volume > 0, list_volume, np.nan)
        growth = np.clip((volume - prev) / (prev + GROWTH_PSEUDO_COUNT), -1, 1)
        k = SATISFACTION_PRIOR_RATINGS
        dissatisfaction = np.where(np.isnan(prior), 0.0, (rated - satisfied + k * prior) / (rated + k))
    score = (100 * np.nan_to_num(share) * (1 + WEIGHTS["growth"] * growth)
             * (1 + WEIGHTS["dissatisfaction"] * dissatisfaction))
    return {"share": share, "growth_damped": growth, "dissatisfaction": dissatisfaction, "score": score}


def priority_problems(
    period: Period | str | None,
    scope: Scope = REGION,
    per_sector: int = 3,
    municipality: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """The top ``per_sector`` problems of every sector with data (columns ``COLUMNS``).

    Fewer rows only where a sector has fewer categories with data; more where «Прочие» was
    decomposed. ``municipality`` narrows to one municipality (which must be in the scope).
    """
    if con is None:
        with reader() as own:
            return priority_problems(period, scope, per_sector, municipality, own)
    return _problems(con, period, scope, municipality, per_list=per_sector, by_sector=True)


def municipality_problems(
    period: Period | str | None,
    municipality_id: int,
    scope: Scope = REGION,
    top: int = 10,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """One municipality's problems across sectors, ranked by the same score (columns ``COLUMNS``).

    Refuses (``QueryError``) a municipality outside the scope.
    """
    if con is None:
        with reader() as own:
            return municipality_problems(period, municipality_id, scope, top, own)
    return _problems(con, period, scope, int(municipality_id), per_list=top, by_sector=False)


# --- the computation ------------------------------------------------------------------------


def _problems(
    con: duckdb.DuckDBPyConnection,
    period: Period | str | None,
    scope: Scope,
    municipality: int | None,
    per_list: int,
    by_sector: bool,
) -> pd.DataFrame:
    if per_list < 1:
        raise QueryError("число проблем должно быть не меньше 1")
    period = _period(con, period)
    filters: dict[str, list] = {}
    if municipality is not None:
        _check_municipality(con, municipality, scope)
        filters["municipality"] = [municipality]
    raw = _both_periods(con, period, filters, scope)
    if not (raw["volume"] > 0).any():
        return pd.DataFrame(columns=COLUMNS)
    cats = _numbers(raw)
    group = "sector_id" if by_sector else "_list"
    cats["_list"] = 0
    lists = cats[group].to_numpy(dtype="int64")
    numbers = {c: cats[c].to_numpy(dtype="float64") for c in _NUMBERS}
    # list totals: every appeal of the list, with or without a category
    list_keys, list_at = np.unique(lists, return_inverse=True)
    total = {c: np.bincount(list_at, weights=numbers[c], minlength=len(list_keys)) for c in _NUMBERS}
    with np.errstate(invalid="ignore", divide="ignore"):
        list_dissatisfaction = np.where(total["n_rated"] > 0, 1 - total["n_satisfied"] / total["n_rated"], np.nan)
    totals = pd.DataFrame({"volume": total["volume"], "dissatisfaction": list_dissatisfaction},
                          index=pd.Index(list_keys, name=group))

    category = cats["category_id"].to_numpy(dtype="float64")
    parent = cats["category_parent_id"].to_numpy(dtype="float64")
    # a child with appeals only in the previous period still adds them to its parent's volume_prev
    kept = ~np.isnan(category)
    if not kept.any():
        return pd.DataFrame(columns=COLUMNS)
    cats = cats[kept & (numbers["volume"] > 0)].copy()
    cats["category_id"] = cats["category_id"].astype("int64")

    # «Прочие» competes as a whole: children are counted under their parent
    rolled_id = np.where(np.isnan(parent), category, parent)[kept].astype("int64")
    pair = list_at[kept] * (int(rolled_id.max()) + 1) + rolled_id
    pairs, at = np.unique(pair, return_inverse=True)
    rolled = pd.DataFrame({
        group: list_keys[pairs // (int(rolled_id.max()) + 1)],
        "category_id": pairs % (int(rolled_id.max()) + 1),
        **{c: np.bincount(at, weights=numbers[c][kept], minlength=len(pairs)).astype("int64") for c in _NUMBERS},
    })
    rolled = _scored(rolled[rolled["volume"] > 0].reset_index(drop=True), totals, group)
    chosen = _top(rolled, group, per_list)

    labels = reference(con, "category").set_index("category_id")
    chosen["category_name"] = chosen["category_id"].map(labels["category_name"])
    is_other = chosen["category_id"].map(labels["category_is_other"]).fillna(False).astype(bool)
    chosen["decomposed_from"] = None
    chosen["is_topic"] = False

    parts = [chosen[~is_other]]
    others = chosen[is_other]
    if not others.empty:
        children = cats[cats["category_parent_id"].notna()].copy()
        children["parent"] = children["category_parent_id"].astype("int64")
        wanted = others[[group, "category_id"]].rename(columns={"category_id": "parent"})
        children = children.merge(wanted, on=[group, "parent"])[[group, "category_id", "parent", *_NUMBERS]]
        if not children.empty:
            children = _scored(children, totals, group)
            children["category_name"] = children["category_id"].map(labels["category_name"])
            children["decomposed_from"] = children["parent"].map(labels["category_name"])
            children["is_topic"] = False
            parts.append(children.drop(columns="parent"))
        split = set(zip(children[group], children["parent"], strict=True))
        bare = others[[(g, c) not in split for g, c in zip(others[group], others["category_id"], strict=True)]]
        if not bare.empty:
            topics = _topics(con, period, scope, filters, bare, group)
            if not topics.empty:
                topics = _scored(topics, totals, group)
                topics["category_name"] = topics["topic"]
                topics["decomposed_from"] = topics["category_id"].map(labels["category_name"])
                topics["is_topic"] = True
                parts.append(topics.drop(columns="topic"))
                split = set(zip(topics[group], topics["category_id"], strict=True))
                bare = bare[[(g, c) not in split for g, c in zip(bare[group], bare["category_id"], strict=True)]]
            # without children and without topics «Прочие» stays as it is
            parts.append(bare)

    out = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    return _finish(con, out, group)


def _both_periods(con: duckdb.DuckDBPyConnection, period: Period, filters: dict[str, list],
                  scope: Scope) -> pd.DataFrame:
    """Volume and satisfaction per sector × category with ``volume_prev`` of the previous period, in
    one statement. Unlike the ``growth`` pivot of ``query_on`` (rows of the current period only) it
    keeps categories that had appeals only in the previous period (``volume`` 0), so a «Прочие»
    parent's ``volume_prev`` counts every child that had appeals then (DESIGN §4)."""
    keys = ["sector_id", "category_id", "category_parent_id"]
    both = query_periods(con, ["volume", "satisfaction_share"], ["sector", "category"], [period, period.previous()],
                         filters, scope)
    now = both[both["period_index"] == 0].drop(columns="period_index")
    before = both.loc[both["period_index"] == 1, [*keys, "volume"]].rename(columns={"volume": "volume_prev"})
    # NaN keys (appeals without a category) match each other in a pandas merge
    out = now.merge(before, on=keys, how="outer")
    out["volume"] = out["volume"].fillna(0)
    return out


def _period(con: duckdb.DuckDBPyConnection, period: Period | str | None) -> Period:
    if isinstance(period, Period):
        return period
    as_of = data_as_of(con).date()
    if period is None:
        return month(as_of)
    return parse_period(period, as_of)


def _check_municipality(con: duckdb.DuckDBPyConnection, municipality: int, scope: Scope) -> None:
    known = reference(con, "municipality")
    if municipality not in set(known["municipality_id"]):
        raise QueryError(f"нет муниципального образования с кодом {municipality}")
    scope = effective(scope)
    if not scope.allows_municipality(municipality):
        raise QueryError(f"муниципальное образование {municipality} вне доступной области ({scope.label})")


def _numbers(raw: pd.DataFrame) -> pd.DataFrame:
    """Additive numbers per sector × category from the query: counts, ratings, satisfied ratings."""
    rated = raw["satisfaction_share_base"].astype("float64").fillna(0)
    return pd.DataFrame({
        "sector_id": raw["sector_id"].astype("int64"),
        "category_id": raw["category_id"],
        "category_parent_id": raw["category_parent_id"],
        "volume": raw["volume"].astype("int64"),
        "volume_prev": raw["volume_prev"].fillna(0).astype("int64"),
        "n_rated": rated.round().astype("int64"),
        # the query gives the share and its base; the count is their product
        "n_satisfied": (raw["satisfaction_share"].fillna(0) * rated).round().astype("int64"),
    })


def _scored(df: pd.DataFrame, totals: pd.DataFrame, group: str) -> pd.DataFrame:
    at = totals.index.get_indexer(df[group])
    volume, prev = df["volume"].to_numpy(dtype="float64"), df["volume_prev"].to_numpy(dtype="float64")
    rated, satisfied = df["n_rated"].to_numpy(dtype="float64"), df["n_satisfied"].to_numpy(dtype="float64")
    terms = _terms(volume, prev, totals["volume"].to_numpy()[at], rated, satisfied,
                   totals["dissatisfaction"].to_numpy()[at])
    with np.errstate(invalid="ignore", divide="ignore"):
        terms["growth"] = (volume - prev) / np.where(prev > 0, prev, np.nan)
        terms["satisfaction_share"] = satisfied / np.where(rated > 0, rated, np.nan)
    return pd.concat([df.reset_index(drop=True), pd.DataFrame(terms)], axis=1)


def _top(df: pd.DataFrame, group: str, n: int) -> pd.DataFrame:
    ordered = _ordered(df, group, "category_id")
    return ordered.groupby(group, sort=False).head(n).reset_index(drop=True)


def _ordered(df: pd.DataFrame, group: str, tie: str) -> pd.DataFrame:
    # ties: more appeals first, then a stable key, so that the order never depends on the engine
    return df.sort_values([group, "score", "volume", tie], ascending=[True, False, False, True], kind="stable")


def _topics(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    scope: Scope,
    filters: dict[str, list],
    bare: pd.DataFrame,
    group: str,
) -> pd.DataFrame:
    """The most frequent topics of appeals put straight on «Прочие» (facts, through the scope)."""
    previous = period.previous()
    both = Period(previous.start, period.end, "range", f"{previous.code}+{period.code}")
    parents = sorted({int(c) for c in bare["category_id"]})
    where, params = _where({**filters, "category": parents}, scope, both, rollup=False)
    params["cur_start"] = period.start
    sql = f"""
        SELECT category_id, topic,
               count(*) FILTER (WHERE received_at >= $cur_start) AS volume,
               count(*) FILTER (WHERE received_at < $cur_start) AS volume_prev,
               count(*) FILTER (WHERE received_at >= $cur_start AND satisfaction IS NOT NULL) AS n_rated,
               count(*) FILTER (WHERE received_at >= $cur_start AND satisfaction >= 4) AS n_satisfied
        FROM appeal WHERE topic IS NOT NULL AND trim(topic) <> '' AND {where}
        GROUP BY ALL"""  # noqa: S608 - the clause of metrics.query._where, values bound
    df = con.execute(sql, params).df()
    df = df[df["volume"] > 0].copy()
    if df.empty:
        return df
    for col in _NUMBERS:
        df[col] = df[col].astype("int64")
    # the list a topic belongs to: its parent's sector, or the single municipal list
    df[group] = df["category_id"].map(_category_sector(con)) if group == "sector_id" else 0
    df = df.sort_values(["category_id", "volume", "topic"], ascending=[True, False, True], kind="stable")
    return df.groupby("category_id", sort=False).head(TOPICS_SHOWN).reset_index(drop=True)


def _category_sector(con: duckdb.DuckDBPyConnection) -> pd.Series:
    rows = con.execute("SELECT id, sector_id FROM category").fetchall()
    return pd.Series({cid: int(sid) for cid, sid in rows}, dtype="int64")


def _finish(con: duckdb.DuckDBPyConnection, out: pd.DataFrame, group: str) -> pd.DataFrame:
    out = _ordered(out, group, "category_name")
    if group == "sector_id":
        out["rank"] = out.groupby("sector_id").cumcount() + 1
    else:
        out["sector_id"] = out["category_id"].map(_category_sector(con))
        out = out.sort_values(["score", "volume", "category_name"], ascending=[False, False, True], kind="stable")
        out["rank"] = np.arange(1, len(out) + 1)
    sectors = reference(con, "sector")
    out = out.drop(columns=[c for c in ("sector_code", "sector_name") if c in out]).merge(
        sectors, on="sector_id", how="left")
    out["is_topic"] = out["is_topic"].astype(bool)
    for col in ("volume", "volume_prev", "rank", "sector_id", "category_id"):
        out[col] = out[col].astype("int64")
    if group == "sector_id":
        out = out.sort_values(["sector_id", "rank"], kind="stable")
    return out[COLUMNS].reset_index(drop=True)

