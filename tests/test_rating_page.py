"""The rating page in headless Chromium: the grid fills, the URL picks the list, names stay text."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from data.importer import run_import
from data.mapping import load_mapping
from data.warehouse import connect, ensure_initialised
from tests.conftest import ARTIFACTS, console_errors, requested_hosts

pytestmark = pytest.mark.browser
HOSTILE = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rating_page")
    path = tmp / "w.duckdb"
    con = connect(path)
    ensure_initialised(con)
    rows = ["source_id,received_at,municipality,channel,category,organisation,answered_at,satisfaction"]
    orgs = ["УК Первая", "УК Вторая", "УК Третья", HOSTILE]
    for i in range(120):
        org = orgs[i % 4]
        answered = f"{1 + i % 20:02d}.10.2025 18:00" if i % 5 else ""
        rows.append(f'{i},{1 + i % 20:02d}.10.2025 09:00,Ярцевский,pos,Отопление,"{org.replace(chr(34), chr(34) * 2)}",'
                    f"{answered},{1 + i % 5}")
    f = tmp / "a.csv"
    f.write_text("\n".join(rows), encoding="utf-8")
    run_import(con, f, load_mapping(None), now=dt.datetime(2025, 11, 1))
    con.close()
    return path


def _rows(driver, timeout: float = 25.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = driver.execute_script(
            "return Array.from(document.querySelectorAll('#rating-grid .ag-row [col-id=\"name\"]'))"
            ".map(e => e.textContent)")
        if names:
            return names
        time.sleep(0.2)
    raise AssertionError("the rating grid stayed empty")


def test_rating_grid_lists_bodies_and_keeps_names_as_text(served_app, browser, db: Path) -> None:
    base = served_app(db)
    browser.get(base + "/rating?period=2025-10&who=organisations")
    names = _rows(browser)
    assert set(names) >= {"УК Первая", "УК Вторая", "УК Третья", HOSTILE}
    assert browser.execute_script("return window.__xss === undefined")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "rating.png"))
    assert console_errors(browser) == []
    assert requested_hosts(browser) <= {base.split("/")[2]}


def test_the_address_chooses_municipalities(served_app, browser, db: Path) -> None:
    browser.get(served_app(db) + "/rating?period=2025-10&who=municipalities")
    assert _rows(browser) == ["Ярцевский"]
    assert "who=municipalities" in browser.current_url
