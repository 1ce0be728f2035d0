"""The app shell's live parts: region name and data date in the navbar, refreshed on every navigation.

Not a page, so Dash does not re-run this module for each app: ``register(app)`` attaches the callback
to the app explicitly (a module-level ``dash.callback`` would reach only the first app created).
"""

from __future__ import annotations

import orjson
from dash import Dash, Input, Output, html
from flask import Response

from auth.session import current_scope, current_user
from charts.figures import MapReference
from metrics import catalog
from metrics.indicators import Indicator
from metrics.kpi import current_target
from metrics.periods import Period
from metrics.query import query
from metrics.source import WarehouseMissing, warehouse_identity

REGION_GEOJSON_PATH = "/region.geojson"


def region_geojson_url() -> str:
    """The region's boundaries as a URL versioned by the warehouse file, so browsers may cache it."""
    inode, mtime = warehouse_identity()
    return f"{REGION_GEOJSON_PATH}?v={inode}-{mtime}"


def region_geojson_response() -> Response:
    try:
        body = orjson.dumps(catalog.region_geojson())
    except WarehouseMissing:
        return Response("Хранилище данных не найдено.", 404, mimetype="text/plain")
    response = Response(body, mimetype="application/json")  # compressed like the callbacks
    response.headers["Cache-Control"] = "private, max-age=86400"  # the URL changes with the data
    return response


def judged_against_reference(spec: Indicator) -> bool:
    """A share with a better side is painted around a reference (a target or the whole's value) on a map."""
    return spec.kind == "ratio" and spec.number_format.endswith("%") and spec.higher_is_better is not None


def map_reference(spec: Indicator, period: Period, filters: dict) -> MapReference | None:
    """What a share on a map is judged against: its region-wide target in force, else the value of
    the whole region (within the same filters and the user's scope); None for other indicators."""
    if not judged_against_reference(spec):
        return None
    target = current_target(spec.code) if not filters.get("channel") else None
    if target is not None:
        return MapReference(target, "цель")
    region = query([spec.code], period=period, filters=filters)
    if region.empty or bool(region[f"{spec.code}_low"].iloc[0]) or region[spec.code].isna().iloc[0]:
        return None
    return MapReference(float(region[spec.code].iloc[0]), "по региону")


def map_allowed() -> frozenset[int] | None:
    """The municipalities the signed-in user may see (None: all); the others say «нет доступа»."""
    return current_scope().municipality_ids


def navbar_status(_pathname: str | None) -> str:
    try:
        return f"{catalog.region_name()} · данные на {catalog.as_of():%d.%m.%Y %H:%M}"
    except WarehouseMissing:
        return "нет хранилища данных"
    except Exception:  # the shell never shows a traceback
        return ""


def navbar_user(_pathname: str | None) -> list:
    """Who is signed in, with a way out; nothing in the open demo."""
    user = current_user()
    if user is None:
        return []
    return [f"{user.login} · {user.role_label} · ", html.A("Выйти", href="/logout", className="link-light",
                                                         id="navbar-logout")]


def register(app: Dash) -> None:
    app.server.add_url_rule(REGION_GEOJSON_PATH, "region_geojson", region_geojson_response)
    app.callback(Output("navbar-status", "children"), Input("_pages_location", "pathname"))(navbar_status)
    app.callback(Output("navbar-user", "children"), Input("_pages_location", "pathname"))(navbar_user)
