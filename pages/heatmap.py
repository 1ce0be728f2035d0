"""Тепловая карта: municipalities on the map and the municipality × category matrix.

Every selector lives in the query string (``?period=2026-10&sector=housing&indicator=on_time_share``):
a copied address opens the same view. Values from the URL are checked against the declared lists.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from charts import figures
from metrics import catalog
from metrics import indicators as ind
from metrics.periods import INCOMPLETE, UNSETTLED, Period, PeriodError, status_notes
from metrics.priority import municipality_problems
from metrics.query import query
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import default_period, dropdown, missing_warehouse, no_appeals, period_warning
from pages.common import period_options as period_options_for
from pages.shell import map_allowed, map_reference, region_geojson_url

dash.register_page(__name__, path="/", name="Тепловая карта", title="ЦУР Heatmap — тепловая карта", order=0)
log = logging.getLogger(__name__)

MAP_INDICATORS = (
    "volume", "rate_10k", "growth", "on_time_share", "overdue_open", "response_hours_median",
    "resolve_days_median", "resolved_share", "satisfaction_share", "repeat_share", "response_share",
)
ALL = "all"
DEFAULT_INDICATOR = "rate_10k"


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
        controls,
        html.Div(id="heatmap-note", className="small text-muted mb-2"),
        dbc.Row([
            dbc.Col(dcc.Loading(dcc.Graph(id="heatmap-map", config=figures.graph_config("карта"))), lg=7),
            dbc.Col(html.Div(id="heatmap-profile", children=html.P(
                "Щёлкните муниципалитет на карте, чтобы увидеть его главные проблемы.", className="text-muted")),
                lg=5),
        ]),
        dcc.Loading(dcc.Graph(id="heatmap-matrix", config=figures.graph_config("матрица"))),
    ])


def _placeholders() -> html.Div:
    """The components the callbacks expect, hidden: a page without data must not log id errors."""
    return html.Div([
        dcc.Location(id="heatmap-url", refresh=False),
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
    Output("heatmap-url", "search"),
    Input("heatmap-period", "value"),
    Input("heatmap-sector", "value"),
    Input("heatmap-channel", "value"),
    Input("heatmap-indicator", "value"),
)
def update(period_code: str | None, sector: str | None, channel: str | None, indicator: str | None):
    if period_code is None:  # no data behind the page: nothing to draw, nothing to put in the address
        return figures.empty_figure("", ""), figures.empty_figure("", ""), "", dash.no_update
    search = dash.no_update  # the address keeps only values that passed the checks
    try:
        period, filters, indicator = selection(period_code, sector, channel, indicator)
        search = "?" + urlencode({"period": period_code, "sector": sector, "channel": channel, "indicator": indicator})
        spec = ind.get(indicator)
        geojson = catalog.region_geojson()
        by_muni = query([indicator], by=["municipality"], period=period, filters=filters)
        matrix_by = ["municipality", "category"] if "sector" in filters else ["municipality", "sector"]
        cells = query([indicator], by=matrix_by, period=period, filters=filters)
    except (ValueError, PeriodError, KeyError) as exc:
        message = f"Не удалось построить карту: {exc}"
        return figures.empty_figure("", message), figures.empty_figure("", ""), message, search
    except Exception:  # a page shows a message, never a traceback
        log.exception("heat map failed")
        message = "Не удалось построить карту: ошибка на сервере, подробности в журнале."
        return figures.empty_figure("", message), figures.empty_figure("", ""), message, search

    scope_text = _filters_text(sector, channel)
    as_of = catalog.as_of()
    # «неполный период» / «ответы ещё поступают» travel with the numbers, exported images included
    warning = period_warning(period, as_of, spec.answer_based)
    title = f"{spec.label} — {period.label}{warning}{scope_text}"
    fig_map = figures.choropleth(by_muni, geojson, spec, title, geojson_url=region_geojson_url(),
                                 reference=map_reference(spec, period, filters), allowed=map_allowed())
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
    return fig_map, fig_matrix, " ".join(notes), search


def _filters_text(sector: str, channel: str) -> str:
    parts = []
    if sector != ALL:
        parts.append(catalog.names("sector").get(sector, sector))
    if channel != ALL:
        parts.append(catalog.names("channel").get(channel, channel))
    return f" · {', '.join(parts)}" if parts else ""


@callback(
    Output("heatmap-profile", "children"),
    Input("heatmap-map", "clickData"),
    State("heatmap-period", "value"),
    prevent_initial_call=True,
)
def profile(click: dict | None, period_code: str):
    if not click or not click.get("points"):
        return dash.no_update
    point = click["points"][0]
    municipality_id = point.get("location") or point.get("customdata")
    try:
        municipality_id = inputs.municipality(municipality_id, allow_all=False)
        period = inputs.period(period_code, last30=True)
        problems = municipality_problems(period, municipality_id, top=7)
    except inputs.InvalidInput as exc:
        return dbc.Alert(str(exc), color="warning")
    except Exception:  # a page shows a message, never a traceback
        log.exception("municipality profile failed")
        return dbc.Alert("Не удалось загрузить профиль муниципалитета.", color="danger")
    rows = [html.Tr([html.Td(int(r.rank)), html.Td(r.category_name), html.Td(r.sector_name),
                     html.Td(f"{int(r.volume):,}".replace(",", "\u00a0"), className="text-end")])
            for r in problems.itertuples()]
    return html.Div([
        html.H4(catalog.names("municipality").get(municipality_id, ""), id="heatmap-profile-name"),
        html.P([f"Главные проблемы — {period.label} · ",
                dcc.Link("полный профиль →", href=f"/municipality/{municipality_id}?period={period.code}",
                         id="heatmap-profile-link")], className="text-muted"),
        dbc.Table([html.Thead(html.Tr([html.Th("№"), html.Th("Проблема"), html.Th("Блок"),
                                       html.Th("Обращений", className="text-end")])),
                   html.Tbody(rows)], size="sm", hover=True, id="heatmap-profile-table"),
    ])

