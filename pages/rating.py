"""Рейтинг: organisations (or municipalities) by количество, качество, скорость, полнота.

Selectors live in the query string (``?period=2026-Q3&who=organisations&sector=housing``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html

from charts import figures
from metrics import catalog
from metrics.periods import PeriodError, is_complete, parse_period
from metrics.rating import (
    COMPONENT_LABELS,
    STATUS_RANKED,
    load_config,
    rate_municipalities,
    rate_organisations,
)
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import dropdown, missing_warehouse, no_appeals
from pages.common import period_options as period_options_for

dash.register_page(__name__, path="/rating", name="Рейтинг", title="ЦУР Heatmap — рейтинг", order=10)
log = logging.getLogger(__name__)

ALL = "all"
WHO = {"organisations": "Организации", "municipalities": "Муниципалитеты"}
GRID_LOCALE = {  # AG Grid's own texts, in Russian
    "page": "Страница", "of": "из", "to": "–", "more": "ещё", "next": "Следующая", "last": "Последняя",
    "first": "Первая", "previous": "Предыдущая", "noRowsToShow": "Нет данных", "loadingOoo": "Загрузка…",
    "filterOoo": "Фильтр…", "contains": "Содержит", "notContains": "Не содержит", "equals": "Равно",
    "notEqual": "Не равно", "startsWith": "Начинается с", "endsWith": "Заканчивается на", "lessThan": "Меньше",
    "greaterThan": "Больше", "andCondition": "И", "orCondition": "ИЛИ", "blank": "Пусто", "notBlank": "Не пусто",
    "pageSizeSelectorLabel": "Строк на странице:",
}
METHOD = [
    "Оценка складывается из четырёх составляющих, каждая от 0 до 100 внутри группы сравнения "
    "(организации одного вида; муниципалитеты — между собой):",
    html.Ul([
        html.Li("количество — доля обращений, получивших ответ, среди тех, у которых ответ уже есть или срок прошёл;"),
        html.Li("скорость — доля ответов в срок и медиана времени первой реакции (чем быстрее, тем лучше);"),
        html.Li("качество — доля оценок граждан 4 и 5 и доля ответов, не возвращённых на доработку;"),
        html.Li("полнота — доля ответов по существу и доля обращений, не ставших повторными."),
    ]),
    "Лучший в группе по показателю получает 100, худший — 0, остальные — пропорционально. Итог — среднее "
    "составляющих с весами из настроек. Организации с малым числом обращений за период показаны как "
    "«недостаточно данных» и не ранжируются. Если организация — единственная своего вида, она сравнивается "
    "со всеми организациями. «Слабое место» — составляющая с самой низкой оценкой.",
]


def layout(**query_args: str) -> html.Div:
    try:
        period_options = period_options_for(catalog.months_with_data(), quarters_first=True)
        sectors = catalog.sectors()
    except WarehouseMissing:
        return html.Div([missing_warehouse("rating-missing"), _placeholders()])
    if not period_options:
        return html.Div([no_appeals("rating-missing"), _placeholders()])
    periods = [o["value"] for o in period_options]
    # the latest whole quarter by default: a quarter still running has few answers yet
    as_of = catalog.as_of()
    whole = [p for p in periods if "Q" in p and is_complete(parse_period(p), as_of)]
    default_period = whole[0] if whole else periods[0]
    period = query_args.get("period") if query_args.get("period") in periods else default_period
    who = query_args.get("who") if query_args.get("who") in WHO else "organisations"
    sector_values = [ALL, *sectors["sector_code"]]
    sector = query_args.get("sector") if query_args.get("sector") in sector_values else ALL
    return html.Div([
        dcc.Location(id="rating-url", refresh=False),
        dbc.Row([
            dbc.Col([dbc.Label("Период", className="small text-muted mb-0"),
                     dropdown(id="rating-period", options=period_options, value=period, clearable=False)], md=3),
            dbc.Col([dbc.Label("Кого оцениваем", className="small text-muted mb-0"),
                     dbc.RadioItems(id="rating-who", options=[{"label": v, "value": k} for k, v in WHO.items()],
                                    value=who, inline=True)], md=4),
            dbc.Col([dbc.Label("Отраслевой блок", className="small text-muted mb-0"),
                     dropdown(id="rating-sector", value=sector, clearable=False,
                                  options=[{"label": "Все блоки", "value": ALL}]
                                  + [{"label": r.sector_name, "value": r.sector_code} for r in sectors.itertuples()])],
                    md=3),
        ], className="g-2 mb-2"),
        html.Div(id="rating-note", className="small text-muted mb-2"),
        dag.AgGrid(
            id="rating-grid", rowData=[], columnDefs=_columns(who),
            defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True},
            dashGridOptions={"pagination": True, "paginationPageSize": 20, "localeText": GRID_LOCALE,
                             "animateRows": False},
            columnSize="responsiveSizeToFit", style={"height": "560px"}, className="mb-3",
        ),
        dcc.Loading(dcc.Graph(id="rating-chart", config=figures.graph_config("рейтинг"))),
        dbc.Card(dbc.CardBody([html.H5("Как считается рейтинг"), html.Div(METHOD)]), className="mt-3"),
    ])


def _placeholders() -> html.Div:
    return html.Div([
        dcc.Location(id="rating-url", refresh=False),
        dropdown(id="rating-period", options=[], value=None),
        dbc.RadioItems(id="rating-who", options=[], value=None),
        dropdown(id="rating-sector", options=[], value=None),
        html.Div(id="rating-note"), dag.AgGrid(id="rating-grid"), dcc.Graph(id="rating-chart"),
    ], style={"display": "none"})


def _columns(who: str) -> list[dict]:
    body = ([{"field": "name", "headerName": "Организация", "minWidth": 260, "pinned": "left"},
             {"field": "kind", "headerName": "Вид"}, {"field": "municipality", "headerName": "Муниципалитет"}]
            if who == "organisations" else
            [{"field": "name", "headerName": "Муниципалитет", "minWidth": 200, "pinned": "left"}])
    number = {"type": "numericColumn", "filter": "agNumberColumnFilter"}
    return [
        {"field": "rank", "headerName": "Место", "minWidth": 90, "maxWidth": 110, **number},
        {"field": "change", "headerName": "▲▼", "minWidth": 80, "maxWidth": 100, "sortable": False},
        *body,
        {"field": "volume", "headerName": "Обращений", **number},
        {"field": "composite", "headerName": "Итог", **number},
        *({"field": code, "headerName": label, **number} for code, label in COMPONENT_LABELS.items()),
        {"field": "weak", "headerName": "Слабое место"},
        {"field": "status", "headerName": "Статус"},
    ]


def grid_rows(df: pd.DataFrame, who: str) -> list[dict]:
    """Rows for the grid: rounded scores, ▲▼ for the change of place, names as plain text."""
    def change(v: object) -> str:
        if pd.isna(v) or v == 0:
            return "—" if pd.isna(v) else "="
        return f"▲ {int(v)}" if v > 0 else f"▼ {int(-v)}"

    rows = []
    for r in df.to_dict("records"):
        row = {
            "rank": None if pd.isna(r["rank"]) else int(r["rank"]),
            "change": change(r["rank_change"]),
            "name": r["organisation_name"] if who == "organisations" else r["municipality_name"],
            "volume": int(r["volume"]),
            "composite": None if pd.isna(r["composite"]) else round(float(r["composite"]), 1),
            "weak": r["weak_component"] if isinstance(r["weak_component"], str) else "",
            "status": r["status"],
        }
        for code in COMPONENT_LABELS:
            row[code] = None if pd.isna(r[code]) else round(float(r[code]), 1)
        if who == "organisations":
            row["kind"] = r["organisation_kind"] or ""
            row["municipality"] = r["municipality_name"] if isinstance(r["municipality_name"], str) else "регион"
        rows.append(row)
    return rows


def top_bottom_figure(df: pd.DataFrame, who: str, title: str, n: int = 10) -> go.Figure:
    name = "organisation_name" if who == "organisations" else "municipality_name"
    return figures.rating_top_bottom(df, name, title, n)


@callback(
    Output("rating-grid", "rowData"),
    Output("rating-grid", "columnDefs"),
    Output("rating-chart", "figure"),
    Output("rating-note", "children"),
    Output("rating-url", "search"),
    Input("rating-period", "value"),
    Input("rating-who", "value"),
    Input("rating-sector", "value"),
)
def update(period_code: str | None, who: str | None, sector: str | None):
    if period_code is None:
        return [], [], figures.empty_figure("", ""), "", dash.no_update
    search, columns = dash.no_update, []  # the address keeps only values that passed the checks
    try:
        who = inputs.choice(who, WHO, "кого оценивать")
        columns = _columns(who)
        period = inputs.period(period_code)
        sector_code = inputs.sector(sector)
        filters = {"sector": [sector_code]} if sector_code else {}
        search = "?" + urlencode({"period": period_code, "who": who, "sector": sector})
        rate = rate_organisations if who == "organisations" else rate_municipalities
        df = rate(period, filters=filters or None)
        min_volume = load_config().min_volume
    except (ValueError, PeriodError) as exc:
        return [], columns, figures.empty_figure("", str(exc)), f"Не удалось построить рейтинг: {exc}", search
    except Exception:  # a page shows a message, never a traceback
        log.exception("rating failed")
        message = "Не удалось построить рейтинг: ошибка на сервере, подробности в журнале."
        return [], columns, figures.empty_figure("", message), message, search
    sector_text = "" if not filters else " · " + catalog.names("sector")[sector]
    title = f"Лучшие и отстающие — {WHO[who].lower()}, {period.label}{sector_text}"
    ranked = int((df["status"] == STATUS_RANKED).sum())
    note = (f"Данные по состоянию на {catalog.as_of():%d.%m.%Y %H:%M}. В рейтинге {ranked} из {len(df)}; "
            f"меньше {min_volume} обращений за период — «недостаточно данных». "
            f"Изменение места — против предыдущего периода ({period.previous().label}).")
    chart = figures.mark_export(
        top_bottom_figure(df, who, title),
        figures.export_filename("рейтинг", WHO[who].lower(), sector_text.removeprefix(" · "), period.code),
        figures.data_note(f"{period.label}{sector_text}".replace(" · ", ", "), catalog.as_of()))
    return grid_rows(df, who), _columns(who), chart, note, search
