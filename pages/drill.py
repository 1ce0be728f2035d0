"""Разбор: from a unit on the map down to the category, the organisations and the appeals themselves.

``/drill/<unit>?period=2025-10&sector=housing&channel=all&indicator=volume&category=41&organisation=7``:
``<unit>`` is a municipality id or ``region``; every further step is in the query string, so a copied
address reopens the same view and back / forward walk the steps (each step is a page address,
rendered by the router). Every value from the address is checked against the user's own lists
(``pages.inputs``): a forged id gets a Russian message, never data. The appeals grid and its CSV come
from one function (``metrics.appeals.appeal_list``) with the same checked arguments.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from charts import figures
from metrics import appeals as appeal_lists
from metrics import catalog, words
from metrics import indicators as ind
from metrics.kpi import kpi_series
from metrics.periods import Period, is_settled
from metrics.query import query
from metrics.rating import STATUS_RANKED, place_text, rate_organisations
from metrics.scope import request_scope
from metrics.source import WarehouseMissing, warehouse_identity
from pages import inputs
from pages.common import (
    compared_with,
    current_scope,
    default_period,
    missing_warehouse,
    no_appeals,
    period_badges,
    scope_note,
)
from pages.heatmap import DEFAULT_INDICATOR, MAP_INDICATORS

dash.register_page(__name__, path_template="/drill/<unit>", name="Разбор", title="ЦУР Heatmap — разбор", order=96)
log = logging.getLogger(__name__)

REGION = "region"
ALL = "all"
TILES = ("volume", "on_time_share", "overdue_open", "resolve_days_median", "satisfaction_share")
ORG_COLUMNS = ("volume", "on_time_share", "overdue_open", "resolve_days_median", "satisfaction_share")
PARAMS = ("period", "sector", "channel", "indicator", "category", "organisation")
GRID_LOCALE = {
    "page": "Страница", "of": "из", "to": "–", "more": "ещё", "next": "Следующая", "last": "Последняя",
    "first": "Первая", "previous": "Предыдущая", "noRowsToShow": "Нет обращений", "loadingOoo": "Загрузка…",
    "filterOoo": "Фильтр…", "contains": "Содержит", "notContains": "Не содержит", "equals": "Равно",
    "notEqual": "Не равно", "startsWith": "Начинается с", "endsWith": "Заканчивается на",
    "andCondition": "И", "orCondition": "ИЛИ", "blank": "Пусто", "notBlank": "Не пусто",
    "pageSizeSelectorLabel": "Строк на странице:",
}
# ISO time from the server, shown as «31.10.2025 14:05» (the CSV writes the same text); sorting stays by time
# «30.11.2026 20:15» needs 170 px with the grid's padding: at 150 the time was cut to «30.11.2026 2…»
WIDTHS = {"received_at": 170, "topic": 340, "organisation_name": 230, "status_name": 120, "closure_name": 190,
          "channel_name": 190, "due_at": 170, "answered_at": 170, "municipality_name": 180, "sector_name": 130,
          "category_name": 220}
TIME_FORMAT = {"function": "params.value ? params.value.slice(8, 10) + '.' + params.value.slice(5, 7) + '.' + "
                           "params.value.slice(0, 4) + ' ' + params.value.slice(11, 16) : ''"}


class View(NamedTuple):
    """One checked drill-down view: what the address asked for, every value validated.
    (A NamedTuple: Dash runs page modules outside ``sys.modules``, where a dataclass cannot resolve.)"""
    municipality: int | None  # None: the whole region (as far as the scope reaches)
    period: Period
    sector: str | None
    channel: str | None
    indicator: str
    category: int | None
    organisation: int | None

    def filters(self, municipality: bool = True, category: bool = True, organisation: bool = True) -> dict:
        """Filters for ``metrics.query``; a level can be left out (the parent to compare with)."""
        out: dict[str, list] = {}
        if municipality and self.municipality is not None:
            out["municipality"] = [self.municipality]
        if self.sector is not None:
            out["sector"] = [self.sector]
        if self.channel is not None:
            out["channel"] = [self.channel]
        if category and self.category is not None:
            out["category"] = [self.category]
        if organisation and self.organisation is not None:
            out["organisation"] = [self.organisation]
        return out


def view_from(unit: object, args: dict) -> View:
    """Check every value of an address (or of the page's stored view); ``InvalidInput`` on any forgery."""
    municipality = None if unit == REGION else inputs.municipality(unit, allow_all=False)
    period_code = args.get("period")
    if period_code in (None, ""):
        period_code = default_period(catalog.months_with_data(), catalog.as_of())
    period = inputs.period(period_code, last30=True)
    sector = inputs.sector(args.get("sector"))
    channel = inputs.channel(args.get("channel"))
    indicator = args.get("indicator") or DEFAULT_INDICATOR
    indicator = inputs.choice(indicator, MAP_INDICATORS, "показатель")
    category = inputs.category(args.get("category"))
    if category is not None and sector is not None and inputs.category_sector(category) != sector:
        raise inputs.InvalidInput("категория не относится к выбранному отраслевому блоку")
    organisation = inputs.organisation(args.get("organisation"))
    return View(municipality, period, sector, channel, indicator, category, organisation)


def address(view: View, unit: int | str | None = "same", **changes: object) -> str:
    """The address of ``view`` with some steps changed (None drops a step)."""
    values = {"period": view.period.code, "sector": view.sector or ALL, "channel": view.channel or ALL,
              "indicator": view.indicator, "category": view.category, "organisation": view.organisation}
    values.update(changes)
    target = view.municipality if unit == "same" else unit
    query_string = urlencode({k: v for k, v in values.items() if v is not None})
    return f"/drill/{REGION if target is None else target}?{query_string}"


def map_address(view: View, municipality: int | None = None) -> str:
    values = {"period": view.period.code, "sector": view.sector or ALL, "channel": view.channel or ALL,
              "indicator": view.indicator}
    if municipality is not None:
        values["municipality"] = municipality
    return "/?" + urlencode(values)


def layout(unit: str | None = None, **args: str) -> html.Div:
    try:
        if not catalog.months_with_data():
            return html.Div([no_appeals("drill-no-data"), _placeholders()])
        view = view_from(unit, args)
    except WarehouseMissing:
        return html.Div([missing_warehouse("drill-missing"), _placeholders()])
    except inputs.InvalidInput as exc:
        return html.Div([dbc.Alert([f"Такой разбор открыть нельзя: {exc}. ", dcc.Link("К тепловой карте", href="/")],
                                   color="warning", id="drill-refused"), _placeholders()])
    try:
        return _page(view, unit, args)
    except Exception:  # a page shows a message, never a traceback
        log.exception("drill-down failed")
        return html.Div([dbc.Alert("Не удалось построить разбор: ошибка на сервере.", color="danger",
                                   id="drill-error"), _placeholders()])


def _placeholders() -> html.Div:
    """The components the download callback expects, hidden: a page without a view must not log id errors."""
    return html.Div([html.Button(id="drill-csv-button"), dcc.Download(id="drill-csv"), dcc.Store(id="drill-view")],
                    style={"display": "none"})


def _names(view: View) -> dict[str, str]:
    out = {"region": catalog.region_name() or "Регион"}
    if view.municipality is not None:
        out["municipality"] = catalog.names("municipality")[view.municipality]
    if view.category is not None:
        out["category"] = inputs.category_name(view.category)
    if view.organisation is not None:
        card = appeal_lists.organisation_card(view.organisation)
        out["organisation"] = card.name if card else ""
    return out


def breadcrumbs(view: View, names: dict[str, str]) -> dbc.Breadcrumb:
    """«Регион › Муниципалитет › Категория › Организация»: each step a link to its own view."""
    items = [{"label": names["region"], "href": map_address(view, view.municipality)}]
    if view.municipality is not None:
        items.append({"label": names["municipality"], "href": address(view, category=None, organisation=None)})
    if view.category is not None:
        items.append({"label": names["category"], "href": address(view, organisation=None)})
    if view.organisation is not None:
        items.append({"label": names["organisation"], "href": address(view)})
    items[-1] = {"label": items[-1]["label"], "active": True}
    return dbc.Breadcrumb(items=items, id="drill-crumbs", className="mb-1")


def _title(names: dict[str, str], view: View) -> str:
    parts = [names.get("municipality", names["region"])]
    if view.category is not None:
        parts.append(names["category"])
    if view.organisation is not None:
        parts.append(names["organisation"])
    return " · ".join(parts)


def _filters_text(view: View) -> str:
    parts = [view.period.label]
    if view.sector is not None:
        parts.append(catalog.names("sector").get(view.sector, view.sector))
    if view.channel is not None:
        parts.append(catalog.names("channel").get(view.channel, view.channel))
    return " · ".join(parts)


def _page(view: View, unit: object, args: dict) -> html.Div:
    as_of = catalog.as_of()
    names = _names(view)
    title = _title(names, view)
    codes = list(dict.fromkeys([*TILES, view.indicator]))
    if view.organisation is not None and "rate_10k" in codes:
        codes.remove("rate_10k")  # residents belong to units, not to a body
    own = query(codes, period=view.period, filters=view.filters()).iloc[0]
    parent_filters = view.filters(municipality=False, organisation=False)
    scope = current_scope()
    # the «region» of the comparison is what the scope sees: an МЦУ's municipality is not set against itself
    compare_label = (compared_with(scope, view.municipality if view.organisation is None else None) or ""
                     if view.municipality is not None or view.organisation is not None else "")
    parent = query(codes, period=view.period, filters=parent_filters).iloc[0] if compare_label else None
    unsettled = not is_settled(view.period, as_of)
    tiles = dbc.Row([_tile(c, own, parent, compare_label, unsettled) for c in codes], className="g-2 mb-3",
                    id="drill-tiles")
    # residents belong to units, not to a body: an organisation's trend of «на 10 тыс. жителей» is its volume
    trend_code = "volume" if view.organisation is not None and view.indicator == "rate_10k" else view.indicator
    spec = ind.get(trend_code)
    # the months the warehouse holds, up to two years: no empty stretch before the data begin
    trend = kpi_series(trend_code, months=max(2, min(24, len(catalog.months_with_data()))), sector=view.sector,
                       category=view.category, municipality=view.municipality,
                       organisation=view.organisation, channel=view.channel)
    trend_fig = figures.mark_export(
        figures.kpi_trend(trend, spec, f"{spec.label} по месяцам — {title}"),
        figures.export_filename(spec.label, title), figures.data_note(_filters_text(view), as_of))
    sections: list = []
    if view.category is None:
        sections.append(_categories(view))
    if view.municipality is None and (view.category is not None or view.organisation is not None):
        sections.append(_municipalities(view))
    if view.organisation is None:
        sections.append(_organisations(view))
    else:
        sections.append(html.P(dcc.Link("Полный профиль организации →", id="drill-organisation-profile",
                                        href=f"/organisation/{view.organisation}?" + urlencode(
                                            {"period": view.period.code, "sector": view.sector or ALL,
                                             "channel": view.channel or ALL, "indicator": view.indicator}))))
    stored = {"unit": str(REGION if view.municipality is None else view.municipality),
              **{k: args.get(k) for k in PARAMS if isinstance(args.get(k), str)}}
    return html.Div([
        breadcrumbs(view, names),
        html.H2(title, id="drill-title", className="h3"),
        *([dbc.Alert(scope_note(scope), color="info", className="py-2 small", id="drill-scope-note")]
          if view.municipality is None and scope.municipality_ids is not None else []),
        html.P([f"{_filters_text(view)} · ", period_badges(view.period, as_of, id="drill-period-warnings"),
                f"данные по состоянию на {as_of:%d.%m.%Y %H:%M}"], className="text-muted", id="drill-filters"),
        tiles,
        dcc.Graph(figure=trend_fig, config=figures.graph_config(f"{spec.label} {title}"), id="drill-trend"),
        *sections,
        _appeals(view, stored),
    ], id="drill-page")


def _tile(code: str, own: pd.Series, parent: pd.Series | None, label: str, unsettled: bool) -> dbc.Col:
    spec = ind.get(code)
    value = own[code]
    low = bool(own.get(f"{code}_low", False)) and spec.kind not in ("count", "open")
    shown = "мало данных" if low else spec.format(value)
    compare: object = ""
    if parent is not None and pd.notna(parent[code]) and spec.kind in ("ratio", "median", "mean", "index"):
        better = (value >= parent[code]) if spec.higher_is_better else (value <= parent[code])
        # a value on too few appeals is not judged against the region: no colour
        colour = "text-muted" if low or pd.isna(value) else "text-success" if better else "text-danger"
        compare = html.Div(f"{label} {spec.format(parent[code])}", className=f"small {colour}")
    note = html.Div("ответы ещё поступают", className="small text-warning") if unsettled and spec.answer_based else ""
    return dbc.Col(dbc.Card(dbc.CardBody([html.Div(spec.label, className="small text-muted"),
                                          html.H4(shown, className="mb-0"), compare, note])), md=2)


def _cell(code: str, row: object) -> html.Td:
    spec = ind.get(code)
    value = getattr(row, code)
    low = bool(getattr(row, f"{code}_low", False)) and spec.kind not in ("count", "open")
    # «мало данных» on one line in a narrow column (Bootstrap's text-nowrap)
    return html.Td("мало данных" if low else spec.format(value),
                   className="text-end" + (" text-muted text-nowrap" if low else ""))


def _categories(view: View) -> html.Div:
    return _breakdown(view, "category", ("Категория", "Категории", "drill-categories"),
                      lambda r: {"category": int(r.category_id)}, limit=30)


def _municipalities(view: View) -> html.Div:
    return _breakdown(view, "municipality", ("Муниципалитет", "Муниципалитеты", "drill-municipalities"),
                      lambda r: {"unit": int(r.municipality_id)})


def _breakdown(view: View, dimension: str, words: tuple[str, str, str], step: Callable[[Any], dict],
               limit: int | None = None) -> html.Div:
    """The view's appeals by one dimension (largest first), each row a link one drill step down;
    ``words``: the column head, the heading and the table's id."""
    column, title, table_id = words
    codes = list(dict.fromkeys(["volume", view.indicator]))
    df = query(codes, by=[dimension], period=view.period, filters=view.filters())
    df = df[df["volume"] > 0].sort_values(["volume", f"{dimension}_name"], ascending=[False, True])
    if limit is not None:
        df = df.head(limit)
    rows = [html.Tr([html.Td(dcc.Link(getattr(r, f"{dimension}_name"), href=address(view, **step(r)),
                                      className=f"drill-{dimension}-link")),
                     *(_cell(c, r) for c in codes)]) for r in df.itertuples()]
    head = [html.Th(column), *(html.Th(ind.get(c).label, className="text-end") for c in codes)]
    return html.Div([html.H4(title, className="mt-3"),
                     dbc.Table([html.Thead(html.Tr(head)), html.Tbody(rows)], size="sm", hover=True,
                               id=table_id) if rows else html.P("Обращений нет.")])


def _organisations(view: View) -> html.Div:
    """The bodies that answered these appeals: their indicators here and their place in the rating."""
    codes = list(dict.fromkeys([*ORG_COLUMNS, view.indicator]))
    df = query(codes, by=["organisation"], period=view.period, filters=view.filters())
    df = df[(df["volume"] > 0) & df["organisation_id"].notna()]
    df = df.sort_values(["volume", "organisation_name"], ascending=[False, True]).head(30)
    rating = period_rating(view.period)
    places = {int(r.organisation_id): (place_text(r.peer_rank_best, r.peer_rank_worst, r.peer_count)
                                       if r.status == STATUS_RANKED else r.status)
              for r in rating.itertuples()}
    rows = []
    for r in df.itertuples():
        oid = int(r.organisation_id)
        rows.append(html.Tr([
            html.Td([dcc.Link(r.organisation_name, href=address(view, organisation=oid),
                              className="drill-organisation-link"),
                     html.Div(r.organisation_kind or "", className="small text-muted")]),
            *(_cell(c, r) for c in codes),
            html.Td(places.get(oid, "—"), className="text-end"),
            html.Td(dcc.Link("профиль", href=f"/organisation/{oid}?" + urlencode(
                {"period": view.period.code, "sector": view.sector or ALL, "channel": view.channel or ALL,
                 "indicator": view.indicator}))),
        ]))
    head = [html.Th("Организация"), *(html.Th(ind.get(c).label, className="text-end") for c in codes),
            html.Th("Место в рейтинге (среди своего вида)", className="text-end"), html.Th("")]
    return html.Div([
        html.H4("Ответственные организации", className="mt-3"),
        html.P("Показатели — по обращениям этого разбора; место — в рейтинге организаций за период.",
               className="small text-muted"),
        dbc.Table([html.Thead(html.Tr(head)), html.Tbody(rows)], size="sm", hover=True, id="drill-organisations")
        if rows else html.P("Обращений с указанной организацией нет."),
    ])


_ratings: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_ratings_lock = threading.Lock()
RATINGS_KEPT = 16


def period_rating(period: Period) -> pd.DataFrame:
    """The organisations' rating of the period as the user's scope sees it, remembered until the warehouse
    file changes: every drill-down view of a period shows places from the same whole-region rating."""
    key = (period.code, request_scope(), *warehouse_identity())
    with _ratings_lock:
        if key in _ratings:
            _ratings.move_to_end(key)
            return _ratings[key]
    rating = rate_organisations(period)
    with _ratings_lock:
        _ratings[key] = rating
        while len(_ratings) > RATINGS_KEPT:
            _ratings.popitem(last=False)
    return rating


def appeal_rows(view: View) -> appeal_lists.AppealList:
    """The appeals of the view: the grid and the CSV ask exactly this."""
    return appeal_lists.appeal_list(view.period, municipality=view.municipality, sector=view.sector,
                                    category=view.category, organisation=view.organisation, channel=view.channel)


def _appeals(view: View, stored: dict) -> html.Div:
    listed = appeal_rows(view)
    data = listed.rows.copy()
    for column in appeal_lists.DATE_COLUMNS:
        data[column] = pd.to_datetime(data[column]).dt.strftime("%Y-%m-%dT%H:%M:%S").where(data[column].notna(), None)
    shown = len(data)
    count = (f"Показаны {words.number(shown)} самых новых из {words.count(listed.total, words.APPEALS)}; "
             "уточните выбор, чтобы увидеть остальные." if listed.truncated
             else f"Всего {words.count(listed.total, words.APPEALS)}.")
    columns = []
    for field, header in appeal_lists.COLUMNS.items():
        column: dict = {"field": field, "headerName": header, "filter": True, "sortable": True, "resizable": True,
                        "width": WIDTHS.get(field, 160), "tooltipField": field}
        if field in appeal_lists.DATE_COLUMNS:
            column.update(valueFormatter=TIME_FORMAT, filter=False)
            column.pop("tooltipField")
        columns.append(column)
    return html.Div([
        html.H4("Обращения", className="mt-3"),
        html.P(["Без персональных данных: только суть обращения и ход его рассмотрения. ",
                html.Span(count, id="drill-appeals-count")], className="small text-muted"),
        dbc.Button("Скачать CSV", id="drill-csv-button", color="secondary", size="sm", className="mb-2",
                   disabled=shown == 0),
        dcc.Download(id="drill-csv"),
        dcc.Store(id="drill-view", data=stored),
        dag.AgGrid(id="drill-grid", rowData=data.to_dict("records"), columnDefs=columns,
                   defaultColDef={"wrapText": False, "wrapHeaderText": True, "autoHeaderHeight": True},
                   dashGridOptions={"pagination": True, "paginationPageSize": 50, "localeText": GRID_LOCALE,
                                    "enableCellTextSelection": True, "tooltipShowDelay": 300},
                   style={"height": "560px"}, className="ag-theme-alpine"),
    ], id="drill-appeals")


@callback(
    Output("drill-csv", "data"),
    Input("drill-csv-button", "n_clicks"),
    State("drill-view", "data"),
    prevent_initial_call=True,
)
def download_csv(n_clicks: int | None, stored: object):
    """The CSV of the grid's own view, from the server: the stored view is checked again like an address."""
    if not n_clicks or not isinstance(stored, dict):
        return dash.no_update
    try:
        args = {k: stored.get(k) for k in PARAMS if isinstance(stored.get(k), str)}
        view = view_from(stored.get("unit"), args)
        body = appeal_lists.appeals_csv(appeal_rows(view))
    except inputs.InvalidInput:
        return dash.no_update
    except Exception:  # a download fails quietly rather than with a traceback
        log.exception("appeals CSV failed")
        return dash.no_update
    unit = "регион" if view.municipality is None else catalog.names("municipality")[view.municipality]
    name = figures.export_filename("обращения", unit, view.period.code)
    return dcc.send_bytes(body, f"{name}.csv", type="text/csv")
