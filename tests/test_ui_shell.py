"""The shell in Chromium: maps read across a room, a wall that never looks broken, a Russian 404,
no modebar button to an outside service, a navbar on one line. Screenshots go to artifacts/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, console_errors, wait_js

pytestmark = pytest.mark.browser

MAP_TRACES = """const g = document.querySelector('#heatmap-map .js-plotly-plot');
    // the figure as the server sent it (Plotly's own _fullData drops zmid once the range is fixed)
    return g && g._fullData && g.data.length >= 2 ?
        g.data.map(t => ({type: t.type, zmid: t.zmid, zmin: t.zmin, zmax: t.zmax, text: t.text,
                               name: t.name, ticktext: t.colorbar && t.colorbar.ticktext})) : null;"""
# What a Plotly graph on the page may do: its config and the titles of the modebar buttons drawn
GRAPHS = """return [...document.querySelectorAll('.js-plotly-plot')].filter(g => g._context).map(g => ({
    cloud: g._context.showSendToCloud, studio: g._context.showEditInChartStudio,
    removed: g._context.modeBarButtonsToRemove || [], logo: g._context.displaylogo,
    buttons: [...g.querySelectorAll('.modebar-btn')].map(b => b.getAttribute('data-title'))}));"""
OUTSIDE = ("cloud", "chart studio", "plotly", "edit in", "lasso", "box select", "выделен")


def _viewport(driver, width: int, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def test_growth_map_is_centred_on_zero_and_names_every_unit_that_fits(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    _viewport(browser, 1920, 1080)
    browser.get(base + "/?period=2025-09&indicator=growth")
    traces = wait_js(browser, MAP_TRACES)
    fill = traces[1]
    assert fill["type"] == "choropleth" and fill["zmid"] == 0
    assert fill["zmin"] == pytest.approx(-fill["zmax"])
    names = [t for t in traces if t["type"] == "scattergeo"]
    assert names and len(names[0]["text"]) >= 20  # the demo's 27 units: all but the smallest are named
    assert any(t.startswith("Вяземский") for t in names[0]["text"])
    wait_js(browser, "return document.querySelectorAll('#heatmap-map .trace.scattergeo text').length >= 20")
    ARTIFACTS.mkdir(exist_ok=True)
    time.sleep(0.5)
    browser.find_element("id", "heatmap-map").screenshot(str(ARTIFACTS / "heatmap_growth_names.png"))
    # a share against its target: the neutral colour at the target, the target named on the colour bar
    browser.get(base + "/?period=2025-09&indicator=on_time_share")
    traces = wait_js(browser, MAP_TRACES)
    assert traces[1]["zmid"] is not None and any("цель" in t or "по региону" in t for t in traces[1]["ticktext"])
    time.sleep(0.5)
    browser.find_element("id", "heatmap-map").screenshot(str(ARTIFACTS / "heatmap_share_target.png"))
    assert console_errors(browser) == []


def test_no_modebar_button_talks_to_an_outside_service_on_any_page(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    seen = 0
    for path in ("/", "/kpi", "/problems", "/rating", "/decisions", "/municipality/1"):
        browser.get(base + path)
        wait_js(browser, "return (document.getElementById('_pages_content')?.innerText || '').length > 50")
        time.sleep(2.0)  # the page's graphs (a page may have none: /problems is tables)
        for graph in browser.execute_script(GRAPHS):
            seen += 1
            # plotly.js 4 knows only the cloud button (sendDataToCloud); «edit in Chart Studio» is gone
            assert graph["cloud"] is False and graph["studio"] in (False, None) and graph["logo"] is False, (path, graph)
            assert {"lasso2d", "select2d"} <= set(graph["removed"]), (path, graph)
            for title in graph["buttons"]:
                assert not any(word in (title or "").lower() for word in OUTSIDE), (path, title)
    assert seen >= 6


def test_russian_404_without_a_pack_menu(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    _viewport(browser, 1920, 1080)
    browser.get(base + "/no-such-page")
    assert wait_js(browser, "return document.getElementById('not-found-title')?.textContent") == "Страница не найдена"
    body = browser.find_element("tag name", "body").text
    assert "Page not found" not in body and "404" not in body
    assert browser.execute_script("return getComputedStyle(document.getElementById('pack-area')).display") == "none"
    nav = browser.execute_script("return [...document.querySelectorAll('nav .nav-link')].map(a => a.textContent)")
    assert "Страница не найдена" not in nav
    browser.save_screenshot(str(ARTIFACTS / "not_found_404.png"))
    browser.find_element("id", "not-found-home").click()
    wait_js(browser, "return document.querySelector('#heatmap-map .js-plotly-plot') !== null")


def test_navbar_is_one_line_at_1920_and_the_page_fits_1366(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    for width, height in ((1920, 1080), (1366, 768)):
        _viewport(browser, width, height)
        browser.get(base + "/")
        wait_js(browser, "return document.getElementById('navbar-status')?.textContent.length > 0")
        tops = browser.execute_script("""return [...document.querySelectorAll(
            'nav .navbar-brand, nav .nav-link, #navbar-status, #pack-area')].filter(e => e.offsetParent)
            .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2));""")
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / f"navbar_{width}.png"))
        if width == 1920:
            assert max(tops) - min(tops) <= 6, tops  # one line
        assert browser.execute_script("return document.documentElement.scrollWidth <= innerWidth")


CLOCK_VISIBLE = """const c = document.getElementById('wall-clock').getBoundingClientRect();
    const b = document.getElementById('wall-offline');
    const r = b.getBoundingClientRect();
    return {clock: [c.left, c.top, c.right, c.bottom], text: document.getElementById('wall-clock').textContent,
            banner: [r.left, r.top, r.right, r.bottom], bannerText: b.textContent,
            cut: b.scrollWidth > b.clientWidth + 1, shown: getComputedStyle(b).display !== 'none',
            w: innerWidth, h: innerHeight};"""


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_wall_offline_banner_keeps_the_clock_and_old_data_are_flagged(served_app, browser, small_demo: Path,
                                                                      size: tuple[int, int]) -> None:
    base = served_app(small_demo)
    _viewport(browser, *size)
    browser.get(base + "/wall?rotate=600&refresh=2")
    wait_js(browser, "return document.querySelectorAll('#wall-map .choroplethlocation').length > 0")
    # the demo's data end on 31.10.2025: older than a day by any clock that runs this test
    stale = wait_js(browser, "return document.getElementById('wall-stale')?.textContent")
    assert stale.startswith("данные устарели: ")
    # the server goes away: every request of the page fails from now on
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*_dash-*", "*/wall*"]})
    wait_js(browser, "return document.getElementById('wall-root').classList.contains('is-offline')", 40)
    time.sleep(0.7)
    state = browser.execute_script(CLOCK_VISIBLE)
    w, h = state["w"], state["h"]
    left, top, right, bottom = state["clock"]
    assert 0 <= left < right <= w and 0 <= top < bottom <= h, state  # the clock is whole on the screen
    assert len(state["text"]) == 5 and state["text"][2] == ":"
    b_left, b_top, b_right, b_bottom = state["banner"]
    assert state["shown"] and not state["cut"] and 0 <= b_left < b_right <= w and b_bottom <= h, state
    assert state["bannerText"].startswith("нет связи с сервером")
    assert browser.execute_script("return document.getElementById('wall-stale').textContent").startswith(
        "данные устарели")
    browser.save_screenshot(str(ARTIFACTS / f"wall_offline_{size[1]}.png"))
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


def test_wall_stale_age_comes_from_the_address(served_app, browser, small_demo: Path) -> None:
    browser.get(served_app(small_demo) + "/wall?stale=87000")  # ten years: the demo's data are younger
    wait_js(browser, "return document.getElementById('wall-asof-iso')?.textContent.length > 0")
    time.sleep(1.2)  # a couple of the screen's ticks
    assert browser.execute_script("return document.getElementById('wall-stale').textContent") == ""
    assert browser.execute_script("return document.getElementById('wall-root').dataset.staleHours") == "87000"
