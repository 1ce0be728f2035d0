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
from typing import NamedTuple

import duckdb
import pandas as pd

from data.warehouse import Region, local_time, read_region, zone_label
from geo.store import load_region_geojson
from metrics.query import data_as_of, reference
from metrics.scope import Scope, effective, request_scope
from metrics.source import reader

_geojson_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_region_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def population_known() -> bool:
    """Whether any municipality the signed-in user may see has a population: without one a rate per
    10 000 residents is nothing but grey, and the maps open on the volume instead."""
    population = municipalities()["population"]
    return bool((population.fillna(0) > 0).any())


def region(con: duckdb.DuckDBPyConnection | None = None) -> Region:
    """The warehouse's region: name, time zone, working-day calendar (``data.warehouse.Region``).

    Every page, the wall, the pack and the brief name the region and show times through this one
    function; ``region().now()`` is the region's wall-clock time, the clock the data are kept in.
    ``con``: a connection of the caller's (the brief's command line), else the served warehouse.
    """
    if con is None:
        with reader() as own:
            return region(own)
    if con not in _region_cache:
        _region_cache[con] = read_region(con)
    return _region_cache[con]


def region_name() -> str:
    """The region's name to print («Регион» while none is set)."""
    return region().label


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


_regions_geojson_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def regions(con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """The warehouse's regions (``region_id``, ``region_name``, ``region_population``,
    ``population_is_approx``), by name; a warehouse from before the region level has its one region."""
    from data.engine import table_names
    from data.regions import region_count

    if con is None:
        with reader() as own:
            return regions(own)
    if region_count(con) and "region" in table_names(con):
        return con.execute(
            """SELECT id AS region_id, name AS region_name, population AS region_population,
                      coalesce(population_is_approx, TRUE) AS population_is_approx
               FROM region ORDER BY name""").df()
    return pd.DataFrame({"region_id": [1], "region_name": [region(con).label], "region_population": [None],
                         "population_is_approx": [True]})


def region_count(con: duckdb.DuckDBPyConnection | None = None) -> int:
    """How many regions the warehouse holds (the navbar offers «Регионы» only for more than one)."""
    from data.regions import region_count as count

    if con is None:
        with reader() as own:
            return count(own)
    return count(con)


_organisation_regions_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def organisation_regions(con: duckdb.DuckDBPyConnection | None = None) -> dict[int, str]:
    """Organisation id → the name of the region it serves, for the organisations without a home
    municipality (a region's ministry, a regional company); empty in a warehouse of one region, where
    «регион» says it. An organisation has no region of its own: it is the one most of its appeals come
    from. Unscoped names; cached per connection (the rollup changes only with a new read connection)."""
    if con is None:
        with reader() as own:
            return organisation_regions(own)
    if region_count(con) <= 1:
        return {}
    if con not in _organisation_regions_cache:
        rows = con.execute(
            """SELECT a.organisation_id, coalesce(m.region_id, 1) AS region_id, sum(a.n) AS n
               FROM appeal_monthly a JOIN municipality m ON m.id = a.municipality_id
               WHERE a.organisation_id IN (SELECT id FROM organisation WHERE municipality_id IS NULL)
               GROUP BY a.organisation_id, coalesce(m.region_id, 1)""").df()
        names = dict(zip(regions(con)["region_id"], regions(con)["region_name"], strict=True))
        top = rows.sort_values(["n", "region_id"], ascending=[False, True]).drop_duplicates("organisation_id")
        _organisation_regions_cache[con] = {int(o): names.get(int(r), "") for o, r in
                                            zip(top["organisation_id"], top["region_id"], strict=True)}
    return _organisation_regions_cache[con]


def regions_geojson() -> dict:
    """The federal subjects' FeatureCollection (feature id = region id); no features when none are stored."""
    from geo.regions import load_regions_geojson

    with reader() as con:
        if con not in _regions_geojson_cache:
            _regions_geojson_cache[con] = load_regions_geojson(con)
        return _regions_geojson_cache[con]


def region_municipalities(region_id: int, con: duckdb.DuckDBPyConnection | None = None) -> frozenset[int]:
    """Ids of one region's units (whatever the user's scope: the caller narrows)."""
    if con is None:
        with reader() as own:
            return region_municipalities(region_id, own)
    try:
        rows = con.execute("SELECT id FROM municipality WHERE coalesce(region_id, 1) = ?", [region_id]).fetchall()
    except duckdb.Error:  # a warehouse from before the region level: one region, every unit
        rows = con.execute("SELECT id FROM municipality").fetchall() if region_id == 1 else []
    return frozenset(int(r[0]) for r in rows)


def region_settings(region_id: int, con: duckdb.DuckDBPyConnection | None = None) -> Region:
    """One region of the warehouse as a ``Region`` (name, its own time zone, the warehouse's calendar);
    the warehouse's own settings for a warehouse from before the region level. Unscoped (a name)."""
    if con is None:
        with reader() as own:
            return region_settings(region_id, own)
    home = region(con)
    try:
        row = con.execute("SELECT name, timezone FROM region WHERE id = ?", [region_id]).fetchone()
    except duckdb.Error:
        row = None
    if row is None:
        return home
    return Region(name=row[0] or home.name, timezone=row[1] or home.timezone, calendar=home.calendar)


def within_region(scope: Scope, region_id: int, con: duckdb.DuckDBPyConnection | None = None) -> Scope:
    """``scope`` narrowed to one region's units: every metric that takes a scope (signals, priority
    problems, the rating, the KPI series) then counts that region only. Never wider than ``scope``;
    a narrower scope keeps its own label («доступ: …»), the whole one takes the region's name."""
    units = Scope(municipality_ids=region_municipalities(region_id, con),
                  label=region_settings(region_id, con).label)
    return units.intersect(scope)


def visible_regions(con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """``regions()`` holding at least one municipality the signed-in user may see."""
    if con is None:
        with reader() as own:
            return visible_regions(own)
    allowed = request_scope().municipality_ids
    # every unit's region: a short list, filtered here (plain SQL on every engine)
    try:
        rows = con.execute("SELECT id, coalesce(region_id, 1) FROM municipality").fetchall()
    except duckdb.Error:  # a warehouse from before the region level: one region, every unit
        rows = [(i, 1) for (i,) in con.execute("SELECT id FROM municipality").fetchall()]
    seen = {int(r) for i, r in rows if i is not None and (allowed is None or int(i) in allowed)}
    every = regions(con)
    return every[every["region_id"].isin(seen)].reset_index(drop=True)


def find_region(text: str | int, con: duckdb.DuckDBPyConnection | None = None) -> int:
    """The region a person named: its id, name («Тверская обл.» too), ISO code or ОКАТО;
    ``data.regions.UnknownRegion`` (a Russian message) when none of the warehouse's regions."""
    from data.regions import UnknownRegion, region_by_text

    if con is None:
        with reader() as own:
            return find_region(text, own)
    value = str(text).strip()
    every = regions(con)
    if value.isdigit() and int(value) in set(every["region_id"]):
        return int(value)
    try:
        rid = region_by_text(con, value)
    except UnknownRegion:
        rid = None
    except duckdb.Error:  # a warehouse from before the region level: one region, by name only
        rid = 1 if value.casefold() == region(con).label.casefold() else None
    if rid is None and value:  # «Тверская»: the start of one region's name only
        starts = every[every["region_name"].str.casefold().str.startswith(value.casefold())]
        rid = int(starts["region_id"].iloc[0]) if len(starts) == 1 else None
    if rid is None:
        raise UnknownRegion(f"неизвестный регион: «{value}»")
    return rid


def pick_region(text: str | int | None, scope: Scope, con: duckdb.DuckDBPyConnection | None = None) -> int | None:
    """The region a document (the pack, the brief) is for: None without one, or in a warehouse of one
    region (nothing changes there); ``data.regions.UnknownRegion`` with a Russian message for a region
    the warehouse does not hold («… Есть: 1 (Смоленская область), …») or the user may not see."""
    from data.regions import UnknownRegion

    if text in (None, "", "all"):
        return None
    if con is None:
        with reader() as own:
            return pick_region(text, scope, own)
    try:
        rid = find_region(text, con)
    except UnknownRegion as exc:
        known = ", ".join(f"{int(r.region_id)} ({r.region_name})" for r in visible_regions(con).itertuples())
        raise UnknownRegion(f"{exc}. Есть: {known}") from exc
    units = region_municipalities(rid, con)
    seen = effective(scope).municipality_ids  # the caller's scope and the signed-in user's
    if not units or seen is not None and not units & seen:
        raise UnknownRegion(f"регион «{region_settings(rid, con).label}» вне вашей зоны доступа ({scope.label})")
    return None if region_count(con) <= 1 else rid


class RegionDataDate(NamedTuple):
    """One region's «данные на» (``region_data_date``)."""

    moment: dt.datetime  # the warehouse's clock (every stored time is written in it)
    local: dt.datetime  # the same moment on the region's own clock
    zone: str  # «МСК+2 (UTC+5)» when the region's clock differs from the warehouse's, else ""

    @property
    def text(self) -> str:
        """«01.11.2025 01:32, время МСК+2 (UTC+5)»; only the date and time on the warehouse's clock."""
        return f"{self.local:%d.%m.%Y %H:%M}" + (f", время {self.zone}" if self.zone else "")


def region_data_date(region_id: int, scope: Scope, as_of: dt.datetime,
                     con: duckdb.DuckDBPyConnection | None = None) -> RegionDataDate:
    """One region's «данные на» — the wall's, the pack's and the brief's: its last receipt within
    ``scope`` (a regional feed that stopped shows its own date, whatever the other regions' feeds do;
    the warehouse's data date when it has none), on the warehouse's clock and on the region's own."""
    from metrics.status import last_receipt

    if con is None:
        with reader() as own:
            return region_data_date(region_id, scope, as_of, own)
    fresh = last_receipt(scope, since=as_of - dt.timedelta(days=31), con=con) or as_of
    home, zone = region(con).timezone, region_settings(region_id, con).timezone
    local = local_time(fresh, home, zone)
    return RegionDataDate(fresh, local, "" if zone == home else zone_label(zone, local))
