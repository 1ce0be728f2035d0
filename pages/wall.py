"""Экран ситуационного центра (``/wall``): a large screen seen from across a room, left running for days.

Six panels rotate in the browser (``assets/wall.js``: no server round trip per turn): the heat map
of the last 7 whole days, the KPI tiles of the last complete month against their targets, the current
signals, the priority problems, the five weakest organisations of the last complete month and the
municipalities with the highest social-tension index of that month
(``metrics.periods``: one rule for "complete" everywhere; answer-based numbers of a month not yet
settled say «ответы ещё поступают» and are compared at the same age, ``metrics.compare``). ``?rotate=20`` sets the seconds per panel, ``?refresh=30`` how
often the server is asked whether the data changed, ``?stale=24`` after how many hours without new
data the header says «данные устарели: N ч» (default: env ``CUR_WALL_STALE_HOURS``, else 24).
``?region=<id>`` (a warehouse of several regions): the screen of that region's centre — its units on
the map, every number counted over them, its name, time zone and local time in the header. Without it
a user who sees one region only gets that region; anyone else gets a screen naming the regions with
their addresses (an unattended screen is never blank). The parameter narrows, never widens: the
signed-in user's (or the wall token's) scope still applies, and a region outside it is refused. The poll is cheap (file identity and data
date); panels are rebuilt only when that version changes, so a screen left for days does not build
a new figure every tick. Space or P pauses the rotation.

Every callback answers even when the warehouse is missing or broken: the screen shows a message and
keeps polling, so data that arrive later appear without anyone touching the screen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dash
import pandas as pd
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html

from charts import figures
from data.warehouse import zone_label
from metrics import catalog, words
from metrics import indicators as ind
from metrics.compare import compare, direction
from metrics.kpi import current_target
from metrics.periods import UNSETTLED, last_complete_days, last_complete_month, status_notes
from metrics.priority import priority_problems
from metrics.query import query
from metrics.rating import STATUS_RANKED, rate_organisations
from metrics.scope import Scope
from metrics.signals import detect_signals
from metrics.source import WarehouseMissing, warehouse_identity, warehouse_path
from pages import inputs
from pages.common import current_scope

dash.register_page(__name__, path="/wall", name="Экран ЦУР", title="ЦУР — экран ситуационного центра", order=90)
log = logging.getLogger(__name__)

PANELS: tuple[tuple[str, str], ...] = (
    ("map", "Обращения за 7 полных дней"),
    ("kpi", "Ключевые показатели"),
    ("signals", "Сигналы: рост сверх обычного"),
    ("priority", "Приоритетные проблемы"),
    ("weakest", "Пять слабейших организаций"),
    ("tension", "Индекс социальной напряжённости"),
)
ROTATE = (20, 2, 3600)  # default, minimum, maximum seconds per panel
REFRESH = (30, 2, 3600)  # default, minimum, maximum seconds between data checks
STALE_ENV = "CUR_WALL_STALE_HOURS"
STALE_HOURS = (24, 1, 24 * 365 * 10)  # default, minimum, maximum age of the data before the warning
MAP_INDICATOR = "rate_10k"
KPI_TILES = ("on_time_share", "overdue_open", "response_hours_median", "satisfaction_share")
# The region's reaction-time target is set for social media only («8 рабочих часов»): its tile
# shows that channel beside the all-channel median.
KPI_CHANNEL_TARGETS = {"response_hours_median": ("im", "соцсети")}
TOP_MUNICIPALITIES = 5
SIGNAL_ROWS = 7
REGION_WIDE = 3  # a category signalling in this many municipalities at once is a regional rise
PROBLEMS_PER_SECTOR = 3
WEAKEST = 5
TENSION = "tension_index"
TENSION_PARTS = ("severe_share", "repeat_share", "surge_share")  # the index's declared parts, in its order
TENSION_ROWS = 7


PROJECT_DIR = Path(__file__).resolve().parent.parent


def build_id(root: Path = PROJECT_DIR) -> str:
    """The served code and assets, as a short hash of their names and times; equal in every worker.

    The screen reloads itself when it changes (a deploy), since an old page may not match new code.
    """
    digest = hashlib.sha1(dash.__version__.encode(), usedforsecurity=False)
    for folder in ("assets", "pages", "charts", "metrics"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".js", ".css", ".json"):
                digest.update(f"{path.relative_to(root)}:{path.stat().st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


BUILD = build_id()


def seconds(value: str | None, bounds: tuple[int, int, int]) -> int:
    """A whole number of seconds from the address within bounds; the default for anything else."""
    default, low, high = bounds
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high)


# --- layout ------------------------------------------------------------------------------------


def stale_hours(value: str | None) -> int:
    """Hours after which the data count as old: the address, else env ``CUR_WALL_STALE_HOURS``, else 24."""
    default, low, high = STALE_HOURS
    fallback = seconds(os.environ.get(STALE_ENV), (default, low, high))
    return seconds(value, (fallback, low, high))


def layout(rotate: str | None = None, refresh: str | None = None, stale: str | None = None,
           region: str | None = None, **_other: str) -> html.Div:
    rotate_s, refresh_s = seconds(rotate, ROTATE), seconds(refresh, REFRESH)
    # the region is checked with the data, in the render callback (which answers a missing warehouse
    # too); the other parameters travel along into the addresses the region choice offers
    keep = {k: v for k, v in (("rotate", rotate), ("refresh", refresh), ("stale", stale)) if v not in (None, "")}
    panels = [
        html.Section(_panel_body(code), id=f"wall-panel-{code}", className="wall-panel",
                     **{"data-panel": str(i), "data-title": title})
        for i, (code, title) in enumerate(PANELS)
    ]
    dots = [html.Span(title, className="wall-dot", **{"data-panel": str(i)}) for i, (_, title) in enumerate(PANELS)]
    return html.Div(
        [
            html.Header([
                html.Div([html.Div(id="wall-region", className="wall-region"),
                          html.Div(id="wall-panel-title", className="wall-panel-title")], className="wall-titles"),
                html.Div([html.Div(id="wall-clock", className="wall-clock"),
                          html.Div(id="wall-date", className="wall-date"),
                          html.Div(id="wall-asof", className="wall-asof"),
                          # filled by assets/wall.js from the data date against the screen's clock
                          html.Div(id="wall-stale", className="wall-stale")], className="wall-time"),
            ], className="wall-header"),
            html.Main([*panels, html.Div(id="wall-message", className="wall-message")], className="wall-main"),
            html.Footer([
                html.Div(dots, className="wall-dots"),
                html.Div("нет связи с сервером — на экране последние полученные данные", id="wall-offline",
                         className="wall-offline"),
                html.Div("пауза", id="wall-pause", className="wall-pause"),
                html.Div(html.Span(className="wall-progress-bar"), className="wall-progress"),
            ], className="wall-footer"),
            html.Span(id="wall-heartbeat", className="wall-heartbeat"),
            dcc.Interval(id="wall-poll", interval=refresh_s * 1000),
            dcc.Store(id="wall-version"),
            dcc.Store(id="wall-map-figure"),
            dcc.Store(id="wall-address", data={"region": region, "keep": keep}),
            html.Span(id="wall-asof-iso", className="wall-heartbeat"),
            # the shown region's IANA time zone, read by the clock (wall.js); empty: the screen's own
            html.Span(id="wall-timezone", className="wall-heartbeat"),
        ],
        id="wall-root",
        className="wall",
        lang="ru",
        **{"data-rotate": str(rotate_s), "data-refresh": str(refresh_s), "data-stale-hours": str(stale_hours(stale))},
    )


def _panel_body(code: str) -> list:
    if code == "map":
        config = {**figures.graph_config("карта"), "staticPlot": True, "displayModeBar": False}
        return [html.Div(dcc.Graph(id="wall-map", config=config, responsive=True, className="wall-map-graph"),
                         className="wall-map"),
                html.Div(id="wall-map-side", className="wall-map-side")]
    return [html.Div(id=f"wall-{code}", className=f"wall-{code}")]


# --- data version: what the screen polls ---------------------------------------------------------


def data_version() -> str:
    """Changes when the warehouse file is replaced or rewritten, or its data date moves; cheap."""
    try:
        inode, mtime = warehouse_identity()
    except WarehouseMissing:
        return "missing"
    try:
        as_of = catalog.as_of()
    except Exception:  # a half-written or foreign file: poll again, show a message meanwhile
        log.exception("wall: data date unreadable")
        return f"unreadable:{inode}:{mtime}"
    return f"{inode}:{mtime}:{as_of:%Y-%m-%dT%H:%M:%S}"


@callback(
    Output("wall-heartbeat", "children"),
    Output("wall-version", "data"),
    Input("wall-poll", "n_intervals"),
    State("wall-version", "data"),
)
def poll(n_intervals: int | None, known: str | None):
    # the heartbeat changes on every answer: the browser's watchdog tells a live server by it
    beat = f"{BUILD}:{n_intervals or 0}:{dt.datetime.now():%H%M%S}"
    try:
        version = data_version()
    except Exception:  # never let the poll fail: a failed poll reads as a dead server
        log.exception("wall: poll failed")
        version = "error"
    return beat, (dash.no_update if version == known else version)


# --- panels ------------------------------------------------------------------------------------

_RENDER_OUTPUTS = (
    Output("wall-region", "children"),
    Output("wall-asof", "children"),
    Output("wall-message", "children"),
    Output("wall-message", "className"),
    Output("wall-map-figure", "data"),
    Output("wall-map-side", "children"),
    Output("wall-kpi", "children"),
    Output("wall-signals", "children"),
    Output("wall-priority", "children"),
    Output("wall-weakest", "children"),
    Output("wall-asof-iso", "children"),
    Output("wall-tension", "children"),
    Output("wall-timezone", "children"),
)


@callback(*_RENDER_OUTPUTS, Input("wall-version", "data"), State("wall-address", "data"),
          prevent_initial_call=True)
def render(version: str | None, address: dict | None = None):
    if not version:
        raise dash.exceptions.PreventUpdate
    address = address if isinstance(address, dict) else {}
    keep = address.get("keep") if isinstance(address.get("keep"), dict) else {}
    return render_all(current_scope(), address.get("region"), keep)


class RegionChoice(Exception):
    """No single region to show: the screen names the regions instead (``title``, ``text``)."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__(title)
        self.title, self.text = title, text


def chosen_region(raw: object) -> int | None:
    """The region the screen shows: None in a one-region warehouse (nothing changes there); the
    address's region checked against the user's scope (``pages.inputs.region``); without one, the
    only region the user sees. ``RegionChoice`` when there is none to show or it is not allowed."""
    if raw in (None, ""):
        if catalog.region_count() <= 1:
            return None
        visible = catalog.visible_regions()
        if len(visible) == 1:
            return int(visible["region_id"].iloc[0])
        if visible.empty:
            raise RegionChoice("Нет доступных регионов", "Учётной записи экрана не доступен ни один муниципалитет.")
        raise RegionChoice("Выберите регион",
                           f"Экран центра показывает один регион, а вам доступны {len(visible)}. "
                           "Откройте адрес экрана нужного региона:")
    try:
        rid = inputs.region(raw)
    except inputs.InvalidInput as exc:
        text = str(exc)
        raise RegionChoice("Регион не найден", f"{text[:1].upper()}{text[1:]}. Доступные регионы:") from exc
    return None if catalog.region_count() <= 1 else rid


def _region_links(keep: dict) -> html.Ul:
    """Each region the user sees, as the address of its screen (rotation and the rest kept)."""
    params = {k: str(v) for k, v in keep.items() if k in ("rotate", "refresh", "stale")}
    return html.Ul([
        html.Li(html.A(f"{r.region_name} — /wall?region={int(r.region_id)}",
                       href=dash.get_relative_path("/wall") + "?" + urlencode({"region": int(r.region_id), **params})))
        for r in catalog.visible_regions().itertuples()], className="wall-region-links", id="wall-region-links")


def render_all(scope: Scope, region: object = None, keep: dict | None = None) -> tuple:
    """Everything the screen shows for the current data: header texts, message, and each panel.

    ``region``: the address's ``?region=`` (raw; checked here against the user's scope)."""
    empty = (None, "", "", "", "", "")
    try:
        home = catalog.region()
        as_of = catalog.as_of()
        has_data = bool(catalog.months_with_data())
        rid = chosen_region(region)
    except WarehouseMissing:
        return ("", "нет хранилища данных",
                message("Хранилище данных не найдено",
                        f"Файл {warehouse_path()} отсутствует. Экран покажет данные, как только они появятся."),
                "wall-message is-shown", *empty, "", "", "")
    except RegionChoice as choice:
        return ("Экран ситуационного центра", f"данные на {as_of:%d.%m.%Y %H:%M}",
                message(choice.title, choice.text, _region_links(keep or {})),
                "wall-message is-shown is-choice", *empty, "", "", "")
    except Exception:
        log.exception("wall: warehouse unreadable")
        return ("", "", message("Хранилище данных недоступно", "Ошибка чтения данных; повторю попытку."),
                "wall-message is-shown", *empty, "", "", "")
    timezone, header = "", home.label
    iso = f"{as_of:%Y-%m-%dT%H:%M:%S}"  # the region's local time, read by the screen's clock (wall.js)
    shown = as_of
    if rid is not None:  # one region of several: its units only, its name, its clock
        settings = catalog.region_settings(rid)
        scope = catalog.within_region(scope, rid)
        timezone = settings.timezone
        # the region's own last receipt: a regional feed that stopped reads «устарели» on its wall,
        # whatever the other regions' feeds do (the periods still follow the warehouse's data date);
        # the pack and the brief of the region state the same date (catalog.region_data_date)
        fresh, shown, _zone = catalog.region_data_date(rid, scope, as_of)
        header = f"{settings.label} · время {zone_label(timezone, shown)}"
        # an absolute moment (with the warehouse clock's offset): the staleness is right on any screen
        iso = _with_offset(fresh, home.timezone)
    stamp = f"данные на {shown:%d.%m.%Y %H:%M}"
    if not has_data:
        return (header, stamp, message("Обращений пока нет", "Экран покажет их сразу после загрузки."),
                "wall-message is-shown", *empty, iso, "", timezone)
    figure, side = _guarded(lambda: map_panel(scope, as_of), 2)
    return (header, stamp, "", "wall-message", figure, side,
            _guarded(lambda: kpi_panel(scope, as_of)),
            _guarded(lambda: signals_panel(scope, as_of)),
            _guarded(lambda: priority_panel(scope, as_of)),
            _guarded(lambda: weakest_panel(scope, as_of)), iso,
            _guarded(lambda: tension_panel(scope, as_of)), timezone)


def _with_offset(moment: dt.datetime, timezone: str) -> str:
    try:
        return moment.replace(tzinfo=ZoneInfo(timezone)).isoformat(timespec="seconds")
    except (ZoneInfoNotFoundError, ValueError):
        return f"{moment:%Y-%m-%dT%H:%M:%S}"


def _guarded(build: Callable[[], object], outputs: int = 1):
    """One panel's failure is that panel's message; the others still show."""
    try:
        return build()
    except Exception:
        log.exception("wall panel failed")
        note = message("Панель временно недоступна", "Ошибка при расчёте; подробности в журнале сервера.")
        return (None, note) if outputs == 2 else note


def message(title: str, text: str, *more: object) -> html.Div:
    return html.Div([html.Div(title, className="wall-message-title"), html.Div(text, className="wall-message-text"),
                     *more], className="wall-note")


def _heading(text: str, period: str, notes: list[str] | None = None) -> html.Div:
    """A panel's title, its period and the period's warnings («неполный период», «ответы ещё поступают»)."""
    period_text = " · ".join([period, *(notes or [])]) if period else ""
    return html.Div([html.Span(text), html.Span(period_text, className="wall-period")], className="wall-heading")


def _number(value: float) -> str:
    return ind.get("volume").format(value)


def map_panel(scope: Scope, as_of: dt.datetime) -> tuple[dict, html.Div]:
    """The choropleth of the last 7 whole days and, beside it, the total and the top municipalities.

    Whole days: the data date's own day is only partly in the data and would make the growth against
    the 7 days before look lower than it is."""
    code = MAP_INDICATOR if catalog.population_known() else "volume"  # no population: no rate to draw
    spec = ind.get(code)
    period = last_complete_days(7, as_of)
    by_muni = query([code, "volume"], by=["municipality"], period=period, scope=scope, as_of=as_of)
    total = query(["volume", "growth"], period=period, scope=scope, as_of=as_of)
    geojson = catalog.region_geojson()
    if scope.municipality_ids is not None:
        features = [f for f in geojson.get("features", []) if int(f["id"]) in scope.municipality_ids]
        geojson = {**geojson, "features": features}
    drawn = {int(f["id"]) for f in geojson.get("features", [])}
    # a region whose boundaries were never imported: its units as bars rather than an empty map
    no_shapes = not drawn & set(by_muni["municipality_id"].astype(int)) if len(by_muni) else not drawn
    figure = figures.wall_bars(by_muni, spec) if no_shapes else figures.wall_choropleth(by_muni, geojson, spec)

    volume, growth = ind.get("volume"), ind.get("growth")
    row = total.iloc[0] if len(total) else pd.Series(dtype="float64")
    growth_value = row.get("growth")
    growth_low = bool(row.get("growth_low", True))
    growth_text = "—" if growth_low else growth.format(growth_value)
    top = by_muni[~by_muni[f"{code}_low"].fillna(True).astype(bool)]
    top = top.dropna(subset=[code])
    top = (top.assign(_rank=top[code].round(9)).sort_values(["_rank", "municipality_name"], ascending=[False, True])
           .head(TOP_MUNICIPALITIES))  # ties in a fixed order, whatever order the engine returned
    schematic = any(f["properties"].get("is_schematic") for f in geojson.get("features", []))
    side = html.Div([
        _heading(volume.label, period.label),
        html.Div(volume.format(row.get("volume", 0)), className="wall-big", id="wall-map-total"),
        html.Div([f"{growth.label}: ", html.Span(growth_text, className=_direction_class(growth, growth_value)
                                                 if not growth_low else "")], className="wall-sub"),
        html.Div(f"Больше всего — {spec.label.lower()}", className="wall-list-title"),
        html.Ol([html.Li([html.Span(r.municipality_name, className="wall-name"),
                          html.Span(spec.format(getattr(r, code)), className="wall-value")])
                 for r in top.itertuples()], className="wall-list"),
        html.Div("Границ муниципалитетов нет в хранилище: вместо карты — муниципалитеты по показателю."
                 if no_shapes else "Границы схематичные (демо-режим)." if schematic else "", className="wall-footnote"),
    ])
    return figure, side


def _direction_class(spec: ind.Indicator, change: float | None) -> str:
    """«is-good» / «is-bad» for a change of a receipt count (growth) in its good or bad direction;
    answer-based changes are judged by ``metrics.compare`` (``_better_class``)."""
    if change is None or pd.isna(change) or change == 0 or spec.higher_is_better is None:
        return ""
    return "is-good" if (change > 0) == spec.higher_is_better else "is-bad"


def _status_class(spec: ind.Indicator, value: float | None, target: float | None) -> str:
    if value is None or target is None or pd.isna(value) or spec.higher_is_better is None:
        return "is-neutral"
    ok = value >= target if spec.higher_is_better else value <= target
    return "is-good" if ok else "is-bad"


def _target_text(spec: ind.Indicator, target: float | None) -> str:
    if target is None:
        return "цель не задана"
    return f"цель {'≥' if spec.higher_is_better else '≤'} {spec.format(target)}"


def kpi_panel(scope: Scope, as_of: dt.datetime) -> html.Div:
    """Four tiles: the last complete month against the target in force, and the month before — for
    answer-based tiles at the same age while the month is not settled (``metrics.compare``)."""
    period = last_complete_month(as_of)
    codes = [*KPI_TILES, "backlog_open"]
    values = compare(codes, period=period, scope=scope, as_of=as_of).iloc[0]
    previous = period.previous()
    tiles = []
    for code in KPI_TILES:
        spec = ind.get(code)
        low = bool(values.get(f"{code}_low", False))
        value = None if low or pd.isna(values.get(code)) else float(values[code])
        target = current_target(code, on=as_of.date())
        status = _status_class(spec, value, target)
        lines = [html.Div(_target_text(spec, target), className="wall-tile-target")]
        if code in KPI_CHANNEL_TARGETS:
            channel, label = KPI_CHANNEL_TARGETS[code]
            by_channel = query([code], period=period, filters={"channel": [channel]}, scope=scope, as_of=as_of)
            channel_value = None
            if len(by_channel) and not bool(by_channel[f"{code}_low"].iloc[0]):
                channel_value = float(by_channel[code].iloc[0])
            channel_target = current_target(code, on=as_of.date(), channel=channel)
            status = _status_class(spec, channel_value, channel_target)
            lines = [html.Div(f"{label}: {spec.format(channel_value)} · {_target_text(spec, channel_target)}",
                              className="wall-tile-target")]
        if spec.kind == "open":  # a count at the snapshot point: the month before says nothing about it
            backlog = ind.get("backlog_open")
            lines.append(html.Div(f"{backlog.label}: {backlog.format(values.get('backlog_open'))}",
                                  className="wall-tile-compare"))
        else:
            prev = values.get(f"{code}_prev")
            prev_low = bool(values.get(f"{code}_low_prev", True))
            change = values.get(f"{code}_change")
            arrow = "" if change is None or pd.isna(change) or change == 0 else ("▲ " if change > 0 else "▼ ")
            unsettled = bool(values.get(f"{code}_unsettled", False))
            when = f"в {words.month_prepositional(previous.start)}" + (" на тот же срок" if unsettled else "")
            # the arrow is the move from then to now, coloured by the indicator's good direction; an
            # unsettled month is held to the month before at the same age, never to its settled value
            lines.append(html.Div([
                html.Span(arrow, className=_better_class(values.get(f"{code}_better"))),
                f"было {'—' if prev_low else spec.format(prev)} {when}",
            ], className="wall-tile-compare"))
            if unsettled:
                lines.append(html.Div(UNSETTLED, className="wall-tile-note"))
        tiles.append(html.Div([
            html.Div(spec.label, className="wall-tile-label"),
            html.Div("мало данных" if low else spec.format(value), className="wall-tile-value"),
            *lines,
        ], className=f"wall-tile {status}", **{"data-indicator": code}))
    return html.Div([_heading("Ключевые показатели", period.label, status_notes(period, as_of, answer_based=False)),
                     html.Div(tiles, className="wall-tiles")])


def _better_class(better: object) -> str:
    """«is-good» / «is-bad» from ``metrics.compare``'s judgement of a change; nothing without one."""
    return {"better": "is-good", "worse": "is-bad"}.get(direction(better), "")


def signals_panel(scope: Scope, as_of: dt.datetime) -> html.Div:
    """Signals of the latest whole week: regional rises in one line each, then local ones."""
    df = detect_signals(as_of=as_of, scope=scope)
    if df.empty:
        return html.Div([_heading("Сигналы", ""), html.Div(
            "Сигналов нет: ни одна категория не выросла заметно сверх своего обычного уровня.",
            className="wall-calm")])
    week: dt.date = df["week"].iloc[0]
    week_label = f"неделя {week:%d.%m} — {week + dt.timedelta(days=6):%d.%m.%Y}"
    regional = df[df["same_category_signals"] >= REGION_WIDE]
    local = df[df["same_category_signals"] < REGION_WIDE]
    parts: list = [_heading("Недельное число обращений заметно выше обычного", week_label)]
    if not regional.empty:
        summary = regional.groupby("category_name").agg(n=("municipality_id", "size"), count=("count", "sum"),
                                                        since=("first_week", "min"))
        summary = summary.sort_values("count", ascending=False).head(3)
        parts.append(html.Div([
            html.Div([html.Span("по всему региону", className="wall-chip"), html.Span(name, className="wall-name"),
                      html.Span(f"{int(s.n)} муниципалитетов · {_number(s['count'])} за неделю · с {s.since:%d.%m}",
                                className="wall-value")], className="wall-regional")
            for name, s in summary.iterrows()]))
    shown = local if not local.empty else df
    rows = [html.Tr([html.Td(r.municipality_name, className="wall-name"), html.Td(r.category_name, className="wall-name"),
                     html.Td(_number(r.count), className="num"),
                     html.Td(f"{r.baseline:.1f}".replace(".", ","), className="num"),
                     html.Td(f"×{r.ratio:.1f}".replace(".", ",") if pd.notna(r.ratio) else "впервые", className="num"),
                     html.Td(f"{r.first_week:%d.%m}", className="num")])
            for r in shown.head(SIGNAL_ROWS).itertuples()]
    if local.empty:
        parts.append(html.Div("Местных сигналов нет; крупнейшие из общих:", className="wall-list-title"))
    parts.append(html.Table([
        html.Thead(html.Tr([html.Th("Муниципалитет"), html.Th("Категория"), html.Th("За неделю", className="num"),
                            html.Th("Обычно", className="num"), html.Th("Рост", className="num"),
                            html.Th("С недели", className="num")])),
        html.Tbody(rows)], className="wall-table", id="wall-signals-table"))
    return html.Div(parts)


def priority_panel(scope: Scope, as_of: dt.datetime) -> html.Div:
    """The top problems of each sector in the last complete month, one card per sector."""
    period = last_complete_month(as_of)
    df = priority_problems(period, scope=scope, per_sector=PROBLEMS_PER_SECTOR)
    volume, growth = ind.get("volume"), ind.get("growth")
    if df.empty:
        return html.Div([_heading("Приоритетные проблемы", period.label),
                         html.Div("За месяц обращений нет.", className="wall-calm")])
    cards = []
    for (_, sector_name), part in df.groupby(["sector_id", "sector_name"], sort=True):
        part = part[part["rank"] <= PROBLEMS_PER_SECTOR].sort_values("rank")
        cards.append(html.Div([
            html.Div(sector_name, className="wall-card-title"),
            html.Ol([html.Li([
                html.Span(f"{int(r.rank)}.", className="wall-card-rank"),
                html.Span(r.category_name, className="wall-name", title=r.category_name),
                html.Span(volume.format(r.volume), className="wall-value"),
                html.Span(growth_text(r.growth), className=f"wall-growth {_direction_class(growth, r.growth)}"),
            ]) for r in part.itertuples()], className="wall-card-list"),
        ], className="wall-card"))
    return html.Div([_heading("Обращений за месяц и рост к прошлому месяцу", period.label,
                              status_notes(period, as_of, answer_based=False)),
                     html.Div(cards, className="wall-cards")])


def growth_text(value: float | None) -> str:
    """A problem's change as /problems writes it (arrow, whole percent): the wall and the page show one
    figure for the same month, not «+4,5 %» here and «▲ 5 %» there."""
    if value is None or pd.isna(value):
        return "—"
    arrow = "▲ " if value > 0 else "▼ " if value < 0 else ""
    return f"{arrow}{abs(value) * 100:.0f} %"


def weakest_panel(scope: Scope, as_of: dt.datetime) -> html.Div:
    """The organisations at the bottom of the rating of the last complete month (answer-based: it says
    «ответы ещё поступают» until the month is settled)."""
    period = last_complete_month(as_of)
    rating = rate_organisations(period, scope=scope)
    ranked = rating[rating["status"] == STATUS_RANKED]
    if ranked.empty:
        return html.Div([_heading("Рейтинг организаций", period.label, status_notes(period, as_of)),
                         html.Div("Недостаточно данных для рейтинга за этот месяц.", className="wall-calm")])
    weakest = ranked.sort_values("rank", ascending=False).head(WEAKEST)
    volume = ind.get("volume")
    rows = []
    for r in weakest.itertuples():
        where = " · ".join(str(x) for x in (r.organisation_kind, r.municipality_name) if isinstance(x, str) and x)
        weak = r.weak_component if isinstance(r.weak_component, str) else "—"
        rows.append(html.Div([
            html.Div(f"{int(r.rank)}", className="wall-rank"),
            html.Div([html.Div(r.organisation_name, className="wall-org-name", title=r.organisation_name),
                      html.Div(f"{where} · {volume.label.lower()}: {volume.format(r.volume)}",
                               className="wall-org-meta")], className="wall-org"),
            html.Div([html.Div(f"{r.composite:.0f}", className="wall-score"), html.Div("из 100", className="wall-org-meta")],
                     className="wall-score-box"),
            html.Div([html.Div("ниже всего оценка за", className="wall-org-meta"), html.Div(weak, className="wall-weak")],
                     className="wall-weak-box"),
        ], className="wall-org-row"))
    return html.Div([_heading(f"Итоговая оценка (0–100) среди {len(ranked)} организаций в рейтинге", period.label,
                              status_notes(period, as_of)),
                     html.Div(rows, className="wall-orgs", id="wall-weakest-list")])


def tension_panel(scope: Scope, as_of: dt.datetime) -> html.Div:
    """The social-tension index of the last complete month: the region's value with its parts, and the
    municipalities where it is highest (those with too few appeals are left out: «мало данных»)."""
    period = last_complete_month(as_of)
    codes = [TENSION, *TENSION_PARTS]
    spec, parts = ind.get(TENSION), [ind.get(c) for c in TENSION_PARTS]
    total = query(codes, period=period, scope=scope, as_of=as_of)
    by_muni = query(codes, by=["municipality"], period=period, scope=scope, as_of=as_of)
    heading = _heading("Где напряжённость выше всего (0–100)", period.label,
                       status_notes(period, as_of, answer_based=False))
    row = total.iloc[0] if len(total) else pd.Series(dtype="float64")
    if row.empty or bool(row.get(f"{TENSION}_low", True)):
        return html.Div([heading, html.Div("Мало обращений за месяц для индекса.", className="wall-calm")])
    top = by_muni[~by_muni[f"{TENSION}_low"].fillna(True).astype(bool)].dropna(subset=[TENSION])
    # ties (to float noise, which differs between engines) in a fixed order: by name
    top = (top.assign(_rank=top[TENSION].round(9)).sort_values(["_rank", "municipality_name"], ascending=[False, True])
           .head(TENSION_ROWS))
    rows = [html.Tr([html.Td(r.municipality_name, className="wall-name"),
                     html.Td(spec.format(getattr(r, TENSION)), className="num"),
                     *(html.Td(p.format(getattr(r, p.code)), className="num") for p in parts)])
            for r in top.itertuples()]
    return html.Div([
        heading,
        html.Div([html.Span("по региону ", className="wall-sub"),
                  html.Span(spec.format(row[TENSION]), className="wall-big wall-tension-value", id="wall-tension-total"),
                  html.Span(" · ".join(f"{p.label.lower()}: {p.format(row[p.code])}" for p in parts),
                            className="wall-sub")], className="wall-tension-region"),
        html.Table([
            html.Thead(html.Tr([html.Th("Муниципалитет"), html.Th("Индекс", className="num"),
                                *(html.Th(label, className="num") for label in ("Тяжёлые", "Повторные", "Прирост"))])),
            html.Tbody(rows)], className="wall-table wall-tension-table", id="wall-tension-table"),
        html.Div(spec.description, className="wall-footnote"),
    ])


clientside_callback(
    ClientsideFunction(namespace="wall", function_name="scaleFigure"),
    Output("wall-map", "figure"),
    Input("wall-map-figure", "data"),
)
