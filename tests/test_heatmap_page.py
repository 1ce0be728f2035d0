"""The heat map page in headless Chromium on a small demo: shapes, selectors, URL state, profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS
from tests.conftest import console_errors as _severe
from tests.conftest import wait_js as _wait

pytestmark = pytest.mark.browser


MAP_Z = """const g = document.querySelector('#heatmap-map .js-plotly-plot');
           return g?.data?.[1]?.z ? JSON.stringify(g.data[1].z) : null;"""
TITLE = """return document.querySelector('#heatmap-map .js-plotly-plot')?.layout?.title?.text || null;"""


def test_map_has_every_municipality_and_follows_the_url(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    browser.get(base + "/?period=2025-10&sector=housing&indicator=volume")
    housing = _wait(browser, MAP_Z)
    assert "ЖКХ" in _wait(browser, TITLE) and "октябрь 2025" in _wait(browser, TITLE)
    # the data arrive before the shapes are drawn (on a loaded machine, noticeably): wait for the paths
    shapes = _wait(browser, "const n = document.querySelectorAll('#heatmap-map .js-plotly-plot "
                            ".choroplethlocation').length; return n >= 2 * 27 ? n : null;")
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


def test_unknown_values_in_the_url_fall_back_to_defaults(served_app, browser, small_demo: Path) -> None:
    browser.get(served_app(small_demo) + "/?period=1999-01&sector=<script>&indicator=drop")
    title = _wait(browser, TITLE)
    assert "На 10 тыс. жителей" in title and "<script>" not in title
    assert "indicator=rate_10k" in browser.current_url
    assert _severe(browser) == []


def test_clicking_a_municipality_shows_its_profile(served_app, browser, small_demo: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(served_app(small_demo) + "/?period=2025-10&indicator=volume")
    _wait(browser, MAP_Z)
    # The data arrive before the (real, detailed) shapes are drawn: wait for the paths themselves.
    _wait(browser, "return document.querySelectorAll('#heatmap-map .js-plotly-plot .choroplethlocation').length")
    paths = browser.find_elements(By.CSS_SELECTOR, "#heatmap-map .js-plotly-plot .choroplethlocation")
    ActionChains(browser).move_to_element(paths[-1]).click().perform()
    name = _wait(browser, "const e = document.getElementById('heatmap-profile-name'); return e && e.textContent;")
    assert name
    rows = browser.execute_script("return document.querySelectorAll('#heatmap-profile-table tbody tr').length")
    assert rows >= 3
    assert _severe(browser) == []
