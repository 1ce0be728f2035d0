"""The app shell's live parts: region name and data date in the navbar, refreshed on every navigation."""

from __future__ import annotations

from dash import Input, Output, callback

from metrics import catalog
from metrics.source import WarehouseMissing


@callback(Output("navbar-status", "children"), Input("_pages_location", "pathname"))
def navbar_status(_pathname: str | None) -> str:
    try:
        return f"{catalog.region_name()} · данные на {catalog.as_of():%d.%m.%Y %H:%M}"
    except WarehouseMissing:
        return "нет хранилища данных"
    except Exception:  # the shell never shows a traceback
        return ""
