"""«Пакет к совещанию»: one menu in the app shell that downloads the pack for the current page's filters.

The filters are read from the page's address (every page keeps its selectors in the query string), the
user's scope on the server (``pages.common.current_scope``): the browser cannot widen it. Not a page:
``register(app)`` attaches the callbacks to the app, as ``pages.shell`` does.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, dcc, html, no_update

from metrics import catalog
from metrics.periods import default_month
from pages.common import current_scope
from report import content, pack

log = logging.getLogger(__name__)
FORMATS = {"pptx": "Презентация PPTX", "pdf": "Документ PDF", "xlsx": "Данные XLSX"}
# page path → which of its query parameters are the pack's filters (the heat map's and the KPI page's
# indicator: the pack's map, matrix and first trend show it; the heat map's region, opened from
# «Регионы»: the pack of that region, checked against the user's scope in ``report.content``)
PAGES = {"/": ("period", "sector", "channel", "indicator", "region"), "/rating": ("period", "sector"),
         "/kpi": ("indicator", "sector", "municipality"), "/problems": ("period", "municipality")}
PROFILE = "/municipality/"
ALL_VALUES = ("", "all", None)


def component() -> html.Div:
    menu = dbc.DropdownMenu(
        [dbc.DropdownMenuItem(label, id={"type": "pack-format", "format": fmt}) for fmt, label in FORMATS.items()],
        label="Пакет к совещанию", id="pack-menu", color="light", size="sm", align_end=True,
    )
    # while the callback writing the pack's status runs, a spinner and «Собираю пакет…» stand in the
    # menu's place (the menu hidden, its space kept): a second click cannot start a second build
    building = html.Span([dbc.Spinner(size="sm", spinner_class_name="me-2"), "Собираю пакет…"],
                         id="pack-building", className="small text-light text-nowrap")
    area = dcc.Loading(html.Div([menu, html.Span(id="pack-status", className="small text-warning ms-2")],
                                className="d-flex align-items-center"),
                       custom_spinner=building, target_components={"pack-status": "children"},
                       parent_style={"display": "inline-block"})
    # no Bootstrap d-flex on the area: its display !important would beat the hiding style (ui_shell)
    return html.Div([area, dcc.Download(id="pack-download"), dcc.Store(id="pack-request")],
                    id="pack-area", className="align-items-center ms-3", style={"display": "none"})


def pack_request(pathname: str | None, search: str | None) -> dict | None:
    """The pack's filters for a page address; None where a page has no pack."""
    path = pathname or "/"
    params = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
    if path.startswith(PROFILE):
        wanted, request = ("period",), {"municipality": path[len(PROFILE):].strip("/")}
    elif path in PAGES:
        wanted, request = PAGES[path], {}
    else:
        return None
    for key in wanted:
        if params.get(key) not in ALL_VALUES:
            request[key] = params[key]
    return request


def build(fmt: str, request: dict) -> tuple[bytes, str]:
    """The pack for a page's filters within the signed-in user's scope."""
    period = request.get("period")
    if not period:
        months = catalog.months_with_data()
        if not months:
            raise content.PackError("в хранилище нет обращений")
        period = default_month(months, catalog.as_of()).code  # the last complete month
    return pack.make(fmt, period, request.get("sector"), request.get("municipality"), current_scope(),
                     indicator=request.get("indicator"), channel=request.get("channel"),
                     region=request.get("region"))


def _visible(pathname: str | None) -> dict:
    return {"display": "flex"} if pack_request(pathname, "") is not None else {"display": "none"}


# The page's own dcc.Location rewrites the address (its selectors) without updating the shell's
# _pages_location, so the browser sends the address it shows at the moment of the click.
_ADDRESS_AT_CLICK = """
function (clicks) {
    const fired = dash_clientside.callback_context.triggered;
    if (!fired.length || !(clicks || []).some(Boolean)) { return dash_clientside.no_update; }
    const prop = fired[0].prop_id;
    const id = JSON.parse(prop.slice(0, prop.lastIndexOf(".")));
    return {format: id.format, pathname: window.location.pathname, search: window.location.search,
            at: Date.now()};
}
"""


def _download(clicked: dict | None):
    if not clicked or clicked.get("format") not in FORMATS:
        return no_update, no_update
    request = pack_request(clicked.get("pathname"), clicked.get("search"))
    if request is None:
        return no_update, "На этой странице пакета нет."
    try:
        data, name = build(clicked["format"], request)
    except content.PackError as exc:
        return no_update, f"Пакет не собран: {exc}"
    except Exception:  # the page shows a message, never a traceback
        log.exception("meeting pack failed")
        return no_update, "Пакет не собран: ошибка на сервере, подробности в журнале."
    return dcc.send_bytes(data, name, type=pack.FORMATS[clicked["format"]]), ""


def register(app: Dash) -> None:
    app.callback(Output("pack-area", "style"), Input("_pages_location", "pathname"))(_visible)
    app.clientside_callback(_ADDRESS_AT_CLICK, Output("pack-request", "data"),
                            Input({"type": "pack-format", "format": ALL}, "n_clicks"), prevent_initial_call=True)
    app.callback(Output("pack-download", "data"), Output("pack-status", "children"),
                 Input("pack-request", "data"), prevent_initial_call=True)(_download)
