"""Unit names (and values) written on the pack's map picture: a choropleth has no native chart type,
so the map stays a picture, but a room must read which unit is which without hovering.

Local to the pack until ``charts.figures`` names units on every map; a figure that already carries a
text layer is left as it is.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from shapely.geometry import shape

from metrics.indicators import Indicator
from report import layout

NAME_SIZE = 10  # layout pixels on a 1400 × 640 picture rendered at scale 2


def _has_names(fig: go.Figure) -> bool:
    return any(t.type == "scattergeo" and "text" in (t.mode or "") for t in fig.data)


def label_points(geojson: dict) -> dict[object, tuple[float, float]]:
    """A point inside each unit (its largest part's representative point: a centroid can fall outside)."""
    points = {}
    for feature in geojson.get("features", []):
        geom = shape(feature["geometry"])
        if geom.is_empty:
            continue
        if geom.geom_type == "MultiPolygon":
            geom = max(geom.geoms, key=lambda g: g.area)
        point = geom.representative_point()
        points[feature["id"]] = (point.x, point.y)
    return points


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    return lon, math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def place_labels(points: dict[object, tuple[float, float]], texts: dict[object, str], order: list,
                 size: tuple[float, float], font: float) -> dict[object, tuple[float, float]]:
    """Each label's position (lon, lat): at its unit's point, or moved up or down by a line or two
    where it would cover a label already placed (larger units first keep their place). ``size`` is
    the map's drawing area in pixels, ``font`` the label size in pixels."""
    xy = {k: _mercator(*p) for k, p in points.items()}
    xs, ys = [v[0] for v in xy.values()], [v[1] for v in xy.values()]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    scale = min(size[0] / span_x, size[1] / span_y)  # pixels per projected degree (fitbounds)
    line = font * 1.25
    placed: list[tuple[float, float, float, float]] = []
    out = {}
    for key in order:
        x, y = xy[key][0] * scale, xy[key][1] * scale
        rows = texts[key].split("<br>")
        w = max(layout.text_width(r.replace("<b>", "").replace("</b>", ""), font, True) for r in rows) + 4
        h = line * len(rows)
        best, least = (0.0, 0.0), math.inf
        for dy in (0.0, 0.6, -0.6, 1.1, -1.1, 1.6, -1.6):
            for dx in (0.0, 0.35, -0.35):
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
        lat = math.degrees(2 * math.atan(math.exp(math.radians(cy / scale))) - math.pi / 2)
        out[key] = (cx / scale, lat)
    return out


def with_names(fig: go.Figure, geojson: dict, by_muni: pd.DataFrame, spec: Indicator,
               size: tuple[float, float] = (900.0, 560.0)) -> go.Figure:
    """``fig`` with each unit's name and value written at a point inside it (moved off a neighbour's
    label where they would overlap)."""
    if _has_names(fig) or not geojson.get("features"):
        return fig
    points = label_points(geojson)
    names = {f["id"]: f["properties"].get("name", "") for f in geojson["features"]}
    values = {}
    if spec.code in by_muni:
        low = by_muni.get(f"{spec.code}_low", pd.Series(False, index=by_muni.index)).fillna(True).astype(bool)
        for mid, value, is_low in zip(by_muni["municipality_id"], by_muni[spec.code], low, strict=True):
            values[mid] = "мало данных" if is_low else spec.format(value)
    ids = [i for i in names if i in points]
    texts = {i: f"<b>{names[i]}</b><br>{values.get(i, '—')}" for i in ids}
    areas = {f["id"]: shape(f["geometry"]).area for f in geojson["features"] if f["id"] in points}
    where = place_labels({i: points[i] for i in ids}, texts, sorted(ids, key=lambda i: -areas[i]), size, NAME_SIZE)
    fig.add_trace(go.Scattergeo(
        lon=[where[i][0] for i in ids], lat=[where[i][1] for i in ids], text=[texts[i] for i in ids], mode="text",
        textfont={"size": NAME_SIZE, "color": "#111111", "shadow": "0px 0px 3px #ffffff"}, hoverinfo="skip", showlegend=False,
    ))
    return fig
