"""What a page may offer in its selectors, and the region's geometry: read-only, cached per connection.

``sectors`` and ``municipalities`` list only what the signed-in user's scope allows (nothing outside a
request in the web process). The rest are reference lists and facts about the warehouse itself —
names, codes, boundaries, the data date, the months that hold data — with no count or value of any
municipality; ``names`` and ``sector_ids`` must stay unscoped, since a user's scope is built from them.
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass

import pandas as pd

from geo.store import load_region_geojson
from metrics.query import data_as_of, reference
from metrics.scope import request_scope
from metrics.source import reader

_geojson_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def months_with_data() -> list[dt.date]:
    """First days of the months that hold appeals, newest first."""
    with reader() as con:
        rows = con.execute("SELECT DISTINCT month FROM appeal_monthly ORDER BY month DESC").fetchall()
    return [r[0] for r in rows]


def as_of() -> dt.datetime:
    with reader() as con:
        return data_as_of(con)


def sectors() -> pd.DataFrame:
    """Sectors the signed-in user may see (all of them without sign-in)."""
    allowed = request_scope().sector_ids
    with reader() as con:
        ref = reference(con, "sector")
    return (ref if allowed is None else ref[ref["sector_id"].isin(allowed)]).reset_index(drop=True)


def channels() -> pd.DataFrame:
    with reader() as con:
        return reference(con, "channel").copy()


def region_geojson() -> dict:
    """The map's FeatureCollection (feature id = municipality id) and whether it is schematic."""
    with reader() as con:
        if con not in _geojson_cache:
            _geojson_cache[con] = load_region_geojson(con)
        return _geojson_cache[con]


def municipalities() -> pd.DataFrame:
    """Municipalities the signed-in user may see, with names and population, by name."""
    allowed = request_scope().municipality_ids
    with reader() as con:
        ref = reference(con, "municipality")
    if allowed is not None:
        ref = ref[ref["municipality_id"].isin(allowed)]
    return ref.sort_values("municipality_name").reset_index(drop=True)


def region_name() -> str:
    with reader() as con:
        rows = con.execute("SELECT value FROM meta WHERE key = 'region_name'").fetchall()
    return rows[0][0] if rows else ""


def names(kind: str) -> dict:
    """Code or id → name for ``sector`` (code), ``channel`` (code) or ``municipality`` (id)."""
    key, label = {"sector": ("sector_code", "sector_name"), "channel": ("channel", "channel_name"),
                  "municipality": ("municipality_id", "municipality_name")}[kind]
    with reader() as con:
        ref = reference(con, kind)
    return dict(zip(ref[key], ref[label], strict=True))


def sector_ids() -> dict[str, int]:
    """Sector code → id, for every sector (resolving a role's sectors must not depend on its scope)."""
    with reader() as con:
        ref = reference(con, "sector")
    return {str(c): int(i) for c, i in zip(ref["sector_code"], ref["sector_id"], strict=True)}


@dataclass(frozen=True)
class PopulationInfo:
    """What the warehouse knows about population (``municipality.population``/``population_is_approx``).

    ``has_population``: at least one unit has a population (a rate per 10 000 can be drawn);
    ``estimated``: units whose population is an approximate estimate — the page prints
    «Население — приблизительная оценка» only when it is non-zero; ``without_population``:
    names of units to show as «нет данных о населении».
    """

    units: int
    with_population: int
    estimated: int
    without_population: tuple[str, ...]

    @property
    def has_population(self) -> bool:
        return self.with_population > 0

    @property
    def is_estimate(self) -> bool:
        return self.estimated > 0


def population_info() -> PopulationInfo:
    """Population coverage of the whole warehouse (not the user's scope: a note about the data)."""
    with reader() as con:
        units, with_population, estimated = con.execute(
            """SELECT count(*), count(population),
                      count(*) FILTER (WHERE population IS NOT NULL AND coalesce(population_is_approx, TRUE))
               FROM municipality"""
        ).fetchall()[0]
        missing = con.execute("SELECT name FROM municipality WHERE population IS NULL ORDER BY name").fetchall()
    return PopulationInfo(int(units), int(with_population), int(estimated), tuple(r[0] for r in missing))
