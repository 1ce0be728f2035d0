"""Did a roadmap measure work? Difference-in-differences on weekly appeal counts.

For one measure (``roadmap_item``) in one municipality:

- outcome: appeals a week in the measure's categories (children of «Прочие» included; no categories
  = the whole sector), from the weekly rollup ``appeal_weekly`` through the caller's scope;
- window: up to ``WEEKS_BEFORE`` whole weeks before the start and up to ``WEEKS_AFTER`` whole weeks
  from the start (the week of the data date only when the data reach its end);
- comparison: municipalities of the same kind (городской / муниципальный округ) in the scope with
  no measure of their own in the same categories up to the window's end (all kinds when fewer than
  ``MIN_COMPARISON`` are left), and with at least one appeal in the window;
- model: Poisson regression of the weekly count on municipality and week fixed effects and
  ``treated × after`` (statsmodels GLM; heteroskedasticity-robust errors HC1). exp(β) − 1 is the
  relative change of the measure's municipality against the comparison over the same weeks: week
  effects absorb the season and anything region-wide, municipality effects the size. A
  multiplicative model is what «halved» means, and unlike log(1 + count) it is not biased on small
  counts.
- verdict: «эффект доказан» only when the 95 % interval excludes zero; «эффект не доказан» when it
  includes zero, and also when the data are too few to tell (fewer than ``MIN_WEEKS_AFTER`` weeks
  since the start, ``MIN_WEEKS_BEFORE`` before it, fewer than ``MIN_APPEALS_BEFORE`` appeals in the
  municipality before the start, no comparison municipalities, a region-wide measure, or a start
  after the data).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from data.schema import ROADMAP_STATUSES
from metrics import words
from metrics.periods import Period
from metrics.query import _where, data_as_of, reference
from metrics.scope import REGION, Scope
from metrics.signals import last_whole_week
from metrics.source import reader

WEEKS_BEFORE = 52
WEEKS_AFTER = 26
MIN_WEEKS_BEFORE = 8
MIN_WEEKS_AFTER = 4
MIN_APPEALS_BEFORE = 100  # ≈ 2 a week: below it the Poisson interval is too narrow (bench placebo)
MIN_COMPARISON = 3
Z95 = 1.959964

VERDICT_LABELS: dict[str, str] = {
    "decrease": "эффект доказан: обращений меньше",
    "increase": "обращений стало больше",
    "not_proven": "эффект не доказан",
    "too_few": "эффект не доказан: данных мало",
    "not_started": "мера ещё не началась",
}
ITEM_COLUMNS = ["id", "title", "municipality_id", "municipality_name", "sector_id", "sector_code", "sector_name",
                "category_ids", "category_names", "organisation_id", "organisation_name", "start_date",
                "planned_end_date", "status", "status_label", "source"]


@dataclass
class Effect:
    item_id: int
    verdict: str  # a key of VERDICT_LABELS
    text: str  # one sentence in Russian with the numbers
    change: float | None = None  # exp(β) − 1
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    weeks_before: int = 0
    weeks_after: int = 0
    treated_before: float | None = None  # mean appeals a week
    treated_after: float | None = None
    comparison_before: float | None = None  # mean appeals a week per comparison municipality
    comparison_after: float | None = None
    comparison_names: list[str] = field(default_factory=list)
    series: pd.DataFrame = field(default_factory=pd.DataFrame)  # week, treated, comparison, comparison_scaled

    @property
    def proven(self) -> bool:
        return self.verdict == "decrease"


# --- the list ----------------------------------------------------------------------------------------


def has_roadmap(con: duckdb.DuckDBPyConnection) -> bool:
    """Older warehouses have no roadmap table (the schema change is additive)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'roadmap_item' AND schema_name = 'main'"
    ).fetchall()
    return rows[0][0] > 0


def roadmap_items(scope: Scope = REGION, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Measures the scope may see (its municipalities — a region-wide one only for a region-wide
    scope — and its sectors), newest start first, with names (``ITEM_COLUMNS``)."""
    if con is None:
        with reader() as own:
            return roadmap_items(scope, own)
    if not has_roadmap(con):
        return pd.DataFrame(columns=ITEM_COLUMNS)
    df = con.execute(
        """SELECT id, title, municipality_id, sector_id, category_ids, organisation_id, organisation_name,
                  start_date, planned_end_date, status, source FROM roadmap_item ORDER BY start_date DESC, id"""
    ).df()
    if scope.municipality_ids is not None:
        df = df[df["municipality_id"].notna() & df["municipality_id"].isin(scope.municipality_ids)]
    if scope.sector_ids is not None:
        df = df[df["sector_id"].isin(scope.sector_ids)]
    df = df.merge(reference(con, "sector"), on="sector_id", how="left")
    munis = reference(con, "municipality")[["municipality_id", "municipality_name"]]
    df["municipality_id"] = df["municipality_id"].astype("Int64")
    df = df.merge(munis.astype({"municipality_id": "Int64"}), on="municipality_id", how="left")
    df["municipality_name"] = df["municipality_name"].fillna("весь регион")
    cats = reference(con, "category").set_index("category_id")["category_name"]
    df["category_ids"] = df["category_ids"].map(lambda ids: [int(i) for i in ids] if ids is not None else [])
    df["category_names"] = df["category_ids"].map(lambda ids: [str(cats.get(i, i)) for i in ids])
    df["status_label"] = df["status"].map(ROADMAP_STATUSES).fillna(df["status"])
    for col in ("start_date", "planned_end_date"):
        df[col] = pd.to_datetime(df[col]).dt.date
    return df[ITEM_COLUMNS].reset_index(drop=True)


# --- one measure -------------------------------------------------------------------------------------


def item_effect(
    item_id: int,
    scope: Scope = REGION,
    until: dt.date | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Effect:
    """The effect of one measure with the data up to ``until`` (default: the data date)."""
    if con is None:
        with reader() as own:
            return item_effect(item_id, scope, until, own)
    items = roadmap_items(scope, con)
    match = items[items["id"] == int(item_id)]
    if match.empty:
        raise KeyError(f"нет меры дорожной карты № {item_id} в доступной области ({scope.label})")
    return _effect(con, match.iloc[0], items, scope, until)


def roadmap_effects(
    scope: Scope = REGION,
    until: dt.date | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Every visible measure with its effect: ``ITEM_COLUMNS`` plus verdict, verdict_label, text,
    change, ci_low, ci_high, p_value, weeks_before, weeks_after."""
    if con is None:
        with reader() as own:
            return roadmap_effects(scope, until, own)
    items = roadmap_items(scope, con)
    rows = []
    for _, item in items.iterrows():
        e = _effect(con, item, items, scope, until)
        rows.append({"verdict": e.verdict, "verdict_label": VERDICT_LABELS[e.verdict], "text": e.text,
                     "change": e.change, "ci_low": e.ci_low, "ci_high": e.ci_high, "p_value": e.p_value,
                     "weeks_before": e.weeks_before, "weeks_after": e.weeks_after})
    extra = pd.DataFrame(rows, columns=["verdict", "verdict_label", "text", "change", "ci_low", "ci_high",
                                        "p_value", "weeks_before", "weeks_after"])
    return pd.concat([items.reset_index(drop=True), extra], axis=1)


def _effect(con: duckdb.DuckDBPyConnection, item: pd.Series, items: pd.DataFrame, scope: Scope,
            until: dt.date | None) -> Effect:
    item_id = int(item["id"])
    as_of = data_as_of(con)
    if until is not None:
        as_of = min(as_of, dt.datetime.combine(until + dt.timedelta(days=1), dt.time()))
    latest = last_whole_week(as_of)  # Monday of the last whole week
    start = item["start_date"] - dt.timedelta(days=item["start_date"].weekday())
    if start > latest:
        return Effect(item_id, "not_started", f"Мера начинается {item['start_date']:%d.%m.%Y} — после даты данных.")
    if pd.isna(item["municipality_id"]):
        return Effect(item_id, "too_few", "Эффект не доказан: мера на весь регион — сравнить не с чем "
                                          "(нет муниципалитетов без меры).")
    treated = int(item["municipality_id"])
    first = start - dt.timedelta(weeks=WEEKS_BEFORE)
    last = min(latest, start + dt.timedelta(weeks=WEEKS_AFTER - 1))
    counts, data_start = _weekly(con, item, scope, first, last + dt.timedelta(days=7))
    first = max(first, data_start) if data_start else first
    weeks = pd.date_range(first, last, freq="7D").date
    n_before = int(sum(w < start for w in weeks))
    n_after = len(weeks) - n_before

    comparison = _comparison(con, item, items, scope, last, treated)
    units = [treated, *comparison]
    grid = pd.MultiIndex.from_product([units, weeks], names=["municipality_id", "week"]).to_frame(index=False)
    panel = grid.merge(counts, on=["municipality_id", "week"], how="left").fillna({"n": 0})
    active = panel.groupby("municipality_id")["n"].sum()
    comparison = [m for m in comparison if active.get(m, 0) > 0]
    panel = panel[panel["municipality_id"].isin([treated, *comparison])].copy()
    panel["after"] = panel["week"] >= start
    panel["treated"] = panel["municipality_id"] == treated

    series = _series(panel, weeks, start)
    names = reference(con, "municipality").set_index("municipality_id")["municipality_name"]
    effect = Effect(item_id, "too_few", "", weeks_before=n_before, weeks_after=n_after, series=series,
                    comparison_names=sorted(str(names.get(m, m)) for m in comparison))
    t = panel[panel["treated"]]
    c = panel[~panel["treated"]]
    effect.treated_before = float(t.loc[~t["after"], "n"].mean()) if n_before else None
    effect.treated_after = float(t.loc[t["after"], "n"].mean()) if n_after else None
    if len(c):
        effect.comparison_before = float(c.loc[~c["after"], "n"].mean()) if n_before else None
        effect.comparison_after = float(c.loc[c["after"], "n"].mean()) if n_after else None

    appeals_before = float(t.loc[~t["after"], "n"].sum())
    problems = []
    if n_after < MIN_WEEKS_AFTER:
        problems.append(f"после начала прошло {words.count(n_after, words.WEEKS)}, нужно не меньше {MIN_WEEKS_AFTER}")
    if n_before < MIN_WEEKS_BEFORE:
        problems.append(f"до начала есть {words.count(n_before, words.WEEKS)} данных, нужно не меньше {MIN_WEEKS_BEFORE}")
    if appeals_before < MIN_APPEALS_BEFORE:
        problems.append(f"до начала в муниципалитете {words.count(int(appeals_before), words.APPEALS)} по этим "
                        f"категориям, нужно не меньше {MIN_APPEALS_BEFORE}")
    if not comparison:
        problems.append("нет муниципалитетов для сравнения без такой же меры")
    if problems:
        effect.text = "Эффект не доказан: данных мало — " + "; ".join(problems) + "."
        return effect

    beta, se, p = _did_poisson(panel)
    effect.change = math.expm1(beta)
    effect.ci_low, effect.ci_high = math.expm1(beta - Z95 * se), math.expm1(beta + Z95 * se)
    effect.p_value = p
    interval = (f"95\u00a0% доверительный интервал: от {words.percent(effect.ci_low, 0, signed=True)} "
                f"до {words.percent(effect.ci_high, 0, signed=True)}")
    basis = (f"{words.number(effect.treated_before, 1)} → {words.number(effect.treated_after, 1)} в неделю; "
             f"{words.count(len(comparison), words.MUNICIPALITIES)} для сравнения: "
             f"{words.number(effect.comparison_before, 1)} → {words.number(effect.comparison_after, 1)}")
    if effect.ci_high < 0:
        effect.verdict = "decrease"
        effect.text = (f"Эффект доказан: обращений на {words.percent(-effect.change, 0)} меньше, чем было бы без "
                       f"меры ({interval}; {basis}).")
    elif effect.ci_low > 0:
        effect.verdict = "increase"
        effect.text = (f"Обращений стало больше на {words.percent(effect.change, 0)} относительно сравнения "
                       f"({interval}; {basis}).")
    else:
        effect.verdict = "not_proven"
        effect.text = (f"Эффект не доказан: изменение {words.percent(effect.change, 0, signed=True)}, интервал "
                       f"включает ноль ({interval}; {basis}).")
    return effect


def _weekly(con: duckdb.DuckDBPyConnection, item: pd.Series, scope: Scope, start: dt.date,
            end: dt.date) -> tuple[pd.DataFrame, dt.date | None]:
    """Weekly counts by municipality in the measure's categories (or sector) in [start, end), and the
    first week with any data."""
    filters: dict[str, list] = {"sector": [int(item["sector_id"])]}
    if item["category_ids"]:
        ids = [int(i) for i in item["category_ids"]]
        children = con.execute("SELECT id FROM category WHERE list_contains($p, parent_id)", {"p": ids}).fetchall()
        filters["category"] = sorted(set(ids) | {c for (c,) in children})
    # ``_where`` writes the period over ``month``: the weekly rollup's ``week`` is given that name (as in
    # metrics.signals), so the scope clause is the same as everywhere
    source = "(SELECT week AS month, municipality_id, sector_id, category_id, n FROM appeal_weekly)"
    period = Period(start, end, "range", f"{start}..{end}")
    where, params = _where(filters, scope, period, rollup=True)
    df = con.execute(
        f"SELECT month AS week, municipality_id, CAST(sum(n) AS INTEGER) AS n FROM {source} "  # noqa: S608
        f"WHERE {where} GROUP BY ALL", params).df()
    df["week"] = pd.to_datetime(df["week"]).dt.date
    df["municipality_id"] = df["municipality_id"].astype("int64")
    first = con.execute("SELECT min(week) FROM appeal_weekly").fetchall()[0][0]
    return df, first


def _comparison(con: duckdb.DuckDBPyConnection, item: pd.Series, items: pd.DataFrame, scope: Scope,
                last: dt.date, treated: int) -> list[int]:
    """Municipalities of the same kind in scope with no measure of their own in these categories."""
    munis = con.execute("SELECT id, kind FROM municipality").df()
    if scope.municipality_ids is not None:
        munis = munis[munis["id"].isin(scope.municipality_ids)]
    mine = set(item["category_ids"])
    busy = set()
    for _, other in items.iterrows():
        if int(other["id"]) == int(item["id"]) or pd.isna(other["municipality_id"]):
            continue
        same = (int(other["sector_id"]) == int(item["sector_id"])
                and (not mine or not other["category_ids"] or mine & set(other["category_ids"])))
        if same and other["start_date"] <= last and other["status"] != "cancelled":
            busy.add(int(other["municipality_id"]))
    free = munis[~munis["id"].isin(busy | {treated})]
    kind = munis.loc[munis["id"] == treated, "kind"]
    same_kind = free[free["kind"] == kind.iloc[0]] if len(kind) else free
    chosen = same_kind if len(same_kind) >= MIN_COMPARISON else free
    return sorted(int(i) for i in chosen["id"])


def _series(panel: pd.DataFrame, weeks: list[dt.date], start: dt.date) -> pd.DataFrame:
    """Weekly series for the chart: the municipality, the comparison mean, and that mean scaled to
    the municipality's level before the start (what the municipality would look like without the measure)."""
    t = panel[panel["treated"]].set_index("week")["n"].reindex(weeks, fill_value=0)
    c = panel[~panel["treated"]].groupby("week")["n"].mean().reindex(weeks)
    before = [w < start for w in weeks]
    scale = t[before].mean() / c[before].mean() if c[before].mean() > 0 else np.nan
    return pd.DataFrame({"week": list(weeks), "treated": t.to_numpy(dtype="float64"),
                         "comparison": c.to_numpy(dtype="float64"),
                         "comparison_scaled": (c * scale).to_numpy(dtype="float64"), "after": np.invert(before)})


def _did_poisson(panel: pd.DataFrame) -> tuple[float, float, float]:
    """β, its robust standard error and p-value of ``treated × after`` in a Poisson regression with
    municipality and week fixed effects."""
    import statsmodels.api as sm

    y = panel["n"].to_numpy(dtype="float64")
    unit = pd.get_dummies(panel["municipality_id"], prefix="m", drop_first=True, dtype="float64")
    week = pd.get_dummies(panel["week"].astype(str), prefix="w", drop_first=True, dtype="float64")
    d = (panel["treated"] & panel["after"]).astype("float64").rename("did")
    x = pd.concat([pd.Series(1.0, index=panel.index, name="const"), d, unit, week], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, x.to_numpy(), family=sm.families.Poisson()).fit(cov_type="HC1")
    return float(fit.params[1]), float(fit.bse[1]), float(fit.pvalues[1])


# --- the form ----------------------------------------------------------------------------------------


def form_choices(scope: Scope = REGION, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, object]:
    """What the add-a-measure form may offer within the scope: municipalities (id, name), sectors
    (code, name), category names by sector code, organisation names."""
    if con is None:
        with reader() as own:
            return form_choices(scope, own)
    munis = reference(con, "municipality").sort_values("municipality_name")
    if scope.municipality_ids is not None:
        munis = munis[munis["municipality_id"].isin(scope.municipality_ids)]
    sectors = reference(con, "sector")
    if scope.sector_ids is not None:
        sectors = sectors[sectors["sector_id"].isin(scope.sector_ids)]
    cats = con.execute(
        "SELECT s.code, c.name FROM category c JOIN sector s ON s.id = c.sector_id ORDER BY s.id, c.id").fetchall()
    by_sector: dict[str, list[str]] = {}
    for code, name in cats:
        by_sector.setdefault(code, []).append(name)
    orgs = sorted(reference(con, "organisation")["organisation_name"].dropna().unique().tolist())
    return {
        "municipalities": [(int(r.municipality_id), r.municipality_name) for r in munis.itertuples()],
        "sectors": [(r.sector_code, r.sector_name) for r in sectors.itertuples()],
        "categories": by_sector,
        "organisations": orgs,
        "region_allowed": scope.municipality_ids is None,
    }


def add_measure(raw: dict[str, object], scope: Scope = REGION) -> tuple[int | None, list[str]]:
    """Add one measure from the form (field texts as in ``data.roadmap.FIELDS``) if the scope allows
    its municipality and sector; (new id, []) or (None, reasons in Russian)."""
    from data.roadmap import add_item
    from metrics.source import close_thread_connection, warehouse_path

    choices = form_choices(scope)
    names = {name for _, name in choices["municipalities"]}  # type: ignore[union-attr]
    codes = {code for code, _ in choices["sectors"]}  # type: ignore[union-attr]
    municipality = str(raw.get("municipality") or "").strip()
    if not municipality and not choices["region_allowed"]:
        return None, [f"мера на весь регион вне доступной области ({scope.label})"]
    if municipality and municipality not in names:
        return None, [f"муниципалитет «{municipality}» вне доступной области ({scope.label})"]
    if raw.get("sector") and str(raw["sector"]) not in codes:
        return None, [f"отраслевой блок «{raw['sector']}» вне доступной области ({scope.label})"]
    result = add_item(warehouse_path(), raw)
    # the file was replaced: this thread's next read opens the new one
    close_thread_connection()
    return result
