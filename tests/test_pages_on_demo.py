"""The priority problems and KPI pages in headless Chromium on a small demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, console_errors
from tests.conftest import wait_js as _wait

pytestmark = pytest.mark.browser


def test_every_sector_lists_at_least_three_problems(served_app, browser, small_demo: Path) -> None:
    browser.get(served_app(small_demo) + "/problems?period=2025-10")
    counts = _wait(browser, """const cards = document.querySelectorAll('#problems-sectors .card');
        return cards.length ? Array.from(cards).map(c => c.querySelectorAll('tbody tr').length) : null;""")
    assert len(counts) == 9 and min(counts) >= 3
    _wait(browser, "return document.getElementById('problems-signals').textContent.length > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "problems.png"))
    assert console_errors(browser) == []


def test_one_municipality_from_the_address(served_app, browser, small_demo: Path) -> None:
    browser.get(served_app(small_demo) + "/problems?period=2025-10&municipality=27")
    rows = _wait(browser, """const t = document.querySelector('#problems-municipal tbody');
        return t ? t.querySelectorAll('tr').length : null;""")
    assert rows >= 3
    assert "municipality=27" in browser.current_url
    assert console_errors(browser) == []


def test_kpi_trend_with_target_and_small_multiples(served_app, browser, small_demo: Path) -> None:
    browser.get(served_app(small_demo) + "/kpi?indicator=satisfaction_share&grain=month")
    names = _wait(browser, """const g = document.querySelector('#kpi-trend .js-plotly-plot');
        return g && g.data && g.data.length ? g.data.map(t => t.name) : null;""")
    assert "цель" in names and "год назад" in names
    panels = _wait(browser, """const g = document.querySelector('#kpi-multiples .js-plotly-plot');
        return g && g.layout && g.layout.annotations ? g.layout.annotations.length : null;""")
    assert panels == 9
    browser.save_screenshot(str(ARTIFACTS / "kpi.png"))
    assert "indicator=satisfaction_share" in browser.current_url
    assert console_errors(browser) == []


def test_municipality_profile_has_everything_about_one_unit(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    browser.get(base + "/municipality/27?period=2025-10")
    name = _wait(browser, "const e = document.getElementById('municipality-name'); return e && e.textContent;")
    assert name == "Ярцевский"
    tiles = browser.execute_script("return document.querySelectorAll('#municipality-tiles .card').length")
    assert tiles == 6
    assert _wait(browser, "return document.querySelectorAll('tbody tr').length") >= 3
    browser.save_screenshot(str(ARTIFACTS / "municipality.png"))
    menu = browser.execute_script("return Array.from(document.querySelectorAll('nav a')).map(a => a.href)")
    assert not any("<" in href or "%3C" in href for href in menu)
    assert console_errors(browser) == []
    browser.get(base + "/municipality/9999")
    _wait(browser, "return document.getElementById('municipality-unknown')")
