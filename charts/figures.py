"""Figure builders: pure functions from a metrics DataFrame to a Plotly figure. No data access here.

A figure is plain data — ``{"data": [trace, ...], "layout": {...}}``, what plotly.js draws and what
``go.Figure(...).to_plotly_json()`` would give — not a ``plotly.graph_objects.Figure``: building and
validating graph objects cost several times the queries behind a page (issue 18, callback p99 under
load). Every value is set as Plotly's validators would have coerced it (named colour scales as
their colour lists, the default template in the layout), so the browser draws the same chart.
``go.Figure(fig)`` turns one into a graph object where one is wanted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from metrics.indicators import Indicator
from metrics.periods import INCOMPLETE, UNSETTLED

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# One colour language: darker = worse for judged indicators, a neutral blue for "how much",
# a diverging scale for growth. All are colour-blind-safe sequential/diverging ColorBrewer scales.
SCALE_WORSE_HIGH = "OrRd"
SCALE_NEUTRAL = "Blues"
SCALE_DIVERGING = "RdBu_r"
NO_DATA_COLOUR = "#d9d9d9"

Figure = dict[str, Any]  # {"data": [...], "layout": {...}}: see the module's docstring


@cache
def _template(name: str) -> dict:
    return pio.templates[name].to_plotly_json()


def figure(data: list[dict], layout: dict) -> Figure:
    """A figure with Plotly's default template, as every ``go.Figure`` carries it (the same look)."""
    return {"data": data, "layout": {"template": _template(pio.templates.default), **layout}}


@cache
def _named_scale(name: str) -> tuple[tuple[float, str], ...]:
    # plotly.js knows few scale names and not ours («OrRd», «RdBu_r»): send the colours, as go.Figure does
    return tuple(tuple(step) for step in go.Choropleth(colorscale=name).to_plotly_json()["colorscale"])


def plotly_scale(scale: str | list) -> list:
    """A colour scale as plotly.js takes it: a name resolved to its [position, colour] steps."""
    steps = _named_scale(scale) if isinstance(scale, str) else scale
    return [list(step) for step in steps]


def _dates(values: pd.Series | pd.Index) -> np.ndarray:
    """Dates for an axis, as numpy datetimes (serialised to ISO strings like graph objects do)."""
    return pd.to_datetime(values).to_numpy()


def _plotly_locale() -> dict:
    # plotly.js ships English only; the Russian dictionary comes from plotly.js-locales (assets/locale)
    return json.loads((ASSETS / "locale" / "plotly_ru.json").read_text(encoding="utf-8"))


# Buttons that do nothing useful on these charts (no selection callbacks) or talk to an outside
# service; zoom, pan, reset and the PNG/SVG downloads stay.
MODEBAR_REMOVED = ("sendDataToCloud", "editInChartStudio", "lasso2d", "select2d", "toggleSpikelines",
                   "hoverClosestGeo", "hoverClosestCartesian", "hoverCompareCartesian")


def graph_config(filename: str) -> dict:
    """Config for every dcc.Graph: Russian texts, local topojson (no CDN), slide-quality export."""
    return {
        "locale": "ru",
        "locales": {"ru": _plotly_locale()},
        "topojsonURL": "/assets/topojson/",
        "displaylogo": False,
        # a closed government network: no button may talk to Plotly's cloud (Chart Studio)
        "showSendToCloud": False,
        "showEditInChartStudio": False,
        "modeBarButtonsToRemove": list(MODEBAR_REMOVED),
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2, "width": 1600, "height": 900},
    }


# Characters no file system accepts (Windows is the strictest), control characters, and the
# separators of our titles; Cyrillic stays: every current browser and OS handles it in file names.
_ILLEGAL_IN_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_SEPARATORS = re.compile(r"[\s·—–,;«»]+")


def export_filename(*parts: object) -> str:
    """A file name (without extension) from indicator, filters and period: «Доля_ответов_в_срок_ЖКХ_2025-10»."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    text = _SEPARATORS.sub("_", _ILLEGAL_IN_FILENAME.sub(" ", text))
    text = re.sub(r"_+", "_", text).strip("._ ")
    return text[:120].rstrip("._ ") or "график"


def data_note(filters: str, as_of: dt.datetime) -> str:
    """The line an exported chart carries under its title: filters and the data date."""
    return f"{filters} · данные на {as_of:%d.%m.%Y %H:%M}" if filters else f"данные на {as_of:%d.%m.%Y %H:%M}"


def mark_export(fig: Figure, filename: str, note: str) -> Figure:
    """Name the figure's PNG/SVG downloads and put filters and data date under its title.

    assets/chart_export.js reads ``layout.meta.export_filename`` for both modebar buttons; the
    subtitle travels with the figure into every export (PNG, SVG, the meeting pack).
    """
    layout = fig["layout"]
    title = dict(layout.get("title") or {})
    margin = dict(layout.get("margin") or {})
    margin["t"] = (margin.get("t") or 48) + (22 if title.get("text") else 30)
    title["subtitle"] = {"text": note, "font": {"size": 12, "color": "#555555"}}
    layout.update(meta={"export_filename": filename}, title=title, margin=margin)
    return fig


def colour_scale(spec: Indicator) -> tuple[str, bool]:
    """(Plotly colour scale, reversed?) so that worse values are always darker / redder."""
    if spec.kind == "growth":
        return SCALE_DIVERGING, False
    if spec.higher_is_better is None:
        return SCALE_NEUTRAL, False
    return SCALE_WORSE_HIGH, bool(spec.higher_is_better)


def _display_values(spec: Indicator, values: pd.Series) -> pd.Series:
    return values * 100 if spec.number_format.endswith("%") else values


def _tick_suffix(spec: Indicator) -> str:
    return " %" if spec.number_format.endswith("%") else ""


@dataclass(frozen=True)
class MapReference:
    """The value a share is judged against on a map: its target, else the region's own value.

    ``value`` in the indicator's units (a share as 0–1); ``label`` «цель» or «по региону»."""

    value: float
    label: str


NO_ACCESS = "нет доступа"
LOW_DATA = "мало данных"
# How big the drawn map is, in CSS pixels, for fitting the unit names: the web heat map (7 of 12
# columns at 1920 px, 560 px high); the wall and the pack pass their own.
WEB_MAP_SIZE = (1100, 560)
WEB_LABEL_FONT = (9.0, 14.0)  # smallest legible, largest useful name size in px
LABEL_CHAR_EM = 0.56  # average width of a Cyrillic letter of the system sans-serif, in em
LABEL_LINE_EM = 1.2
LABEL_ROOM = 0.9  # of the room inside a unit a name may take: a margin to its borders


def colour_range(spec: Indicator, shown: pd.Series,
                 reference: MapReference | None = None) -> tuple[float | None, float | None, float | None]:
    """(zmin, zmid, zmax) of a map or matrix in display units.

    Growth diverges around 0 and a share with a reference around that reference, symmetric so that
    the neutral colour is exactly the midpoint («−12 %» is never painted as a rise); other indicators
    keep Plotly's own range (None)."""
    if spec.kind == "growth":
        mid = 0.0
    elif reference is not None:
        mid = float(_display_values(spec, pd.Series([reference.value])).iloc[0])
    else:
        return None, None, None
    values = shown.dropna().astype("float64")
    half = float((values - mid).abs().max()) if len(values) else 0.0
    if not np.isfinite(half) or half <= 0:
        half = 1.0
    return mid - half, mid, mid + half


def _diverging(spec: Indicator, wall: bool = False) -> tuple[str | list, bool]:
    """A diverging scale whose red end is the worse side: a rise for growth, a share below its reference."""
    scale = WALL_SCALE_DIVERGING if wall else SCALE_DIVERGING
    return scale, bool(spec.higher_is_better)


def choropleth(df: pd.DataFrame, geojson: dict, spec: Indicator, title: str,
               geojson_url: str | None = None, *, reference: MapReference | None = None,
               allowed: Collection[int] | None = None, names: bool = True,
               size: tuple[int, int] = WEB_MAP_SIZE, label_font: tuple[float, float] = WEB_LABEL_FONT,
               selectable: bool = False, selected: int | None = None) -> Figure:
    """The map with names: municipalities coloured by one indicator, each labelled where it fits.

    The one map builder of the web heat map, the wall and the meeting pack. «мало данных» is grey
    and says so on hover; a unit outside ``allowed`` (the user's scope; None: all) is grey and says
    «нет доступа». Growth diverges around 0; a share with a ``reference`` (its target, else the
    region's value) diverges around it, the reference marked on the colour bar. ``names`` adds each
    unit's name (and value, when a second line fits) at its label point — see ``map_labels`` for
    how the size is chosen and what a unit too small for its name gets. ``size`` is the drawn
    figure in pixels, for that fitting. ``selectable`` adds the trace ``SELECTION_TRACE`` (third)
    outlining the ``selected`` unit, which ``selection_outline`` moves without redrawing the map.
    """
    ids = [f["id"] for f in geojson.get("features", [])]
    # In the browser the shapes come from a URL the browser caches: copying and serialising the
    # boundaries into every answer costs more server time than the queries. Exports embed them.
    source = geojson_url or geojson
    frame = pd.DataFrame({"municipality_id": ids}).merge(df, on="municipality_id", how="left")
    names_by_id = {f["id"]: f["properties"].get("name", "") for f in geojson.get("features", [])}
    denied = pd.Series([allowed is not None and int(i) not in allowed for i in ids], index=frame.index)
    low = frame.get(f"{spec.code}_low", pd.Series(False, index=frame.index)).fillna(True).astype(bool) | denied
    value = frame.get(spec.code, pd.Series(np.nan, index=frame.index)).astype("float64").where(~denied)
    shown = _display_values(spec, value.where(~low))
    rank = value.where(~low).rank(ascending=not bool(spec.higher_is_better), method="min")
    ranked = int(rank.notna().sum())
    with_population = "population" in frame.columns
    populations = frame["population"].tolist() if with_population else [None] * len(frame)
    hover = []
    for unit, is_denied, is_low, v, place, population in zip(
            frame["municipality_id"].tolist(), denied.tolist(), low.tolist(), value.tolist(), rank.tolist(),
            populations, strict=True):
        text = f"<b>{names_by_id.get(unit, '')}</b><br>{spec.label}: "
        text += NO_ACCESS if is_denied else LOW_DATA if is_low else spec.format(v)
        if not is_low and spec.higher_is_better is not None and not np.isnan(place):
            text += f"<br>Место: {int(place)} из {ranked}"
        if reference is not None and not is_low:
            text += f"<br>{reference.label.capitalize()}: {spec.format(reference.value)}"
        known = population is not None and not pd.isna(population)
        if known and not is_denied:
            text += f"<br>Население ≈ {int(population):,}".replace(",", "\u00a0")
        if with_population and not (known and population > 0):
            # a rate per residents of a unit without residents is not «—» but says why
            text = (text.replace(f"{spec.label}: —", f"{spec.label}: нет данных о населении") if spec.kind == "rate"
                    else text + "<br>нет данных о населении")
        hover.append(text)
    diverging = spec.kind == "growth" or reference is not None
    scale, reverse = _diverging(spec) if diverging else colour_scale(spec)
    zmin, zmid, zmax = colour_range(spec, shown, reference)
    colorbar: dict = {"title": {"text": spec.unit if spec.unit != "%" else ""}, "ticksuffix": _tick_suffix(spec)}
    if reference is not None and zmid is not None:
        colorbar.update(_reference_ticks(spec, reference, zmin, zmax))
    # one unit with a value (an МЦУ's map): a colour scale from 152 to 152,8 says nothing — the unit
    # takes the scale's middle colour, the bar goes and the value is written in its place
    single = zmid is None and int(shown.notna().sum()) == 1
    if single:
        middle = float(shown.dropna().iloc[0])
        zmin, zmid, zmax = middle - 1.0, middle, middle + 1.0
    data = [
        # grey base layer: every municipality is drawn even without data
        {"type": "choropleth", "geojson": source, "locations": ids, "z": [0] * len(ids), "featureidkey": "id",
         "showscale": False, "colorscale": [[0, NO_DATA_COLOUR], [1, NO_DATA_COLOUR]], "hoverinfo": "skip",
         "marker": {"line": {"color": "white", "width": 0.8}}},
        {"type": "choropleth", "geojson": source, "locations": ids, "z": shown.to_numpy(), "featureidkey": "id",
         "colorscale": plotly_scale(scale), "reversescale": reverse, "text": hover,
         "hovertemplate": "%{text}<extra></extra>", "marker": {"line": {"color": "white", "width": 0.8}},
         "colorbar": colorbar, "customdata": ids, "showscale": not single,
         **({"zmin": zmin, "zmid": zmid, "zmax": zmax} if zmid is not None else {})},
    ]
    if selectable:  # above the colours, below the names
        data.append({"type": "choropleth", "geojson": source, "featureidkey": "id", "name": SELECTION_TRACE,
                     **selection_outline(selected if selected in ids else None), "showscale": False,
                     "colorscale": [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], "hoverinfo": "skip",
                     "marker": {"line": {"color": "#212529", "width": 3.5}}})
    if names:
        labels = map_labels(geojson, names_by_id, spec, value.where(~low), size, label_font)
        if labels is not None:
            data.append(labels)
    fig = figure(data, {
        "geo": {"fitbounds": "locations", "visible": False, "projection": {"type": "mercator"}},
        "title": {"text": title, "x": 0.01}, "margin": {"l": 0, "r": 0, "t": 48, "b": 0}, "height": 560,
        "font": {"family": FONT}, "separators": ", ", "uirevision": "map",
    })
    if names:
        recolour_labels(fig)
    if single:
        fig["layout"].setdefault("annotations", []).append({
            "text": f"{spec.label}: <b>{spec.format(float(value.where(~low).dropna().iloc[0]))}</b>",
            "x": 0.99, "y": 0.98, "xref": "paper", "yref": "paper", "xanchor": "right", "yanchor": "top",
            "showarrow": False, "font": {"size": 14}, "bgcolor": "rgba(255,255,255,0.85)", "name": "single-value"})
    add_map_attribution(fig, geojson)
    return fig


SELECTION_TRACE = "выбранный муниципалитет"


def selection_outline(selected: int | None) -> dict:
    """The outline trace's locations for the selected unit (none: no outline): a figure Patch."""
    return {"locations": [] if selected is None else [selected], "z": [] if selected is None else [0]}


map_with_names = choropleth  # "a map with names": the web heat map and (through wall_choropleth) the wall


def _reference_ticks(spec: Indicator, reference: MapReference, zmin: float, zmax: float) -> dict:
    """Colour-bar ticks with the reference among them: «цель 90,0 %» at the neutral colour."""
    mid = (zmin + zmax) / 2
    values = [zmin, (zmin + mid) / 2, mid, (mid + zmax) / 2, zmax]
    scale = 100 if spec.number_format.endswith("%") else 1
    texts = [spec.format(v / scale) for v in values]
    texts[2] = f"<b>{reference.label} {spec.format(reference.value)}</b>"
    return {"tickmode": "array", "tickvals": values, "ticktext": texts, "ticksuffix": ""}


# --- unit names on maps --------------------------------------------------------------------------

_ABBREVIATIONS = (
    (re.compile(r"\bмуниципальный округ\b", re.I), "м.\u00a0о."),
    (re.compile(r"\bмуниципальный район\b", re.I), "р-н"),
    (re.compile(r"\bгородской округ\b", re.I), "г.\u00a0о."),
    (re.compile(r"\bгородское поселение\b", re.I), "г.\u00a0п."),
    (re.compile(r"\bсельское поселение\b", re.I), "с.\u00a0п."),
    (re.compile(r"\bрайон\b", re.I), "р-н"),
    (re.compile(r"^город\s+", re.I), "г.\u00a0"),
    (re.compile(r"\bпос[её]лок\b", re.I), "пос."),
)
_VOWELS = set("аеёиоуыэюяaeiouy")


def short_name(name: str, letters: int = 8) -> str:
    """A unit's name abbreviated the way Russian maps do it.

    First the customary abbreviations («муниципальный округ» → «м. о.», «город» → «г.», «район» →
    «р-н»); then every word longer than ``letters`` + 1 letters is cut after a consonant and before
    a vowel, with a full stop («Монастырщинский» → «Монастырщ.», «Холм-Жирковский» → «Холм-Жирк.»),
    so the cut is where a reader expects one."""
    text = name.strip()
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    return " ".join(_cut_word(w, letters) for w in text.split(" ") if w)  # keeps the no-break spaces


def _cut_word(word: str, letters: int) -> str:
    if len(word) <= letters + 1 or not word.isalpha() and "-" not in word:
        return word
    # a hyphenated name keeps its first part whole and cuts the last
    head, sep, tail = word.rpartition("-")
    if sep and len(tail) > 4:
        return f"{head}-{_cut_word(tail, 4)}" if len(tail) > 5 else word
    cut = letters
    while cut > 3 and not (word[cut - 1].lower() not in _VOWELS and word[cut].lower() in _VOWELS):
        cut -= 1
    return word[:cut] + "." if cut > 3 else word[:letters] + "."


def _lines(text: str) -> list[list[str]]:
    """Ways to set a name: one line, or two lines broken at a space or after a hyphen."""
    options = [[text]]
    breaks = [i for i, ch in enumerate(text) if ch in " -"]
    if breaks:
        middle = min(breaks, key=lambda i: abs(i - len(text) / 2))
        first = text[:middle + 1].strip() if text[middle] == "-" else text[:middle].strip()
        options.append([first, text[middle + 1:].strip()])
    return options


def _mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and Mercator y, both in degrees of longitude at the equator (the map's own units)."""
    lat = np.clip(lat, -85, 85)
    return lon, np.degrees(np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)))


@dataclass(frozen=True)
class LabelSpace:
    """Where a unit's name goes and the shape it must stay inside, on the Mercator plane."""

    anchors: tuple[tuple[float, float], ...]  # candidate centres, Mercator units; the first is the deepest
    part: object  # the unit's largest part, projected and prepared for fast containment tests
    bounds: tuple[float, float, float, float]  # the whole unit, projected


_space_cache: dict[int, tuple[object, LabelSpace | None]] = {}
_space_by_shape: dict[bytes, LabelSpace | None] = {}  # keeps the spaces alive: their ids key the fits
_layout_cache: dict[tuple, tuple[list[str], float, tuple[float, float]] | None] = {}
_font_cache: dict[tuple, tuple[float, tuple[float, float]] | None] = {}


def label_space(geometry: dict) -> LabelSpace | None:
    """Where a unit's name goes: the pole of inaccessibility of its largest part (the point deepest
    inside, so the text sits in the unit however jagged its border). Cached per geometry object and,
    behind that, per shape: each served connection loads the region's shapes anew (and again after
    every data switch), and the same borders must not be measured again — nor their names fitted."""
    key = id(geometry)
    cached = _space_cache.get(key)
    if cached is not None and cached[0] is geometry:
        return cached[1]
    import orjson

    shape = hashlib.blake2b(orjson.dumps(geometry), digest_size=16).digest()
    if shape not in _space_by_shape:
        if len(_space_by_shape) > 4096:  # the fits below are keyed by the spaces' ids: they go too
            _space_by_shape.clear()
            _layout_cache.clear()
            _font_cache.clear()
        _space_by_shape[shape] = _label_space(geometry)
    space = _space_by_shape[shape]
    if len(_space_cache) > 4096:
        _space_cache.clear()
    _space_cache[key] = (geometry, space)
    return space


def _label_space(geometry: dict) -> LabelSpace | None:
    import shapely
    from shapely.geometry import shape
    from shapely.ops import polylabel

    try:
        geom = shape(geometry)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if geom.is_empty:
        return None
    projected = shapely.transform(geom, lambda xy: np.column_stack(_mercator(xy[:, 0], xy[:, 1])))
    parts = list(getattr(projected, "geoms", [projected]))
    part = max(parts, key=lambda g: g.area)
    if part.area <= 0:
        return None
    x0, y0, x1, y1 = part.bounds
    try:
        point = polylabel(part, tolerance=max(x1 - x0, y1 - y0) / 200)
    except Exception:  # a degenerate ring: the representative point is always inside
        point = part.representative_point()
    shapely.prepare(part)
    # the deepest point suits a round label; a wide name may find more room a little to a side
    r = float(part.exterior.distance(point))
    anchors = [(float(point.x), float(point.y))]
    for dx, dy in ((0.5, 0), (-0.5, 0), (0, 0.4), (0, -0.4), (1.0, 0), (-1.0, 0)):
        candidate = (point.x + dx * r, point.y + dy * r)
        if part.contains(shapely.Point(candidate)):
            anchors.append((float(candidate[0]), float(candidate[1])))
    return LabelSpace(tuple(anchors), part, tuple(projected.bounds))


def _lon_lat(x: float, y: float) -> tuple[float, float]:
    return x, float(np.degrees(2 * np.arctan(np.exp(np.radians(y))) - np.pi / 2))


def _fits(space: LabelSpace, at: tuple[float, float], lines: list[str], font_px: float, scale: float) -> bool:
    """Whether the text block centred at ``at``, with a margin, lies wholly inside the unit at this size."""
    import shapely

    longest = max(len(line) for line in lines)
    half_w = LABEL_CHAR_EM * font_px * max(longest, 1) / scale / 2 / LABEL_ROOM
    half_h = LABEL_LINE_EM * font_px * len(lines) / scale / 2 / LABEL_ROOM
    box = shapely.box(at[0] - half_w, at[1] - half_h, at[0] + half_w, at[1] + half_h)
    return bool(space.part.contains(box))


def _largest_font(space: LabelSpace, lines: list[str], low: float, high: float,
                  scale: float) -> tuple[float, tuple[float, float]] | None:
    """The largest size in [low, high] (to 0,5 px) at which ``lines`` fit, and the anchor it fits at;
    None if not even ``low`` fits anywhere."""
    # the fit depends on the text only through its longest line and its number of lines
    key = (id(space), max((len(line) for line in lines), default=0), len(lines), low, high, round(scale, 6))
    if key in _font_cache:
        return _font_cache[key]
    if len(_font_cache) > 8192:
        _font_cache.clear()
    best = _font_cache[key] = _fitted_font(space, lines, low, high, scale)
    return best


def _fitted_font(space: LabelSpace, lines: list[str], low: float, high: float,
                 scale: float) -> tuple[float, tuple[float, float]] | None:
    best: tuple[float, tuple[float, float]] | None = None
    for at in space.anchors:
        if not _fits(space, at, lines, best[0] + 0.5 if best else low, scale):
            continue
        if _fits(space, at, lines, high, scale):
            return high, at
        good, bad = (best[0] + 0.5 if best else low), high
        while bad - good > 0.5:
            middle = (good + bad) / 2
            good, bad = (middle, bad) if _fits(space, at, lines, middle, scale) else (good, middle)
        best = (good, at)
    return best


def _layout(space: LabelSpace, name: str, scale: float, font: tuple[float, float],
            value: str | None = None) -> tuple[list[str], float, tuple[float, float]] | None:
    """How a name (and, when given, its value on a last line) is set in its unit: lines, size and
    centre (see ``map_labels``); None: it does not fit."""
    key = (id(space), name, round(scale, 6), font, value)
    if key in _layout_cache:
        return _layout_cache[key]
    low_font, high_font = font
    tail = [value] if value else []
    chosen = None
    # an abbreviated name stays small: it reads as a unit short of room, not as a heading
    for candidate, biggest in ((name, high_font), (short_name(name), low_font + 1), (short_name(name, 5), low_font + 1)):
        best: tuple[list[str], float, tuple[float, float]] | None = None
        for lines in _lines(candidate):
            fit = _largest_font(space, [*lines, *tail], low_font, biggest, scale)
            if fit is not None and (best is None or fit[0] > best[1] + 0.5):
                best = ([*lines, *tail], fit[0], fit[1])
        if best is not None:
            chosen = best
            break
    if len(_layout_cache) > 8192:
        _layout_cache.clear()
    _layout_cache[key] = chosen
    return chosen


def map_labels(geojson: dict, names: dict, spec: Indicator, values: pd.Series, size: tuple[int, int],
               font: tuple[float, float], colour: str = "#1a1a1a") -> dict | None:
    """A text trace naming every unit at its label point, sized to the unit.

    The rule, decided once for all maps: a name is set at the largest size up to ``font[1]`` at which
    its text block (with a margin) lies wholly inside the unit — on one line, or on two broken at a
    space or hyphen, whichever allows the larger size; if even the smallest legible size (``font[0]``)
    does not fit, the abbreviated name is tried (``short_name``: «Монаст.», «г. Смоленск»), set small;
    a unit too small for that shows its name on hover only (the choropleth's hover always has the
    full name). The value goes on a line below the name: the first layout tried is name and value
    together (the value is what the map is read for), then the name alone. ``size`` is the figure
    in pixels; the map area is that less the colour bar and the title."""
    features = geojson.get("features", [])
    spaces = {f["id"]: label_space(f.get("geometry") or {}) for f in features}
    found = [s for s in spaces.values() if s is not None]
    if not found:
        return None
    x0 = min(s.bounds[0] for s in found)
    y0 = min(s.bounds[1] for s in found)
    x1 = max(s.bounds[2] for s in found)
    y1 = max(s.bounds[3] for s in found)
    width, height = max(size[0] - 110, 100), max(size[1] - 90, 100)  # less the colour bar, title and note
    scale = min(width / max(x1 - x0, 1e-9), height / max(y1 - y0, 1e-9))  # pixels per Mercator unit
    lons, lats, texts, sizes, ids = [], [], [], [], []
    value_of = {f["id"]: v for f, v in zip(features, values, strict=False)}
    for f in features:
        space = spaces.get(f["id"])
        name = names.get(f["id"], "")
        if space is None or not name:
            continue
        value = value_of.get(f["id"])
        formatted = None if value is None or pd.isna(value) else spec.format(value)
        # name and value together where they fit (the value is what the map is read for), else the name
        chosen = (_layout(space, name, scale, font, formatted) if formatted else None) or \
            _layout(space, name, scale, font)
        if chosen is None:
            continue
        lines, font_px, at = chosen
        if formatted and lines[-1] == formatted:
            lines = [*lines[:-1], f"<b>{formatted}</b>"]
        text = "<br>".join(lines)
        lon, lat = _lon_lat(*at)
        lons.append(lon)
        lats.append(lat)
        texts.append(text)
        sizes.append(round(font_px, 1))
        ids.append(f["id"])
    if not texts:
        return None
    return {"type": "scattergeo", "lon": lons, "lat": lats, "text": texts, "mode": "text", "hoverinfo": "skip",
            "showlegend": False, "name": "names", "customdata": ids,
            "textfont": {"size": sizes, "color": colour, "family": FONT}}


def _fill_colours(trace: dict) -> list[str | None]:
    """The colour each unit is painted with, from its value and the trace's scale (None: no value)."""
    from plotly.colors import sample_colorscale

    z = np.array([np.nan if v is None else v for v in trace["z"]], dtype="float64")
    finite = z[np.isfinite(z)]
    if not len(finite):
        return [None] * len(z)
    zmin = trace["zmin"] if trace.get("zmin") is not None else float(finite.min())
    zmax = trace["zmax"] if trace.get("zmax") is not None else float(finite.max())
    scale = plotly_scale(trace["colorscale"])
    if trace.get("reversescale"):
        scale = [[1 - p, c] for p, c in reversed(scale)]
    where = np.isfinite(z)
    t = np.full(len(z), 0.5) if zmax == zmin else np.clip((z - zmin) / (zmax - zmin), 0.0, 1.0)
    sampled = iter(sample_colorscale(scale, t[where].tolist()))
    return [next(sampled) if ok else None for ok in where]


def _luminance(colour: str) -> float:
    from plotly.colors import hex_to_rgb, unlabel_rgb

    rgb = hex_to_rgb(colour) if colour.startswith("#") else unlabel_rgb(colour)
    return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255


def recolour_labels(fig: Figure, dark: str = "#1a1a1a", light: str = "#ffffff",
                    empty: str | None = None) -> None:
    """Each name in black on light fills and in white on dark ones (``empty``: on grey units)."""
    labels = [t for t in fig["data"] if t.get("type") == "scattergeo" and t.get("name") == "names"]
    fills = [t for t in fig["data"] if t.get("type") == "choropleth" and t.get("showscale") is not False]
    if not labels or not fills:
        return
    data = fills[-1]
    colours = dict(zip(data["locations"], _fill_colours(data), strict=True))
    grey = empty or (dark if _luminance(NO_DATA_COLOUR) > 0.5 else light)
    trace = labels[0]
    text_colours = []
    for i in trace["customdata"]:
        fill = colours.get(i)
        text_colours.append(grey if fill is None else (dark if _luminance(fill) > 0.5 else light))
    trace["textfont"] = {**trace.get("textfont", {}), "color": text_colours}


def add_map_attribution(fig: Figure, geojson: dict, colour: str = "#555") -> None:
    """The boundaries' licence requires their source on the map (ODbL: «© участники OpenStreetMap»).

    The text comes from the FeatureCollection's ``attribution`` member (``geo.store``).
    """
    text = geojson.get("attribution")
    if text:
        fig["layout"].setdefault("annotations", []).append({
            "text": text, "x": 1, "y": 0, "xref": "paper", "yref": "paper", "xanchor": "right", "yanchor": "bottom",
            "showarrow": False, "font": {"size": 11, "color": colour}, "name": "attribution",
        })


def matrix(df: pd.DataFrame, spec: Indicator, rows: str, columns: str, title: str) -> Figure:
    """A rows × columns heat map (municipality × category or × sector) of one indicator."""
    if df.empty:
        return empty_figure(title, "Нет обращений для выбранных условий")
    low = df.get(f"{spec.code}_low", pd.Series(False, index=df.index)).fillna(True).astype(bool)
    data = df.assign(_value=_display_values(spec, df[spec.code].astype("float64").where(~low)))
    z = data.pivot_table(index=rows, columns=columns, values="_value", aggfunc="first", dropna=False)
    order = data.groupby(rows)["volume"].sum().sort_values(ascending=True).index
    z = z.reindex(order)
    col_order = data.groupby(columns)["volume"].sum().sort_values(ascending=False).index
    z = z[[c for c in col_order if c in z.columns]]
    scale, reverse = colour_scale(spec)
    values = z.to_numpy()
    divisor = 100 if spec.number_format.endswith("%") else 1
    text = [["" if np.isnan(v) else spec.format(v / divisor if divisor != 1 else v) for v in row] for row in values]
    return figure([{
        "type": "heatmap", "z": values, "x": list(z.columns), "y": list(z.index), "colorscale": plotly_scale(scale),
        "reversescale": reverse, "text": text,
        "hovertemplate": "%{y}<br>%{x}<br>" + spec.label + ": %{text}<extra></extra>",
        "colorbar": {"ticksuffix": _tick_suffix(spec)}, "xgap": 1, "ygap": 1, "hoverongaps": False,
    }], {
        "title": {"text": title, "x": 0.01}, "margin": {"l": 10, "r": 10, "t": 48, "b": 10},
        "height": max(460, 22 * len(z.index) + 260), "font": {"family": FONT}, "separators": ", ",
        "xaxis": {"tickangle": -35, "automargin": True}, "yaxis": {"automargin": True}, "plot_bgcolor": NO_DATA_COLOUR,
    })


def empty_figure(title: str, message: str) -> Figure:
    return figure([], {
        "annotations": [{"text": message, "showarrow": False, "font": {"size": 16}, "x": 0.5, "y": 0.5,
                         "xref": "paper", "yref": "paper"}],
        "title": {"text": title, "x": 0.01}, "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "height": 320, "font": {"family": FONT},
    })


def period_flags(df: pd.DataFrame, spec: Indicator) -> list[str]:
    """Per row of a KPI series: «неполный период» (``partial``) and, for an answer-based indicator,
    «ответы ещё поступают» (not ``settled``), joined; "" for a complete, settled period."""
    partial = df["partial"].astype(bool) if "partial" in df else pd.Series(False, index=df.index)
    settled = df["settled"].astype(bool) if "settled" in df else pd.Series(True, index=df.index)
    out = []
    for p, s in zip(partial, settled, strict=True):
        notes = ([INCOMPLETE] if p else []) + ([UNSETTLED] if spec.answer_based and not s else [])
        out.append(", ".join(notes))
    return out


FLAGGED_NAME = "полая точка: неполный период или ответы ещё поступают"


def _symbols(flags: list[str]) -> list[str]:
    return ["circle-open" if f else "circle" for f in flags]


TITLE_LINE = 80  # characters of a chart title on one line: longer ran under the modebar at 1366 px


def wrapped_title(title: str, width: int = TITLE_LINE) -> tuple[str, int]:
    """A long title broken after its separators (« — », « · ») into lines of about ``width``
    characters, and the number of breaks (the caller makes room for them)."""
    if len(title) <= width:
        return title, 0
    lines, line = [], ""
    for part in re.split(r"(?<= — )|(?<= · )", title):
        if line and len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    lines.append(line)
    return "<br>".join(lines), len(lines) - 1


def kpi_trend(df: pd.DataFrame, spec: Indicator, title: str) -> Figure:
    """An indicator by period with its target (dashed) and the same period a year earlier (grey).

    A period not complete, or not settled for an answer-based indicator, is a hollow point with its
    warning in the hover text: its value is still moving (``metrics.periods``)."""
    if df.empty or df["value"].isna().all():
        return empty_figure(title, "Нет данных за выбранный период")
    x = _dates(df["period_start"])
    value = _display_values(spec, df["value"].astype("float64").where(~df["low"].fillna(True).astype(bool)))
    data = [{"type": "scatter", "x": x, "y": _display_values(spec, df["year_ago"].astype("float64")).to_numpy(),
             "name": "год назад", "mode": "lines", "line": {"color": "#9e9e9e", "width": 1.5}}]
    if df["target"].notna().any():
        data.append({"type": "scatter", "x": x, "y": _display_values(spec, df["target"].astype("float64")).to_numpy(),
                     "name": "цель", "mode": "lines", "line": {"color": "#d7191c", "dash": "dash", "width": 2}})
    flags = period_flags(df, spec)
    data.append({"type": "scatter", "x": x, "y": value.to_numpy(), "name": spec.label, "mode": "lines+markers",
                 "text": flags, "marker": {"symbol": _symbols(flags), "size": 9, "line": {"width": 2}},
                 "line": {"color": "#2c7bb6", "width": 3}})
    if any(flags):
        data.append({"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": FLAGGED_NAME,
                     "hoverinfo": "skip",
                     "marker": {"symbol": "circle-open", "size": 9, "color": "#2c7bb6", "line": {"width": 2}}})
    title, breaks = wrapped_title(title)
    return figure(data, {
        "title": {"text": title, "x": 0.01}, "height": 420 + 22 * breaks,
        "margin": {"l": 10, "r": 10, "t": 48 + 22 * breaks, "b": 10},
        "font": {"family": FONT}, "separators": ", ", "hovermode": "x unified",
        "yaxis": {"ticksuffix": _tick_suffix(spec), "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.15},
    })


@cache
def _grid(rows: int, cols: int, titles: tuple[str, ...]) -> tuple[str, tuple[dict, ...]]:
    """The layout (axes, panel titles) of a grid of small panels, as JSON, and each panel's axis
    references: computed by Plotly once per grid, not per answer."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_xaxes=True, shared_yaxes=True,
                        vertical_spacing=0.08, horizontal_spacing=0.04)
    layout = fig.to_plotly_json()["layout"]
    layout.pop("template", None)
    refs = []
    for i in range(rows * cols):  # where add_trace(row=, col=) puts a trace of that panel
        fig.add_trace(go.Scatter(), row=i // cols + 1, col=i % cols + 1)
        refs.append({"xaxis": fig.data[-1].xaxis, "yaxis": fig.data[-1].yaxis})
    return json.dumps(layout, ensure_ascii=False), tuple(refs)


def kpi_small_multiples(df: pd.DataFrame, spec: Indicator, title: str) -> Figure:
    """One small panel per sector, same axes, target dashed."""
    sectors = list(dict.fromkeys(df["sector_name"]))
    if not sectors:
        return empty_figure(title, "Нет данных")
    cols = 3
    rows = -(-len(sectors) // cols)
    grid, refs = _grid(rows, cols, tuple(sectors))
    layout = json.loads(grid)
    data = []
    parts = dict(tuple(df.groupby("sector_name", sort=False)))  # one pass, not a filter per sector
    for i, (name, part) in enumerate((n, parts.get(n, df.iloc[0:0])) for n in sectors):
        x = _dates(part["period_start"])
        y = _display_values(spec, part["value"].astype("float64").where(~part["low"].fillna(True).astype(bool)))
        flags = period_flags(part, spec)
        data.append({"type": "scatter", "x": x, "y": y.to_numpy(), "mode": "lines+markers",
                     "line": {"color": "#2c7bb6", "width": 2}, "name": name, "text": flags, "showlegend": False,
                     "marker": {"symbol": _symbols(flags), "size": [7 if f else 3 for f in flags]}, **refs[i]})
        if part["target"].notna().any():
            data.append({"type": "scatter", "x": x,
                         "y": _display_values(spec, part["target"].astype("float64")).to_numpy(), "mode": "lines",
                         "line": {"color": "#d7191c", "dash": "dash", "width": 1}, "showlegend": False,
                         "hoverinfo": "skip", **refs[i]})
    for key, axis in layout.items():
        if key.startswith("yaxis"):
            axis.update(ticksuffix=_tick_suffix(spec), rangemode="tozero")
    layout.update(title={"text": title, "x": 0.01}, height=220 * rows + 80,
                  margin={"l": 10, "r": 10, "t": 70, "b": 10}, font={"family": FONT}, separators=", ")
    return figure(data, layout)


def rating_top_bottom(df: pd.DataFrame, name_column: str, title: str, n: int = 10) -> Figure:
    """The ``n`` best (blue) and ``n`` weakest (red) ranked bodies by their composite score 0–100."""
    from metrics.rating import STATUS_RANKED

    ranked = df[df["status"] == STATUS_RANKED].sort_values("composite", ascending=False)
    if ranked.empty:
        return empty_figure(title, "Нет организаций с достаточным числом обращений")
    top, bottom = ranked.head(n), ranked.tail(n)
    shown = pd.concat([top, bottom[~bottom.index.isin(top.index)]]).sort_values("composite")
    colours = ["#2c7bb6" if i in top.index else "#d7191c" for i in shown.index]
    return figure([{
        "type": "bar", "x": shown["composite"].to_numpy(), "y": shown[name_column].to_numpy(), "orientation": "h",
        "marker": {"color": colours}, "text": [f"{v:.0f}" for v in shown["composite"]], "textposition": "outside",
        "hovertemplate": "%{y}<br>Итоговая оценка: %{x:.1f}<extra></extra>",
    }], {
        "title": {"text": title, "x": 0.01}, "height": max(360, 26 * len(shown) + 100),
        "margin": {"l": 10, "r": 30, "t": 48, "b": 30}, "xaxis": {"range": [0, 108], "title": {"text": "0–100"}},
        "yaxis": {"automargin": True}, "font": {"family": FONT}, "separators": ", ",
    })


MONTH_BAR_MS = 20 * 24 * 3600 * 1000  # a month's bar on a date axis: 20 days of its ~30


def workload_chart(history: pd.DataFrame, forecast: pd.DataFrame, title: str) -> Figure:
    """One block's load by month: received (with the forecast dashed), open and overdue at month end.

    ``history``: month, received, open_end, overdue_end, complete; ``forecast``: month, forecast.
    """
    if history.empty:
        return empty_figure(title, "Нет данных о нагрузке")
    x = pd.to_datetime(history["month"])
    complete = history["complete"].astype(bool)
    # a bar's width in ms: plotly sizes a trace's bars by the gap between its own points, so the one
    # bar of the unfinished month (a trace of its own) would be drawn 1 ms wide — invisible
    data = [{"type": "bar", "x": _dates(x), "y": history["received"].where(complete).to_numpy(), "name": "поступило",
             "width": MONTH_BAR_MS, "marker": {"color": "#2c7bb6"},
             "hovertemplate": "%{x|%m.%Y}: %{y:,.0f}<extra>поступило</extra>"}]
    if (~complete).any():
        data.append({"type": "bar", "x": _dates(x[~complete]), "y": history.loc[~complete, "received"].to_numpy(),
                     "name": "поступило (месяц не закончен)", "width": MONTH_BAR_MS, "marker": {"color": "#abd9e9"},
                     "hovertemplate": "%{x|%m.%Y}: %{y:,.0f}<extra>поступило, месяц не закончен</extra>"})
    if not forecast.empty:
        # the dashed line starts from the last complete month so that it reads as a continuation
        last = history[complete].tail(1)
        fx = pd.concat([pd.to_datetime(last["month"]), pd.to_datetime(forecast["month"])])
        fy = pd.concat([last["received"].astype("float64"), forecast["forecast"].astype("float64")])
        data.append({"type": "scatter", "x": _dates(fx), "y": fy.to_numpy(), "name": "прогноз", "mode": "lines+markers",
                     "line": {"color": "#d7191c", "dash": "dash", "width": 2},
                     "hovertemplate": "%{x|%m.%Y}: %{y:,.0f}<extra>прогноз</extra>"})
    data.append({"type": "scatter", "x": _dates(x), "y": history["open_end"].to_numpy(),
                 "name": "без ответа на конец месяца", "mode": "lines", "line": {"color": "#fdae61", "width": 2}})
    data.append({"type": "scatter", "x": _dates(x), "y": history["overdue_end"].to_numpy(),
                 "name": "просрочено на конец месяца", "mode": "lines", "line": {"color": "#7b3294", "width": 2}})
    return figure(data, {
        "title": {"text": title, "x": 0.01}, "height": 400, "margin": {"l": 10, "r": 10, "t": 48, "b": 10},
        "font": {"family": FONT}, "separators": ", ", "hovermode": "x unified", "barmode": "overlay",
        "yaxis": {"rangemode": "tozero", "title": {"text": "обращений"}},
        "legend": {"orientation": "h", "y": -0.15},
    })


def roadmap_effect_chart(series: pd.DataFrame, start: object, title: str, treated_name: str) -> Figure:
    """Weekly appeals of the measure's municipality against the comparison municipalities (their mean
    scaled to the municipality's level before the start), the start marked."""
    if series.empty:
        return empty_figure(title, "Нет недельных данных для этой меры")
    x = _dates(series["week"])
    start_at = pd.Timestamp(start).isoformat()
    return figure([
        {"type": "scatter", "x": x, "y": series["comparison_scaled"].to_numpy(),
         "name": "сравнение (без меры, в масштабе до начала)", "mode": "lines",
         "line": {"color": "#9e9e9e", "width": 2, "dash": "dot"}},
        {"type": "scatter", "x": x, "y": series["treated"].to_numpy(), "name": treated_name, "mode": "lines+markers",
         "line": {"color": "#2c7bb6", "width": 3}},
    ], {
        "shapes": [{"type": "line", "x0": start_at, "x1": start_at, "y0": 0, "y1": 1, "yref": "paper",
                    "line": {"color": "#d7191c", "width": 2, "dash": "dash"}}],
        "annotations": [{"x": start_at, "y": 1, "yref": "paper", "text": "начало меры", "showarrow": False,
                         "xanchor": "left", "yanchor": "bottom", "font": {"color": "#d7191c"}}],
        "title": {"text": title, "x": 0.01}, "height": 380, "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "font": {"family": FONT}, "separators": ", ", "hovermode": "x unified",
        "yaxis": {"rangemode": "tozero", "title": {"text": "обращений в неделю"}},
        "legend": {"orientation": "h", "y": -0.18},
    })


# --- the wall display: dark theme, read from across a room -----------------------------------

WALL_BACKGROUND = "#0b1016"
WALL_TEXT = "#e6edf3"
WALL_NO_DATA = "#2b333d"
WALL_BORDER = "#0b1016"  # municipality borders in the background colour: shapes read as tiles
WALL_FONT_SIZE = 20  # px on a 1920×1080 screen; the browser scales it to the screen it runs on
# On a dark ground «more» must be brighter: light scales (OrRd, Blues) would make the best the brightest.
WALL_SCALE_NEUTRAL = [[0.0, "#15324d"], [0.5, "#2f83c4"], [1.0, "#bfe3ff"]]
WALL_SCALE_WORSE_HIGH = [[0.0, "#1e4d3a"], [0.5, "#d9a441"], [1.0, "#ff5a4e"]]
WALL_SCALE_DIVERGING = [[0.0, "#3f8fd2"], [0.5, "#2b333d"], [1.0, "#ff5a4e"]]


def wall_colour_scale(spec: Indicator) -> tuple[list, bool]:
    """The wall's dark-ground counterpart of ``colour_scale``: worse (or more) is brighter."""
    if spec.kind == "growth":
        return WALL_SCALE_DIVERGING, False
    if spec.higher_is_better is None:
        return WALL_SCALE_NEUTRAL, False
    return WALL_SCALE_WORSE_HIGH, bool(spec.higher_is_better)


WALL_MAP_SIZE = (1090, 850)  # the map panel's figure on a 1920×1080 screen (assets/wall.css)
WALL_LABEL_FONT = (16.0, 30.0)


def wall_choropleth(df: pd.DataFrame, geojson: dict, spec: Indicator, reference: MapReference | None = None,
                    allowed: Collection[int] | None = None) -> Figure:
    """``choropleth`` for the wall: dark ground, large type, no title (the panel has a heading),
    height from its container (``autosize``) rather than a fixed 560 px; names sized for 1920×1080
    (assets/wall.js scales them, like every font of the figure, to the screen)."""
    fig = choropleth(df, geojson, spec, "", reference=reference, allowed=allowed, size=WALL_MAP_SIZE,
                     label_font=WALL_LABEL_FONT)
    scale, reverse = wall_colour_scale(spec) if spec.kind != "growth" and reference is None else \
        _diverging(spec, wall=True)
    base, values = fig["data"][0], fig["data"][1]
    for trace in (base, values):
        trace["marker"] = {"line": {"color": WALL_BORDER, "width": 1.5}}
    base["colorscale"] = [[0, WALL_NO_DATA], [1, WALL_NO_DATA]]
    values.update(colorscale=plotly_scale(scale), reversescale=reverse)
    values["colorbar"] = {  # added to, not replaced: a share's reference ticks stay
        **values["colorbar"], "title": {**values["colorbar"].get("title", {}),
                                        "text": spec.unit if spec.unit != "%" else "", "side": "top"},
        "thickness": 24, "len": 0.8, "outlinewidth": 0,
        "tickfont": {"size": WALL_FONT_SIZE, "color": WALL_TEXT},
    }
    layout = fig["layout"]
    layout["geo"]["bgcolor"] = "rgba(0,0,0,0)"
    recolour_labels(fig, dark="#0b1016", light=WALL_TEXT, empty=WALL_TEXT)
    for note in layout.get("annotations", []):
        if note.get("name") == "attribution":
            note["font"] = {**note.get("font", {}), "size": WALL_FONT_SIZE * 0.6, "color": WALL_TEXT}
    for key in ("title", "height"):
        layout.pop(key, None)
    layout.update(autosize=True, margin={"l": 0, "r": 0, "t": 0, "b": 0}, paper_bgcolor="rgba(0,0,0,0)",
                  plot_bgcolor="rgba(0,0,0,0)", font={"family": FONT, "size": WALL_FONT_SIZE, "color": WALL_TEXT})
    return fig


def region_choropleth(df: pd.DataFrame, geojson: dict, spec: Indicator, title: str, **options: object) -> Figure:
    """The country map: federal subjects (feature id = region id) coloured by one indicator, named
    where the name fits — the municipal map's builder (``choropleth``) on the regions' shapes — over
    the subjects the warehouse does not hold (``geojson["background"]``), pale and silent, so the
    country is seen whole."""
    frame = df.rename(columns={"region_id": "municipality_id", "region_population": "population"})
    fig = choropleth(frame, geojson, spec, title, **options)
    background = geojson.get("background") or []
    if background:
        ids = [f["id"] for f in background]
        fig["data"].insert(0, {  # underneath everything
            "type": "choropleth", "geojson": {"type": "FeatureCollection", "features": background},
            "locations": ids, "z": [0] * len(ids), "featureidkey": "id", "showscale": False,
            "colorscale": [[0, "#eeeeee"], [1, "#eeeeee"]], "hoverinfo": "skip",
            "marker": {"line": {"color": "white", "width": 0.6}}, "name": "background"})
    # framed on the warehouse's regions (the names are sized for that frame), neighbours around them;
    # turned to the frame's middle meridian, so Chukotka (stored east of 180°) stays whole
    from shapely.geometry import shape

    bounds = np.array([shape(f["geometry"]).bounds for f in geojson.get("features", []) if f.get("geometry")])
    if len(bounds):
        x0, y0 = bounds[:, 0].min(), bounds[:, 1].min()
        x1, y1 = bounds[:, 2].max(), bounds[:, 3].max()
        pad_x, pad_y = (x1 - x0) * 0.05 + 0.2, (y1 - y0) * 0.05 + 0.2
        geo = fig["layout"].setdefault("geo", {})
        geo.update(fitbounds=False, lonaxis={**geo.get("lonaxis", {}), "range": [x0 - pad_x, x1 + pad_x]},
                   lataxis={**geo.get("lataxis", {}), "range": [y0 - pad_y, y1 + pad_y]},
                   projection={**geo.get("projection", {}), "rotation": {"lon": (x0 + x1) / 2}})
    return fig


WALL_BARS = 20  # units a bar list shows on a 1920×1080 map panel; the rest would be unreadable


def wall_bars(df: pd.DataFrame, spec: Indicator) -> Figure:
    """The wall's map panel where the units have no boundaries in the warehouse (a region whose
    shapes were never imported): the units as bars by the indicator, the highest on top, coloured on
    the map's scale, so the panel still shows where it is worst. «Мало данных» units are left out."""
    code = spec.code
    low = df.get(f"{code}_low", pd.Series(False, index=df.index)).fillna(True).astype(bool)
    shown = df[~low & df[code].notna()]
    shown = (shown.assign(_rank=shown[code].astype("float64").round(9))
             .sort_values(["_rank", "municipality_name"], ascending=[False, True]).head(WALL_BARS).iloc[::-1])
    scale, reverse = wall_colour_scale(spec) if spec.kind != "growth" else _diverging(spec, wall=True)
    values = _display_values(spec, shown[code].astype("float64"))
    fig = figure([{
        "type": "bar", "orientation": "h", "x": values.to_numpy(), "y": shown["municipality_name"].to_numpy(),
        "marker": {"color": values.to_numpy(), "colorscale": plotly_scale(scale), "reversescale": reverse},
        "text": [spec.format(v) for v in shown[code]], "textposition": "outside", "cliponaxis": False,
        "hoverinfo": "skip",
    }], {
        "autosize": True, "margin": {"l": 10, "r": 90, "t": 10, "b": 10}, "showlegend": False,
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "bargap": 0.25,
        "font": {"family": FONT, "size": WALL_FONT_SIZE, "color": WALL_TEXT},
        "xaxis": {"visible": False}, "yaxis": {"automargin": True, "tickfont": {"color": WALL_TEXT}},
        "separators": ", ",
    })
    return fig
