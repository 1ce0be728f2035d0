"""The app shell's live parts: region name and data date in the navbar, refreshed on every navigation.

Not a page, so Dash does not re-run this module for each app: ``register(app)`` attaches the callback
to the app explicitly (a module-level ``dash.callback`` would reach only the first app created).
"""

from __future__ import annotations

from dash import Dash, Input, Output

from metrics import catalog
from metrics.source import WarehouseMissing


def navbar_status(_pathname: str | None) -> str:
    try:
        return f"{catalog.region_name()} · данные на {catalog.as_of():%d.%m.%Y %H:%M}"
    except WarehouseMissing:
        return "нет хранилища данных"
    except Exception:  # the shell never shows a traceback
        return ""


def register(app: Dash) -> None:
    app.callback(Output("navbar-status", "children"), Input("_pages_location", "pathname"))(navbar_status)
