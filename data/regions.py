"""The region level above municipalities: a warehouse may hold several federal subjects.

``region(id, name, code, okato, timezone, population, population_is_approx)`` lists them and
``municipality.region_id`` says where each unit belongs. A warehouse made before this level (one
region, its settings in ``meta``) is migrated on open: its settings become region 1 and every unit
belongs to it. The warehouse's own clock stays ``meta.region_timezone`` (every stored time is written
in it); a region's ``timezone`` is informative (its own local time), not a second clock.

Regions are never stored on the facts: a region is a function of the municipality, and every fact and
rollup carries the municipality, so the metrics group and filter by region through it
(``metrics.query``), on every path, exact medians included.

Boundaries of federal subjects live in ``region_shape`` (``python -m geo import-regions``), apart from
the municipal ones: the country map and the heat map never mix the two sets.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from data.names import _tokens

REFERENCE = Path(__file__).resolve().parent / "reference" / "federal_subjects.csv"
HOME_REGION_ID = 1

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS region (
        id                   INTEGER PRIMARY KEY,
        name                 VARCHAR NOT NULL,
        code                 VARCHAR,
        okato                VARCHAR,
        timezone             VARCHAR,
        population           INTEGER,
        population_is_approx BOOLEAN DEFAULT TRUE
    )""",
    # region_id < 0: a subject of the file the warehouse does not hold, drawn grey around the others
    """CREATE TABLE IF NOT EXISTS region_shape (
        region_id          INTEGER PRIMARY KEY,
        geometry_wkb       BLOB NOT NULL,
        simplified_geojson VARCHAR NOT NULL,
        source             VARCHAR,
        updated_at         TIMESTAMP,
        name               VARCHAR
    )""",
)
# words that only say what kind of subject it is, spelled differently from source to source
_GENERIC = frozenset({"республика", "респ", "г", "город", "федерального", "значения"})
# abbreviations of the kind of subject: «Тверская обл.» is «Тверская область»
_ABBREVIATIONS = {"обл": "область", "кр": "край", "авт": "автономный", "окр": "округ"}


@dataclass(frozen=True)
class FederalSubject:
    """A row of the shipped list of federal subjects (the multi-region demo and name matching)."""

    name: str
    code: str
    okato: str
    timezone: str
    capital: str
    lat: float
    lon: float
    population: int  # approximate
    genitive: str  # «Тверской области»: for the names of its bodies
    short: str  # «Тверская обл.»
    aliases: tuple[str, ...]


def federal_subjects() -> list[FederalSubject]:
    with open(REFERENCE, encoding="utf-8", newline="") as fh:
        return [FederalSubject(r["name"], r["code"], r["okato"], r["timezone"], r["capital"], float(r["lat"]),
                               float(r["lon"]), int(r["population_approx"]), r["genitive"], r["short"],
                               tuple(a.strip() for a in (r["aliases"] or "").split(";") if a.strip()))
                for r in csv.DictReader(fh)]


def region_key(name: str) -> str:
    """Matching key of a federal subject's name: «Республика Татарстан», «Татарстан» and
    «республика  Татарстан» agree; «г. Москва» and «Москва» too. The dash, quote and case rules are
    those of municipality names (``data.names``)."""
    tokens = [_ABBREVIATIONS.get(t, t) for t in _tokens(name) if t not in _GENERIC]
    return " ".join(tokens) or " ".join(_tokens(name))


def ensure_regions(con: duckdb.DuckDBPyConnection) -> None:
    """Create the region level and migrate a one-region warehouse to it (idempotent).

    Region 1 is the warehouse's own region (``meta``); units without a region belong to it.
    """
    for statement in DDL:
        con.execute(statement)
    con.execute("ALTER TABLE municipality ADD COLUMN IF NOT EXISTS region_id INTEGER DEFAULT 1")
    con.execute("ALTER TABLE region_shape ADD COLUMN IF NOT EXISTS name VARCHAR")
    if con.execute("SELECT count(*) FROM region").fetchall()[0][0] == 0:
        meta = dict(con.execute(
            "SELECT key, value FROM meta WHERE key IN ('region_name', 'region_timezone')").fetchall())
        known = {s.name: s for s in federal_subjects()}.get(meta.get("region_name") or "")
        con.execute(
            "INSERT INTO region (id, name, code, okato, timezone, population, population_is_approx) "
            "VALUES (?, ?, ?, ?, ?, (SELECT sum(population) FROM municipality), TRUE)",
            [HOME_REGION_ID, meta.get("region_name") or "", known.code if known else None,
             known.okato if known else None, meta.get("region_timezone")],
        )
    # a unit added by an import that knows nothing of regions belongs to the warehouse's own region
    if con.execute("SELECT count(*) FROM municipality WHERE region_id IS NULL").fetchall()[0][0]:
        con.execute("UPDATE municipality SET region_id = ? WHERE region_id IS NULL", [HOME_REGION_ID])


def sync_home_region(con: duckdb.DuckDBPyConnection, name: str | None, timezone: str | None) -> None:
    """The region settings (``python -m data region``) name region 1 as well, so the two never disagree."""
    if con.execute("SELECT count(*) FROM region").fetchall()[0][0] > 1:
        return  # a federal warehouse: its settings name the whole, not its first region
    if name:
        con.execute("UPDATE region SET name = ? WHERE id = ?", [name, HOME_REGION_ID])
        known = {s.name: s for s in federal_subjects()}.get(name)
        if known:
            con.execute("UPDATE region SET code = coalesce(code, ?), okato = coalesce(okato, ?) WHERE id = ?",
                        [known.code, known.okato, HOME_REGION_ID])
    if timezone:
        con.execute("UPDATE region SET timezone = ? WHERE id = ?", [timezone, HOME_REGION_ID])


def add_region(con: duckdb.DuckDBPyConnection, subject: FederalSubject, population: int | None = None) -> int:
    """A new region from the shipped list; returns its id."""
    rid = int(con.execute("SELECT coalesce(max(id), 0) + 1 FROM region").fetchall()[0][0])
    con.execute(
        "INSERT INTO region (id, name, code, okato, timezone, population, population_is_approx) "
        "VALUES (?, ?, ?, ?, ?, ?, TRUE)",
        [rid, subject.name, subject.code, subject.okato, subject.timezone,
         subject.population if population is None else population],
    )
    return rid


def region_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many regions the warehouse holds (1 for a warehouse from before the region level)."""
    try:
        return max(int(con.execute("SELECT count(*) FROM region").fetchall()[0][0]), 1)
    except duckdb.CatalogException:
        return 1


class UnknownRegion(ValueError):
    """A ``--region`` that names no region of the warehouse; the message is for a person."""


def region_by_text(con: duckdb.DuckDBPyConnection, text: str | None) -> int | None:
    """The region id ``text`` (name, ISO code, ОКАТО; «Тверская обл.» too) names, None for no text;
    UnknownRegion when it names none of the warehouse's regions."""
    if text is None or not text.strip():
        return None
    index = RegionIndex(con)
    rid = index.match(text, code=text)
    if rid is None:
        raise UnknownRegion(f"неизвестный регион: «{text}»; в хранилище: {', '.join(sorted(index.names.values()))}")
    return rid


class RegionIndex:
    """Every way a file may name the warehouse's regions: ISO 3166-2 code, ОКАТО, name, shipped aliases."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.names: dict[int, str] = {}
        self._keys: dict[str, set[int]] = {}
        shipped = {s.code: s for s in federal_subjects()}
        for rid, name, code, okato in con.execute("SELECT id, name, code, okato FROM region").fetchall():
            self.names[int(rid)] = name
            subject = shipped.get(code)
            # the shipped short and genitive forms too: «Тверская обл.», «… Тверской области»
            spellings = [name, *((*subject.aliases, subject.short, subject.genitive) if subject else ())]
            for key in {region_key(s) for s in spellings} | {c.strip().upper() for c in (code, okato) if c}:
                self._keys.setdefault(key, set()).add(int(rid))

    def match(self, name: str | None, code: str | None = None) -> int | None:
        """The one region ``code`` or ``name`` names; None when none or several do."""
        for key in ((code or "").strip().upper(), region_key(name or "")):
            ids = self._keys.get(key) if key else None
            if ids and len(ids) == 1:
                return next(iter(ids))
        return None
