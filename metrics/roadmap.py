"""Did a roadmap measure work? Difference-in-differences on weekly appeal counts.

For one measure (``roadmap_item``) in one municipality:

- outcome: appeals a week in the measure's categories (children of «Прочие» included; no categories
  = the whole sector), from the weekly rollup ``appeal_weekly`` through the caller's scope;
- window: up to ``WEEKS_BEFORE`` whole weeks before the start and up to ``WEEKS_AFTER`` whole weeks
  from the start (the week of the data date only when the data reach its end);
- comparison: municipalities of the same kind (городской / муниципальный округ) in the scope with
  no measure of their own in the same categories up to the window's end (all kinds when fewer than
  ``MIN_COMPARISON`` are left), and with at least one appeal in the window;
- estimate: β = log(after/before in the municipality) − log(after/before in the comparison total);
  exp(β) − 1 is the relative change against the comparison over the same weeks (the comparison
  carries the season and anything region-wide). With one treated municipality this ratio of sums is
  what a Poisson regression with municipality and week fixed effects collapses to, it is multiplicative
  («halved» is −50 %) and, unlike log(1 + count), not biased on small weekly counts.
- inference: one treated municipality has no honest sampling error — robust Poisson errors declared
  «эффект доказан» for 11–14 % of placebo measures (bench/decisions_bench.py). The p-value is an
  in-space placebo (permutation) test instead: every comparison municipality with at least
  ``MIN_PLACEBO_APPEALS`` appeals before the start is treated as if it had the measure, against the
  others, and p is the rank of the real |t| among the placebos' |t| (t = β over an error from the
  municipality's own week-to-week dispersion, so a small okrug and a city are comparable). The 95 %
  interval inverts the same test (β ± c·se, c the placebo |t| the test rejects above), so it excludes
  zero exactly when p ≤ 5 %. With 24 placebos the smallest p is 1/25.
- verdict: «эффект доказан» only when p ≤ ``ALPHA`` and the estimate is a decrease («обращений стало
  больше» for an increase); «эффект не доказан» when the interval includes zero, and also when the data
  are too few to tell (fewer than ``MIN_WEEKS_AFTER`` weeks since the start, ``MIN_WEEKS_BEFORE``
  before it, fewer than ``MIN_APPEALS_BEFORE`` appeals in the municipality before the start, no
  comparison municipalities, fewer placebos than a 5 % test needs (19), a region-wide measure, or a
  start after the data).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from data.schema import ROADMAP_STATUSES
from metrics import words
from metrics.periods import Period
from metrics.query import _where, data_as_of, reference
from metrics.scope import REGION, Scope, effective
from metrics.signals import last_whole_week
from metrics.source import reader

WEEKS_BEFORE = 52
WEEKS_AFTER = 26
MIN_WEEKS_BEFORE = 8
MIN_WEEKS_AFTER = 4
MIN_APPEALS_BEFORE = 100  # ≈ 2 a week: below it a weekly dispersion and a ratio are too rough
MIN_COMPARISON = 3
ALPHA = 0.05
MIN_PLACEBO_APPEALS = 10  # a placebo with fewer has a t too discrete to rank against (bench: 3 % alarms)

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
    change: float | None = None  # exp(β) − 1, β the log ratio of after/before ratios
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None  # permutation p over the placebos
    placebos: int = 0  # comparison municipalities used as placebos
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
    from data.engine import table_names

    return "roadmap_item" in table_names(con)


def roadmap_items(scope: Scope = REGION, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Measures the scope may see (its municipalities — a region-wide one only for a region-wide
    scope — and its sectors), newest start first, with names (``ITEM_COLUMNS``)."""
    if con is None:
        with reader() as own:
            return roadmap_items(scope, own)
    scope = effective(scope)  # never more than the signed-in user's scope, whatever the caller passed
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
    scope = effective(scope)
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
    change, ci_low, ci_high, p_value, placebos, weeks_before, weeks_after."""
    if con is None:
        with reader() as own:
            return roadmap_effects(scope, until, own)
    scope = effective(scope)
    items = roadmap_items(scope, con)
    rows = []
    for _, item in items.iterrows():
        e = _effect(con, item, items, scope, until)
        rows.append({"verdict": e.verdict, "verdict_label": VERDICT_LABELS[e.verdict], "text": e.text,
                     "change": e.change, "ci_low": e.ci_low, "ci_high": e.ci_high, "p_value": e.p_value,
                     "placebos": e.placebos, "weeks_before": e.weeks_before, "weeks_after": e.weeks_after})
    extra = pd.DataFrame(rows, columns=["verdict", "verdict_label", "text", "change", "ci_low", "ci_high",
                                        "p_value", "placebos", "weeks_before", "weeks_after"])
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

    wide = panel.pivot(index="municipality_id", columns="week", values="n").reindex(columns=list(weeks), fill_value=0)
    test = permutation_did(wide.to_numpy(dtype="float64"), int(np.flatnonzero(wide.index == treated)[0]),
                           np.array([w >= start for w in wide.columns]))
    effect.placebos = test.placebos
    basis = (f"{words.number(effect.treated_before, 1)} → {words.number(effect.treated_after, 1)} в неделю; "
             f"{words.count(len(comparison), words.MUNICIPALITIES)} для сравнения: "
             f"{words.number(effect.comparison_before, 1)} → {words.number(effect.comparison_after, 1)}")
    effect.change = math.expm1(test.beta)
    if test.critical is None:
        # with fewer than 19 placebos even the most extreme estimate has p > 5 %: the test cannot decide
        effect.text = (f"Эффект не доказан: данных мало — для проверки есть только "
                       f"{words.count(test.placebos, words.MUNICIPALITIES)} без меры с достаточным числом "
                       f"обращений, нужно не меньше {min_placebos()} (изменение "
                       f"{words.percent(effect.change, 0, signed=True)}; {basis}).")
        return effect
    effect.ci_low = math.expm1(test.beta - test.critical * test.se)
    effect.ci_high = math.expm1(test.beta + test.critical * test.se)
    effect.p_value = test.p_value
    interval = (f"95\u00a0% интервал: от {words.percent(effect.ci_low, 0, signed=True)} "
                f"до {words.percent(effect.ci_high, 0, signed=True)}; p\u00a0=\u00a0{words.number(test.p_value, 2)} "
                f"по плацебо-проверке на {words.count(test.placebos, words.MUNICIPALITIES_PREPOSITIONAL)} без меры")
    if test.p_value <= ALPHA and test.beta < 0:
        effect.verdict = "decrease"
        effect.text = (f"Эффект доказан: обращений на {words.percent(-effect.change, 0)} меньше, чем было бы без "
                       f"меры ({interval}; {basis}).")
    elif test.p_value <= ALPHA and test.beta > 0:
        effect.verdict = "increase"
        effect.text = (f"Обращений стало больше на {words.percent(effect.change, 0)} относительно сравнения "
                       f"({interval}; {basis}).")
    else:
        effect.verdict = "not_proven"
        effect.text = (f"Эффект не доказан: изменение {words.percent(effect.change, 0, signed=True)}, интервал "
                       f"включает ноль — такое изменение не выделяется среди муниципалитетов без меры ({interval}; "
                       f"{basis}).")
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


@dataclass
class PermutationTest:
    """The difference-in-differences estimate of one treated unit and its in-space placebo test."""

    beta: float  # log rate ratio: after/before of the unit against after/before of the comparison
    se: float  # its standard error under the unit's own week-to-week dispersion
    p_value: float  # two-sided rank of |t| among the placebos' |t| (the unit itself counted)
    critical: float | None  # |t| a placebo-calibrated 95 % interval uses; None: too few placebos to reject
    placebos: int
    placebo_t: np.ndarray


def min_placebos(alpha: float = ALPHA) -> int:
    """Fewest placebos with which the smallest attainable p, 1 / (placebos + 1), is ≤ ``alpha``."""
    return math.ceil(1 / alpha - 1 - 1e-9)


def did_rows(y: np.ndarray, control: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """β and its standard error for every row of ``y`` (units × weeks) against the matching row of
    ``control`` (the comparison total those weeks), in closed form.

    β = log(after/before of the unit) − log(after/before of the control): with one treated unit the
    Poisson fixed-effects estimate collapses to this ratio of sums, and a sum is not biased on small
    weekly counts the way log(1 + count) is. The error takes the unit's own over-dispersion from the
    weeks themselves: Pearson residuals against the control scaled to the unit's level in each period
    (never below Poisson), so a noisy small okrug and a steady city get comparable t = β / se.
    """
    pre, post = y[:, ~after].sum(axis=1), y[:, after].sum(axis=1)
    cpre, cpost = control[:, ~after].sum(axis=1), control[:, after].sum(axis=1)
    beta = np.log((post + 0.5) / (pre + 0.5)) - np.log((cpost + 0.5) / (cpre + 0.5))
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(after[None, :], (post / cpost)[:, None], (pre / cpre)[:, None])
        expected = np.nan_to_num(control * level)
        fitted = expected > 0
        pearson = np.where(fitted, (y - expected) ** 2 / np.where(fitted, expected, 1.0), 0.0).sum(axis=1)
    dispersion = np.maximum(pearson / np.maximum(fitted.sum(axis=1) - 2, 1), 1.0)
    se = np.sqrt(dispersion * (1 / (post + 0.5) + 1 / (pre + 0.5)) + 1 / (cpost + 0.5) + 1 / (cpre + 0.5))
    return beta, se


def permutation_did(y: np.ndarray, treated: int, after: np.ndarray, alpha: float = ALPHA,
                    min_before: float = MIN_PLACEBO_APPEALS) -> PermutationTest:
    """Difference-in-differences of row ``treated`` of ``y`` (units × weeks; the other rows are the
    comparison) with an in-space placebo test.

    One treated unit gives no honest sampling error (robust or clustered errors were 2–3 times too
    small: 11–14 % false alarms on placebo measures). Instead every comparison unit with at least
    ``min_before`` appeals before the start is in turn treated as if it had the measure, against the
    other comparison units; the p-value is the rank of the real |t| among the placebos' |t|
    (Abadie et al. 2010; Firpo & Possebom 2018): p = (1 + #{|t_placebo| ≥ |t|}) / (placebos + 1).
    The 95 % interval inverts that test: β ± c·se with c the placebo |t| the test rejects above, so
    «the interval excludes zero» and «p ≤ 5 %» always agree.
    """
    y = np.asarray(y, dtype="float64")
    after = np.asarray(after, dtype=bool)
    others = np.arange(len(y)) != treated
    total = y[others].sum(axis=0)
    # the measure's unit against the whole comparison; a placebo against the comparison without itself
    # (the measure's unit stays out of every placebo: it may carry the effect)
    control = np.where(others[:, None], total[None, :] - y, total[None, :])
    beta, se = did_rows(y, control, after)
    t = beta / se
    eligible = others & (y[:, ~after].sum(axis=1) >= min_before)
    placebo_t = np.abs(t[eligible])
    n = len(placebo_t)
    p = float((1 + np.sum(placebo_t >= abs(t[treated]) - 1e-12)) / (n + 1))
    # reject at alpha when at most k placebos are as extreme: k = floor(alpha (n + 1)) − 1
    k = math.floor(alpha * (n + 1) + 1e-9) - 1
    critical = float(np.sort(placebo_t)[::-1][k]) if k >= 0 else None
    return PermutationTest(float(beta[treated]), float(se[treated]), p, critical, n, placebo_t)


# --- the form ----------------------------------------------------------------------------------------


def form_choices(scope: Scope = REGION, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, object]:
    """What the add-a-measure form may offer within the scope: municipalities (id, name), sectors
    (code, name), category names by sector code, organisation names."""
    if con is None:
        with reader() as own:
            return form_choices(scope, own)
    scope = effective(scope)
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
    from metrics.source import close_thread_connection, engine, warehouse_path

    scope = effective(scope)
    if engine().kind != "duckdb":  # writers write the DuckDB warehouse; ClickHouse receives copies
        return None, ["на ClickHouse меры добавляются в основное хранилище DuckDB и переносятся копией "
                      "(python -m data copy)"]
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
