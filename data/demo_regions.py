"""The multi-region demo (``python -m data demo --regions N``): more federal subjects beside Смоленская область.

Each further region is a real federal subject of ``data/reference/federal_subjects.csv`` (name, ISO
3166-2 code, ОКАТО, time zone, approximate population — stated as approximate on every page) with
synthetic units: its capital and numbered municipal okrugs («МО № 02 (Тверская обл.)») laid out like
the demo region's 27, the population scaled to the region's. Its appeals come from the demo's own
generator (``data.demo``: the same model, stories and organisations, a seed of its own), run in a
scratch in-memory warehouse and copied in with the region's ids; the region's executive bodies keep
their names with the region's own («Министерство здравоохранения Тверской области»), local
organisations of the demo region have no counterpart there (their appeals carry no organisation).
Regions differ in activity and in the quality of their bodies, so the country rating has a story.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np

from data.regions import FederalSubject, add_region, federal_subjects

# per region after the first: appeals per resident and the quality of its bodies (log-odds shift),
# fixed so that the same seed gives the same country
_ACTIVITY = (1.0, 1.25, 0.8, 1.1, 0.7, 1.35, 0.9, 1.15, 0.75, 1.05, 1.3, 0.85)
_QUALITY = (0.0, -0.35, 0.3, 0.1, -0.2, 0.4, -0.45, 0.2, -0.1, 0.35, -0.3, 0.05)
HOME = "Смоленская область"


def _subjects(n: int) -> list[FederalSubject]:
    """The demo region first, then the next ``n`` − 1 of the shipped list."""
    all_ = federal_subjects()
    return [s for s in all_ if s.name == HOME] + [s for s in all_ if s.name != HOME][: n - 1]


def check_region_count(n: int) -> None:
    limit = len(federal_subjects())
    if not 1 <= n <= limit:
        from data.warehouse import RegionError  # a person's mistake: one line, exit 2

        raise RegionError(f"число регионов демо должно быть от 1 до {limit}")


def _weights(n: int) -> np.ndarray:
    return np.array([s.population * _ACTIVITY[i] for i, s in enumerate(_subjects(n))], dtype=np.float64)


def home_share(n: int) -> float:
    """The demo region's part of all appeals of an ``n``-region demo."""
    w = _weights(n)
    return float(w[0] / w.sum())


def add_demo_regions(con: duckdb.DuckDBPyConnection, n: int, appeals: int, seed: int,
                     start: dt.datetime, end: dt.datetime, import_id: int) -> int:
    """Regions 2..n with their units, executive bodies and ``appeals`` appeals; returns the appeals inserted."""
    from data import demo

    subjects = _subjects(n)
    w = _weights(n)[1:]
    counts = np.floor(appeals * w / w.sum()).astype(int)
    counts[: appeals - int(counts.sum())] += 1  # the remainder, one each
    home = subjects[0]
    inserted = 0
    for k, (subject, count) in enumerate(zip(subjects[1:], counts, strict=True), start=1):
        rid = add_region(con, subject)
        scratch = duckdb.connect()
        try:
            demo.ensure_initialised(scratch, municipalities_csv=demo.DEMO_MUNICIPALITIES)
            total = scratch.execute("SELECT sum(population) FROM municipality").fetchall()[0][0]
            scratch.execute("UPDATE municipality SET population = CAST(round(population * ?) AS INTEGER)",
                            [subject.population / total])
            ref = demo._Reference.load(scratch)
            demo._insert_organisations(scratch, ref)
            region_seed = seed * 1000 + k
            model = demo._Model.build(ref, region_seed, start, end)
            model.org_quality = model.org_quality + _QUALITY[k]  # the region's bodies are better or worse
            model.org_speed = np.exp(-0.95 * model.org_quality)
            if count > 0:
                demo._generate_appeals(scratch, model, region_seed, int(count), import_id)
            units = _copy_units(con, scratch, subject, rid, home)
            bodies = _copy_bodies(con, scratch, home, subject)
            inserted += _copy_appeals(con, scratch, units, bodies, f"R{rid:02d}-", import_id,
                                      (subject.lat - home.lat, subject.lon - home.lon))
        finally:
            scratch.close()
    return inserted


def _copy_units(con: duckdb.DuckDBPyConnection, scratch: duckdb.DuckDBPyConnection, subject: FederalSubject,
                rid: int, home: FederalSubject) -> dict[int, int]:
    """The region's units, laid out like the demo region's around its own capital: old id → new id."""
    rows = scratch.execute(
        "SELECT id, kind, population, area_km2, lat, lon FROM municipality ORDER BY id").fetchall()
    first = int(con.execute("SELECT coalesce(max(id), 0) + 1 FROM municipality").fetchall()[0][0])
    dlat, dlon = subject.lat - home.lat, subject.lon - home.lon
    mapping = {}
    for i, (old, kind, population, area, lat, lon) in enumerate(rows):
        name = f"город {subject.capital}" if i == 0 else f"МО № {i + 1:02d} ({subject.short})"
        con.execute(
            "INSERT INTO municipality (id, name, kind, admin_centre, population, population_is_approx, area_km2, "
            "lat, lon, region_id) VALUES (?, ?, ?, ?, ?, TRUE, ?, ?, ?, ?)",
            [first + i, name, "городской округ" if i == 0 else kind, subject.capital if i == 0 else None,
             population, area, None if lat is None else lat + dlat, None if lon is None else lon + dlon, rid],
        )
        mapping[int(old)] = first + i
    return mapping


def _copy_bodies(con: duckdb.DuckDBPyConnection, scratch: duckdb.DuckDBPyConnection, home: FederalSubject,
                 subject: FederalSubject) -> dict[int, int]:
    """The region's executive bodies (the demo region's, renamed): old id → new id."""
    from data.demo_organisations import KIND_EXECUTIVE

    rows = scratch.execute(
        "SELECT id, name, kind, sector_id FROM organisation WHERE municipality_id IS NULL AND kind = ? ORDER BY id",
        [KIND_EXECUTIVE]).fetchall()
    first = int(con.execute("SELECT coalesce(max(id), 0) + 1 FROM organisation").fetchall()[0][0])
    mapping = {}
    for i, (old, name, kind, sector_id) in enumerate(rows):
        con.execute("INSERT INTO organisation (id, name, kind, municipality_id, sector_id) VALUES (?, ?, ?, NULL, ?)",
                    [first + i, name.replace(home.genitive, subject.genitive), kind, sector_id])
        mapping[int(old)] = first + i
    return mapping


def _copy_appeals(con: duckdb.DuckDBPyConnection, scratch: duckdb.DuckDBPyConnection, units: dict[int, int],
                  bodies: dict[int, int], prefix: str, import_id: int, shift: tuple[float, float]) -> int:
    """The scratch warehouse's appeals into ``con``: the region's ids, keys with the region's prefix."""
    import pyarrow as pa

    chunk = scratch.sql("SELECT * FROM appeal").to_arrow_table()
    if chunk.num_rows == 0:
        return 0
    con.register("region_chunk", chunk)
    con.register("unit_map", pa.table({"old": list(units), "new": list(units.values())}))
    con.register("body_map", pa.table({"old": list(bodies) or [0], "new": list(bodies.values()) or [0]}))
    try:
        con.execute(
            """INSERT INTO appeal
               SELECT a.* REPLACE ($prefix || a.source_id AS source_id, um.new AS municipality_id,
                                   bm.new AS organisation_id, $prefix || a.repeat_of AS repeat_of,
                                   $prefix || a.duplicate_of AS duplicate_of, a.lat + $dlat AS lat,
                                   a.lon + $dlon AS lon, $import AS import_id)
               FROM region_chunk a JOIN unit_map um ON um.old = a.municipality_id
               LEFT JOIN body_map bm ON bm.old = a.organisation_id
               ORDER BY a.received_at""",
            {"prefix": prefix, "dlat": shift[0], "dlon": shift[1], "import": import_id},
        )
    finally:
        for name in ("region_chunk", "unit_map", "body_map"):
            con.unregister(name)
    return chunk.num_rows
