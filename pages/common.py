"""Pieces every page shares: the period choices and the message for a missing warehouse."""

from __future__ import annotations

import datetime as dt

import dash_bootstrap_components as dbc
from dash import html

from auth.session import current_scope  # noqa: F401  (pages read the scope here)
from metrics.periods import month, parse_period, quarter_of
from metrics.source import warehouse_path


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
