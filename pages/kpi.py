"""Показатели: indicator trends against targets and the same period a year earlier; small multiples by sector."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from charts import figures
from metrics import catalog
from metrics import indicators as ind
from metrics.kpi import kpi_series, kpi_small_multiples
from metrics.periods import INCOMPLETE, UNSETTLED
from metrics.source import WarehouseMissing
from pages import inputs
from pages.callback_cache import per_data
from pages.common import current_scope, dropdown, missing_warehouse, scope_note, scope_place

dash.register_page(__name__, path="/kpi", name="Показатели", title="ЦУР Heatmap — показатели", order=15)
log = logging.getLogger(__name__)
ALL = "all"
KPI_INDICATORS = (
    "on_time_share", "satisfaction_share", "response_hours_median", "resolve_days_median", "overdue_open",
    "resolved_share", "repeat_share", "first_response_on_time_share", "volume",
)


def layout(**query_args: str) -> html.Div:
    try:
        sectors = catalog.sectors()
        municipalities = catalog.municipalities()
    except WarehouseMissing:
        return html.Div([missing_warehouse("kpi-missing"), _placeholders()])
    indicator = query_args.get("indicator") if query_args.get("indicator") in KPI_INDICATORS else "on_time_share"
    sector_values = [ALL, *sectors["sector_code"]]
    sector = query_args.get("sector") if query_args.get("sector") in sector_values else ALL
    muni_values = [ALL, *(str(i) for i in municipalities["municipality_id"])]
    municipality = query_args.get("municipality") if query_args.get("municipality") in muni_values else ALL
    grain = query_args.get("grain") if query_args.get("grain") in ("month", "week") else "month"
    return html.Div([
        dcc.Location(id="kpi-url", refresh=False),
        dbc.Row([
            dbc.Col([dbc.Label("Показатель", className="small text-muted mb-0"),
                     dropdown(id="kpi-indicator", value=indicator, clearable=False,
                                  options=[{"label": ind.get(c).label, "value": c} for c in KPI_INDICATORS])], md=4),
            dbc.Col([dbc.Label("Отраслевой блок", className="small text-muted mb-0"),
                     dropdown(id="kpi-sector", value=sector, clearable=False,
                                  options=[{"label": "Все блоки", "value": ALL}]
                                  + [{"label": r.sector_name, "value": r.sector_code} for r in sectors.itertuples()])],
                    md=3),
            dbc.Col([dbc.Label("Муниципалитет", className="small text-muted mb-0"),
                     dropdown(id="kpi-municipality", value=municipality, clearable=False,
                                  options=[{"label": "Весь регион" if current_scope().municipality_ids is None
                                            else "Все доступные вам", "value": ALL}]
                                  + [{"label": r.municipality_name, "value": str(r.municipality_id)}
                                     for r in municipalities.itertuples()])], md=3),
            dbc.Col([dbc.Label("Шаг", className="small text-muted mb-0"),
                     dbc.RadioItems(id="kpi-grain", value=grain, inline=True,
                                    options=[{"label": "месяц", "value": "month"}, {"label": "неделя", "value": "week"}])],
                    md=2),
        ], className="g-2 mb-2"),
        html.Div(id="kpi-note", className="small text-muted mb-2"),
        dcc.Loading(dcc.Graph(id="kpi-trend", config=figures.graph_config("показатель"))),
        dcc.Loading(dcc.Graph(id="kpi-multiples", config=figures.graph_config("показатель по блокам"))),
    ])


def _placeholders() -> html.Div:
    return html.Div([dcc.Location(id="kpi-url", refresh=False),
                     *(dropdown(id=i, options=[], value=None) for i in ("kpi-indicator", "kpi-sector",
                                                                             "kpi-municipality")),
                     dbc.RadioItems(id="kpi-grain", options=[], value=None), html.Div(id="kpi-note"),
                     dcc.Graph(id="kpi-trend"), dcc.Graph(id="kpi-multiples")], style={"display": "none"})


@callback(
    Output("kpi-trend", "figure"),
    Output("kpi-multiples", "figure"),
    Output("kpi-note", "children"),
    Output("kpi-url", "search"),
    Input("kpi-indicator", "value"),
    Input("kpi-sector", "value"),
    Input("kpi-municipality", "value"),
    Input("kpi-grain", "value"),
)
def update(indicator: str | None, sector: str | None, municipality: str | None, grain: str | None):
    if indicator is None:
        return figures.empty_figure("", ""), figures.empty_figure("", ""), "", dash.no_update
    search = dash.no_update  # the address keeps only values that passed the checks
    try:
        indicator = inputs.choice(indicator, KPI_INDICATORS, "показатель")
        grain = inputs.choice(grain, ("month", "week"), "шаг")
        spec = ind.get(indicator)
        sector_arg = inputs.sector(sector)
        muni_arg = inputs.municipality(municipality)
        search = "?" + urlencode({"indicator": indicator, "sector": sector, "municipality": municipality,
                                  "grain": grain})
        series = kpi_series(indicator, grain=grain, sector=sector_arg, municipality=muni_arg)
        by_sector = sector_panels(indicator, grain, muni_arg)
    except ValueError as exc:
        message = f"Не удалось построить график: {exc}"
        return figures.empty_figure("", message), figures.empty_figure("", ""), message, search
    except Exception:  # a page shows a message, never a traceback
        log.exception("kpi failed")
        message = "Не удалось построить график: ошибка на сервере."
        return figures.empty_figure("", message), figures.empty_figure("", ""), message, search
    where = catalog.names("sector").get(sector_arg, "весь регион") if sector_arg else "все блоки"
    scope = current_scope()
    if muni_arg is not None:
        where += " · " + catalog.names("municipality").get(muni_arg, "")
    elif scope.municipality_ids is not None:  # an МЦУ: «all» is their municipality, not the region
        where += " · " + scope_place(scope)
    title = f"{spec.label} — {where}"
    met = series.dropna(subset=["meets_target"])
    note = [scope_note(scope) + " " if muni_arg is None and scope.municipality_ids is not None else "",
            f"Данные по состоянию на {catalog.as_of():%d.%m.%Y %H:%M}. Серая линия — тот же период год назад, "
            "красная пунктирная — цель."]
    if len(met):
        note.append(f" Цель достигнута в {int(met['meets_target'].sum())} из {len(met)} периодов"
                    + (" (периоды, по которым ответы ещё поступают, не считаются)." if spec.answer_based else "."))
    flags = [f for f in figures.period_flags(series, spec) if f]
    if flags:
        # the periods whose values still move: the data date inside, or answers still arriving
        note.append(f" Полые точки ({len(flags)}): {INCOMPLETE} — последний период, данные за него ещё поступают."
                    if not spec.answer_based else
                    f" Полые точки ({len(flags)}): {INCOMPLETE} или {UNSETTLED} — с конца периода прошло меньше "
                    "30 дней, поздние ответы ещё не пришли; сравнивать их с завершёнными периодами рано.")
    export_note = figures.data_note(where.replace(" · ", ", ") + f", по {'неделям' if grain == 'week' else 'месяцам'}",
                                    catalog.as_of())
    trend = figures.mark_export(figures.kpi_trend(series, spec, title),
                                figures.export_filename(spec.label, where, grain), export_note)
    return trend, by_sector, "".join(note), search


@per_data
def sector_panels(indicator: str, grain: str, municipality: int | None) -> figures.Figure:
    """The indicator by sector block, one panel each: the same whatever sector the main chart shows,
    so built once per data file and scope, not on every change of the sector."""
    spec = ind.get(indicator)
    multiples = kpi_small_multiples(indicator, grain=grain, municipality=municipality)
    region = (catalog.names("municipality").get(municipality, "") if municipality is not None
              else scope_place(current_scope()))
    return figures.mark_export(
        figures.kpi_small_multiples(multiples, spec, f"{spec.label} по отраслевым блокам"),
        figures.export_filename(spec.label, "по блокам", region, grain),
        figures.data_note(region + f", по {'неделям' if grain == 'week' else 'месяцам'}", catalog.as_of()))
