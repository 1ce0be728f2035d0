"""Страница «не найдено»: Dash pages shows this module for any address no page claims (its own is English)."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

dash.register_page(__name__, path="/404", name="Страница не найдена", title="ЦУР Heatmap — страница не найдена")


def layout(**_query: str) -> html.Div:
    links = [(page["name"], page["relative_path"]) for page in dash.page_registry.values()
             if not page.get("path_template") and page["module"] != __name__]
    return html.Div([
        html.H2("Страница не найдена", id="not-found-title", className="mt-3"),
        html.P("По этому адресу ничего нет: возможно, ссылка устарела или в адресе опечатка.", className="lead"),
        html.P("Откройте один из разделов:"),
        html.Ul([html.Li(dcc.Link(name, href=path)) for name, path in links]),
        dbc.Button("На главную — тепловая карта", href="/", color="primary", id="not-found-home"),
    ], id="not-found", lang="ru")
