"""The app builds with its pages and answers on the demo shell, with or without a warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from data.importer import run_import
from data.mapping import load_mapping
from data.warehouse import connect, ensure_initialised


def find(component, component_id: str):
    """The component with that id inside a layout tree, or None."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "children") or hasattr(child, "id"):
            found = find(child, component_id)
            if found is not None:
                return found
    return None


@pytest.fixture(scope="module")
def app_factory():
    import app as app_module

    return app_module.create_app


def test_missing_warehouse_shows_how_to_build_it(app_factory, tmp_path: Path) -> None:
    app = app_factory(tmp_path / "absent.duckdb")
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout").get_json()
    assert "ЦУР Heatmap" in str(layout)
    from pages import home

    rendered = str(home.layout())
    assert "Хранилище данных не найдено" in rendered and "make demo" in rendered


def test_start_page_counts_what_the_warehouse_holds(app_factory, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_initialised(con)
    f = tmp_path / "a.csv"
    f.write_text("source_id,received_at,municipality,channel,category\n"
                 "1,01.10.2025,Ярцевский,pos,Отопление\n2,02.10.2025,Ярцевский,pos,Газификация\n", encoding="utf-8")
    run_import(con, f, load_mapping(None), now=dt.datetime(2025, 11, 1))
    con.close()
    app_factory(db)
    from pages import home

    rendered = str(home.layout())
    assert "Смоленская область" in rendered
    assert "02.10.2025" in rendered
    assert find(home.layout(), "total-appeals").children == "2"


def test_no_stylesheet_comes_from_the_internet(app_factory, tmp_path: Path) -> None:
    app = app_factory(tmp_path / "absent.duckdb")
    html = app.server.test_client().get("/").get_data(as_text=True)
    assert "bootstrap.min.css" in html
    assert "cdn." not in html and "https://" not in html.split("<body>")[0]
