"""The drill-down in headless Chromium: map → unit → category → organisation → appeals grid, each step's
address reopening the same view in a fresh browser, back and forward, and the grid's CSV."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ARTIFACTS, console_errors, wait_js

pytestmark = pytest.mark.browser

# the figure's data arrive before the boundaries (fetched separately): wait for the drawn shapes too
MAP_DRAWN = ("const g = document.querySelector('#heatmap-map .js-plotly-plot'); "
             "return !!(g && g.data && g.data[1]?.z && g.querySelectorAll('.choroplethlocation').length);")
PANEL = "const e = document.getElementById('heatmap-profile-name'); return e && e.textContent;"
TITLE = "const e = document.getElementById('drill-title'); return e && e.textContent;"
CRUMBS = """const e = document.getElementById('drill-crumbs');
            const items = e ? Array.from(e.querySelectorAll('li')).map(li => li.textContent.trim()) : [];
            return items.length === LEVELS ? items.join(' › ') : null;"""
GRID = """const api = window.dash_ag_grid && dash_ag_grid.getApi && dash_ag_grid.getApi('drill-grid');
          if (!api) return null;
          const rows = []; api.forEachNode(n => rows.push(n.data));
          return rows.length ? rows : null;"""
COUNT = "const e = document.getElementById('drill-appeals-count'); return e && e.textContent;"


def click(browser, css: str, timeout: float = 20.0) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        if found:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
            browser.execute_script("arguments[0].click();", found[0])  # a link's own click handler, as a person's
            return
        time.sleep(0.1)
    raise AssertionError(f"{css} did not appear")


def view_of(browser, levels: int) -> tuple:
    """What a step shows, once the step with ``levels`` breadcrumbs is drawn: title, breadcrumbs, appeals count."""
    crumbs = wait_js(browser, CRUMBS.replace("LEVELS", str(levels)))
    return (wait_js(browser, TITLE), crumbs, wait_js(browser, COUNT))


def shot(browser, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def fresh(url: str):
    """A new browser (nothing in its history or memory) opening ``url``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.conftest import CHROMEDRIVER, CHROMIUM

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1600,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.get(url)
    return driver


def test_click_path_from_the_map_to_the_appeals(served_app, browser, small_demo: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    base = served_app(small_demo)
    browser.set_window_size(1600, 1000)
    browser.get(base + "/?period=2025-10&sector=housing&channel=all&indicator=volume")
    wait_js(browser, MAP_DRAWN)

    # 1. a unit on the map: its panel, within the sector filter; the address keeps the unit
    paths = browser.find_elements(By.CSS_SELECTOR, "#heatmap-map .js-plotly-plot .choroplethlocation")
    ActionChains(browser).move_to_element(paths[-1]).click().perform()
    unit = wait_js(browser, PANEL)
    wait_js(browser, "return location.search.includes('municipality=')")
    step1 = browser.current_url
    assert parse_qs(urlsplit(step1).query)["sector"] == ["housing"]
    panel = browser.find_element(By.ID, "heatmap-profile-table").text
    sectors_seen = wait_js(browser, "return Array.from(document.querySelectorAll('.heatmap-category-link'))"
                                    ".map(a => a.getAttribute('href')).join(' ');")
    assert "sector=housing" in sectors_seen and panel
    profile = browser.find_element(By.ID, "heatmap-profile-link").get_attribute("href")
    assert "sector=housing" in profile and "indicator=volume" in profile
    shot(browser, "drill_1_map_unit")
    # back: the map without the unit (the address was written by the page itself); forward: the unit again
    browser.back()
    wait_js(browser, "return !location.search.includes('municipality=') && "
                     "!document.getElementById('heatmap-profile-name')")
    browser.forward()
    assert wait_js(browser, PANEL) == unit and "municipality=" in browser.current_url

    # 2. a category of the unit: its trend, organisations and appeals
    click(browser, ".heatmap-category-link")
    step2_view = view_of(browser, 3)
    assert unit in step2_view[1] and step2_view[0].startswith(unit)
    wait_js(browser, "return document.querySelector('#drill-trend .js-plotly-plot')?.data?.length > 0")
    assert browser.find_elements(By.ID, "drill-organisations")
    step2 = browser.current_url
    assert "/drill/" in step2 and "category=" in step2
    shot(browser, "drill_2_category")

    # 3. an organisation responsible: its appeals of that category in that unit
    click(browser, ".drill-organisation-link")
    wait_js(browser, "return location.search.includes('organisation=')")
    step3_view = view_of(browser, 4)  # «Регион › Муниципалитет › Категория › Организация»
    assert step3_view[1].startswith(step2_view[1] + " › ")
    step3 = browser.current_url
    rows = wait_js(browser, GRID)
    assert rows and all(set(r) >= {"received_at", "organisation_name", "status_name", "topic"} for r in rows)
    assert not any(k in r for r in rows for k in ("lat", "lon", "source_id"))
    browser.execute_script("window.scrollTo({top: document.getElementById('drill-appeals').offsetTop - 10, "
                           "behavior: 'instant'});")
    shot(browser, "drill_4_appeals_grid")
    organisation = rows[0]["organisation_name"]
    assert {r["organisation_name"] for r in rows} == {organisation}
    assert organisation in step3_view[1]
    shot(browser, "drill_3_organisation_appeals")

    # 4. the CSV of exactly this grid
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    click(browser, "#drill-csv-button")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(downloads.glob("*.csv")):
        time.sleep(0.2)
    files = list(downloads.glob("*.csv"))
    assert files, "the CSV was not downloaded"
    table = list(csv.reader(io.StringIO(files[0].read_text(encoding="utf-8-sig")), delimiter=";"))
    assert table[0][0] == "Поступило" and "Суть обращения" in table[0]
    assert len(table) - 1 == len(rows)

    def shown(value: object) -> str:  # the grid's own text of an ISO time (its value formatter)
        return "" if not value else f"{value[8:10]}.{value[5:7]}.{value[0:4]} {value[11:16]}"
    fields = ["received_at", "topic", "organisation_name", "status_name", "closure_name", "channel_name", "due_at",
              "answered_at", "municipality_name", "sector_name", "category_name"]
    grid_text = [[shown(r[f]) if f in ("received_at", "due_at", "answered_at") else (r[f] or "") for f in fields]
                 for r in rows]
    assert table[1:] == grid_text

    # 5. back and forward walk the steps
    browser.back()
    assert wait_js(browser, "return !location.search.includes('organisation=') && location.search.includes('category=')")
    assert view_of(browser, 3) == step2_view
    browser.back()
    wait_js(browser, "return location.pathname === '/'")
    assert wait_js(browser, PANEL) == unit
    browser.forward()
    wait_js(browser, "return location.pathname.startsWith('/drill/')")
    assert view_of(browser, 3) == step2_view
    assert console_errors(browser) == []

    # 6. each step's address opens the same view in a fresh browser
    for url, expected, levels in ((step2, step2_view, 3), (step3, step3_view, 4)):
        other = fresh(url)
        try:
            assert view_of(other, levels) == expected, url
        finally:
            other.quit()
    other = fresh(step1)
    try:
        wait_js(other, MAP_DRAWN)
        assert wait_js(other, PANEL) == unit
        again = wait_js(other, "return document.getElementById('heatmap-profile-table')?.textContent")
        assert browser_panel_text(again) == browser_panel_text(panel)
    finally:
        other.quit()


def browser_panel_text(text: str) -> str:
    return "".join(text.split())


def test_a_matrix_cell_opens_that_category_in_that_unit(served_app, browser, small_demo: Path) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.by import By

    base = served_app(small_demo)
    browser.get(base + "/?period=2025-10&sector=housing&channel=all&indicator=volume")
    wait_js(browser, "return document.querySelector('#heatmap-matrix .js-plotly-plot')?.data?.[0]?.z")
    target = browser.execute_script("""
        const t = document.querySelector('#heatmap-matrix .js-plotly-plot').data[0];
        return [t.y[t.y.length - 1], t.x[0]];""")
    plot = browser.find_element(By.CSS_SELECTOR, "#heatmap-matrix .nsewdrag")
    browser.execute_script("window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 10, "
                           "behavior: 'instant'});", plot)  # Bootstrap scrolls smoothly: no waiting
    rows, columns = browser.execute_script(
        "const t = document.querySelector('#heatmap-matrix .js-plotly-plot').data[0]; return [t.y.length, t.x.length];")
    # the centre of the top row's (the largest unit's) first cell, in viewport pixels
    x, y = browser.execute_script("""const r = arguments[0].getBoundingClientRect();
        return [r.left + r.width / arguments[2] / 2, r.top + r.height / arguments[1] / 2];""", plot, rows, columns)
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()
    wait_js(browser, "return location.pathname.startsWith('/drill/')")
    title = wait_js(browser, TITLE)
    assert title == f"{target[0]} · {target[1]}"
    from metrics import catalog

    ids = {name: i for i, name in catalog.names("municipality").items()}
    assert urlsplit(browser.current_url).path == f"/drill/{ids[target[0]]}"
    assert "sector=housing" in browser.current_url
    assert console_errors(browser) == []


def test_problem_rows_open_the_drill_down(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    browser.get(base + "/problems?period=2025-10&municipality=all")
    wait_js(browser, "return document.querySelector('.problems-drill-link')")
    first = browser.execute_script("return document.querySelector('#problems-sectors').textContent")
    # another period chosen on the page (the page writes the address), then back: the list of the address again
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "problems-period").click()
    option = wait_js(browser, "return Array.from(document.querySelectorAll('[role=option]'))"
                              ".find(o => o.textContent === 'Сентябрь 2025') || null;")
    browser.execute_script("arguments[0].click()", option)
    wait_js(browser, "return location.search.includes('period=2025-09')")
    wait_js(browser, f"return document.querySelector('#problems-sectors')?.textContent !== {first!r};")
    browser.back()
    wait_js(browser, "return location.search.includes('period=2025-10')")
    wait_js(browser, f"return document.querySelector('#problems-sectors')?.textContent === {first!r};")
    browser.forward()
    wait_js(browser, f"return location.search.includes('period=2025-09') && "
                     f"document.querySelector('#problems-sectors')?.textContent !== {first!r};")
    browser.back()
    wait_js(browser, f"return document.querySelector('#problems-sectors')?.textContent === {first!r};")
    click(browser, ".problems-drill-link")
    wait_js(browser, "return location.pathname === '/drill/region'")
    title = wait_js(browser, TITLE)
    assert title and wait_js(browser, "return document.getElementById('drill-municipalities') !== null")
    wait_js(browser, GRID)
    shot(browser, "drill_region_category")
    # the organisation page from the drill-down
    click(browser, "#drill-organisations a[href^='/organisation/']")
    name = wait_js(browser, "const e = document.getElementById('organisation-name'); return e && e.textContent;")
    assert name and wait_js(browser, "return document.getElementById('organisation-place')?.textContent")
    shot(browser, "organisation_page")
    assert console_errors(browser) == []
