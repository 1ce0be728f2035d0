"""The app builds with its pages and answers on the demo shell, with or without a warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_warehouse


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
    db = make_warehouse(tmp_path, ["1,01.10.2025,Ярцевский,pos,Отопление", "2,02.10.2025,Ярцевский,pos,Газификация"])
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
