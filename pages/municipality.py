"""Профиль муниципалитета: everything about one unit on one page (``/municipality/<id>?period=2026-10``)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from charts import figures
from metrics import catalog
from metrics import indicators as ind
from metrics.kpi import kpi_series
from metrics.periods import UNSETTLED, default_month, is_complete, is_settled, month
from metrics.priority import municipality_problems
from metrics.query import query
from metrics.rating import STATUS_RANKED, rate_organisations
from metrics.scope import Scope
from metrics.signals import detect_signals
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import compared_with, current_scope, missing_warehouse, no_appeals, period_badges
from pages.heatmap import MAP_INDICATORS
from pages.problems import drill_link, problems_table, signals_view

dash.register_page(__name__, path_template="/municipality/<municipality_id>", name="Профиль муниципалитета",
                   title="ЦУР Heatmap — профиль муниципалитета", order=95)
log = logging.getLogger(__name__)
TILES = ("volume", "rate_10k", "on_time_share", "overdue_open", "satisfaction_share", "resolve_days_median")


def _tile(code: str, value: float, region: float, unsettled: bool = False,
          label: str | None = "в регионе") -> dbc.Col:
    """One indicator beside the region's for the same period (equally unfinished, so the colour is
    fair); an answer-based one of an unsettled period says «ответы ещё поступают»."""
    spec = ind.get(code)
    compare = ""
    # shares, medians and rates compare with the region; a count would only compare sizes
    if label is None:  # the user sees only this municipality: a comparison would be with itself
        pass
    elif spec.kind in ("ratio", "median", "mean") and pd.notna(value) and pd.notna(region):
        better = value >= region if spec.higher_is_better else value <= region
        compare = html.Div(f"{label} {spec.format(region)}", className="small " +
                           ("text-success" if better else "text-danger"))
    elif code == "rate_10k" and pd.notna(region):
        compare = html.Div(f"{label} {spec.format(region)}", className="small text-muted")
    note = html.Div(UNSETTLED, className="small text-warning") if unsettled and spec.answer_based else ""
    # a rate per residents of a unit without population is not «—» but says why
    shown = "нет данных о населении" if spec.kind == "rate" and pd.isna(value) else spec.format(value)
    return dbc.Col(dbc.Card(dbc.CardBody([html.Div(spec.label, className="small text-muted"),
                                          html.H4(shown, className="mb-0"), compare, note])), md=2)


def layout(municipality_id: str | None = None, **query_args: str) -> html.Div:
    try:
        months = catalog.months_with_data()
        mid = inputs.municipality(municipality_id, allow_all=False)  # only one the user may see
    except WarehouseMissing:
        return missing_warehouse("municipality-missing")
    except inputs.InvalidInput:
        return dbc.Alert(["Такого муниципалитета нет или он вам недоступен. ", dcc.Link("К тепловой карте", href="/")],
                         color="warning", id="municipality-unknown")
    if not months:
        return no_appeals("municipality-no-data")
    opening = default_month(months, catalog.as_of()) or month(months[0])  # the last complete month
    period = inputs.or_default(inputs.period, query_args.get("period") or opening.code, opening)
    # the map's filters come along («полный профиль →» keeps them); a value that fails its check is dropped
    sector = inputs.or_default(inputs.sector, query_args.get("sector"), None)
    channel = inputs.or_default(inputs.channel, query_args.get("channel"), None)
    indicator = query_args.get("indicator") if query_args.get("indicator") in MAP_INDICATORS else "volume"
    try:
        return _profile(mid, catalog.names("municipality")[mid], period, sector, channel, indicator)
    except Exception:  # a page shows a message, never a traceback
        log.exception("municipality profile failed")
        return dbc.Alert("Не удалось построить профиль: ошибка на сервере.", color="danger")


def _profile(mid: int, name: str, period, sector: str | None = None, channel: str | None = None,
             indicator: str = "volume") -> html.Div:
    scope = Scope.municipalities({mid}, label=name)
    if sector is not None:  # the sector narrows everything on the page, the problems' ranking included
        scope = Scope(municipality_ids=scope.municipality_ids, sector_ids=frozenset({catalog.sector_ids()[sector]}),
                      label=name)
    filters = {"channel": [channel]} if channel else {}
    region_filters = {**filters, **({"sector": [sector]} if sector else {})}
    own = query(list(TILES), period=period, scope=scope, filters=filters).iloc[0]
    region = query(list(TILES), period=period, filters=region_filters).iloc[0]
    as_of = catalog.as_of()
    unsettled = not is_settled(period, as_of)
    filter_names = [n for n in (catalog.names("sector").get(sector) if sector else None,
                                catalog.names("channel").get(channel) if channel else None) if n]
    narrowed = "".join(f" · {n}" for n in filter_names)
    common = {"period": period.code, "sector": sector or "all", "channel": channel or "all", "indicator": indicator}
    label = compared_with(current_scope(), mid)
    tiles = dbc.Row([_tile(c, own[c], region[c], unsettled, label) for c in TILES], className="g-2 mb-3",
                    id="municipality-tiles")
    spec = ind.get(indicator)
    trend = kpi_series(indicator, municipality=mid, scope=scope, sector=sector, channel=channel)
    trend_fig = figures.mark_export(figures.kpi_trend(trend, spec, f"{spec.label} по месяцам — {name}{narrowed}"),
                                    figures.export_filename(spec.label, "по месяцам", name, *filter_names),
                                    figures.data_note(f"{name}{narrowed}", catalog.as_of()))
    problems = municipality_problems(period, mid, scope=scope, top=10)
    drill = drill_link(period.code, mid, channel=channel or "all", indicator=indicator)
    orgs = rate_organisations(period, scope=scope, filters=filters)
    weakest = orgs[orgs["status"] == STATUS_RANKED].sort_values("composite").head(5)
    org_rows = [html.Tr([html.Td(dcc.Link(r.organisation_name, href=f"/organisation/{int(r.organisation_id)}?"
                                          + urlencode(common))), html.Td(r.organisation_kind or ""),
                         html.Td(f"{r.composite:.0f}", className="text-end"), html.Td(r.weak_component or "")])
                for r in weakest.itertuples()]
    signals = detect_signals(scope=scope)
    return html.Div([
        html.H2(name, id="municipality-name"),
        html.P([f"{period.label.capitalize()}{narrowed} · ",
                period_badges(period, as_of, id="municipality-period-warnings"),
                f"данные по состоянию на {as_of:%d.%m.%Y %H:%M} · ",
                dcc.Link("на карте", href="/?" + urlencode({**common, "municipality": mid}), id="municipality-map-link"),
                " · ", dcc.Link("разбор: организации и обращения", href=f"/drill/{mid}?" + urlencode(common),
                                id="municipality-drill-link")], className="text-muted", id="municipality-filters"),
        tiles,
        dcc.Graph(figure=trend_fig, config=figures.graph_config(f"обращения {name}"), id="municipality-trend"),
        dbc.Row([
            dbc.Col([html.H4("Главные проблемы"),
                     problems_table(problems, with_sector=True, partial=not is_complete(period, as_of),
                                    unsettled=unsettled, link=drill)], lg=7),
            dbc.Col([html.H4("Отстающие организации"),
                     html.P("Оценка 0–100 по ответам на обращения жителей этого муниципалитета."
                            + (f" {UNSETTLED.capitalize()}: оценка предварительная." if unsettled else ""),
                            className="small text-muted"),
                     dbc.Table([html.Thead(html.Tr([html.Th("Организация"), html.Th("Вид"),
                                                    html.Th("Оценка", className="text-end"), html.Th("Ниже всего оценка за")])),
                                html.Tbody(org_rows)], size="sm", hover=True, id="municipality-orgs")
                     if org_rows else html.P("Недостаточно данных для оценки организаций.")], lg=5),
        ], className="mt-3"),
        html.H4("Сигналы", className="mt-3"),
        signals_view(signals, catalog.as_of()),
    ])
