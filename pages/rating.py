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
from dash import Input, Output, callback, dcc, html

from charts import figures
from metrics import catalog, words
from metrics import indicators as ind
from metrics.periods import PeriodError, is_complete, parse_period, status_notes
from metrics.rating import (
    ALONE_PEER_GROUP,
    CHANGE_WITHIN,
    COMPONENT_INDICATORS,
    COMPONENT_LABELS,
    INDICATOR_CODES,
    STATUS_RANKED,
    RatingConfig,
    change_text,
    interval_text,
    load_config,
    place_text,
    rate_municipalities,
    rate_organisations,
)
from metrics.source import WarehouseMissing
from pages import inputs
from pages.common import current_scope, dropdown, missing_warehouse, no_appeals, scope_note
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
# the grid shows Russian-formatted text, sorts and filters by the number: the text rides along in
# "<field>_text" and a value formatter shows it
SHOW_TEXT = {"function": "params.data[params.colDef.field + '_text']"}
# what each component measures, in words a head of a municipality uses
COMPONENT_TEXT = {
    "quantity": "доля обращений, получивших ответ, среди тех, у которых ответ уже есть или срок прошёл "
                "(в методике — «количество»)",
    "speed": "доля ответов в срок и медиана времени первой реакции",
    "quality": "доля оценок граждан 4 и 5 и доля ответов, возвращённых на доработку",
    "completeness": "доля ответов по существу и доля повторных обращений",
}


def _value(code: str, value: float) -> str:
    return ind.get(code).format(value)


def method_text(config: RatingConfig) -> list:
    """How the rating is computed, with the published scales and weights of ``config``: enough to
    recompute one row by hand."""
    scale_rows = []
    for component, codes in COMPONENT_INDICATORS.items():
        for code in codes:
            scale = config.scales[code]
            worse, better = ("и ниже", "и выше") if scale.full > scale.zero else ("и больше", "и меньше")
            if ind.get(code).kind == "ratio" and scale.full in (0.0, 1.0):
                better = ""  # nothing beyond 0 % or 100 %
            scale_rows.append(html.Tr([
                html.Td(COMPONENT_LABELS[component]), html.Td(ind.get(code).label),
                html.Td(f"{_value(code, scale.zero)} {worse}", className="text-end"),
                html.Td(f"{_value(code, scale.full)} {better}".strip(), className="text-end"),
            ]))
    example = config.scales["on_time_share"]
    x = round(example.zero + (example.full - example.zero) * 2 / 3, 2)  # a whole percentage
    total = sum(config.weights.values())
    weights = ", ".join(f"{COMPONENT_LABELS[c]} — {words.number(w / total * 100, 1)}\u00a0%"
                        for c, w in config.weights.items())

    def pct(share: float) -> str:
        return words.number(share * 100, 0)

    return [
        html.P("Оценка от 0 до 100 складывается из четырёх составляющих:"),
        html.Ul([html.Li(f"{COMPONENT_LABELS[c]} — {text}{';' if i < len(COMPONENT_TEXT) - 1 else '.'}")
                 for i, (c, text) in enumerate(COMPONENT_TEXT.items())]),
        html.P("Каждый показатель переводится в баллы по постоянной шкале, одинаковой для всех и не зависящей от "
               "результатов других: значение в левом столбце и хуже — 0 баллов, в правом и лучше — 100, между ними — "
               "пропорционально: баллы = 100 × (значение − значение за 0) / (значение за 100 − значение за 0). "
               f"Например, {pct(x)} % ответов в срок при шкале {pct(example.zero)}–{pct(example.full)} % дают "
               f"100 × ({pct(x)} − {pct(example.zero)}) / ({pct(example.full)} − {pct(example.zero)}) = "
               f"{words.number(example.score(x), 1)} балла."),
        dbc.Table([html.Thead(html.Tr([html.Th("Составляющая"), html.Th("Показатель"),
                                       html.Th("0 баллов", className="text-end"),
                                       html.Th("100 баллов", className="text-end")])),
                   html.Tbody(scale_rows)], size="sm", bordered=False, id="rating-scales", className="w-auto"),
        html.P(f"Составляющая — среднее баллов её показателей; итоговая оценка — среднее составляющих с весами "
               f"({weights}). Если данных для составляющей нет (например, граждане ничего не оценили или в "
               f"выгрузке нет отметок о доработке), она помечена «нет данных» и не считается нулём или сотней: "
               f"её вес делится между остальными пропорционально их весам."),
        html.P("Рядом с оценкой — 90-процентный интервал: где оказалась бы оценка при другом случайном наборе "
               "обращений того же уровня работы. Чем меньше обращений, тем он шире. (Расчёт — статистическое "
               "моделирование: каждая доля меняется в пределах своей случайной ошибки при своём числе обращений.)"),
        html.P("Место показано диапазоном, когда интервалы соседей пересекаются: лучшее возможное место = 1 + "
               "число участников, у которых нижняя граница интервала выше верхней границы этого; худшее возможное "
               "= число участников (включая его самого), у которых верхняя граница не ниже его нижней границы. "
               "Изменение места ▲▼ показано, только если диапазоны мест в этом и в прошлом периоде не "
               f"пересекаются; иначе — «{CHANGE_WITHIN}»."),
        html.P(f"Организации сравниваются с организациями того же вида; если организация — единственная своего "
               f"вида, она сравнивается со всеми организациями. Муниципалитеты сравниваются между собой. Меньше "
               f"{words.count(config.min_volume, words.APPEALS)} за период — «недостаточно данных», без места. "
               "«Ниже всего оценка за» — составляющая итоговой оценки с самым низким баллом: над ней "
               "работать в первую очередь (это не число обращений)."),
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
            # long Russian headers wrap onto a second line instead of ending in «…» (1366 px and wider)
            defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True,
                           "wrapHeaderText": True, "autoHeaderHeight": True},
            dashGridOptions={"pagination": True, "paginationPageSize": 20, "localeText": GRID_LOCALE,
                             "animateRows": False},
            columnSize="responsiveSizeToFit", style={"height": "560px"}, className="mb-3",
        ),
        dcc.Loading(dcc.Graph(id="rating-chart", config=figures.graph_config("рейтинг"))),
        dbc.Card(dbc.CardBody([html.H5("Как считается рейтинг"), html.Div(method_text(load_config()),
                                                                          id="rating-method")]), className="mt-3"),
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
    body = ([{"field": "name", "headerName": "Организация", "minWidth": 260, "pinned": "left", "tooltipField": "name"},
             {"field": "group", "headerName": "Группа сравнения", "minWidth": 200, "tooltipField": "group"},
             {"field": "municipality", "headerName": "Муниципалитет", "minWidth": 190,  # «Ярославская область» whole
              "tooltipField": "municipality"}]
            if who == "organisations" else
            [{"field": "name", "headerName": "Муниципалитет", "minWidth": 200, "pinned": "left", "tooltipField": "name"}])
    number = {"type": "numericColumn", "filter": "agNumberColumnFilter", "valueFormatter": SHOW_TEXT}
    return [
        {"field": "place", "headerName": "Место в группе", "minWidth": 135, **number,
         "headerTooltip": "Диапазон мест, если интервалы оценок соседей пересекаются"},
        {"field": "change", "headerName": "Изменение места", "minWidth": 200, "sortable": False,
         "tooltipField": "change"},
        *body,
        {"field": "volume", "headerName": "Обращений", "minWidth": 130, **number},
        {"field": "composite", "headerName": "Итог", "minWidth": 90, **number},
        {"field": "interval", "headerName": "90 % интервал", "minWidth": 120, "sortable": False},
        *({"field": code, "headerName": label.capitalize(), "minWidth": 110, **number}
          for code, label in COMPONENT_LABELS.items()),
        {"field": "no_data", "headerName": "Нет данных", "minWidth": 130},
        # «Слабое место: количество» read as "too many appeals": the header says it is the lowest score
        {"field": "weak", "headerName": "Ниже всего оценка за", "minWidth": 170,
         "headerTooltip": "Составляющая итоговой оценки с самым низким баллом (0–100): над ней работать в первую очередь"},
        {"field": "status", "headerName": "Статус", "minWidth": 130},
        *({"field": code, "headerName": ind.get(code).label, "minWidth": 150, **number} for code in INDICATOR_CODES),
    ]


def grid_rows(df: pd.DataFrame, who: str, regional: dict[int, str] | None = None) -> list[dict]:
    """Rows for the grid: numbers for sorting with their Russian text, names as plain text. ``regional``
    (``catalog.organisation_regions``): the region of each organisation without a home municipality."""
    def score(v: object) -> tuple[float | None, str]:
        return (None, "") if pd.isna(v) else (round(float(v), 1), words.number(float(v), 1))

    regional = regional or {}
    rows = []
    for r in df.to_dict("records"):
        row = {
            "place": None if pd.isna(r["peer_rank"]) else int(r["peer_rank"]),
            "place_text": place_text(r["peer_rank_best"], r["peer_rank_worst"], r["peer_count"]),
            "change": change_text(r["peer_rank_change"], r["peer_rank_change_certain"]),
            "name": r["organisation_name"] if who == "organisations" else r["municipality_name"],
            "volume": int(r["volume"]), "volume_text": words.number(int(r["volume"])),
            "interval": interval_text(r["composite_low"], r["composite_high"]),
            "no_data": r["no_data"] or "",
            "weak": r["weak_component"] if isinstance(r["weak_component"], str) else "",
            "status": r["status"],
        }
        row["composite"], row["composite_text"] = score(r["composite"])
        for code in COMPONENT_LABELS:
            row[code], row[f"{code}_text"] = score(r[code])
        for code in INDICATOR_CODES:
            value = r[code]
            row[code] = None if pd.isna(value) else float(value)
            row[f"{code}_text"] = "" if pd.isna(value) else ind.get(code).format(value)
        if who == "organisations":
            row["group"] = r["peer_group"] or ""
            # a regional body: in a warehouse of several regions, which region
            row["municipality"] = (r["municipality_name"] if isinstance(r["municipality_name"], str) else
                                   regional.get(int(r["organisation_id"])) or "регион")
        rows.append(row)
    return rows


def top_bottom_figure(df: pd.DataFrame, who: str, title: str, n: int = 10) -> figures.Figure:
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
        # pandas deep-copies ``attrs`` (periods, dates) into every frame derived from this one: read them
        # once and work on a frame without them (thousands of copies per answer otherwise)
        attrs, df = df.attrs, df.copy(deep=False)
        df.attrs = {}
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
    alone = sorted({str(k) for k in df.loc[df["peer_group"] == ALONE_PEER_GROUP, "organisation_kind"]}
                   if who == "organisations" else set())
    kinds = ", ".join(f"«{kind}»" for kind in alone)
    alone_text = ("" if not alone else
                  f" Вид {kinds} представлен в рейтинге одной организацией — она сравнивается со всеми организациями."
                  if len(alone) == 1 else
                  f" Виды {kinds} представлены в рейтинге одной организацией каждый — они сравниваются со всеми "
                  "организациями.")
    standing = "".join(f" {n.capitalize()}." for n in status_notes(period, attrs["data_date"]))
    aged = "" if attrs["settled"] else (
        f" Прошлый период взят в том же возрасте — по состоянию на {attrs['previous_as_of']:%d.%m.%Y %H:%M}, "
        "чтобы изменение места не объяснялось ответами, которых ещё нет.")
    note = (f"Данные по состоянию на {catalog.as_of():%d.%m.%Y %H:%M}.{standing} В рейтинге {words.number(ranked)} из "
            f"{words.number(len(df))}; меньше {words.count(min_volume, words.APPEALS)} за период — «недостаточно "
            f"данных». Изменение места — против предыдущего периода ({period.previous().label}), только там, где "
            f"оно больше погрешности.{aged}{alone_text}")
    # organisations are rated on the appeals the user may see; the municipalities' rating is the whole region's
    limited = scope_note(current_scope(), ("организации оцениваются только по его обращениям",
                                           "организации оцениваются только по их обращениям"))
    if limited and who == "organisations":
        note = f"{limited} {note}"
    chart = figures.mark_export(
        top_bottom_figure(df, who, title),
        figures.export_filename("рейтинг", WHO[who].lower(), sector_text.removeprefix(" · "), period.code),
        figures.data_note(f"{period.label}{sector_text}".replace(" · ", ", "), catalog.as_of()))
    regional = catalog.organisation_regions() if who == "organisations" else None
    return grid_rows(df, who, regional), _columns(who), chart, note, search
