"""Профиль организации: one body on one page (``/organisation/<id>?period=2025-10&sector=housing``).

Like the municipality profile: its indicators beside the region's, its place in the rating among bodies
of its kind, its trend, the problems it answers and the units it serves — each opening the drill-down
with its appeals. Open to every person's role; the scope limits what it shows, and a body with no
appeals in the user's scope is «недоступна», never a page of zeros.
"""

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
from metrics.appeals import organisation_card
from metrics.kpi import kpi_series
from metrics.periods import default_month, is_settled, month
from metrics.query import query
from metrics.rating import STATUS_RANKED, place_text
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import compared_with, current_scope, missing_warehouse, no_appeals, period_badges
from pages.drill import period_rating
from pages.heatmap import MAP_INDICATORS

dash.register_page(__name__, path_template="/organisation/<organisation_id>", name="Профиль организации",
                   title="ЦУР Heatmap — профиль организации", order=97)
log = logging.getLogger(__name__)
TILES = ("volume", "on_time_share", "overdue_open", "resolve_days_median", "satisfaction_share", "resolved_share")
ALL = "all"


def layout(organisation_id: str | None = None, **query_args: str) -> html.Div:
    try:
        months = catalog.months_with_data()
        oid = inputs.organisation(organisation_id)
        if oid is None:
            raise inputs.InvalidInput("не указана организация")
    except WarehouseMissing:
        return missing_warehouse("organisation-missing")
    except inputs.InvalidInput:
        return dbc.Alert(["Такой организации нет или она вам недоступна. ", dcc.Link("К тепловой карте", href="/")],
                         color="warning", id="organisation-unknown")
    if not months:
        return no_appeals("organisation-no-data")
    opening = default_month(months, catalog.as_of()) or month(months[0])
    period = inputs.or_default(inputs.period, query_args.get("period") or opening.code, opening, last30=True)
    sector = inputs.or_default(inputs.sector, query_args.get("sector"), None)
    channel = inputs.or_default(inputs.channel, query_args.get("channel"), None)
    indicator = query_args.get("indicator") if query_args.get("indicator") in MAP_INDICATORS else "volume"
    if indicator == "rate_10k":  # residents belong to units, not to a body: its trend is its volume
        indicator = "volume"
    try:
        return _profile(oid, period, sector, channel, indicator)
    except Exception:  # a page shows a message, never a traceback
        log.exception("organisation profile failed")
        return dbc.Alert("Не удалось построить профиль организации: ошибка на сервере.", color="danger")


def _tile(code: str, value: float, region: float, unsettled: bool, label: str = "в регионе") -> dbc.Col:
    spec = ind.get(code)
    compare: object = ""
    if spec.kind in ("ratio", "median", "mean") and pd.notna(value) and pd.notna(region):
        better = value >= region if spec.higher_is_better else value <= region
        compare = html.Div(f"{label} {spec.format(region)}", className="small " +
                           ("text-success" if better else "text-danger"))
    note = html.Div("ответы ещё поступают", className="small text-warning") if unsettled and spec.answer_based else ""
    return dbc.Col(dbc.Card(dbc.CardBody([html.Div(spec.label, className="small text-muted"),
                                          html.H4(spec.format(value), className="mb-0"), compare, note])), md=2)


def _profile(oid: int, period, sector: str | None, channel: str | None, indicator: str) -> html.Div:
    card = organisation_card(oid)
    as_of = catalog.as_of()
    narrowing = {**({"sector": [sector]} if sector else {}), **({"channel": [channel]} if channel else {})}
    own = query(list(TILES), period=period, filters={**narrowing, "organisation": [oid]}).iloc[0]
    region = query(list(TILES), period=period, filters=narrowing).iloc[0]
    unsettled = not is_settled(period, as_of)
    common = {"period": period.code, "sector": sector or ALL, "channel": channel or ALL, "indicator": indicator}
    filter_names = [n for n in (catalog.names("sector").get(sector) if sector else None,
                                catalog.names("channel").get(channel) if channel else None) if n]
    narrowed = "".join(f" · {n}" for n in filter_names)

    rating = period_rating(period)
    mine = rating[rating["organisation_id"] == oid]
    if mine.empty:
        place = "нет обращений за период"
    else:
        r = mine.iloc[0]
        place = (f"{place_text(r['peer_rank_best'], r['peer_rank_worst'], r['peer_count'])} среди «{r['peer_group']}»"
                 f" · оценка {r['composite']:.0f} из 100".replace(".", ",")
                 if r["status"] == STATUS_RANKED else str(r["status"]))

    spec = ind.get(indicator)
    trend = kpi_series(indicator, months=max(2, min(24, len(catalog.months_with_data()))), organisation=oid,
                       sector=sector, channel=channel)
    trend_fig = figures.mark_export(figures.kpi_trend(trend, spec, f"{spec.label} по месяцам — {card.name}{narrowed}"),
                                    figures.export_filename(spec.label, card.name, *filter_names),
                                    figures.data_note(f"{card.name}{narrowed}", as_of))

    def table(by: str, key: str, name: str, header: str, href) -> object:
        df = query(["volume", "on_time_share", "overdue_open"], by=[by], period=period,
                   filters={**narrowing, "organisation": [oid]})
        df = df[df["volume"] > 0].sort_values(["volume", name], ascending=[False, True]).head(20)
        if df.empty:
            return html.P("За период обращений нет.")
        rows = [html.Tr([html.Td(dcc.Link(getattr(r, name), href=href(r))),
                         html.Td(ind.get("volume").format(r.volume), className="text-end"),
                         html.Td(ind.get("on_time_share").format(r.on_time_share), className="text-end"),
                         html.Td(ind.get("overdue_open").format(r.overdue_open), className="text-end")])
                for r in df.itertuples()]
        return dbc.Table([html.Thead(html.Tr([html.Th(header), *(html.Th(ind.get(c).label, className="text-end")
                                                                  for c in ("volume", "on_time_share", "overdue_open"))])),
                          html.Tbody(rows)], size="sm", hover=True, id=f"organisation-{by}")

    by_category = table("category", "category_id", "category_name", "Проблема",
                        lambda r: "/drill/region?" + urlencode({**common, "sector": ALL, "category": int(r.category_id),
                                                                "organisation": oid}))
    by_municipality = table("municipality", "municipality_id", "municipality_name", "Муниципалитет",
                            lambda r: f"/drill/{int(r.municipality_id)}?" + urlencode({**common, "organisation": oid}))
    about = " · ".join(p for p in (card.kind, card.sector_name,
                                   f"муниципалитет: {card.home_municipality}" if card.home_municipality
                                   else "региональный уровень") if p)
    return html.Div([
        dbc.Breadcrumb(items=[{"label": catalog.region_name() or "Регион", "href": "/?" + urlencode(common)},
                              {"label": card.name, "active": True}], id="organisation-crumbs", className="mb-1"),
        html.H2(card.name, id="organisation-name"),
        html.P(about, className="mb-1"),
        html.P([f"{period.label.capitalize()}{narrowed} · ", period_badges(period, as_of, id="organisation-period-warnings"),
                f"данные по состоянию на {as_of:%d.%m.%Y %H:%M} · ",
                dcc.Link("все обращения организации", href="/drill/region?" + urlencode({**common, "organisation": oid}),
                         id="organisation-appeals-link")], className="text-muted"),
        html.P([html.Strong("Место в рейтинге: "), html.Span(place, id="organisation-place")]),
        dbc.Row([_tile(c, own[c], region[c], unsettled, compared_with(current_scope())) for c in TILES],
                className="g-2 mb-3", id="organisation-tiles"),
        dcc.Graph(figure=trend_fig, config=figures.graph_config(f"{spec.label} {card.name}"), id="organisation-trend"),
        dbc.Row([
            dbc.Col([html.H4("Проблемы"), by_category], lg=6),
            dbc.Col([html.H4("Муниципалитеты"), by_municipality], lg=6),
        ], className="mt-3"),
    ])
