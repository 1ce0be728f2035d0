"""Pieces every page shares: the period choices, Russian dropdowns and the message for a missing warehouse."""

from __future__ import annotations

import datetime as dt

import dash_bootstrap_components as dbc
from dash import dcc, html

from auth.session import current_scope  # noqa: F401  (pages read the scope here)
from metrics.periods import month, parse_period, quarter_of
from metrics.source import warehouse_path

# dcc.Dropdown's own texts (search box, multi-select actions) are English; the component does not
# merge a partial dict with its defaults, so every key is given.
DROPDOWN_LABELS = {
    "select_all": "Выбрать все",
    "deselect_all": "Снять выбор",
    "selected_count": "Выбрано: {num_selected}",
    "search": "Поиск",
    "clear_search": "Очистить поиск",
    "clear_selection": "Очистить выбор",
    "no_options_found": "Ничего не найдено",
}


def dropdown(id: str, **props) -> dcc.Dropdown:  # noqa: A002  (Dash's own name for the prop)
    """A dcc.Dropdown speaking Russian; every page builds its dropdowns through this."""
    return dcc.Dropdown(id=id, labels=DROPDOWN_LABELS, **props)


def period_options(months: list[dt.date], quarters_first: bool = False, last30: bool = False) -> list[dict]:
    """Months with data (newest first) and their quarters, as dropdown options with Russian labels."""
    monthly = [{"label": month(m).label.capitalize(), "value": month(m).code} for m in months]
    quarterly = [{"label": parse_period(q).label, "value": q}
                 for q in dict.fromkeys(quarter_of(m).code for m in months)]
    options = quarterly + monthly if quarters_first else monthly + quarterly
    if last30:
        options.append({"label": "Последние 30 дней", "value": "last30"})
    return options


def missing_warehouse(alert_id: str) -> dbc.Alert:
    return dbc.Alert(
        [
            html.H4("Хранилище данных не найдено", className="alert-heading"),
            html.P(f"Файл {warehouse_path()} отсутствует."),
            html.P(["Постройте демо-данные командой ", html.Code("make demo"), " или загрузите свои: ",
                    html.Code("python -m data import ФАЙЛ"), "."]),
        ],
        color="warning",
        id=alert_id,
    )


def no_appeals(alert_id: str) -> dbc.Alert:
    return dbc.Alert("В хранилище пока нет обращений: загрузите файл командой python -m data import.",
                     color="info", id=alert_id)
