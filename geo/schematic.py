"""Schematic demo boundaries: cells around the admin centres, clipped to a made-up outline.

The demo has no licensed boundaries, so the map draws a schematic that says so on
screen: every unit gets a cell around its admin centre inside a smooth outline built
from the points alone (sized to the units' total area; no real boundary is used).
Cells start as a Voronoi diagram; rounds of a power diagram (weights) with Lloyd steps
(generators drift to their cells' centroids) bring cell areas toward the units'
``area_km2`` while each admin centre stays inside its cell. Small urban okrugs (город
Смоленск, город Десногорск) are round-ish areas of their real size carved out of the
districts around them. Everything is computed in a local equal-area projection and is
deterministic: the same municipality table gives byte-identical shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from geo.simplify import clean_coverage, polygonal_part
from geo.store import replace_shapes, transaction

SOURCE = "schematic"
CITY_KIND = "городской округ"
# An urban okrug larger than this is mostly countryside (common since the 2020s reforms):
# it gets an ordinary cell instead of a small carved circle.
MAX_CARVED_CITY_KM2 = 600.0
DEFAULT_AREA_KM2 = 1000.0
_POWER_ITERATIONS = 40
_AREA_TOLERANCE = 0.02  # stop when every district is within 2 % of its area
_CITY_VERTICES = 72
_CENTRE_MARGIN_M = 2_000.0  # keep a generator at least this far inside its cell
_ANCHOR_MARGIN_M = 2_000.0  # and the admin centre as well


@dataclass(frozen=True)
class Unit:
    id: int
    name: str
    kind: str | None
    area_km2: float
    lon: float
    lat: float


def equal_area_crs(lon: float, lat: float) -> pyproj.CRS:
    """Lambert azimuthal equal-area centred on the region: true areas, small distortion."""
    return pyproj.CRS.from_proj4(
        f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs"
    )


def project(geom: BaseGeometry, transformer: pyproj.Transformer) -> BaseGeometry:
    """Reproject a geometry point by point (shared vertices stay shared)."""

    def func(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, func)


def _is_carved_city(unit: Unit) -> bool:
    return bool(unit.kind) and CITY_KIND in str(unit.kind).lower() and unit.area_km2 <= MAX_CARVED_CITY_KM2


def _outline(points: np.ndarray, areas_m2: np.ndarray) -> shapely.Polygon:
    """A smooth blob around the points whose area equals the units' total area.

    Union of discs (radius ∝ √area, so big districts reach further), closed by a
    buffer-out/buffer-in to fill the gaps between them; the disc scale is bisected to
    hit the total.
    """
    target = float(areas_m2.sum())
    radii = np.sqrt(areas_m2 / math.pi)
    closing = float(np.median(radii)) * 2.0

    def blob(scale: float) -> shapely.Polygon:
        discs = shapely.buffer(shapely.points(points), radii * scale, quad_segs=12)
        union = shapely.union_all(discs)
        distance = closing
        for _ in range(8):
            shape = union.buffer(distance, quad_segs=12).buffer(-distance, quad_segs=12)
            if shape.geom_type == "Polygon":
                return shapely.Polygon(shape.exterior)
            distance *= 1.5
        # Still in pieces (far-apart points): the hull keeps one region.
        return shapely.Polygon(union.convex_hull.buffer(closing, quad_segs=12).exterior)

    lo, hi = 0.3, 3.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if blob(mid).area < target:
            lo = mid
        else:
            hi = mid
    return blob(hi)


def _city_shape(unit_id: int, centre: np.ndarray, area_m2: float) -> shapely.Polygon:
    """A round-ish (not perfectly circular) polygon of exactly ``area_m2`` around ``centre``."""
    theta = np.linspace(0.0, 2 * math.pi, _CITY_VERTICES, endpoint=False)
    phase = (unit_id * 1.618034) % (2 * math.pi)
    wobble = 1 + 0.07 * np.sin(3 * theta + phase) + 0.04 * np.sin(5 * theta + 2 * phase)
    ring = np.column_stack([wobble * np.cos(theta), wobble * np.sin(theta)])
    unit_area = shapely.Polygon(ring).area
    scale = math.sqrt(area_m2 / unit_area)
    return shapely.Polygon(centre + ring * scale)


def _clip_half_plane(poly: np.ndarray, a: np.ndarray, b: float) -> np.ndarray:
    """Sutherland–Hodgman: the part of convex ``poly`` where ``a·x ≤ b``."""
    if len(poly) == 0:
        return poly
    side = poly @ a - b
    out: list[np.ndarray] = []
    n = len(poly)
    for k in range(n):
        p, q = poly[k], poly[(k + 1) % n]
        sp, sq = side[k], side[(k + 1) % n]
        if sp <= 0:
            out.append(p)
        if (sp <= 0) != (sq <= 0):
            out.append(p + (sp / (sp - sq)) * (q - p))
    return np.asarray(out) if out else np.empty((0, 2))


def _power_cells(
    points: np.ndarray, weights: np.ndarray, domain: BaseGeometry, frame: np.ndarray
) -> list[BaseGeometry]:
    """Cells {x : |x−pᵢ|² − wᵢ ≤ |x−pⱼ|² − wⱼ ∀j}, each clipped to ``domain``."""
    norms = (points**2).sum(axis=1)
    cells: list[BaseGeometry] = []
    for i in range(len(points)):
        poly = frame
        for j in range(len(points)):
            if j == i:
                continue
            a = 2 * (points[j] - points[i])
            b = norms[j] - norms[i] - weights[j] + weights[i]
            poly = _clip_half_plane(poly, a, b)
            if len(poly) == 0:
                break
        if len(poly) < 3:
            cells.append(shapely.Polygon())
            continue
        cells.append(shapely.Polygon(poly).intersection(domain))
    return cells


def _edge_distances(cells: Sequence[BaseGeometry], anchors: np.ndarray) -> np.ndarray:
    """Distance from each admin centre to its cell's edge; negative when outside the cell."""
    out = []
    for cell, p in zip(cells, anchors, strict=True):
        point = shapely.Point(p)
        inside = not cell.is_empty and cell.contains(point)
        out.append(cell.boundary.distance(point) if inside else -1.0)
    return np.asarray(out)


def _keep_centres_inside(weights: np.ndarray, sites: np.ndarray, passes: int = 200) -> np.ndarray:
    """Bound weight differences so every site stays inside its own cell, off its edges.

    Site i is in cell i iff wⱼ − wᵢ ≤ dᵢⱼ²; the bound dᵢⱼ² − 2·dᵢⱼ·margin keeps it a
    margin away from the shared edge. Pairwise projection (Gauss–Seidel) on these
    difference constraints; zero weights always satisfy them, so it settles.
    """
    w = weights - weights.mean()
    delta = sites[None, :, :] - sites[:, None, :]
    dist = np.hypot(delta[..., 0], delta[..., 1])
    margin = np.minimum(_CENTRE_MARGIN_M, 0.1 * dist)
    bound = dist**2 - 2 * dist * margin
    np.fill_diagonal(bound, np.inf)
    for _ in range(passes):
        # Find the violated pairs with numpy, fix them one by one with current values.
        violated = np.argwhere(w[None, :] - w[:, None] - bound > 1.0)
        if len(violated) == 0:
            break
        for i, j in violated:
            excess = w[j] - w[i] - bound[i, j]
            if excess > 0:
                w[j] -= excess / 2
                w[i] += excess / 2
    return w - w.mean()


def _reassign_orphans(cells: list[BaseGeometry], points: np.ndarray) -> list[BaseGeometry]:
    """Pieces of a cell cut off from its admin centre go to the neighbour they touch most."""
    cells = list(cells)
    for i, cell in enumerate(cells):
        if cell.geom_type != "MultiPolygon":
            continue
        own = shapely.Point(points[i])
        for piece in list(cell.geoms):
            if piece.contains(own):
                continue
            touch = [
                (piece.buffer(1.0).intersection(other).area if j != i else -1.0, j)
                for j, other in enumerate(cells)
            ]
            best_area, best = max(touch)
            if best_area <= 0:
                continue
            cells[best] = cells[best].union(piece)
            cells[i] = cells[i].difference(piece)
    return cells


def _separate(points: np.ndarray, min_gap: float) -> np.ndarray:
    """Nudge coincident generator points apart: a power diagram needs distinct sites."""
    points = points.copy()
    for i in range(len(points)):
        for j in range(i):
            if np.hypot(*(points[i] - points[j])) < min_gap:
                angle = 2 * math.pi * ((i * 0.381966) % 1.0)
                points[i] = points[j] + min_gap * np.array([math.cos(angle), math.sin(angle)])
    return points


def schematic_geometries(units: Sequence[Unit]) -> tuple[dict[int, BaseGeometry], dict[str, Any]]:
    """Schematic shapes (EPSG:4326) by unit id, and numbers describing the fit."""
    if not units:
        raise ValueError("нет муниципалитетов с координатами для схемы")
    lon0 = float(np.mean([u.lon for u in units]))
    lat0 = float(np.mean([u.lat for u in units]))
    crs = equal_area_crs(lon0, lat0)
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_wgs84 = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    xs, ys = to_metric.transform([u.lon for u in units], [u.lat for u in units])
    points = np.column_stack([xs, ys])
    areas = np.array([u.area_km2 for u in units]) * 1e6

    outline = _outline(points, areas)
    carved = [i for i, u in enumerate(units) if _is_carved_city(u)]
    if len(carved) == len(units):
        carved = []  # a region of cities only: ordinary cells for all
    districts = [i for i in range(len(units)) if i not in carved]

    shapes: dict[int, BaseGeometry] = {}
    taken = shapely.Polygon()
    for i in carved:
        city = _city_shape(units[i].id, points[i], float(areas[i])).intersection(outline).difference(taken)
        shapes[i] = city
        taken = taken.union(city)
    domain = outline.difference(taken)

    sites = points[districts].copy()
    # A district whose admin centre is the city itself (Смоленский район) would have its
    # site inside the carved hole: move the site just outside the city.
    for k, i in enumerate(districts):
        for c in carved:
            radius = math.sqrt(areas[c] / math.pi)
            offset = sites[k] - points[c]
            distance = float(np.hypot(*offset))
            if distance < 1.5 * radius:
                angle = 2 * math.pi * ((units[i].id * 0.618034) % 1.0)
                direction = (
                    offset / distance if distance > 1.0 else np.array([math.cos(angle), math.sin(angle)])
                )
                sites[k] = points[c] + direction * 1.5 * radius
    sites = _separate(sites, min_gap=2_000.0)
    targets = areas[districts]

    xmin, ymin, xmax, ymax = outline.bounds
    pad = max(xmax - xmin, ymax - ymin)
    frame = np.array(
        [
            [xmin - pad, ymin - pad],
            [xmax + pad, ymin - pad],
            [xmax + pad, ymax + pad],
            [xmin - pad, ymax + pad],
        ]
    )

    # Generators start at the admin centres and drift toward their cells' centroids
    # (a few Lloyd steps make cells compact); the admin centre itself must stay inside.
    anchors = sites.copy()
    reach = 0.4 * np.sqrt(targets / math.pi)
    weights = np.zeros(len(districts))
    cells = _power_cells(sites, weights, domain, frame)
    # A centre may start closer to the edge than the margin (near the outline): it must
    # only not get closer.
    min_edge = np.minimum(_ANCHOR_MARGIN_M, 0.9 * _edge_distances(cells, anchors))
    steps = np.ones(len(districts))
    iterations = 0
    for _ in range(_POWER_ITERATIONS):
        cell_areas = np.array([c.area for c in cells])
        if np.max(np.abs(cell_areas - targets) / targets) < _AREA_TOLERANCE or steps.max() < 1 / 64:
            break
        centroids = np.array([[c.centroid.x, c.centroid.y] for c in cells])
        moved = sites + 0.5 * steps[:, None] * (centroids - sites)
        offset = moved - anchors
        length = np.maximum(np.hypot(offset[:, 0], offset[:, 1]), 1e-9)
        moved = anchors + offset * np.minimum(1.0, reach / length)[:, None]
        trial_weights = _keep_centres_inside(weights + steps * (targets - cell_areas) / math.pi, moved)
        trial = _power_cells(moved, trial_weights, domain, frame)
        bad = _edge_distances(trial, anchors) < min_edge
        if not bad.any():
            sites, weights, cells = moved, trial_weights, trial
            iterations += 1
            continue
        # The update pushed a centre out of (or onto the edge of) its cell: smaller steps
        # for that unit and its neighbours, full speed elsewhere.
        near = bad.copy()
        for k in np.flatnonzero(bad):
            near |= shapely.dwithin(np.asarray(cells, dtype=object), cells[k], 1.0)
        steps[near] /= 2

    cells = _reassign_orphans(cells, anchors)
    for k, i in enumerate(districts):
        shapes[i] = cells[k]

    order = list(range(len(units)))
    metric = clean_coverage([polygonal_part(shapes[i]) or shapely.Polygon() for i in order])
    wgs84 = [project(g, to_wgs84) for g in metric]
    if len(wgs84) > 1 and not shapely.coverage_is_valid(np.asarray(wgs84, dtype=object)):
        wgs84 = clean_coverage(wgs84)
    result = {units[i].id: wgs84[i] for i in order}
    errors = [abs(g.area - areas[i]) / areas[i] for i, g in zip(order, metric, strict=True)]
    stats = {
        "outline_km2": round(outline.area / 1e6, 1),
        "target_km2": round(float(areas.sum()) / 1e6, 1),
        "carved_cities": [units[i].name for i in carved],
        "power_iterations": iterations,
        "max_area_error": round(float(max(errors)), 4),
    }
    return result, stats


def _units(con: duckdb.DuckDBPyConnection) -> tuple[list[Unit], list[str]]:
    rows = con.execute("SELECT id, name, kind, area_km2, lon, lat FROM municipality ORDER BY id").fetchall()
    known = [float(r[3]) for r in rows if r[3] and r[3] > 0]
    fallback = float(np.median(known)) if known else DEFAULT_AREA_KM2
    units: list[Unit] = []
    skipped: list[str] = []
    for mid, name, kind, area, lon, lat in rows:
        if lon is None or lat is None:
            skipped.append(name)
            continue
        units.append(
            Unit(int(mid), name, kind, float(area) if area and area > 0 else fallback, float(lon), float(lat))
        )
    return units, skipped


def build_schematic_shapes(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Build and store schematic shapes for every municipality with coordinates.

    Replaces all stored shapes (``is_schematic = TRUE``, source 'schematic') and sets
    meta ``geometry_kind`` = 'schematic'. Returns stats; units without coordinates are
    listed under ``skipped``.
    """
    units, skipped = _units(con)
    shapes, stats = schematic_geometries(units)
    with transaction(con):
        stored = replace_shapes(con, shapes, is_schematic=True, source=SOURCE, geometry_kind="schematic")
    return {**stored, **stats, "skipped": skipped}


def store_schematic_shapes(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Entry point for the demo builder: same as :func:`build_schematic_shapes`."""
    return build_schematic_shapes(con)
