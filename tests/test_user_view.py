"""What a user stumbled on when looking at every page (screenshots at 1920 and 1366 px), now fixed:

- an МЦУ (one municipality) on a region-wide view (map, drill-down, KPI, problems, organisations'
  rating, «Решения») is told that the numbers are only their municipality's, their municipality is
  not compared «в регионе» with itself, and no staffing is proposed from the region's staff counts;
- the map of a region without boundaries says so on the map itself, not only in the note above, and
  a map of several regions says how many of the units it draws;
- «Решения»'s opening view is computed by the server's warm-up, before the first user opens it;
- the unfinished month's bar of the workload chart is drawn (it was 1 ms wide, invisible);
- the grids' headers and the appeals' dates are not cut to «…» at 1366 px;
- a country warehouse's navbar stays one line at 1920 px (the pack menu was pushed to a second).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metrics import source
from metrics.scope import Scope, install_provider
from tests.conftest import wait_js

YARTSEVO = 27  # a municipality of the demo region: Ярцевский
PERIOD = "2025-10"  # the small demo's last month


def _text(component: object) -> str:
    """Every text a rendered layout shows, joined (Dash components, lists, strings)."""
    if component is None or isinstance(component, bool | int | float):
        return ""
    if isinstance(component, str):
        return component
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


@pytest.fixture
def pages(small_demo: Path) -> Iterator[dict]:
    import app as app_module

    before = source._configured
    app_module.create_app(small_demo)
    from pages import decisions, drill, heatmap, kpi, municipality, organisation, problems, rating

    yield {"drill": drill, "heatmap": heatmap, "municipality": municipality, "decisions": decisions, "rating": rating,
           "kpi": kpi, "problems": problems, "organisation": organisation}
    install_provider(None)
    source.configure(before)


def test_a_municipal_user_is_told_what_the_region_wide_views_show(pages: dict) -> None:
    drill, heatmap, municipality = pages["drill"], pages["heatmap"], pages["municipality"]
    # the curator first: the whole region, units compared with it (the check below has teeth)
    assert "в регионе" in _text(municipality.layout(str(YARTSEVO), period=PERIOD))
    assert "в регионе" in _text(heatmap.profile(YARTSEVO, PERIOD, heatmap.ALL, heatmap.ALL, "on_time_share"))
    assert "Вам доступ" not in _text(drill.layout("region", period=PERIOD))
    install_provider(lambda: Scope.municipalities({YARTSEVO}, label="Ярцевский"))
    said = "Вам доступен только муниципалитет «Ярцевский»: все числа здесь — только по нему"
    region_view = drill.layout("region", period=PERIOD)
    assert said in _text(region_view)
    _, _, note = heatmap.update(PERIOD, heatmap.ALL, heatmap.ALL, "volume")
    assert said in note and "Остальные муниципалитеты на карте — серым" in note
    assert "в регионе" not in _text(heatmap.profile(YARTSEVO, PERIOD, heatmap.ALL, heatmap.ALL, "on_time_share"))
    trend, multiples, note, _ = pages["kpi"].update("on_time_share", "all", "all", "month")
    assert note.startswith(said) and "весь регион" not in multiples["layout"]["title"]["subtitle"]["text"]
    assert trend["layout"]["title"]["text"].endswith("Ярцевский")
    assert said in _text(pages["problems"].update(PERIOD, "all")[0])
    # the blocks' staff counts are the region's: no staffing proposals against one municipality's load
    workload = _text(pages["decisions"].update_workload("housing"))
    assert "предложения по кадрам для одного муниципалитета не строятся" in workload and "Усилить" not in workload
    note = pages["rating"].update(PERIOD, "organisations", "all")[3]
    assert note.startswith("Вам доступен только муниципалитет «Ярцевский»: организации оцениваются только по его")
    # their municipality beside «the region» they may see would be itself: no such comparison
    for page in (municipality.layout(str(YARTSEVO), period=PERIOD), drill.layout(str(YARTSEVO), period=PERIOD)):
        assert "в регионе" not in _text(page)
    # an organisation is compared with what the user sees — their municipality — and the tile says so
    from metrics.periods import parse_period
    from metrics.query import query

    busiest = query(["volume"], by=["organisation"], period=parse_period(PERIOD)).sort_values("volume").iloc[-1]
    tiles = _text(pages["organisation"].layout(str(int(busiest["organisation_id"])), period=PERIOD))
    assert "в муниципалитете " in tiles and "в регионе" not in tiles


def test_a_region_without_boundaries_says_so_on_the_map(tmp_path: Path) -> None:
    import app as app_module
    from data.demo import build_demo

    db = tmp_path / "country.duckdb"
    build_demo(db, appeals=6_000, months=2, seed=3, end_month=PERIOD, regions=2)
    before = source._configured
    try:
        app_module.create_app(db)
        from pages import heatmap

        fig_map, matrix, _ = heatmap.update(PERIOD, "all", "all", "volume", 2)
        assert matrix["data"], "the data are in the matrix"
        texts = [a["text"] for a in fig_map["layout"]["annotations"]]
        assert any("нет границ" in t and "данные в матрице ниже" in t for t in texts)
        assert "Тверская область" in fig_map["layout"]["title"]["text"]
        # both regions together: the map draws the 27 Smolensk units only, and the note says so
        fig_map, matrix, note = heatmap.update(PERIOD, "all", "all", "volume")
        total = len(set(matrix["data"][0]["y"]))
        assert total > 27 and f"Границы есть не у всех муниципалитетов: на карте 27 из {total}" in note
    finally:
        source.configure(before)


def test_warm_up_computes_the_opening_view_of_decisions(pages: dict, monkeypatch) -> None:
    import app as app_module
    from metrics import catalog
    from pages.common import default_period

    app_module.warm_up().join()
    decisions = pages["decisions"]

    def computed_again(*_args, **_kwargs):
        raise AssertionError("computed again: the warm-up did not keep it")

    for name in ("build_brief", "roadmap_effects", "item_effect"):
        monkeypatch.setattr(decisions, name, computed_again)
    period = default_period(catalog.months_with_data(), catalog.as_of())
    brief = decisions.update_brief(period, 0)
    assert brief.id == "decisions-brief-text" and "Сколько обращений" in _text(brief)
    table, options, chosen = decisions.update_roadmap(0, None)
    assert table.id == "decisions-roadmap-table" and chosen in [o["value"] for o in options]
    assert len(decisions.update_item_chart(chosen)["data"]) == 2


@pytest.mark.browser
def test_unfinished_month_bar_uncut_grids_and_a_country_navbar(served_app, browser, small_demo: Path,
                                                                tmp_path: Path) -> None:
    browser.set_window_size(1366, 768)
    base = served_app(small_demo)
    browser.get(base + "/decisions")
    # the unfinished month is a trace of its own: its one bar must be as wide as the others
    widths = wait_js(browser, """const g = document.querySelector('#decisions-workload-chart .js-plotly-plot');
        if (!g || !g._fullData) return null;
        const bars = g._fullData.filter(t => t.type === 'bar').map(t => t.name);
        const layers = document.querySelectorAll('#decisions-workload-chart .barlayer .trace');
        if (layers.length !== bars.length) return null;
        return bars.map((name, i) => [name, Math.max(...Array.from(layers[i].querySelectorAll('path'))
            .map(p => p.getBBox().width))]);""")
    widths = dict(widths)
    assert widths["поступило (месяц не закончен)"] > 0.8 * widths["поступило"] > 10

    cut = """return Array.from(document.querySelectorAll(arguments[0]))
        .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent);"""
    # a wrapped header breaks between words, never inside one («Муниципалит-ет»): no more lines than words
    broken = """return Array.from(document.querySelectorAll(arguments[0])).filter(c => {
        const r = document.createRange(); r.selectNodeContents(c);
        const lines = new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top))).size;
        return lines > c.textContent.trim().split(/\\s+/).length; }).map(c => c.textContent);"""
    browser.get(base + "/rating")
    wait_js(browser, "return document.querySelectorAll('#rating-grid .ag-row').length > 0")
    headers = "#rating-grid .ag-header-cell-text"
    assert browser.execute_script(f"return document.querySelectorAll('{headers}').length") >= 8  # shown columns
    assert browser.execute_script(cut, headers) == []
    assert browser.execute_script(broken, headers) == []
    browser.get(f"{base}/drill/{YARTSEVO}?period={PERIOD}")
    wait_js(browser, "return document.querySelectorAll('#drill-grid .ag-row').length > 0")
    assert browser.execute_script(cut, "#drill-grid .ag-header-cell-text") == []
    assert browser.execute_script(broken, "#drill-grid .ag-header-cell-text") == []
    dates = "#drill-grid .ag-cell[col-id='received_at']"
    assert browser.execute_script(f"return document.querySelectorAll(\"{dates}\").length") > 0
    assert browser.execute_script(cut, dates) == []

    # a warehouse of several regions: «Регионы» and a long data line still leave the navbar one line at 1920
    from data.demo import build_demo

    country = tmp_path / "country.duckdb"
    build_demo(country, appeals=4_000, months=2, seed=3, end_month=PERIOD, regions=3)
    browser.set_window_size(1920, 1080)
    browser.get(served_app(country) + "/")
    wait_js(browser, "return document.getElementById('navbar-status')?.textContent.includes('регионов')")
    tops = browser.execute_script("""return [...document.querySelectorAll(
        'nav .navbar-brand, nav .nav-link, #navbar-status, #pack-area')].filter(e => e.offsetParent)
        .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2));""")
    assert len(tops) >= 10 and max(tops) - min(tops) <= 6, tops


@pytest.mark.browser
def test_a_municipal_user_in_the_browser(served_app, browser, small_demo: Path, tmp_path: Path) -> None:
    from auth.web import AuthSettings
    from tests.test_auth import PASSWORD, add_user

    users = tmp_path / "users.toml"
    assert add_user(users, "yartsevo", "municipal", "--municipality", "Ярцевский муниципальный округ",
                    "--db", str(small_demo)).returncode == 0
    settings = AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
    try:
        base = served_app(small_demo, settings)
        browser.set_window_size(1366, 768)
        browser.get(f"{base}/drill/region?period={PERIOD}")
        wait_js(browser, "return document.querySelector('#login-submit')")
        browser.find_element("id", "login").send_keys("yartsevo")
        browser.find_element("id", "password").send_keys(PASSWORD)
        browser.find_element("id", "login-submit").click()
        # the region-wide drill-down says whose numbers these are
        note = wait_js(browser, "return document.getElementById('drill-scope-note')?.innerText")
        assert note.startswith("Вам доступен только муниципалитет") and "а не по всему региону" in note
        # «Состояние данных» is a curator's page: the sign-in guard sends an МЦУ from it to the map,
        # so the menu does not offer it (it read as a link that lands on the wrong page)
        shown = wait_js(browser, """const l = [...document.querySelectorAll('nav .nav-link')];
            return document.getElementById('navbar-no-curator-pages') && l.length
                ? l.filter(e => e.offsetParent).map(e => e.textContent) : null;""")
        assert "Тепловая карта" in shown and "Решения" in shown and "Состояние данных" not in shown
    finally:
        install_provider(None)
        source.configure(None)
