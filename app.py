"""ЦУР Heatmap: the Dash app. Builds the shell and the page container; pages live in pages/."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import threading
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, html

from auth.web import AuthSettings, install
from metrics import source
from pages import callback_cache, pack_button, shell

PROJECT_DIR = Path(__file__).resolve().parent


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def create_app(db_path: str | Path | None = None, auth: AuthSettings | None = None) -> Dash:
    """The dashboard on a warehouse file; with ``auth`` (a users file) everybody signs in first,
    without it the app is the open demo and says so in the navbar."""
    source.configure(db_path)
    settings = auth or AuthSettings(users_file=None)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PROJECT_DIR / "pages"),
        assets_folder=str(PROJECT_DIR / "assets"),
        title="ЦУР Heatmap",
        update_title=None,
        # gzip for plotly.js (assets/vendor/plotly: a 1.4 MB partial bundle) and the callbacks
        compress=True,
        # Bootstrap is served from assets/: situation centres have no internet.
        external_stylesheets=[],
    )
    nav_links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
        # a profile needs an id: it is reached from the map, not the menu; «не найдено» is no section
        if not page.get("path_template") and not page["module"].endswith("not_found_404")
        and (page["path"] != "/regions" or _several_regions())
    ]
    install(app, settings)
    callback_cache.install(app)  # after sign-in: the user's scope is known when it looks up an answer
    shell.register(app)
    pack_button.register(app)
    demo_badge = [] if settings.enabled else [
        dbc.Badge("демо-режим", color="warning", text_color="dark", className="ms-3", id="demo-banner",
                  title="Демо-режим: вход не требуется, данные видны всем")]
    app.layout = html.Div(
        [
            dbc.Navbar(
                dbc.Container([
                    dbc.NavbarBrand("ЦУР Heatmap", href="/"),
                    dbc.Nav(nav_links, navbar=True),
                    *demo_badge,
                    html.Span(id="navbar-status", className="navbar-text small ms-auto"),
                    pack_button.component(),
                    html.Span(id="navbar-user", className="navbar-text small ms-3"),
                ], fluid=True),
                color="dark",
                dark=True,
                className="mb-3",
            ),
            dbc.Container(dash.page_container, fluid=True),
        ],
        lang="ru",
    )
    return app


def _several_regions() -> bool:
    """«Регионы» is in the menu only for a warehouse of more than one region."""
    from metrics.catalog import region_count
    from metrics.source import WarehouseMissing

    try:
        return region_count() > 1
    except WarehouseMissing:
        return False


def warm_up() -> threading.Thread:
    """Compute in the background what the first curator would otherwise wait for: the staffing plan of
    «Решения» (a forecast per sector block, ~0.7 s at 10 M appeals), kept until the data change.
    Runs as the server itself (``system_scope``), outside any request: it answers nobody."""

    def work() -> None:
        from metrics.scope import system_scope
        from metrics.source import WarehouseMissing
        from metrics.workload import staffing_plan

        try:
            with system_scope():
                staffing_plan()
        except WarehouseMissing:
            pass
        except Exception:  # noqa: BLE001 - best effort: the page computes it itself and says what is wrong
            logging.getLogger(__name__).exception("warm-up of the staffing plan failed")

    # not a daemon: a process that ends meanwhile waits for it rather than dying inside DuckDB
    thread = threading.Thread(target=work, name="warm-up")
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description="ЦУР Heatmap — дашборд")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8050")))
    parser.add_argument("--db", default=os.environ.get("CUR_DB"), help="файл хранилища DuckDB")
    parser.add_argument("--engine", default=os.environ.get("CUR_ENGINE"),
                        help="движок: duckdb:ФАЙЛ, chdb:ПАПКА или clickhouse://пользователь:пароль@сервер:8123/база")
    args = parser.parse_args()
    settings = AuthSettings.from_env()
    if not settings.enabled and args.host not in LOOPBACK:
        parser.error("без файла пользователей (CUR_USERS) дашборд открывается только на 127.0.0.1: "
                     "для сети используйте промышленный запуск (README, раздел «Промышленный запуск»)")
    if settings.enabled and not settings.secret_key:
        # one process: a key for this run is enough; sessions end when it stops
        settings.secret_key = secrets.token_urlsafe(32)
    app = create_app(args.engine or args.db, settings)
    warm_up()
    app.run(host=args.host, port=args.port, debug=False)


if __name__ == "__main__":
    main()
