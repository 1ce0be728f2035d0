"""The pack's map as native shapes: each municipality a filled outline with its name and value.

PowerPoint has no choropleth chart type; a picture cannot be restyled or read by a screen reader
and takes a browser to render (seconds). So the map is drawn from the boundaries: the writers turn
each unit into a PowerPoint freeform (named after the unit, its fill editable) or a reportlab polygon,
from the same projected coordinates, colours and label positions built here.

Mercator projection (as the web map), larger units drawn first so that a city carved out of its
district lies on top of it; labels stay inside their unit where they can and move aside by a line
where they would cover a label already placed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from shapely.geometry import Point, Polygon, shape

from charts import figures
from metrics.indicators import Indicator
from report import layout

NAME_SIZE = 9.0  # points: a name and its value under it
LEGEND_W = 150.0  # points at the right of the map for the colour legend
BOX = (layout.BODY_W - LEGEND_W, layout.BODY_BOTTOM - layout.BODY_TOP - 24)  # 12 pt clear above and below  # the map's drawing area, points
STEPS = 5  # colour legend swatches
LABEL_INK = "#111111"
OUTSIDE_COLOUR = "#f1f1f1"  # a unit outside the filter or the scope: drawn, named, not coloured
PLATE_OPACITY = 0.6  # the white plate under a label: the unit's colour shows through


@dataclass
class Unit:
    name: str
    rings: list[list[tuple[float, float]]]  # outer rings in page points relative to the map box (y down)
    fill: str
    ink: str  # label colour (dark, on a translucent white plate: readable over any fill and the page)
    label: list[str]  # name, value
    at: tuple[float, float]  # label centre in the same points


@dataclass
class Choropleth:
    units: list[Unit]
    size: tuple[float, float]  # width, height of the drawn map in points (within BOX)
    legend: list[tuple[str, str]]  # (colour, text) from the highest to the lowest, then the greys
    title: str  # the indicator and its unit
    attribution: str | None = None  # the boundaries' licence credit (OSM: ODbL), printed under the map


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    lat = max(min(lat, 85.0), -85.0)
    return lon, math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def _colour(spec: Indicator, value: float, lo: float, hi: float) -> str:
    scale, reverse = figures.colour_scale(spec)
    if spec.kind == "growth":  # centred on 0, as the web map: a fall blue, a rise red
        bound = max(abs(lo), abs(hi)) or 1.0
        t = 0.5 + value / (2 * bound)
    else:
        t = (value - lo) / (hi - lo) if hi > lo else 0.5
        t = 1 - t if reverse else t
    return colour_at(scale, t)


def colour_at(scale: str, t: float) -> str:
    from plotly.colors import sample_colorscale, unlabel_rgb

    rgb = unlabel_rgb(sample_colorscale(scale, [min(max(t, 0.0), 1.0)])[0])
    return "#" + "".join(f"{int(round(c)):02x}" for c in rgb)


def build(geojson: dict, by_muni: pd.DataFrame, spec: Indicator,
          allowed: frozenset[int] | None = None) -> Choropleth | None:
    """The map of ``spec`` by municipality; None without boundaries. Units outside ``allowed`` (the
    user's scope) say «нет доступа», other units without a row (outside the filter) «—»."""
    features = [f for f in geojson.get("features", []) if f.get("geometry")]
    if not features:
        return None
    low = by_muni.get(f"{spec.code}_low", pd.Series(False, index=by_muni.index)).fillna(True).astype(bool)
    values = {mid: (None if is_low or pd.isna(v) else float(v))
              for mid, v, is_low in zip(by_muni["municipality_id"], by_muni.get(spec.code, np.nan), low, strict=True)}
    known = [v for v in values.values() if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)

    geoms = {f["id"]: shape(f["geometry"]) for f in features}
    projected = {}
    for key, geom in geoms.items():
        parts = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
        projected[key] = [[_mercator(x, y) for x, y in part.exterior.coords] for part in parts if not part.is_empty]
    xs = [p[0] for rings in projected.values() for ring in rings for p in ring]
    ys = [p[1] for rings in projected.values() for ring in rings for p in ring]
    x0, y1 = min(xs), max(ys)
    scale = min(BOX[0] / ((max(xs) - x0) or 1.0), BOX[1] / ((y1 - min(ys)) or 1.0))
    size = ((max(xs) - x0) * scale, (y1 - min(ys)) * scale)

    def to_box(p: tuple[float, float]) -> tuple[float, float]:
        return (p[0] - x0) * scale, (y1 - p[1]) * scale

    order = sorted(geoms, key=lambda k: -geoms[k].area)
    boxed = {k: [[to_box(p) for p in ring] for ring in projected[k]] for k in order}
    outlines = {k: [Polygon(r) for r in boxed[k] if len(r) >= 3] for k in order}
    units: list[Unit] = []
    placed: list[tuple[float, float, float, float]] = []
    fills: dict[object, str] = {}
    for key in order:
        value = values.get(key)
        if key not in values:  # outside the pack's municipality filter or the user's scope
            fills[key] = OUTSIDE_COLOUR
        else:
            fills[key] = figures.NO_DATA_COLOUR if value is None else _colour(spec, value, lo, hi)
    for key in order:
        feature = next(f for f in features if f["id"] == key)
        name = str(feature["properties"].get("name", ""))
        value = values.get(key)
        if key not in values:
            text = "нет доступа" if allowed is not None and int(key) not in allowed else "—"
        else:
            text = "мало данных" if value is None else spec.format(value)
        label = [name, text]
        largest = max(outlines[key], key=lambda g: g.area) if outlines[key] else None
        anchor = largest.representative_point() if largest is not None else Point(0, 0)
        at = _place(anchor.x, anchor.y, label, placed)
        units.append(Unit(name, boxed[key], fills[key], LABEL_INK, label, at))
    steps = STEPS if hi > lo else 1
    legend = [(_colour(spec, lo + (hi - lo) * i / max(steps - 1, 1), lo, hi),
               spec.format(lo + (hi - lo) * i / max(steps - 1, 1))) for i in reversed(range(steps))] if known else []
    outside = [k for k in order if k not in values]
    if any(allowed is None or int(k) in allowed for k in outside):
        legend.append((OUTSIDE_COLOUR, "— вне выборки"))
    if any(allowed is not None and int(k) not in allowed for k in outside):
        legend.append((OUTSIDE_COLOUR, "нет доступа"))
    legend.append((figures.NO_DATA_COLOUR, "мало данных"))
    return Choropleth(units, size, legend, spec.label, geojson.get("attribution"))


def label_size(label: list[str]) -> tuple[float, float]:
    width = max(layout.text_width(label[0], NAME_SIZE, True), layout.text_width(label[1], NAME_SIZE)) + 4
    return width, NAME_SIZE * 1.2 * len(label) + 2


def _place(x: float, y: float, label: list[str], placed: list[tuple[float, float, float, float]]
           ) -> tuple[float, float]:
    """The label's centre: at (x, y), or moved by up to a line and a half (and a third of its width)
    to the spot covering the least of the labels already placed; the chosen box joins ``placed``."""
    w, h = label_size(label)
    best, least = (x, y), math.inf
    for dy in (0.0, -0.6, 0.6, -1.1, 1.1, -1.6, 1.6, -2.2, 2.2):
        for dx in (0.0, 0.35, -0.35, 0.7, -0.7):
            cx, cy = x + dx * w, y + dy * h
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            overlap = sum(max(0.0, min(box[2], b[2]) - max(box[0], b[0]))
                          * max(0.0, min(box[3], b[3]) - max(box[1], b[1])) for b in placed)
            if overlap < least:
                best, least = (cx, cy), overlap
            if least == 0:
                break
        if least == 0:
            break
    cx, cy = best
    placed.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return best
