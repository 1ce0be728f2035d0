"""Start page: what the warehouse holds. The heat map replaces it in the pages issue."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html

from auth.session import current_user
from metrics.source import WarehouseMissing
from metrics.status import warehouse_status
from pages.common import missing_warehouse

dash.register_page(__name__, path="/status", name="Состояние данных", title="ЦУР Heatmap — состояние данных", order=90)


def _number(n: int) -> str:
    return f"{n:,}".replace(",", "\u00a0")


def layout(**_query: str) -> html.Div:
    user = current_user()
    if user is not None and user.role != "curator":
        # the sign-in guard already refuses this page to other roles; a second check costs nothing
        return dbc.Alert("Нет доступа: состояние данных всего региона видит только куратор.", color="warning")
    try:
        status = warehouse_status()
    except WarehouseMissing:
        return missing_warehouse("warehouse-missing")
    except Exception:  # noqa: BLE001 - a page shows a message, never a traceback
        return dbc.Alert("Не удалось прочитать хранилище данных. Подробности — в журнале сервера.", color="danger")

    as_of = status.data_as_of.strftime("%d.%m.%Y %H:%M") if status.data_as_of is not None else "—"
    rows = [
        html.Tr([html.Td(r.sector_name), html.Td(_number(int(r.appeals)), className="text-end")])
        for r in status.by_sector.itertuples()
    ]
    geometry_note = {
        "schematic": "Границы муниципалитетов на карте схематичные (демо-режим).",
        "imported": "Границы муниципалитетов загружены из файла.",
    }.get(status.geometry_kind or "", "Границы муниципалитетов ещё не загружены: python -m geo import ФАЙЛ.")
    return html.Div(
        [
            html.H2(status.region_name or "Регион"),
            html.P([f"Данные по состоянию на {as_of}. ", geometry_note], className="text-muted"),
            dbc.Row(
                [
                    dbc.Col(dbc.Card(dbc.CardBody([html.H3(_number(status.appeals), id="total-appeals"),
                                                   html.Div("обращений и сообщений")]))),
                    dbc.Col(dbc.Card(dbc.CardBody([html.H3(_number(status.municipalities)),
                                                   html.Div("муниципальных образований")]))),
                    dbc.Col(dbc.Card(dbc.CardBody([html.H3(_number(status.organisations)),
                                                   html.Div("организаций")]))),
                ],
                className="mb-4 g-3",
            ),
            html.H4("Обращения по отраслевым блокам"),
            dbc.Table(
                [html.Thead(html.Tr([html.Th("Отраслевой блок"), html.Th("Обращений", className="text-end")])),
                 html.Tbody(rows)],
                bordered=False, hover=True, size="sm", id="sector-table",
            ),
        ]
    )
