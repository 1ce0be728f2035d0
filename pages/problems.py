"""Приоритетные проблемы: at least three per sector (or one municipality's list) and the current signals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from metrics import catalog
from metrics.periods import INCOMPLETE, UNSETTLED, PeriodError, is_complete, is_settled
from metrics.priority import municipality_problems, priority_problems
from metrics.query import QueryError
from metrics.signals import detect_signals
from metrics.source import WarehouseMissing
from pages import inputs
from pages.callback_cache import per_data
from pages.common import (
    current_scope,
    default_period,
    dropdown,
    missing_warehouse,
    no_appeals,
    period_options,
    period_warning,
    scope_note,
)

dash.register_page(__name__, path="/problems", name="Приоритетные проблемы",
                   title="ЦУР Heatmap — приоритетные проблемы", order=20)
log = logging.getLogger(__name__)
ALL = "all"
REGION_WIDE = 3  # a category signalling in this many municipalities at once is a regional rise


def _number(n: float) -> str:
    return f"{int(n):,}".replace(",", "\u00a0")


def _growth(g: float, partial: bool = False) -> html.Span:
    """The change of volume with an arrow; coloured only for a complete period (a period still receiving
    appeals shows a fall that is only the days still to come)."""
    if pd.isna(g):
        return html.Span("—", className="text-muted")
    arrow, colour = ("▲", "text-danger") if g > 0 else ("▼", "text-success") if g < 0 else ("", "text-muted")
    return html.Span(f"{arrow} {abs(g) * 100:.0f} %".replace(".", ","), className="text-muted" if partial else colour)


def layout(**query_args: str) -> html.Div:
    try:
        months = catalog.months_with_data()
        municipalities = catalog.municipalities()
    except WarehouseMissing:
        return html.Div([missing_warehouse("problems-missing"), _placeholders()])
    if not months:
        return html.Div([no_appeals("problems-missing"), _placeholders()])
    as_of = catalog.as_of()
    options = period_options(months, as_of=as_of)
    periods = [o["value"] for o in options]
    muni_values = [ALL, *(str(i) for i in municipalities["municipality_id"])]
    period = query_args.get("period") if query_args.get("period") in periods else \
        default_period(months, as_of) or periods[0]
    municipality = query_args.get("municipality") if query_args.get("municipality") in muni_values else ALL
    return html.Div([
        dcc.Location(id="problems-url", refresh=False),
        dbc.Row([
            dbc.Col([dbc.Label("Период", className="small text-muted mb-0"),
                     dropdown(id="problems-period", options=options, value=period, clearable=False)], md=3),
            dbc.Col([dbc.Label("Муниципалитет", className="small text-muted mb-0"),
                     dropdown(id="problems-municipality", value=municipality, clearable=False,
                                  options=[{"label": ("Весь регион" if current_scope().municipality_ids is None
                                                      else "Все доступные вам") + " (по блокам)", "value": ALL}]
                                  + [{"label": r.municipality_name, "value": str(r.municipality_id)}
                                     for r in municipalities.itertuples()])], md=4),
        ], className="g-2 mb-3"),
        dcc.Loading(html.Div(id="problems-list")),
        html.H4("Сигналы: рост сверх обычного уровня", className="mt-4"),
        html.P("Недельное число обращений по муниципалитету и категории сравнивается с его же медианой за "
               "предыдущие 12 недель (устойчивая z-оценка); единичные всплески на малых числах не считаются.",
               className="small text-muted"),
        dcc.Loading(html.Div(id="problems-signals")),
    ])


def _placeholders() -> html.Div:
    return html.Div([dcc.Location(id="problems-url", refresh=False),
                     dropdown(id="problems-period", options=[], value=None),
                     dropdown(id="problems-municipality", options=[], value=None),
                     html.Div(id="problems-list"), html.Div(id="problems-signals")], style={"display": "none"})


def problems_table(df: pd.DataFrame, with_sector: bool = False, partial: bool = False,
                   unsettled: bool = False, link: Callable[[object], str] | None = None) -> dbc.Table:
    """The ranked problems; ``partial``: the period is not complete, ``unsettled``: its answers (and so
    the ratings of «Довольны ответом») are still coming (``metrics.periods``); ``link``: the address a
    row's problem opens (its drill-down), from the row."""
    satisfied = ["Довольны ответом", *([html.Br(), html.Small(UNSETTLED, className="text-warning")] if unsettled else [])]
    head = [html.Th("№"), html.Th("Проблема"), *([html.Th("Блок")] if with_sector else []),
            html.Th("Обращений", className="text-end"),
            html.Th(["К прошлому периоду", *([html.Br(), html.Small(INCOMPLETE, className="text-warning")]
                                           if partial else [])], className="text-end"),
            html.Th(satisfied, className="text-end")]
    rows = []
    for r in df.itertuples():
        name = [dcc.Link(r.category_name, href=link(r), className="problems-drill-link") if link else r.category_name]
        if isinstance(r.decomposed_from, str) and r.decomposed_from:
            name += [" ", dbc.Badge(f"из «{r.decomposed_from}»" + (" · тема" if r.is_topic else ""),
                                    color="light", text_color="secondary", className="fw-normal")]
        satisfaction = "—" if pd.isna(r.satisfaction_share) else f"{r.satisfaction_share * 100:.0f} %"
        rows.append(html.Tr([html.Td(int(r.rank)), html.Td(name), *([html.Td(r.sector_name)] if with_sector else []),
                             html.Td(_number(r.volume), className="text-end"),
                             html.Td(_growth(r.growth, partial), className="text-end"),
                             html.Td(satisfaction, className="text-end")]))
    return dbc.Table([html.Thead(html.Tr(head)), html.Tbody(rows)], size="sm", hover=True, className="mb-0")


def signals_view(df: pd.DataFrame, as_of: pd.Timestamp) -> html.Div:
    if df.empty:
        return dbc.Alert("Сейчас сигналов нет: ни одна категория не выросла заметно сверх своего обычного уровня.",
                         color="success")
    regional = df[df["same_category_signals"] >= REGION_WIDE]
    local = df[df["same_category_signals"] < REGION_WIDE]
    parts = []
    if not regional.empty:
        summary = regional.groupby("category_name").agg(n=("municipality_id", "size"), since=("first_week", "min"),
                                                        count=("count", "sum")).sort_values("n", ascending=False)
        parts.append(dbc.Alert([html.Strong("Рост по всему региону (часто сезонный): "),
                                "; ".join(f"{name} — {int(s.n)} муниципалитетов с {s.since:%d.%m}"
                                          for name, s in summary.iterrows())], color="warning"))
    if not local.empty:
        rows = [html.Tr([html.Td(r.municipality_name), html.Td(r.category_name),
                         html.Td(_number(r.count), className="text-end"),
                         html.Td(f"{r.baseline:.1f}".replace(".", ","), className="text-end"),
                         html.Td(f"×{r.ratio:.1f}".replace(".", ",") if pd.notna(r.ratio) else "—",
                                 className="text-end"),
                         html.Td(f"{r.first_week:%d.%m.%Y}")]) for r in local.head(20).itertuples()]
        parts.append(dbc.Table([html.Thead(html.Tr([
            html.Th("Муниципалитет"), html.Th("Категория"), html.Th("За неделю", className="text-end"),
            html.Th("Обычно", className="text-end"), html.Th("Рост", className="text-end"), html.Th("С недели")])),
            html.Tbody(rows)], size="sm", hover=True, id="problems-signals-table"))
    elif regional.empty:
        parts.append(html.P("Местных сигналов нет."))
    parts.append(html.P(f"По неделям до {as_of:%d.%m.%Y}.", className="small text-muted"))
    return html.Div(parts)


@per_data
def signals_panel(municipality_id: int | None) -> html.Div:
    """The current signals (of one unit, or all the scope sees): the same whatever period the list shows,
    so computed once per data file and scope, not on every change of the period."""
    signals = detect_signals()
    if municipality_id is not None:
        signals = signals[signals["municipality_id"] == municipality_id]
    return signals_view(signals, catalog.as_of())


def drill_link(period_code: str, municipality_id: int | None, **extra: str) -> Callable[[object], str]:
    """A problem row opens its category's drill-down in the unit (or the region): trend, organisations,
    appeals. A row of a topic of «Прочие» opens its category."""
    def href(row: object) -> str:
        values = {"period": period_code, "sector": getattr(row, "sector_code", None) or ALL,
                  "indicator": "volume", **extra, "category": int(row.category_id)}
        return f"/drill/{'region' if municipality_id is None else municipality_id}?" + urlencode(values)
    return href


@callback(
    Output("problems-url", "search"),
    Output("problems-period", "value"),
    Output("problems-municipality", "value"),
    Input("problems-url", "search"),
    Input("problems-period", "value"),
    Input("problems-municipality", "value"),
    State("problems-url", "pathname"),
)
def sync_address(search: str | None, period_code: str | None, municipality: str | None,
                 pathname: str | None = "/problems"):
    """The choices and the address follow each other: a choice writes the address (only values that
    passed the checks; each change is a history step), back or forward sets the choices from it."""
    keep = (dash.no_update,) * 3
    if period_code is None or pathname not in (None, "/problems"):  # leaving: another page's address
        return keep
    if dash.ctx.triggered_id == "problems-url" and search:
        wanted = {k: v[-1] for k, v in parse_qs(search.lstrip("?")).items() if v}
        values = [wanted.get("period", period_code), wanted.get("municipality", municipality)]
        try:
            inputs.period(values[0])
            inputs.municipality(values[1])
        except inputs.InvalidInput:
            values = [period_code, municipality]  # keep the choices, fix the address
        fixed = "?" + urlencode({"period": values[0], "municipality": values[1]})
        return (fixed if fixed != search else dash.no_update,
                *(v if v != old else dash.no_update for v, old in zip(values, (period_code, municipality),
                                                                      strict=True)))
    try:
        inputs.period(period_code)
        inputs.municipality(municipality)
    except inputs.InvalidInput:
        return keep
    return "?" + urlencode({"period": period_code, "municipality": municipality}), dash.no_update, dash.no_update


@callback(
    Output("problems-list", "children"),
    Output("problems-signals", "children"),
    Input("problems-period", "value"),
    Input("problems-municipality", "value"),
)
def update(period_code: str | None, municipality: str | None):
    if period_code is None:
        return "", ""
    try:
        as_of = catalog.as_of()
        period = inputs.period(period_code)
        municipality_id = inputs.municipality(municipality)
        partial, unsettled = not is_complete(period, as_of), not is_settled(period, as_of)
        warning = period_warning(period, as_of, answer_based=False)
        if municipality_id is None:
            df = priority_problems(period)
            cards = [
                dbc.Col(dbc.Card([dbc.CardHeader(html.Strong(sector_name)),
                                  dbc.CardBody(problems_table(part, partial=partial, unsettled=unsettled,
                                                              link=drill_link(period_code, None)))],
                                 className="h-100"), lg=6, className="mb-3")
                for (_, sector_name), part in df.groupby(["sector_id", "sector_name"], sort=True)
            ]
            limited = scope_note(current_scope())  # an МЦУ: the blocks' problems are their municipality's
            problems = html.Div([html.P(f"{limited + ' ' if limited else ''}Самые острые проблемы каждого блока — "
                                        f"{period.label}{warning}. Если в список попадают «Прочие по направлению», "
                                        "вместо них показаны конкретные проблемы.",
                                        className="text-muted", id="problems-note"),
                                 dbc.Row(cards, id="problems-sectors")])
            signals = signals_panel(None)
        else:
            df = municipality_problems(period, municipality_id, top=10)
            problems = html.Div([html.P(f"Проблемы муниципалитета — {period.label}{warning}", className="text-muted"),
                                 problems_table(df, with_sector=True, partial=partial, unsettled=unsettled,
                                                link=drill_link(period_code, municipality_id))],
                                id="problems-municipal")
            signals = signals_panel(municipality_id)
    except (ValueError, PeriodError, QueryError) as exc:
        return dbc.Alert(f"Не удалось построить список: {exc}", color="danger"), ""
    except Exception:  # a page shows a message, never a traceback
        log.exception("priority problems failed")
        return dbc.Alert("Не удалось построить список: ошибка на сервере.", color="danger"), ""
    return problems, signals
