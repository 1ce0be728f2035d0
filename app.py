"""ЦУР Heatmap: the Dash app. Builds the shell and the page container; pages live in pages/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, html

from metrics import source
from pages import pack_button, shell

PROJECT_DIR = Path(__file__).resolve().parent


def create_app(db_path: str | Path | None = None) -> Dash:
    source.configure(db_path)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PROJECT_DIR / "pages"),
        assets_folder=str(PROJECT_DIR / "assets"),
        title="ЦУР Heatmap",
        update_title=None,
        # gzip for plotly.js and the callbacks: the first load is mostly ~4.6 MB of JavaScript
        compress=True,
        # Bootstrap is served from assets/: situation centres have no internet.
        external_stylesheets=[],
    )
    nav_links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
        if not page.get("path_template")  # a profile needs an id: it is reached from the map, not the menu
    ]
    shell.register(app)
    pack_button.register(app)
    app.layout = html.Div(
        [
            dbc.Navbar(
                dbc.Container([
                    dbc.NavbarBrand("ЦУР Heatmap", href="/"),
                    dbc.Nav(nav_links, navbar=True),
                    html.Span(id="navbar-status", className="navbar-text small ms-auto"),
                    pack_button.component(),
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


def main() -> None:
    parser = argparse.ArgumentParser(description="ЦУР Heatmap — дашборд")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8050")))
    parser.add_argument("--db", default=os.environ.get("CUR_DB"), help="файл хранилища DuckDB")
    args = parser.parse_args()
    app = create_app(args.db)
    app.run(host=args.host, port=args.port, debug=False)


if __name__ == "__main__":
    main()
