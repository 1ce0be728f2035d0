"""The heat map page in headless Chromium on a small demo: shapes, selectors, URL state, profile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from data.demo import build_demo
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("heatmap") / "demo.duckdb"
    build_demo(db, appeals=20_000, months=6, seed=5, end_month="2025-10")
    return db


def _wait(driver, script: str, timeout: float = 25.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}")


MAP_Z = """const g = document.querySelector('#heatmap-map .js-plotly-plot');
           return g?.data?.[1]?.z ? JSON.stringify(g.data[1].z) : null;"""
TITLE = """return document.querySelector('#heatmap-map .js-plotly-plot')?.layout?.title?.text || null;"""


def _severe(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_map_has_every_municipality_and_follows_the_url(served_app, browser, demo_db: Path) -> None:
    base = served_app(demo_db)
    browser.get(base + "/?period=2025-10&sector=housing&indicator=volume")
    housing = _wait(browser, MAP_Z)
    assert "ЖКХ" in _wait(browser, TITLE) and "октябрь 2025" in _wait(browser, TITLE)
    shapes = browser.execute_script(
        "return document.querySelectorAll('#heatmap-map .js-plotly-plot .choroplethlocation').length")
    assert shapes == 2 * 27  # the grey base layer and the data layer
    status = _wait(browser, "return document.getElementById('navbar-status')?.textContent || null")
    assert "Смоленская область" in status and "данные на 31.10.2025" in status
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "heatmap.png"))

    # another sector in the address gives other values; the same address gives the same view
    browser.get(base + "/?period=2025-10&sector=roads&indicator=volume")
    _wait(browser, "return document.querySelector('#heatmap-map .js-plotly-plot')"
                   "?.layout?.title?.text?.includes('Дороги')")
    roads = _wait(browser, MAP_Z)
    assert roads != housing
    browser.get(base + "/?period=2025-10&sector=housing&indicator=volume")
    _wait(browser, "return document.querySelector('#heatmap-map .js-plotly-plot')"
                   "?.layout?.title?.text?.includes('ЖКХ')")
    assert _wait(browser, MAP_Z) == housing
    assert "sector=housing" in browser.current_url and "indicator=volume" in browser.current_url
    assert _severe(browser) == []


def test_unknown_values_in_the_url_fall_back_to_defaults(served_app, browser, demo_db: Path) -> None:
    browser.get(served_app(demo_db) + "/?period=1999-01&sector=<script>&indicator=drop")
    title = _wait(browser, TITLE)
    assert "На 10 тыс. жителей" in title and "<script>" not in title
    assert "indicator=rate_10k" in browser.current_url
    assert _severe(browser) == []


def test_clicking_a_municipality_shows_its_profile(served_app, browser, demo_db: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(served_app(demo_db) + "/?period=2025-10&indicator=volume")
    _wait(browser, MAP_Z)
    paths = browser.find_elements(By.CSS_SELECTOR, "#heatmap-map .js-plotly-plot .choroplethlocation")
    ActionChains(browser).move_to_element(paths[-1]).click().perform()
    name = _wait(browser, "const e = document.getElementById('heatmap-profile-name'); return e && e.textContent;")
    assert name
    rows = browser.execute_script("return document.querySelectorAll('#heatmap-profile-table tbody tr').length")
    assert rows >= 3
    assert _severe(browser) == []
