"""Boundaries of federal subjects for the country map (``python -m geo import-regions FILE``).

The file is read and checked like a municipal boundary file (``geo.boundaries.read_boundary_file``),
its features are matched to the warehouse's regions by ISO 3166-2 / ОКАТО code or by name
(``data.regions.RegionIndex``: «Татарстан» finds «Республика Татарстан»), and the matched shapes are
simplified to the same byte budget as a region's municipal map (``geo.simplify.simplify_region``).
They are kept in ``region_shape``, apart from the municipal shapes; features of subjects the
warehouse does not hold are reported and left out.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import shapely

from data.regions import RegionIndex, ensure_regions
from data.warehouse import get_meta, set_meta
from geo.boundaries import BoundaryFile
from geo.simplify import MAX_GEOJSON_BYTES, dumps, feature_collection, simplify_region
from geo.store import local_now, transaction

# the federal-subject file's source (GIS-Lab, from OpenStreetMap; ODbL), shown on every country map
GISLAB_ATTRIBUTION = "© участники OpenStreetMap, GIS-Lab"
ATTRIBUTION_KEY = "region_geometry_attribution"


def apply_region_boundaries(con: duckdb.DuckDBPyConnection, boundary: BoundaryFile, attribution: str | None = None,
                            max_bytes: int = MAX_GEOJSON_BYTES) -> dict[str, Any]:
    """Replace the stored federal-subject shapes with the file's matched ones; returns the report."""
    ensure_regions(con)
    index = RegionIndex(con)
    parts: dict[int, list] = {}
    unmatched: list[str] = []
    for f in boundary.features:
        rid = index.match(f.name, f.code)
        if rid is None:
            unmatched.append(f.name)
        elif f.geometry is not None:
            parts.setdefault(rid, []).append(f.geometry)
    if not parts:
        raise ValueError("ни один объект файла не совпал с регионами хранилища: "
                         f"в хранилище {', '.join(index.names.values()) or 'нет регионов'}")
    ids = sorted(parts)
    shapes = {rid: shapely.union_all(parts[rid]) for rid in ids}
    simplified = simplify_region([shapes[i] for i in ids], ids, [index.names[i] for i in ids], False,
                                 max_bytes=max_bytes)
    text = attribution or boundary.attribution or GISLAB_ATTRIBUTION
    now = local_now(con)
    with transaction(con):
        con.execute("DELETE FROM region_shape")
        con.executemany("INSERT INTO region_shape VALUES (?, ?, ?, ?, ?)",
                        [[i, shapely.to_wkb(shapes[i]), dumps(g), boundary.source, now]
                         for i, g in zip(ids, simplified.geometries, strict=True)])
        set_meta(con, ATTRIBUTION_KEY, text)
    return {
        "regions": len(ids),
        "without_shape": sorted(set(index.names.values()) - {index.names[i] for i in ids}),
        "not_in_warehouse": sorted(unmatched),
        "geojson_bytes": simplified.geojson_bytes,
        "tolerance_deg": simplified.tolerance,
        "over_budget": simplified.over_budget,
        "attribution": text,
    }


def load_regions_geojson(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The federal subjects' FeatureCollection (feature id = region id); empty without stored shapes.

    Carries the ``attribution`` every map of these shapes must show."""
    try:
        rows = con.execute(
            """SELECT s.region_id, r.name, s.simplified_geojson FROM region_shape s
               JOIN region r ON r.id = s.region_id ORDER BY s.region_id""").fetchall()
    except duckdb.CatalogException:  # a warehouse from before the region level
        rows = []
    collection = feature_collection([
        {"type": "Feature", "id": int(rid), "properties": {"name": name}, "geometry": json.loads(gj)}
        for rid, name, gj in rows])
    if rows:
        collection["attribution"] = get_meta(con, ATTRIBUTION_KEY) or GISLAB_ATTRIBUTION
    return collection
