"""The country view: the warehouse's regions ranked like the federal monthly rating of the ЦУР.

Four components, each ranked among the regions (1 = best) and summed into the overall place:
- ``rate_10k`` — appeals and messages per 10 000 residents: the reach of the channels (more is better,
  as in the federal rating of the platform «Обратная связь»; a region nobody writes to is not doing well);
- ``on_time_share`` — answers given in time;
- ``response_change`` — the change of the median first reaction, hours, against the previous period of
  the same length (a fall is better);
- ``satisfaction_share`` — ratings 4 and 5 among all ratings.
Every number comes from ``metrics.query`` with the region dimension (exact medians included). A region
below an indicator's minimum volume gets no place for it and no overall place («мало данных»).

Only the whole warehouse is ranked: a scope narrower than all regions (a sector lead, an МЦУ) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics import indicators as ind
from metrics.periods import Period
from metrics.query import QueryError, query
from metrics.scope import REGION, Scope, effective


@dataclass(frozen=True)
class Component:
    code: str  # column of the rating frame
    label: str
    higher_is_better: bool
    indicator: str  # the declared indicator it rests on (format, minimum volume)
    short: str  # a table's column header


COMPONENTS: tuple[Component, ...] = (
    Component("rate_10k", "Обращений на 10 тыс. жителей", True, "rate_10k", "На 10 тыс."),
    Component("on_time_share", "Доля ответов в срок", True, "on_time_share", "В срок"),
    Component("response_change", "Изменение медианы первой реакции, ч", False, "response_hours_median",
              "Δ реакции"),
    Component("satisfaction_share", "Удовлетворённость", True, "satisfaction_share", "Удовл."),
)
# shown beside the rating, not ranked: the social-tension index (DESIGN §4)
EXTRA = ("tension_index",)
INDICATORS = ("volume", "rate_10k", "on_time_share", "response_hours_median", "satisfaction_share", *EXTRA)


def region_rating(period: Period, scope: Scope = REGION) -> pd.DataFrame:
    """One row per region with data in ``period`` or the period before: ``region_id``, ``region_name``,
    ``region_population``, ``volume``, the components with ``<code>_rank``, ``response_hours_median``
    and its ``_prev``, ``rank_sum`` and ``place`` (NaN where a component has too little data);
    sorted by place."""
    if not effective(scope).is_region:
        raise QueryError("рейтинг регионов строится только по всем регионам хранилища (роль «куратор»)")
    df = query(list(INDICATORS), by=["region"], period=period, compare=True)
    df["response_change"] = df["response_hours_median"] - df["response_hours_median_prev"]
    df["response_change_low"] = df["response_hours_median_low"].fillna(True).astype(bool) | \
        df["response_hours_median_low_prev"].fillna(True).astype(bool)
    ranks = []
    for c in COMPONENTS:
        low = df.get(f"{c.code}_low", pd.Series(False, index=df.index)).fillna(True).astype(bool)
        value = df[c.code].astype("float64").where(~low)
        df[f"{c.code}_rank"] = value.rank(ascending=not c.higher_is_better, method="min")
        ranks.append(f"{c.code}_rank")
    df["rank_sum"] = df[ranks].sum(axis=1, min_count=len(ranks))
    df["place"] = df["rank_sum"].rank(method="min")
    df["place"] = df["place"].where(df["rank_sum"].notna(), np.nan)
    return df.sort_values(["place", "region_name"], na_position="last").reset_index(drop=True)


def all_regions(period: Period, scope: Scope = REGION) -> pd.Series:
    """The same columns as a row of ``region_rating`` for every region of the warehouse together (no
    places): what a region is judged against on the country map and the table's last line. The values
    come from the whole warehouse, not from averaging the regions (a share of all appeals, the median
    of all reactions)."""
    if not effective(scope).is_region:
        raise QueryError("рейтинг регионов строится только по всем регионам хранилища (роль «куратор»)")
    row = query(list(INDICATORS), period=period, compare=True).iloc[0].copy()
    row["response_change"] = row["response_hours_median"] - row["response_hours_median_prev"]
    row["response_change_low"] = bool(pd.isna(row["response_hours_median_low"]) or row["response_hours_median_low"]
                                      or pd.isna(row["response_hours_median_low_prev"])
                                      or row["response_hours_median_low_prev"])
    return row


def format_component(code: str, value: float | None) -> str:
    """A component's value the way pages print it («+0,4 ч» for the change)."""
    if value is None or pd.isna(value):
        return "—"
    if code == "response_change":
        return f"{value:+.1f} ч".replace(".", ",").replace("-", "−")
    return ind.get(code).format(value)


def component_spec(code: str) -> ind.Indicator:
    """How a map draws a rating column: a declared indicator, or one declared here for the change of
    the first reaction (diverging around 0, a rise is red) and for the overall place."""
    from dataclasses import replace

    if code == "response_change":
        return replace(ind.get("response_hours_median"), code="response_change",
                       label="Изменение медианы первой реакции, ч", kind="growth", unit="ч",
                       number_format="+.1f", higher_is_better=False, min_volume=0)
    if code == "place":
        return replace(ind.get("volume"), code="place", label="Место в рейтинге", unit="место",
                       number_format=".0f", higher_is_better=False)
    return ind.get(code)
