"""Регионы: the warehouse's federal subjects ranked like the federal monthly rating of the ЦУР.

A table of places and a map of the federal subjects; a region's name (in the table or on the map)
opens its own heat map (``/?region=<id>``). The period and the map's indicator live in the query string
(``?period=2026-10&indicator=on_time_share``). Curators only (``auth.web.CURATOR_PAGES``): the other roles
see one region's part at most, and a rating of regions is nothing to them.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, dcc, html

from charts import figures
from charts.figures import MapReference
from metrics import catalog
from metrics import indicators as ind
from metrics.country import COMPONENTS, EXTRA, all_regions, component_spec, format_component, region_rating
from metrics.periods import PeriodError
from metrics.query import QueryError
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import default_period, dropdown, missing_warehouse, no_appeals, period_warning
from pages.common import period_options as period_options_for
from pages.shell import judged_against_reference

dash.register_page(__name__, path="/regions", name="Регионы", title="ЦУР Heatmap — регионы", order=60)
log = logging.getLogger(__name__)

# the page's component ids
URL, GO, PERIOD, INDICATOR = "regions-url", "regions-go", "regions-period", "regions-indicator"
NOTE, TABLE, MAP, MAP_NOTE = "regions-note", "regions-table", "regions-map", "regions-map-note"
MAP_SIZE = (1500, 560)  # the map's drawn size in px (the whole content width), for fitting the names
HIDDEN = {"display": "none"}
MAP_CHOICES = {"place": "Место в рейтинге", **{c.code: c.label for c in COMPONENTS},
               **{code: ind.get(code).label for code in EXTRA}}
NO_SHAPES = ("Границы субъектов РФ не загружены — карта недоступна, рейтинг в таблице. Загрузить их: "
             "python -m geo import-regions ФАЙЛ (например, границы GIS-Lab/OpenStreetMap).")


def layout(**query_args: str) -> html.Div:
    try:
        months = catalog.months_with_data()
        as_of = catalog.as_of()
    except WarehouseMissing:
        return html.Div([missing_warehouse("regions-missing"), _placeholders()])
    options = period_options_for(months, as_of=as_of)
    if not options:
        return html.Div([no_appeals("regions-missing"), _placeholders()])
    values = [o["value"] for o in options]
    period = query_args.get("period") if query_args.get("period") in values else default_period(months, as_of)
    indicator = query_args.get("indicator") if query_args.get("indicator") in MAP_CHOICES else "place"
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        dcc.Location(id=GO, refresh=True),  # a region on the map opens its heat map
        dbc.Row([
            dbc.Col([dbc.Label("Период", html_for=PERIOD, className="small text-muted mb-0"),
                     dropdown(id=PERIOD, options=options, value=period or values[0], clearable=False)], md=3),
            dbc.Col([dbc.Label("Цвет карты", html_for=INDICATOR, className="small text-muted mb-0"),
                     dropdown(id=INDICATOR, options=[{"label": v, "value": k} for k, v in MAP_CHOICES.items()],
                              value=indicator, clearable=False)], md=4),
        ], className="g-2 mb-2"),
        html.Div(id=NOTE, className="small text-muted mb-2"),
        dbc.Row([
            dbc.Col(html.Div(id=TABLE), xl=9),  # the rating first; the country map needs the whole width
            dbc.Col([html.Div(id=MAP_NOTE),
                     dcc.Loading(dcc.Graph(id=MAP, config=figures.graph_config("регионы")))], width=12),
        ]),
        html.P("Щёлкните регион в таблице или на карте, чтобы открыть его тепловую карту.",
               className="small text-muted"),
    ])


def _placeholders() -> html.Div:
    """The components the callbacks expect, hidden."""
    return html.Div([
        dcc.Location(id=URL, refresh=False), dcc.Location(id=GO, refresh=True),
        dropdown(id=PERIOD, options=[], value=None), dropdown(id=INDICATOR, options=[], value=None),
        html.Div(id=NOTE), html.Div(id=TABLE), html.Div(id=MAP_NOTE), dcc.Graph(id=MAP),
    ], style={"display": "none"})


def _place(value: object) -> str:
    return "—" if value is None or pd.isna(value) else str(int(value))


ALL_REGIONS = "Все регионы"
NOWRAP = " text-nowrap"  # «мало данных» on one line in the narrow component columns


def rating_table(df: pd.DataFrame, overall: pd.Series | None = None) -> dbc.Table:
    """Places, the four components with each one's place, and a link to every region's heat map; the
    last line (``overall``) is every region together, without a place."""
    head = html.Thead(html.Tr([
        html.Th("Место"), html.Th("Регион"), html.Th("Население*", className="text-end"),
        html.Th("Обращений", className="text-end"),
        *(html.Th(c.short, title=c.label, className="text-end") for c in COMPONENTS),
        *(html.Th("Напряж.", title=ind.get(code).label, className="text-end text-muted") for code in EXTRA),
    ]))
    rows = []
    for r in df.itertuples():
        cells = [html.Td(_place(r.place), className="fw-bold"),
                 html.Td(dcc.Link(r.region_name, href=f"/?region={int(r.region_id)}", className="regions-link")),
                 html.Td(format_component("volume", r.region_population) if pd.notna(r.region_population) else "—",
                         className="text-end"),
                 html.Td(format_component("volume", r.volume), className="text-end")]
        for c in COMPONENTS:
            low = bool(getattr(r, f"{c.code}_low", False))
            text = "мало данных" if low else format_component(c.code, getattr(r, c.code))
            rank = getattr(r, f"{c.code}_rank")
            cells.append(html.Td([text, html.Span(f" ({_place(rank)})", className="text-muted small")
                                  if pd.notna(rank) else ""], className="text-end" + NOWRAP * low))
        for code in EXTRA:  # beside the rating, without a place
            low = bool(getattr(r, f"{code}_low", False))
            cells.append(html.Td("мало данных" if low else format_component(code, getattr(r, code)),
                                 className="text-end text-muted" + NOWRAP * low))
        rows.append(html.Tr(cells))
    foot = []
    if overall is not None:
        population = df["region_population"].sum(min_count=1)
        cells = [html.Td(""), html.Td(ALL_REGIONS),
                 html.Td(format_component("volume", population) if pd.notna(population) else "—",
                         className="text-end"),
                 html.Td(format_component("volume", overall["volume"]), className="text-end")]
        for code in [c.code for c in COMPONENTS] + list(EXTRA):
            low = bool(overall.get(f"{code}_low", False))
            cells.append(html.Td("мало данных" if low else format_component(code, overall[code]),
                                 className="text-end" + (" text-muted" if code in EXTRA else "") + NOWRAP * low))
        foot = [html.Tfoot(html.Tr(cells, className="fw-bold", id="regions-all-row"))]
    return dbc.Table([head, html.Tbody(rows), *foot], size="sm", hover=True, striped=True, responsive=True,
                     id="regions-rating-table")


@callback(
    Output(TABLE, "children"),
    Output(MAP, "figure"),
    Output(MAP_NOTE, "children"),
    Output(MAP, "style"),
    Output(NOTE, "children"),
    Output(URL, "search"),
    Input(PERIOD, "value"),
    Input(INDICATOR, "value"),
)
def update(period_code: str | None, indicator: str | None):
    empty = figures.empty_figure("", "")
    if period_code is None:  # no data behind the page
        return "", empty, "", HIDDEN, "", dash.no_update
    try:
        period = inputs.period(period_code)
        indicator = inputs.choice(indicator, MAP_CHOICES, "цвет карты")
        df = region_rating(period)
        overall = all_regions(period)
        geojson = catalog.regions_geojson()
        as_of = catalog.as_of()
    except (inputs.InvalidInput, PeriodError, QueryError) as exc:
        return dbc.Alert(str(exc), color="warning"), empty, "", HIDDEN, "", dash.no_update
    except Exception:  # a page shows a message, never a traceback
        log.exception("regions page failed")
        return (dbc.Alert("Не удалось построить рейтинг регионов: ошибка на сервере.", color="danger"), empty, "", HIDDEN,
                "", dash.no_update)
    warning = period_warning(period, as_of)
    notes = [f"{period.label.capitalize()}{warning}. Данные по состоянию на {as_of:%d.%m.%Y %H:%M}.",
             "Место — по сумме мест в четырёх показателях (1 — лучший): больше обращений на 10 тыс. жителей, "
             "больше ответов в срок, медиана первой реакции снизилась к прошлому периоду, выше удовлетворённость.",
             "В скобках — место по показателю; «мало данных» — места нет. «Δ реакции» — изменение медианы "
             "времени первой реакции к прошлому периоду, ч; «Напряж.» — индекс социальной напряжённости "
             "(справочно, в место не входит)."]
    if catalog.regions()["population_is_approx"].any():
        notes.append("* Население — приблизительная оценка.")
    if not geojson.get("features"):
        # no map box at all under the note: an empty frame reads as a map that failed to draw
        return (rating_table(df, overall), empty, dbc.Alert(NO_SHAPES, color="secondary", id="regions-no-shapes"), HIDDEN,
                " ".join(notes), "?" + urlencode({"period": period_code, "indicator": indicator}))
    spec = component_spec(indicator)
    title = f"{spec.label} — {period.label}{warning}"
    # a share is painted around the value of all regions together (the federal rating's yardstick)
    reference = None
    if judged_against_reference(spec) and not bool(overall.get(f"{spec.code}_low", True)) \
            and pd.notna(overall[spec.code]):
        reference = MapReference(float(overall[spec.code]), "по всем регионам")
    fig = figures.region_choropleth(df, geojson, spec, title, size=MAP_SIZE, reference=reference)
    figures.mark_export(fig, figures.export_filename("регионы", spec.label, period.code),
                        figures.data_note(period.label, as_of))
    return (rating_table(df, overall), fig, "", {}, " ".join(notes),
            "?" + urlencode({"period": period_code, "indicator": indicator}))


@callback(Output(GO, "href"), Input(MAP, "clickData"), prevent_initial_call=True)
def open_region(click: dict | None):
    """A region on the map opens its own heat map."""
    point = (click or {}).get("points", [{}])[0] if (click or {}).get("points") else {}
    try:
        region_id = inputs.region(point.get("location") or point.get("customdata"))
    except inputs.InvalidInput:
        return dash.no_update
    return f"/?region={region_id}"
