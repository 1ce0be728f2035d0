"""Тепловая карта: municipalities on the map and the municipality × category matrix.

Every selector lives in the query string (``?period=2026-10&sector=housing&indicator=on_time_share``):
a copied address opens the same view. Values from the URL are checked against the declared lists.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from charts import figures
from metrics import catalog
from metrics import indicators as ind
from metrics.appeals import categories
from metrics.periods import INCOMPLETE, UNSETTLED, Period, PeriodError, status_notes
from metrics.query import query
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import (
    compared_with,
    current_scope,
    default_period,
    dropdown,
    missing_warehouse,
    no_appeals,
    period_warning,
    scope_note,
)
from pages.common import period_options as period_options_for
from pages.shell import map_allowed, map_reference, region_geojson_url

dash.register_page(__name__, path="/", name="Тепловая карта", title="ЦУР Heatmap — тепловая карта", order=0)
log = logging.getLogger(__name__)

MAP_INDICATORS = (
    "volume", "rate_10k", "growth", "on_time_share", "overdue_open", "response_hours_median",
    "resolve_days_median", "resolved_share", "satisfaction_share", "repeat_share", "response_share",
    "severe_share", "tension_index",
)
ALL = "all"
DEFAULT_INDICATOR = "rate_10k"
PROFILE_HINT = "Щёлкните муниципалитет на карте или строку матрицы, чтобы увидеть его проблемы."
PANEL_CATEGORIES = 8
NO_SHAPES = "Для муниципалитетов этого региона нет границ —<br>данные в матрице ниже"


def _valid(value: str | None, allowed: list[str], default: str) -> str:
    return value if value in allowed else default


def layout(**query_args: str) -> html.Div:
    try:
        months = catalog.months_with_data()
        as_of = catalog.as_of()
        period_options = period_options_for(months, last30=True, as_of=as_of)
        sectors = catalog.sectors()
        channels = catalog.channels()
    except WarehouseMissing:
        return html.Div([missing_warehouse("warehouse-missing"), _placeholders()])
    if not period_options:
        return html.Div([no_appeals("no-data"), _placeholders()])
    if not catalog.population_known():  # a rate per 10 000 residents needs population: open on the volume
        query_args = {"indicator": "volume", **query_args}
    periods = [o["value"] for o in period_options]
    sector_values = [ALL, *sectors["sector_code"]]
    channel_values = [ALL, *channels["channel"]]
    period = _valid(query_args.get("period"), periods, default_period(months, as_of) or periods[0])
    sector = _valid(query_args.get("sector"), sector_values, ALL)
    channel = _valid(query_args.get("channel"), channel_values, ALL)
    indicator = _valid(query_args.get("indicator"), list(MAP_INDICATORS), DEFAULT_INDICATOR)
    # the clicked unit travels in the address too (a shared link reopens its panel); only one the user may see
    selected = query_args.get("municipality")
    municipality = int(selected) if isinstance(selected, str) and selected.isdigit() and \
        int(selected) in set(catalog.municipalities()["municipality_id"]) else None
    # ?region=<id> (from «Регионы»): the map and its filters narrow to that region's units
    region = inputs.or_default(inputs.region, query_args.get("region"), None) if "region" in query_args else None

    def control(id_: str, label: str, options: list[dict], value: str) -> dbc.Col:
        return dbc.Col([dbc.Label(label, html_for=id_, className="small text-muted mb-0"),
                        dropdown(id=id_, options=options, value=value, clearable=False)], md=3)

    controls = dbc.Row([
        control("heatmap-period", "Период", period_options, period),
        control("heatmap-sector", "Отраслевой блок",
                [{"label": "Все блоки", "value": ALL}]
                + [{"label": r.sector_name, "value": r.sector_code} for r in sectors.itertuples()], sector),
        control("heatmap-channel", "Канал",
                [{"label": "Все каналы", "value": ALL}]
                + [{"label": r.channel_name, "value": r.channel} for r in channels.itertuples()], channel),
        control("heatmap-indicator", "Показатель",
                [{"label": ind.get(c).label, "value": c} for c in MAP_INDICATORS], indicator),
    ], className="g-2 mb-2")
    return html.Div([
        dcc.Location(id="heatmap-url", refresh=False),
        dcc.Location(id="heatmap-go", refresh="callback-nav"),  # a matrix cell opens its drill-down
        dcc.Store(id="heatmap-selected", data=municipality),
        dcc.Store(id="heatmap-region", data=region),
        controls,
        html.Div(id="heatmap-note", className="small text-muted mb-2"),
        dbc.Row([
            dbc.Col(dcc.Loading(dcc.Graph(id="heatmap-map", config=figures.graph_config("карта"))), lg=7),
            dbc.Col(html.Div(id="heatmap-profile", children=html.P(PROFILE_HINT, className="text-muted")), lg=5),
        ]),
        html.P("Щелчок по клетке матрицы открывает разбор: организации и сами обращения.",
               className="small text-muted mb-0"),
        dcc.Loading(dcc.Graph(id="heatmap-matrix", config=figures.graph_config("матрица"))),
    ])


def _placeholders() -> html.Div:
    """The components the callbacks expect, hidden: a page without data must not log id errors."""
    return html.Div([
        dcc.Location(id="heatmap-url", refresh=False), dcc.Location(id="heatmap-go", refresh="callback-nav"),
        dcc.Store(id="heatmap-selected"), dcc.Store(id="heatmap-region"),
        *(dropdown(id=i, options=[], value=None) for i in
          ("heatmap-period", "heatmap-sector", "heatmap-channel", "heatmap-indicator")),
        html.Div(id="heatmap-note"), html.Div(id="heatmap-profile"),
        dcc.Graph(id="heatmap-map"), dcc.Graph(id="heatmap-matrix"),
    ], style={"display": "none"})


def selection(period_code: object, sector: object, channel: object,
              indicator: object) -> tuple[Period, dict, str]:
    """Validate the selectors against the declared lists: (period, filters for metrics, indicator code)."""
    indicator = inputs.choice(indicator, MAP_INDICATORS, "показатель")
    period = inputs.period(period_code, last30=True)
    filters: dict[str, list] = {}
    if (sector_code := inputs.sector(sector)) is not None:
        filters["sector"] = [sector_code]
    if (channel_code := inputs.channel(channel)) is not None:
        filters["channel"] = [channel_code]
    return period, filters, indicator


@callback(
    Output("heatmap-map", "figure"),
    Output("heatmap-matrix", "figure"),
    Output("heatmap-note", "children"),
    Input("heatmap-period", "value"),
    Input("heatmap-sector", "value"),
    Input("heatmap-channel", "value"),
    Input("heatmap-indicator", "value"),
    State("heatmap-region", "data"),
    State("heatmap-selected", "data"),
)
def update(period_code: str | None, sector: str | None, channel: str | None, indicator: str | None,
           region: object = None, selected: object = None):
    if period_code is None:  # no data behind the page: nothing to draw
        return figures.empty_figure("", ""), figures.empty_figure("", ""), ""
    try:
        period, filters, indicator = selection(period_code, sector, channel, indicator)
        spec = ind.get(indicator)
        geojson = catalog.region_geojson()
        region = None if region is None else inputs.region(region)
        if region is not None:  # one region of several: its units only, on the map and in every number
            filters["region"] = [region]
            units = catalog.region_municipalities(region)
            geojson = {**geojson, "features": [f for f in geojson.get("features", []) if f["id"] in units]}
        by_muni = query([indicator], by=["municipality"], period=period, filters=filters)
        matrix_by = ["municipality", "category"] if "sector" in filters else ["municipality", "sector"]
        cells = query([indicator], by=matrix_by, period=period, filters=filters)
    except (ValueError, PeriodError, KeyError) as exc:
        message = f"Не удалось построить карту: {exc}"
        return figures.empty_figure("", message), figures.empty_figure("", ""), message
    except Exception:  # a page shows a message, never a traceback
        log.exception("heat map failed")
        message = "Не удалось построить карту: ошибка на сервере, подробности в журнале."
        return figures.empty_figure("", message), figures.empty_figure("", ""), message

    scope_text = _filters_text(sector, channel)
    if region is not None:
        scope_text = f" · {_region_name(region)}{scope_text}"
    as_of = catalog.as_of()
    # «неполный период» / «ответы ещё поступают» travel with the numbers, exported images included
    warning = period_warning(period, as_of, spec.answer_based)
    title = f"{spec.label} — {period.label}{warning}{scope_text}"
    no_shapes = region is not None and not geojson.get("features")
    # a blank map says why on itself (an exported image too), not only in the note above it
    fig_map = (figures.empty_figure(title, NO_SHAPES) if no_shapes else
               figures.choropleth(by_muni, geojson, spec, title, geojson_url=region_geojson_url(),
                                  reference=map_reference(spec, period, filters), allowed=map_allowed(),
                                  selectable=True, selected=_outlined(selected)))
    column = "category_name" if "sector" in filters else "sector_name"
    fig_matrix = figures.matrix(cells, spec, "municipality_name", column,
                                f"{spec.label} по муниципалитетам и {'категориям' if 'sector' in filters else 'блокам'}"
                                f" — {period.label}{warning}{scope_text}")
    note = figures.data_note(f"{period.label}{scope_text}".replace(" · ", ", "), catalog.as_of())
    filter_names = scope_text.removeprefix(" · ")
    figures.mark_export(fig_map, figures.export_filename(spec.label, filter_names, period.code), note)
    figures.mark_export(fig_matrix, figures.export_filename(spec.label, "матрица", filter_names, period.code), note)
    schematic = any(f["properties"].get("is_schematic") for f in geojson.get("features", []))
    notes = [f"Данные по состоянию на {as_of:%d.%m.%Y %H:%M}."]
    limited = scope_note(current_scope())
    if limited:  # an МЦУ: the other units are grey on the map for want of access, not of appeals
        notes.append(f"{limited} Остальные муниципалитеты на карте — серым, без чисел.")
    if no_shapes:
        notes.append("Для муниципалитетов этого региона нет границ: карта пуста, данные — в матрице ниже.")
    else:
        drawn = {f["id"] for f in geojson.get("features", [])}
        units = set(by_muni["municipality_id"].astype(int))
        if drawn and units - drawn:  # several regions, boundaries loaded for some: the map is not all of it
            notes.append(f"Границы есть не у всех муниципалитетов: на карте {len(units & drawn)} из {len(units)}, "
                         "все — в матрице ниже.")
    standing = status_notes(period, as_of, spec.answer_based)
    if INCOMPLETE in standing:
        notes.append(f"{period.label.capitalize()} — неполный период: обращения за него ещё поступают.")
    if UNSETTLED in standing:
        notes.append("Ответы ещё поступают: пока с конца периода не прошло 30 дней, часть ответов ещё не дана — "
                     "доли и сроки ответов предварительные.")
    if schematic:
        notes.append("Границы муниципалитетов схематичные (демо-режим).")
    if spec.min_volume:
        notes.append(f"Серым — мало данных (меньше {spec.min_volume} обращений в основе показателя).")
    population = catalog.population_info()
    if spec.kind == "rate" and not population.has_population:
        notes.append("Нет данных о населении: показатель на 10 тыс. жителей не рассчитать (python -m geo population).")
    elif population.is_estimate:  # only where the data say the population is an estimate
        notes.append("Население — приблизительная оценка.")
    return fig_map, fig_matrix, " ".join(notes)


def _region_name(region_id: int) -> str:
    names = catalog.regions()
    return str(names.loc[names["region_id"] == region_id, "region_name"].iloc[0])


def _filters_text(sector: str, channel: str) -> str:
    parts = []
    if sector != ALL:
        parts.append(catalog.names("sector").get(sector, sector))
    if channel != ALL:
        parts.append(catalog.names("channel").get(channel, channel))
    return f" · {', '.join(parts)}" if parts else ""


def _search(period_code: str, sector: str, channel: str, indicator: str, municipality: int | None,
            region: object = None) -> str:
    values = {"period": period_code, "sector": sector, "channel": channel, "indicator": indicator}
    if region is not None:
        values["region"] = region
    if municipality is not None:
        values["municipality"] = municipality
    return "?" + urlencode(values)


SELECTORS = ("heatmap-period", "heatmap-sector", "heatmap-channel", "heatmap-indicator")


@callback(
    Output("heatmap-url", "search"),
    *(Output(i, "value") for i in SELECTORS),
    Output("heatmap-selected", "data"),
    Input("heatmap-url", "search"),
    *(Input(i, "value") for i in SELECTORS),
    Input("heatmap-map", "clickData"),
    State("heatmap-selected", "data"),
    State("heatmap-url", "pathname"),
    State("heatmap-region", "data"),
)
def sync_address(search: str | None, period_code: str | None, sector: str | None, channel: str | None,
                 indicator: str | None, click: dict | None, selected: object, pathname: str | None = "/",
                 region: object = None):
    """The view and the address follow each other. A choice on the page (a selector, a unit clicked on
    the map) writes the address — only values that passed the checks; each change is a history step;
    back or forward changes the address, and the page takes the view from it."""
    keep = (dash.no_update,) * 6
    # leaving the page, the address already names another page: it is not this page's to rewrite
    if period_code is None or pathname not in (None, "/"):
        return keep
    new_unit = dash.no_update
    if dash.ctx.triggered_id == "heatmap-map":
        point = (click or {}).get("points", [{}])[0] if (click or {}).get("points") else {}
        try:
            selected = new_unit = inputs.municipality(point.get("location") or point.get("customdata"),
                                                      allow_all=False)
        except inputs.InvalidInput:
            return keep
    if dash.ctx.triggered_id == "heatmap-url" and search:
        args = parse_qs(search.lstrip("?"))
        wanted = {k: v[-1] for k, v in args.items() if v}
        values = [wanted.get(k, current) for k, current in
                  zip(("period", "sector", "channel", "indicator"), (period_code, sector, channel, indicator),
                      strict=True)]
        try:
            selection(*values)
            unit = wanted.get("municipality")
            unit = None if unit is None else inputs.municipality(unit, allow_all=False)
        except (inputs.InvalidInput, PeriodError, ValueError):
            values, unit = [period_code, sector, channel, indicator], selected  # keep the view, fix the address
        fixed = _search(*values, unit, region)
        changed = [v if v != old else dash.no_update
                   for v, old in zip(values, (period_code, sector, channel, indicator), strict=True)]
        return (fixed if fixed != search else dash.no_update, *changed,
                unit if unit != selected else dash.no_update)
    try:
        selection(period_code, sector, channel, indicator)
        municipality = None if selected is None else inputs.municipality(selected, allow_all=False)
    except (inputs.InvalidInput, PeriodError):
        return keep
    return (_search(period_code, sector, channel, indicator, municipality, region), *keep[1:5], new_unit)


def _outlined(selected: object) -> int | None:
    try:
        return None if selected is None else inputs.municipality(selected, allow_all=False)
    except inputs.InvalidInput:
        return None


# The outline follows a click in the browser itself, not through the server: a server's answer could
# arrive after the map was left (back / forward to the drill page), and patching a map no longer there
# is an error in the page. Only the outline trace changes; the shapes come from the browser's cache.
clientside_callback(
    """function (selected, fig) {
        var traces = (fig && fig.data) || [];
        var at = traces.findIndex(function (t) { return t.name === __TRACE__; });
        if (at < 0) { return window.dash_clientside.no_update; }  // an empty map: nothing to outline
        var id = (selected === null || selected === undefined || selected === "") ? NaN : Number(selected);
        var ok = Number.isInteger(id);
        var data = traces.slice();
        data[at] = Object.assign({}, traces[at], {locations: ok ? [id] : [], z: ok ? [0] : []});
        return Object.assign({}, fig, {data: data});
    }""".replace("__TRACE__", json.dumps(figures.SELECTION_TRACE)),
    Output("heatmap-map", "figure", allow_duplicate=True), Input("heatmap-selected", "data"),
    State("heatmap-map", "figure"), prevent_initial_call=True)


def _by_name(ref, name_column: str, name: object, key: str) -> object:
    """The id of the one row named ``name`` (a cell says only names: the Graph's click data carries no ids)."""
    found = ref.loc[ref[name_column] == name, key] if isinstance(name, str) else []
    if len(found) != 1:
        raise LookupError(name)
    value = found.iloc[0]
    return value if isinstance(value, str) else int(value)


@callback(
    Output("heatmap-go", "href"),
    Input("heatmap-matrix", "clickData"),
    State("heatmap-period", "value"),
    State("heatmap-sector", "value"),
    State("heatmap-channel", "value"),
    State("heatmap-indicator", "value"),
    prevent_initial_call=True,
)
def open_cell(click: dict | None, period_code: str, sector: str, channel: str, indicator: str):
    """A matrix cell opens its drill-down: that category (or sector) in that unit, within the filters."""
    if not click or not click.get("points"):
        return dash.no_update
    point = click["points"][0]
    try:
        selection(period_code, sector, channel, indicator)
        municipality = _by_name(catalog.municipalities(), "municipality_name", point.get("y"), "municipality_id")
        values = {"period": period_code, "sector": sector, "channel": channel, "indicator": indicator}
        if inputs.sector(sector) is None:  # columns are sectors: the unit within that sector
            values["sector"] = _by_name(catalog.sectors(), "sector_name", point.get("x"), "sector_code")
        else:  # columns are the sector's categories
            own = categories()
            values["category"] = _by_name(own[own["sector_code"] == sector], "category_name", point.get("x"),
                                          "category_id")
        municipality = inputs.municipality(municipality, allow_all=False)
    except (inputs.InvalidInput, PeriodError, LookupError):
        return dash.no_update
    return f"/drill/{municipality}?" + urlencode(values)


@callback(
    Output("heatmap-profile", "children"),
    Input("heatmap-selected", "data"),
    Input("heatmap-period", "value"),
    Input("heatmap-sector", "value"),
    Input("heatmap-channel", "value"),
    Input("heatmap-indicator", "value"),
    State("heatmap-region", "data"),
)
def profile(selected: object, period_code: str | None, sector: str | None, channel: str | None,
            indicator: str | None, region: object = None):
    """The selected unit within the page's filters: the indicator beside the region's and the unit's
    categories (each opening its drill-down)."""
    if selected is None or period_code is None:
        return html.P(PROFILE_HINT, className="text-muted")
    try:
        municipality_id = inputs.municipality(selected, allow_all=False)
        period, filters, indicator = selection(period_code, sector, channel, indicator)
        if region is not None:  # «в регионе» is the region opened from «Регионы»
            filters["region"] = [inputs.region(region)]
        codes = list(dict.fromkeys(["volume", indicator]))
        own = query(codes, period=period, filters={**filters, "municipality": [municipality_id]}).iloc[0]
        region = query(codes, period=period, filters=filters).iloc[0]
        cats = query(codes, by=["category"], period=period, filters={**filters, "municipality": [municipality_id]})
    except (inputs.InvalidInput, PeriodError) as exc:
        return dbc.Alert(str(exc), color="warning")
    except Exception:  # a page shows a message, never a traceback
        log.exception("municipality panel failed")
        return dbc.Alert("Не удалось загрузить профиль муниципалитета: ошибка на сервере.", color="danger")
    spec = ind.get(indicator)
    compared = compared_with(current_scope(), municipality_id)  # an МЦУ's unit is not set against itself
    name = catalog.names("municipality").get(municipality_id, "")
    common = {"period": period_code, "sector": sector, "channel": channel, "indicator": indicator}
    drill = f"/drill/{municipality_id}?" + urlencode(common)
    cats = cats[cats["volume"] > 0].sort_values(["volume", "category_name"], ascending=[False, True])
    rows = [html.Tr([
        html.Td(dcc.Link(r.category_name, href=drill + "&" + urlencode({"category": int(r.category_id)}),
                         className="heatmap-category-link")),
        html.Td(f"{int(r.volume):,}".replace(",", "\u00a0"), className="text-end"),
        *([html.Td("мало данных" if getattr(r, f"{indicator}_low") else spec.format(getattr(r, indicator)),
                   className="text-end text-nowrap")] if indicator != "volume" else []),
    ]) for r in cats.head(PANEL_CATEGORIES).itertuples()]
    value = "мало данных" if own[f"{indicator}_low"] and spec.kind not in ("count", "open") else spec.format(own[indicator])
    return html.Div([
        html.H4(name, id="heatmap-profile-name"),
        html.P([html.Strong(f"{spec.label}: {value}"), f" ({compared} {spec.format(region[indicator])})"
                if compared and spec.kind not in ("count", "open") else ""], className="mb-1"),
        html.P([f"{period.label}{_filters_text(sector, channel)} · ",
                dcc.Link("разбор: организации и обращения →", href=drill, id="heatmap-profile-drill"), " · ",
                dcc.Link("полный профиль →", href=f"/municipality/{municipality_id}?" + urlencode(common),
                         id="heatmap-profile-link")], className="text-muted"),
        dbc.Table([html.Thead(html.Tr([html.Th("Категория"), html.Th("Обращений", className="text-end"),
                                       *([html.Th(spec.label, className="text-end")] if indicator != "volume"
                                         else [])])),
                   html.Tbody(rows)], size="sm", hover=True, id="heatmap-profile-table")
        if rows else html.P("За период обращений нет.", id="heatmap-profile-table"),
    ])
