"""Topology-preserving simplification of the region's boundaries and their GeoJSON form.

The map ships the whole region as one GeoJSON FeatureCollection to the browser, so its
size is budgeted (``MAX_GEOJSON_BYTES``). Neighbours must keep sharing their edges after
simplification, otherwise the map shows white slivers between municipalities: the
units are simplified together as a polygonal coverage (``shapely.coverage_simplify``,
after ``shapely.coverage_clean`` when the input's shared edges do not match exactly),
never one by one. Only if GEOS refuses the coverage does it fall back to simplifying
each unit with ``preserve_topology`` (valid units, possible thin slivers between them);
the result then reports ``method="simplify_per_geometry"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

MAX_GEOJSON_BYTES = 300_000
COORD_DECIMALS = 5  # 1e-5° ≈ 1 m: finer than any screen, coarse enough to keep the JSON short
GRID = 10.0**-COORD_DECIMALS
_SEARCH_STEPS = 14
# Gaps narrower than this (≈ 10 m) are digitising noise between neighbours, not territory: they
# are given to the adjacent unit. Left open, two almost-coincident borders block each other's
# simplification (LA's neighbourhood councils stayed at 413 KB at any tolerance).
GAP_WIDTH_DEG = 1e-4


@dataclass(frozen=True)
class SimplifiedRegion:
    """Per-unit GeoJSON geometries (input order) and how they were obtained."""

    geometries: list[dict[str, Any]]
    tolerance: float  # degrees; 0 when the rounded full geometry already fits the budget
    geojson_bytes: int
    method: str  # "none" | "coverage_simplify" | "simplify_per_geometry"
    coverage_valid: bool
    over_budget: bool


def dumps(obj: Any) -> str:
    """Compact JSON, the one serialisation used for both measuring and serving."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def feature(municipality_id: int, name: str, is_schematic: bool, geometry: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": int(municipality_id),
        "properties": {
            "municipality_id": int(municipality_id),
            "name": name,
            "is_schematic": bool(is_schematic),
        },
        "geometry": geometry,
    }


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def geojson_bytes(obj: Any) -> int:
    return len(dumps(obj).encode("utf-8"))


def polygonal_part(geom: BaseGeometry | None) -> BaseGeometry | None:
    """Only the (Multi)Polygon part of a geometry, or None when nothing areal is left."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
        polys = [q for p in parts for q in shapely.get_parts(p) if not q.is_empty and q.area > 0]
        if not polys:
            return None
        return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    return None


def clean_coverage(geoms: Sequence[BaseGeometry], gap_width: float = GAP_WIDTH_DEG) -> list[BaseGeometry]:
    """Make the units an exact coverage: shared edges with identical vertices, no overlaps,
    no slivers of gap narrower than ``gap_width`` between neighbours.

    Real files often have sub-metre overlaps or unmatched vertices along shared borders;
    ``coverage_simplify`` would turn those into visible gaps. Overlaps go to the smaller
    unit (``min_area``), which is also right for a city drawn on top of its district
    without a hole. A cleaning that loses a unit falls back to the input.
    """
    arr = np.asarray(list(geoms), dtype=object)
    if len(arr) < 2:
        return list(arr)
    try:
        cleaned = shapely.coverage_clean(arr, gap_width=gap_width, merge_strategy="min_area")
    except shapely.errors.GEOSException:
        return list(arr)
    out: list[BaseGeometry] = []
    for original, new in zip(arr, cleaned, strict=True):
        poly = polygonal_part(new)
        if poly is None or not poly.is_valid:
            return list(arr)
        out.append(poly if poly.area > 0 else original)
    return out


def _polygon_coords(poly: shapely.Polygon) -> list[list[list[float]]]:
    rings = [poly.exterior, *poly.interiors]
    # np.round gives floats whose repr is the short decimal (checked: no 0.30000000000000004).
    return [np.round(shapely.get_coordinates(r), COORD_DECIMALS).tolist() for r in rings]


def to_geojson_geometry(geom: BaseGeometry) -> dict[str, Any]:
    """GeoJSON geometry with coordinates rounded to ``COORD_DECIMALS``; rings as given."""
    if geom.geom_type == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon_coords(geom)}
    if geom.geom_type == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [_polygon_coords(p) for p in geom.geoms]}
    raise ValueError(f"ожидался полигон, получено {geom.geom_type}")


def _snap(geoms: np.ndarray) -> np.ndarray:
    try:
        snapped = shapely.set_precision(geoms, GRID)
    except shapely.errors.GEOSException:
        snapped = geoms  # coordinates are still rounded when written out
    fixed = []
    for before, after in zip(geoms, snapped, strict=True):
        poly = polygonal_part(after)
        # A unit thinner than the grid would vanish: keep its unsnapped shape instead.
        fixed.append(poly if poly is not None else before)
    return np.asarray(fixed, dtype=object)


def is_coverage(geoms: Sequence[BaseGeometry] | np.ndarray) -> bool:
    """Valid units that neither overlap nor leave mismatched shared edges (what the map needs)."""
    arr = np.asarray(list(geoms), dtype=object)
    if not all(g.is_valid for g in arr):
        return False
    return len(arr) < 2 or bool(shapely.coverage_is_valid(arr))


def _round(geoms: np.ndarray) -> np.ndarray:
    """Coordinates exactly as written out (``COORD_DECIMALS``), so validity is checked on what is served."""
    out = []
    for geom in geoms:
        rounded = shapely.transform(geom, lambda xy: np.round(xy, COORD_DECIMALS))
        out.append(rounded if rounded.is_valid else geom)
    return np.asarray(out, dtype=object)


def _finish(geoms: np.ndarray) -> np.ndarray:
    """Snap to the output grid (keeping the coverage) and orient rings clockwise for Plotly.

    Snapping each unit on its own can move a node off a neighbour's edge by one grid step;
    then the snapped set is cleaned once more on the grid (no snapping tolerance, so nothing
    else moves) and snapped again.
    """
    snapped = _round(_snap(geoms))
    if len(snapped) > 1 and not is_coverage(snapped):
        for snapping in (0.0, GRID):
            try:
                again = shapely.coverage_clean(snapped, snapping_distance=snapping, merge_strategy="min_area")
            except shapely.errors.GEOSException:
                continue
            parts = [polygonal_part(g) for g in again]
            if any(p is None for p in parts):
                continue
            resnapped = _round(_snap(np.asarray(parts, dtype=object)))
            if is_coverage(resnapped):
                snapped = resnapped
                break
    return shapely.orient_polygons(snapped, exterior_cw=True)


def _simplify(geoms: np.ndarray, tolerance: float) -> tuple[np.ndarray, str]:
    if tolerance <= 0:
        return geoms, "none"
    try:
        return np.asarray(shapely.coverage_simplify(geoms, tolerance), dtype=object), "coverage_simplify"
    except shapely.errors.GEOSException:
        # Fallback for input GEOS refuses as a coverage: each outline on its own keeps every
        # unit valid, but neighbours may show slivers up to ``tolerance`` wide.
        return np.asarray(shapely.simplify(geoms, tolerance, preserve_topology=True), dtype=object), (
            "simplify_per_geometry"
        )


def simplify_region(
    geoms: Sequence[BaseGeometry],
    ids: Sequence[int],
    names: Sequence[str],
    is_schematic: bool,
    max_bytes: int = MAX_GEOJSON_BYTES,
) -> SimplifiedRegion:
    """Simplify the coverage with the smallest tolerance whose FeatureCollection fits ``max_bytes``.

    Size grows monotonically (near enough) as tolerance shrinks, so the tolerance is found
    by doubling from a small start and bisecting on a log scale.
    """
    base = np.asarray(list(geoms), dtype=object)
    if len(base) == 0:
        return SimplifiedRegion([], 0.0, geojson_bytes(feature_collection([])), "none", True, False)

    def attempt(tolerance: float) -> tuple[list[dict[str, Any]], int, str, np.ndarray]:
        simplified, method = _simplify(base, tolerance)
        finished = _finish(simplified)
        geometries = [to_geojson_geometry(g) for g in finished]
        fc = feature_collection(
            [feature(i, n, is_schematic, g) for i, n, g in zip(ids, names, geometries, strict=True)]
        )
        return geometries, geojson_bytes(fc), method, finished

    best = attempt(0.0)
    tolerance = 0.0
    over_budget = False
    if best[1] > max_bytes:
        xmin, ymin, xmax, ymax = shapely.total_bounds(base)
        diagonal = math.hypot(xmax - xmin, ymax - ymin) or 1.0
        lo, hi = 0.0, diagonal * 1e-5
        trial = attempt(hi)
        while trial[1] > max_bytes and hi < diagonal:
            lo, hi = hi, hi * 2
            trial = attempt(hi)
        best = trial
        over_budget = trial[1] > max_bytes
        if not over_budget:
            for _ in range(_SEARCH_STEPS):
                if lo > 0 and hi / lo < 1.03:
                    break
                mid = math.sqrt(lo * hi) if lo > 0 else hi / 2
                trial = attempt(mid)
                if trial[1] <= max_bytes:
                    hi, best = mid, trial
                else:
                    lo = mid
        tolerance = hi
    geometries, size, method, finished = best
    valid = is_coverage(finished)
    if not valid and not over_budget:
        # Rare: the grid snap left a mismatched node at this tolerance. A slightly coarser
        # one (smaller, so still within the budget) usually ends the mismatch.
        base_tolerance = tolerance or GRID
        for factor in (1.1, 1.25, 1.5, 2.0, 3.0):
            trial = attempt(base_tolerance * factor)
            if trial[1] <= max_bytes and is_coverage(trial[3]):
                geometries, size, method, finished = trial
                tolerance, valid = base_tolerance * factor, True
                break
    return SimplifiedRegion(geometries, tolerance, size, method, valid, over_budget)
