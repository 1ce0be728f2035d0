"""Решения: workload and staffing of the sector blocks, the root-cause roadmap with measured effects, the monthly brief."""

from __future__ import annotations

import io
import logging

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from charts import figures
from data.schema import ROADMAP_STATUSES
from metrics import catalog, words
from metrics.roadmap import (
    VERDICT_LABELS,
    add_measure,
    form_choices,
    item_effect,
    roadmap_effects,
    roadmap_items,
)
from metrics.source import WarehouseMissing
from metrics.workload import MODEL_LABELS, staffing_plan
from pages import inputs
from pages.callback_cache import per_data
from pages.common import (
    current_scope,
    default_period,
    dropdown,
    missing_warehouse,
    no_appeals,
    period_options,
    scope_note,
)
from report.brief import BriefError, build_brief

dash.register_page(__name__, path="/decisions", name="Решения", title="ЦУР Heatmap — решения", order=40)
log = logging.getLogger(__name__)
REGION_VALUE = "__region__"
ALL_REGIONS = "all"  # the brief's region choice: every region the user sees
VERDICT_COLOURS = {"decrease": "success", "increase": "danger", "not_proven": "secondary", "too_few": "light",
                   "not_started": "info"}
ACTION_COLOURS = {"reinforce": "warning", "surplus": "info", "enough": "success", "unknown": "light"}


# Kept per (arguments, the user's scope, the warehouse file), like the other pages' shared pieces: the
# brief (~0.25 s at 300 k appeals) and the measures' effects are asked on every open of the page and by
# the DOCX download, and the server's warm-up computes the opening view's ones before the first user.
# A measure added by the form replaces the warehouse file, so nothing stale is ever served.
@per_data
def _brief(period_code: str, region: int | None = None):
    return build_brief(period_code, current_scope(), region=region)


@per_data
def _effects() -> pd.DataFrame:
    return roadmap_effects(current_scope())


@per_data
def _item_effect(item_id: int):
    return item_effect(item_id, current_scope())


def layout(**_query: str) -> html.Div:
    try:
        months = catalog.months_with_data()
        sectors = catalog.sectors()
        choices = form_choices(current_scope())
    except WarehouseMissing:
        return html.Div([missing_warehouse("decisions-missing"), _placeholders()])
    if not months:
        return html.Div([no_appeals("decisions-missing"), _placeholders()])
    if sectors.empty:  # a scope without sectors (or Dash checking layouts before anyone signed in)
        return html.Div([dbc.Alert("Нет доступных отраслевых блоков.", color="info", id="decisions-missing"),
                         _placeholders()])
    default_sector = _default_sector(list(sectors["sector_code"]))
    month_options = [o for o in period_options(months, as_of=catalog.as_of()) if "Q" not in o["value"]]
    region_options, region_value = _region_choice()
    return html.Div([
        dcc.Store(id="decisions-roadmap-version", data=0),
        html.H3("Нагрузка и кадры", className="mt-2"),
        html.P("Сколько обращений поступает в каждый отраслевой блок, сколько осталось без ответа и просрочено на "
               "конец месяца; сколько обращений ожидается в ближайшие три месяца и сколько специалистов нужно, "
               "чтобы отвечать на них вовремя.", className="small text-muted"),
        dbc.Row([dbc.Col([dbc.Label("Отраслевой блок", className="small text-muted mb-0"),
                          dropdown("decisions-sector", clearable=False, value=default_sector,
                                   options=[{"label": r.sector_name, "value": r.sector_code}
                                            for r in sectors.itertuples()])], md=4)],
                className="mb-2"),
        dcc.Loading(html.Div(id="decisions-workload")),
        html.H3("Дорожная карта", className="mt-4"),
        html.P("Меры по устранению причин обращений и их измеренный эффект: обращения в категориях меры в её "
               "муниципалитете после начала против до начала — и против сопоставимых муниципалитетов без такой меры "
               "за те же недели (разность разностей). «Эффект доказан» — только если такое изменение не встречается "
               "среди муниципалитетов без меры: плацебо-проверка, p ≤ 0,05, и 95-процентный интервал не включает ноль.",
               className="small text-muted"),
        dcc.Loading(html.Div(id="decisions-roadmap")),
        dbc.Row([dbc.Col([dbc.Label("Мера для графика", className="small text-muted mb-0"),
                          dropdown(id="decisions-item", clearable=False)], md=6)], className="mt-2"),
        dcc.Loading(dcc.Graph(id="decisions-item-chart", config=figures.graph_config("roadmap_effect"))),
        _form(choices),
        html.H3("Доклад за месяц", className="mt-4"),
        dbc.Row([
            dbc.Col([dbc.Label("Месяц", className="small text-muted mb-0"),
                     dropdown(id="decisions-brief-period", options=month_options, clearable=False,
                                  value=default_period(months, catalog.as_of()) or month_options[0]["value"])],
                    md=3),
            # a warehouse of several regions, the user seeing several: the brief of one, or of them all
            dbc.Col([dbc.Label("Регион", className="small text-muted mb-0"),
                     dropdown(id="decisions-brief-region", options=region_options, value=region_value,
                              clearable=False)],
                    md=3, style=None if region_options else {"display": "none"}),
            dbc.Col(dbc.Button("Скачать DOCX", id="decisions-brief-download-button", color="primary",
                               className="mt-3"), md=2),
        ], className="g-2 mb-2"),
        dcc.Download(id="decisions-brief-download"),
        dcc.Loading(dbc.Card(dbc.CardBody(html.Div(id="decisions-brief")), className="mb-4")),
    ])


def _region_choice() -> tuple[list[dict], str | None]:
    """(options, value) of the brief's region: no options (the choice hidden) in a warehouse of one
    region, or when the user sees one region of several — then that region is the value, so the
    brief bears its name and clock; otherwise «Все регионы» and each region the user sees."""
    if catalog.region_count() <= 1:
        return [], None
    visible = catalog.visible_regions()
    if len(visible) <= 1:
        return [], None if visible.empty else str(int(visible["region_id"].iloc[0]))
    return ([{"label": "Все регионы", "value": ALL_REGIONS}]
            + [{"label": r.region_name, "value": str(int(r.region_id))} for r in visible.itertuples()]), ALL_REGIONS


def _brief_region(value: object) -> int | None:
    """The region the brief is for: None for all of them (or none chosen); ``inputs.InvalidInput``
    for a region the user may not see."""
    return None if value in (None, "", ALL_REGIONS) else inputs.region(value)


def _default_sector(codes: list[str]) -> str:
    return "housing" if "housing" in codes else codes[0]  # ЖКХ: the busiest block


def warm_opening_view(period_code: str) -> None:
    """What the page's first open computes: the workload of the default block, the roadmap and its
    chosen measure's chart, the brief of the default month (``callback_cache.warm_common_views``)."""
    codes = list(catalog.sectors()["sector_code"])
    if codes:
        update_workload(_default_sector(codes))
    _table, _options, chosen = update_roadmap(0, None)
    update_item_chart(chosen)
    update_brief(period_code, 0, _region_choice()[1])


def _placeholders() -> html.Div:
    return html.Div([
        dcc.Store(id="decisions-roadmap-version"), dropdown(id="decisions-sector"), html.Div(id="decisions-workload"),
        html.Div(id="decisions-roadmap"), dropdown(id="decisions-item"), dcc.Graph(id="decisions-item-chart"),
        *_form_fields_hidden(), dropdown(id="decisions-brief-period"), dropdown(id="decisions-brief-region"),
        html.Button(id="decisions-brief-download-button"), dcc.Download(id="decisions-brief-download"),
        html.Div(id="decisions-brief"),
    ], style={"display": "none"})


def _form_fields_hidden() -> list:
    return [dcc.Input(id="decisions-form-title"), dropdown(id="decisions-form-municipality"),
            dropdown(id="decisions-form-sector"), dropdown(id="decisions-form-categories"),
            dcc.Input(id="decisions-form-organisation"), dcc.Input(id="decisions-form-start"),
            dcc.Input(id="decisions-form-end"), dropdown(id="decisions-form-status"),
            html.Button(id="decisions-form-submit"), html.Div(id="decisions-form-message")]


def _form(choices: dict) -> dbc.Card:
    municipalities = ([{"label": "Весь регион", "value": REGION_VALUE}] if choices["region_allowed"] else []) + [
        {"label": name, "value": name} for _, name in choices["municipalities"]]

    def field(label: str, control, md: int) -> dbc.Col:
        return dbc.Col([dbc.Label(label, className="small text-muted mb-0"), control], md=md)

    return dbc.Card([
        dbc.CardHeader(html.Strong("Добавить меру")),
        dbc.CardBody([
            dbc.Row([
                field("Название меры", dbc.Input(id="decisions-form-title", maxLength=300,
                                                 placeholder="Например: ремонт сетей водоснабжения"), 6),
                field("Муниципалитет", dropdown(id="decisions-form-municipality", options=municipalities,
                                                    placeholder="выберите"), 3),
                field("Статус", dropdown(id="decisions-form-status", value="in_progress", clearable=False,
                                             options=[{"label": v, "value": k} for k, v in ROADMAP_STATUSES.items()]), 3),
            ], className="g-2 mb-2"),
            dbc.Row([
                field("Отраслевой блок", dropdown(id="decisions-form-sector", placeholder="выберите",
                                                      options=[{"label": n, "value": c} for c, n in choices["sectors"]]), 3),
                field("Категории (пусто — весь блок)", dropdown(id="decisions-form-categories", multi=True,
                                                                    options=[]), 9),
            ], className="g-2 mb-2"),
            dbc.Row([
                field("Ответственная организация", html.Div([
                    dbc.Input(id="decisions-form-organisation", list="decisions-organisations", maxLength=300),
                    html.Datalist(id="decisions-organisations",
                                  children=[html.Option(value=o) for o in choices["organisations"]])]), 6),
                # a text field, not type=date: a browser's date field follows the browser's language
                # (mm/dd/yyyy in an English one); the server reads ДД.ММ.ГГГГ and says in Russian what is wrong
                field("Начало", dbc.Input(id="decisions-form-start", type="text", placeholder="дд.мм.гггг",
                                          maxLength=10, inputMode="numeric", autoComplete="off"), 3),
                field("Плановое окончание", dbc.Input(id="decisions-form-end", type="text", placeholder="дд.мм.гггг",
                                                      maxLength=10, inputMode="numeric", autoComplete="off"), 3),
            ], className="g-2 mb-2"),
            dbc.Button("Добавить", id="decisions-form-submit", color="success"),
            html.Div(id="decisions-form-message", className="mt-2"),
        ]),
    ], className="mt-3")


# --- workload -------------------------------------------------------------------------------------


def _num(x: float, decimals: int = 0) -> str:
    return "—" if x is None or pd.isna(x) else words.number(x, decimals)


def workload_view(plan, sector_code: str) -> html.Div:
    """The chart of one block, the proposals of all blocks and the numbers behind them in plain words;
    the method (models, their errors, the settings file) behind «как считается»."""
    history = plan.history[plan.history["sector_code"] == sector_code]
    forecast = plan.forecast[plan.forecast["sector_code"] == sector_code] if not plan.forecast.empty else plan.forecast
    name = history["sector_name"].iloc[0] if len(history) else sector_code
    chart = dcc.Graph(id="decisions-workload-chart", figure=figures.workload_chart(history, forecast, f"Блок «{name}»"),
                      config=figures.graph_config("workload"))
    limited = scope_note(current_scope(), (
        "нагрузка и прогноз — только по его обращениям, а численность блоков в настройках — региональная, "
        "поэтому предложения по кадрам для одного муниципалитета не строятся",
        "нагрузка и прогноз — только по их обращениям, а численность блоков в настройках — региональная, "
        "поэтому предложения по кадрам для них не строятся"))
    # staff counts are the region's: set against one municipality's load they would propose nonsense
    proposals = ([dbc.ListGroupItem(limited, color="info", id="decisions-scope-note")] if limited else
                 [dbc.ListGroupItem(p.text, color=ACTION_COLOURS[p.action]) for p in plan.proposals])
    rows, method_rows = [], []
    tests = plan.backtest.set_index(["sector_code", "model"]) if not plan.backtest.empty else None
    # the numbers of the chosen block only: the proposals above cover every block, and a table of all
    # blocks (27 rows, twice) is hundreds of components the browser's Dash renderer walks on every update
    for r in forecast.itertuples() if not forecast.empty else []:
        def err(family: str, code: str = r.sector_code) -> str:
            if tests is None or (code, family) not in tests.index:
                return "—"
            t = tests.loc[(code, family)]
            return f"{words.percent(t['mape'])} / {words.percent(t['smape'])}"
        rows.append(html.Tr([
            html.Td(r.sector_name), html.Td(words.month_nominative(r.month)),
            html.Td(_num(r.forecast), className="text-end"), html.Td(_num(r.load_per_day), className="text-end"),
            html.Td(_num(r.norm, 1), className="text-end"),
            html.Td(_num(r.needed), className="text-end"), html.Td(_num(r.current), className="text-end"),
        ]))
        method_rows.append(html.Tr([
            html.Td(r.sector_name), html.Td(words.month_nominative(r.month)), html.Td(MODEL_LABELS.get(r.model, "—")),
            html.Td(err("holt_winters"), className="text-end"), html.Td(err("seasonal_naive"), className="text-end"),
            html.Td(r.working_days, className="text-end"), html.Td(_num(r.capacity_days, 1), className="text-end"),
        ]))
    table = dbc.Table([html.Thead(html.Tr([
        html.Th("Блок"), html.Th("Месяц"), html.Th("Ожидается обращений", className="text-end"),
        html.Th("В рабочий день", className="text-end"),
        html.Th("Один специалист за день", className="text-end"), html.Th("Нужно специалистов", className="text-end"),
        html.Th("Работает сейчас", className="text-end")])), html.Tbody(rows)],
        size="sm", hover=True, responsive=True, id="decisions-staffing-table", className="small")
    method = html.Details([
        html.Summary("как считается", id="decisions-method-summary"),
        html.P("Ожидаемое число обращений — прогноз по собственной истории блока: модель Холта-Уинтерса с "
               "сезонностью 12 месяцев, если истории больше 24 месяцев, иначе «тот же месяц год назад» (при 12–23 "
               "месяцах) или среднее последних трёх месяцев. Обе модели проверяются по истории: прогноз на 1–3 "
               "месяца вперёд от каждой из последних точек сравнивается с фактом (ошибки MAPE / sMAPE); если "
               "«тот же месяц год назад» точнее, берётся он.", className="small"),
        html.P("Обращения в рабочий день = ожидаемые обращения / рабочие дни, которые их обслуживают: обращения "
               "поступают каждый календарный день и рассматриваются до 30 дней, поэтому берётся средняя по году "
               "доля рабочих дней (дни месяца × рабочие дни года / дни года). Так короткий по рабочим дням месяц "
               "(январь с новогодними каникулами) не создаёт мнимой нехватки людей. Нужно специалистов = "
               "⌈обращения в рабочий день / норма одного специалиста⌉.", className="small"),
        html.P("Норма и численность блоков задаются в файле настроек config/staffing.toml (или в файле из "
               "переменной окружения CUR_STAFFING_CONFIG).", className="small"),
        dbc.Table([html.Thead(html.Tr([
            html.Th("Блок"), html.Th("Месяц"), html.Th("Модель"), html.Th("Ошибка Х-У: MAPE / sMAPE", className="text-end"),
            html.Th("Ошибка «год назад»", className="text-end"), html.Th("Рабочих дней в месяце", className="text-end"),
            html.Th("Рабочих дней в расчёте", className="text-end")])), html.Tbody(method_rows)],
            size="sm", responsive=True, id="decisions-method-table", className="small"),
    ], id="decisions-method", className="small text-muted")
    return html.Div([
        chart,
        html.H5("Предложения", className="mt-2"),
        dbc.ListGroup(proposals, id="decisions-proposals", className="mb-3"),
        html.P(f"Данные на {plan.as_of:%d.%m.%Y}.", className="small text-muted"),
        table,
        method,
    ])


@callback(Output("decisions-workload", "children"), Input("decisions-sector", "value"))
def update_workload(sector_code: str | None):
    if not sector_code:
        return ""
    try:
        sector_code = inputs.sector(sector_code)
        return workload_view(staffing_plan(current_scope()), sector_code)
    except ValueError as exc:
        return dbc.Alert(f"Не удалось рассчитать нагрузку: {exc}", color="danger")
    except Exception:  # a page shows a message, never a traceback
        log.exception("workload failed")
        return dbc.Alert("Не удалось рассчитать нагрузку: ошибка на сервере.", color="danger")


# --- roadmap --------------------------------------------------------------------------------------


def roadmap_table(effects: pd.DataFrame) -> dbc.Table | dbc.Alert:
    if effects.empty:
        where = "" if current_scope().municipality_ids is None else " в доступных вам муниципалитетах"
        return dbc.Alert(f"Мер дорожной карты{where} пока нет: добавьте меру формой ниже или загрузите файл командой "
                         "python -m data roadmap ФАЙЛ.", color="info", id="decisions-roadmap-empty")
    rows = []
    for r in effects.itertuples():
        rows.append(html.Tr([
            html.Td(r.title), html.Td(r.municipality_name), html.Td(f"{r.sector_name}: " + ", ".join(r.category_names)
                                                                   if r.category_names else r.sector_name),
            html.Td(r.organisation_name), html.Td(f"{r.start_date:%d.%m.%Y}"),
            html.Td(f"{r.planned_end_date:%d.%m.%Y}" if pd.notna(r.planned_end_date) else "—"),
            html.Td(r.status_label),
            html.Td([dbc.Badge(VERDICT_LABELS[r.verdict], color=VERDICT_COLOURS[r.verdict],
                               text_color="dark" if r.verdict == "too_few" else None, className="me-1"),
                     html.Div(r.text, className="small")]),
        ], **{"data-verdict": r.verdict}))
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "Мера", "Где", "Блок и категории", "Ответственный", "Начало", "Окончание (план)", "Статус", "Эффект")])),
        html.Tbody(rows)], size="sm", hover=True, responsive=True, id="decisions-roadmap-table", className="small")


@callback(
    Output("decisions-roadmap", "children"),
    Output("decisions-item", "options"),
    Output("decisions-item", "value"),
    Input("decisions-roadmap-version", "data"),
    State("decisions-item", "value"),
)
def update_roadmap(_version: int | None, chosen: int | None):
    try:
        effects = _effects()
    except Exception:
        log.exception("roadmap failed")
        return dbc.Alert("Не удалось оценить меры: ошибка на сервере.", color="danger"), [], None
    options = [{"label": f"{r.municipality_name}: {r.title}", "value": int(r.id)} for r in effects.itertuples()]
    ids = [o["value"] for o in options]
    if chosen not in ids:
        started = effects[effects["verdict"] != "not_started"]
        chosen = int(started["id"].iloc[-1]) if len(started) else (ids[0] if ids else None)
    return roadmap_table(effects), options, chosen


@callback(Output("decisions-item-chart", "figure"), Input("decisions-item", "value"))
def update_item_chart(item_id: int | None):
    if item_id is None:  # the list always has a measure chosen when it has any
        return figures.empty_figure("Мера дорожной карты", "Мер пока нет — график появится с первой мерой")
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        return figures.empty_figure("Мера дорожной карты", "Недопустимый номер меры")
    try:
        effect = _item_effect(int(item_id))
        items = roadmap_items(current_scope())  # names only: the other measures' effects are not needed here
    except KeyError as exc:
        return figures.empty_figure("Мера дорожной карты", str(exc).strip("'\""))
    item = items[items["id"] == int(item_id)].iloc[0]
    return figures.roadmap_effect_chart(effect.series, item["start_date"],
                                        f"{item['title']}: {VERDICT_LABELS[effect.verdict]}", item["municipality_name"])


@callback(Output("decisions-form-categories", "options"), Output("decisions-form-categories", "value"),
          Input("decisions-form-sector", "value"))
def update_categories(sector_code: str | None):
    if not sector_code:
        return [], []
    try:
        sector_code = inputs.sector(sector_code)
    except inputs.InvalidInput:
        return [], []
    names = form_choices(current_scope())["categories"].get(sector_code, [])
    return [{"label": n, "value": n} for n in names], []


@callback(
    Output("decisions-form-message", "children"),
    Output("decisions-roadmap-version", "data"),
    Input("decisions-form-submit", "n_clicks"),
    State("decisions-form-title", "value"),
    State("decisions-form-municipality", "value"),
    State("decisions-form-sector", "value"),
    State("decisions-form-categories", "value"),
    State("decisions-form-organisation", "value"),
    State("decisions-form-start", "value"),
    State("decisions-form-end", "value"),
    State("decisions-form-status", "value"),
    State("decisions-roadmap-version", "data"),
    prevent_initial_call=True,
)
def submit_item(_clicks, title, municipality, sector, categories, organisation, start, end, status, version):
    raw = {"title": title, "municipality": "" if municipality in (None, REGION_VALUE) else municipality,
           "sector": sector, "categories": "; ".join(categories or []), "organisation": organisation,
           "start_date": start, "planned_end_date": end, "status": status}
    if municipality is None:
        return dbc.Alert("Выберите муниципалитет или «Весь регион».", color="danger", id="decisions-form-error"), \
            dash.no_update
    try:
        new_id, reasons = add_measure(raw, current_scope())
    except Exception:
        log.exception("adding a roadmap item failed")
        return dbc.Alert("Не удалось сохранить меру: ошибка на сервере.", color="danger",
                         id="decisions-form-error"), dash.no_update
    if new_id is None:
        return dbc.Alert(["Мера не добавлена:", html.Ul([html.Li(r) for r in reasons])], color="danger",
                         id="decisions-form-error"), dash.no_update
    return dbc.Alert(f"Мера № {new_id} добавлена.", color="success", id="decisions-form-ok"), (version or 0) + 1


# --- brief ----------------------------------------------------------------------------------------


@callback(Output("decisions-brief", "children"), Input("decisions-brief-period", "value"),
          Input("decisions-roadmap-version", "data"), Input("decisions-brief-region", "value"))
def update_brief(period_code: str | None, _version: int | None, region: object = None):
    if not period_code:
        return ""
    try:
        period_code = inputs.period(period_code).code
        brief = _brief(period_code, _brief_region(region))
    except inputs.InvalidInput as exc:
        return dbc.Alert(str(exc), color="warning")
    except BriefError as exc:
        return dbc.Alert(str(exc), color="warning")
    except Exception:
        log.exception("brief failed")
        return dbc.Alert("Не удалось подготовить доклад: ошибка на сервере.", color="danger")
    return brief_view(brief)


def brief_view(brief) -> html.Div:
    """The brief as plain components, like its DOCX: names from imported files and the form print as
    they are (Dash escapes text), and the page needs no Markdown renderer (its lazily loaded parser
    and code highlighter cost the page a second of the browser's time)."""
    parts: list = [html.H4(brief.title), html.P(html.Em(brief.subtitle))]
    for section in brief.sections:
        parts.append(html.H5(section.title, className="mt-3"))
        parts += [html.P(text) for text in section.paragraphs]
        if section.bullets:
            parts.append(html.Ul([html.Li(text) for text in section.bullets]))
        parts += [html.P(text, className="small text-muted") for text in section.notes]
    return html.Div(parts, id="decisions-brief-text")


@callback(Output("decisions-brief-download", "data"), Input("decisions-brief-download-button", "n_clicks"),
          State("decisions-brief-period", "value"), State("decisions-brief-region", "value"),
          prevent_initial_call=True)
def download_brief(_clicks, period_code: str | None, region: object = None):
    try:
        period_code = inputs.period(period_code).code
        brief = _brief(period_code, _brief_region(region))
    except (inputs.InvalidInput, BriefError):  # the text above already says why
        return dash.no_update
    buffer = io.BytesIO()
    brief.to_docx(buffer)
    return dcc.send_bytes(buffer.getvalue(), f"{brief.file_stem}.docx")  # «doklad_2025-10[_Тверская_область]»
