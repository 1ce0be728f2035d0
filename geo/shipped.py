"""Boundaries shipped with the project: the demo region's real municipal shapes.

``geo/data/smolensk_osm.geojson`` is a simplified copy of the OpenStreetMap admin-level-6
boundaries of Смоленская область (© участники OpenStreetMap, ODbL 1.0, see
``geo/data/ATTRIBUTION.md``), written by :func:`write_simplified_copy`. The demo loads it
through the ordinary import, so the demo map is the one a real region gets; the schematic
cells are only the fallback when the file is missing or its units do not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from shapely.geometry import shape

from geo.simplify import clean_coverage, dumps, is_coverage, simplify_region

DATA_DIR = Path(__file__).resolve().parent / "data"
SMOLENSK_OSM = DATA_DIR / "smolensk_osm.geojson"
# The copy is smaller than the map's budget, so the import keeps it as it is (tolerance 0):
# the warehouse's longer names and extra properties must still fit.
SHIPPED_BUDGET = 240_000


def write_simplified_copy(
    source: str | Path,
    out: str | Path,
    *,
    max_bytes: int = SHIPPED_BUDGET,
    attribution: str | None = None,
    license: str | None = None,
) -> dict[str, Any]:
    """Write a simplified, topology-kept copy of a boundary file (GeoJSON, EPSG:4326).

    Properties kept: the name field and the code field of the source as ``name``/``oktmo``;
    ``source``/``license`` carry the attribution so the import recognises an OSM copy.
    """
    from geo.boundaries import read_boundary_file

    boundary = read_boundary_file(source, attribution=attribution)
    usable = [f for f in boundary.features if f.geometry is not None]
    geoms = clean_coverage([f.geometry for f in usable])
    region = simplify_region(geoms, list(range(len(usable))), [f.name for f in usable], False, max_bytes=max_bytes)
    properties_extra: dict[str, str] = {}
    if boundary.attribution:
        properties_extra["source"] = "OpenStreetMap" if boundary.license else boundary.attribution
    if boundary.license:
        properties_extra["license"] = boundary.license
    features = []
    for f, geometry in zip(usable, region.geometries, strict=True):
        props: dict[str, Any] = {"name": f.name, **properties_extra}
        if f.code:
            props["oktmo"] = f.code
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    text = dumps({"type": "FeatureCollection", "features": features})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text + "\n", encoding="utf-8")
    shapes = [shape(g) for g in region.geometries]
    return {
        "out": str(out),
        "features": len(features),
        "bytes": len(text.encode("utf-8")) + 1,
        "tolerance_deg": region.tolerance,
        "coverage_valid": is_coverage(np.asarray(shapes, dtype=object)),
        "attribution": boundary.attribution,
    }


def load_demo_boundaries(con: duckdb.DuckDBPyConnection, path: Path = SMOLENSK_OSM) -> dict[str, Any]:
    """Store the shipped real boundaries for the demo's units; the schematic cells when that fails.

    Falls back when the file is absent or does not give every unit of the warehouse a shape
    (a region other than the shipped one). Runs inside the caller's transaction.
    """
    from geo.schematic import store_schematic_shapes

    # the demo region's own units: a multi-region demo's further regions have no shipped boundaries
    units = con.execute("SELECT count(*) FROM municipality WHERE coalesce(region_id, 1) = 1").fetchall()[0][0]
    if path.is_file():
        from geo.boundaries import BoundaryError, apply_boundaries, read_boundary_file

        try:
            boundary = read_boundary_file(path)
        except BoundaryError:
            boundary = None
        if boundary is not None and _matches_all(con, boundary, units):
            report = apply_boundaries(con, boundary)
            return {"kind": "osm", "shapes": units, "geojson_bytes": report["geojson_bytes"],
                    "attribution": report["attribution"]}
    stored = store_schematic_shapes(con)
    return {"kind": "schematic", **stored}


def _matches_all(con: duckdb.DuckDBPyConnection, boundary: Any, units: int) -> bool:
    from geo.boundaries import _Units

    known = _Units.load(con)
    matched = {known.find(f.name, f.code) for f in boundary.features if f.geometry is not None}
    matched.discard(None)
    return units > 0 and len(matched) == units and len(boundary.features) == units

