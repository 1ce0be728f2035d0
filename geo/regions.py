"""Boundaries of federal subjects for the country map (``python -m geo import-regions FILE``).

The file is read and checked like a municipal boundary file (``geo.boundaries.read_boundary_file``),
its features are matched to the warehouse's regions by ISO 3166-2 / ОКАТО code or by name
(``data.regions.RegionIndex``: «Татарстан» finds «Республика Татарстан»), and the matched shapes are
simplified to the same byte budget as a region's municipal map (``geo.simplify.simplify_region``).
They are kept in ``region_shape``, apart from the municipal shapes; subjects of the file the warehouse
does not hold are kept too, under negative ids, as the grey background of the country map (Russia
whole, the warehouse's regions coloured); the byte budget covers both.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import shapely
import shapely.affinity

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
    names = dict(index.names)
    for f in boundary.features:
        rid = index.match(f.name, f.code)
        if rid is None:
            unmatched.append(f.name)
            rid = -len(unmatched)  # background only
            names[rid] = f.name
        if f.geometry is not None:
            parts.setdefault(rid, []).append(f.geometry)
    if not any(rid > 0 for rid in parts):
        raise ValueError("ни один объект файла не совпал с регионами хранилища: "
                         f"в хранилище {', '.join(index.names.values()) or 'нет регионов'}")
    ids = sorted(parts)
    shapes = {rid: _east_of_antimeridian(shapely.union_all(parts[rid])) for rid in ids}
    simplified = simplify_region([shapes[i] for i in ids], ids, [names[i] for i in ids], False,
                                 max_bytes=max_bytes)
    text = attribution or boundary.attribution or GISLAB_ATTRIBUTION
    now = local_now(con)
    with transaction(con):
        con.execute("DELETE FROM region_shape")
        con.executemany(
            "INSERT INTO region_shape (region_id, geometry_wkb, simplified_geojson, source, updated_at, name) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [[i, shapely.to_wkb(shapes[i]), dumps(g), boundary.source, now, names[i]]
             for i, g in zip(ids, simplified.geometries, strict=True)])
        set_meta(con, ATTRIBUTION_KEY, text)
    return {
        "regions": sum(1 for i in ids if i > 0),
        "without_shape": sorted(set(index.names.values()) - {names[i] for i in ids if i > 0}),
        "not_in_warehouse": sorted(unmatched),
        "geojson_bytes": simplified.geojson_bytes,
        "tolerance_deg": simplified.tolerance,
        "over_budget": simplified.over_budget,
        "attribution": text,
    }


def _east_of_antimeridian(geom):  # noqa: ANN001, ANN202 - a shapely geometry
    """Chukotka lies across 180°: its parts west of −160° are moved by +360° so the subject is one
    piece on the map (and the map's frame does not span the globe)."""
    if geom.bounds[0] >= -160 or geom.bounds[2] <= 160:
        return geom
    pieces = [shapely.affinity.translate(p, xoff=360) if p.bounds[2] < -160 else p
              for p in getattr(geom, "geoms", [geom])]
    return shapely.MultiPolygon([q for p in pieces for q in getattr(p, "geoms", [p])])


def load_regions_geojson(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The federal subjects' FeatureCollection (feature id = region id); empty without stored shapes.

    Carries the ``attribution`` every map of these shapes must show and, as ``background``, the
    subjects the warehouse does not hold (grey, unnamed, no values)."""
    try:
        rows = con.execute(
            """SELECT s.region_id, coalesce(r.name, s.name), s.simplified_geojson FROM region_shape s
               LEFT JOIN region r ON r.id = s.region_id WHERE s.region_id < 0 OR r.id IS NOT NULL
               ORDER BY s.region_id""").fetchall()
    except duckdb.Error:  # a warehouse from before the region level
        rows = []

    def features(keep) -> list[dict]:  # noqa: ANN001 - a predicate on the id
        return [{"type": "Feature", "id": int(rid), "properties": {"name": name}, "geometry": json.loads(gj)}
                for rid, name, gj in rows if keep(rid)]

    collection = feature_collection(features(lambda rid: rid > 0))
    background = features(lambda rid: rid < 0)
    if background:
        collection["background"] = background
    if collection["features"]:
        collection["attribution"] = get_meta(con, ATTRIBUTION_KEY) or GISLAB_ATTRIBUTION
    return collection
