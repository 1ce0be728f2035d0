"""Leftovers of the user-view pass, each as a user meets it: an МЦУ's monthly brief says no staffing
verdict of the region's staff counts; the roadmap form's dates are Russian text fields whatever the
browser's language, a bad date refused in Russian; a regional body in the rating of a warehouse of
several regions names its region; «мало данных» stays on one line in narrow cells; the map of one
visible unit shows its value instead of a meaningless colour scale."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from docx import Document

from metrics import scope as scope_module
from metrics import source
from metrics.scope import Scope
from report.brief import build_brief
from tests.test_wall_regions import _find, _hand, served, three_regions  # noqa: F401  (the 3-region demo)

MONTH = "2025-10"  # the small demo's last month: the brief carries its staffing section
STAFFING = "Кадры: прогноз нагрузки на три месяца"


def _unit(db: Path, name: str) -> int:
    (unit,), = _hand(db, "SELECT id FROM municipality WHERE name = ?", [name])
    return int(unit)


def _section(brief, title: str):
    return next(s for s in brief.sections if s.title == title)


# --- 1. the brief of an МЦУ --------------------------------------------------------------------------


def test_mcu_brief_gives_no_staffing_verdict_from_the_regions_staff(small_demo: Path) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    try:
        region = _section(build_brief(MONTH, con=con), STAFFING)
        # the region's brief keeps its verdict: reinforcements or «хватает»
        assert region.bullets or "хватает" in " ".join(region.paragraphs)
        unit = _unit(small_demo, "Ярцевский")
        brief = build_brief(MONTH, Scope.municipalities([unit], label="Ярцевский"), con=con)
        staffing = _section(brief, STAFFING)
        text = " ".join(staffing.paragraphs + staffing.bullets)
        assert staffing.bullets == [] and "хватает" not in text
        assert "«Ярцевский»" in text and "региональная" in text and "не делается" in text
        # nor «больше всего: Ярцевский» after each of its own problems; the region's brief keeps the places
        signals = _section(brief, "Сигналы: рост сверх обычного уровня").paragraphs
        assert not any("сигнал:" in p or "сигнала:" in p for p in signals)
        problems = _section(brief, "Самые острые проблемы по блокам").bullets
        assert problems and not any("больше всего" in b for b in problems)
        assert any("больше всего" in b for b in _section(build_brief(MONTH, con=con), "Самые острые проблемы по блокам").bullets)
        two = [unit, _unit(small_demo, "Вяземский")]
        several = " ".join(_section(build_brief(MONTH, Scope.municipalities(two), con=con), STAFFING).paragraphs)
        assert "муниципалитетам «Вяземский», «Ярцевский»" in several
    finally:
        con.close()
    buffer = io.BytesIO()
    brief.to_docx(buffer)
    docx_text = "\n".join(p.text for p in Document(io.BytesIO(buffer.getvalue())).paragraphs)
    assert "хватает" not in docx_text and "оценка кадров для одного муниципалитета не делается" in docx_text


def test_mcu_brief_on_the_decisions_page(small_demo: Path) -> None:
    import app as app_module

    before = source._configured
    app_module.create_app(small_demo)
    from pages import decisions

    unit = _unit(small_demo, "Ярцевский")
    scope_module.install_provider(lambda: Scope.municipalities([unit], label="Ярцевский"))
    try:
        view = decisions.update_brief(MONTH, 0, None)
        text = " ".join(str(getattr(c, "children", "")) for c in _find(view, "decisions-brief-text").children)
        assert "не делается" in text and "хватает" not in text
    finally:
        scope_module.install_provider(None)
        source.configure(before)


# --- 2. the roadmap form's dates ---------------------------------------------------------------------


def test_roadmap_form_dates_are_russian_text_fields_checked_on_the_server(tmp_path: Path, small_demo: Path) -> None:
    import app as app_module

    db = tmp_path / "demo.duckdb"
    db.write_bytes(small_demo.read_bytes())
    before = source._configured
    app_module.create_app(db)
    from pages import decisions

    try:
        form = decisions.layout()
        for field in ("decisions-form-start", "decisions-form-end"):
            control = _find(form, field)
            # not type=date: that field shows mm/dd/yyyy in an English-language browser
            assert control.type == "text" and control.placeholder == "дд.мм.гггг"
        args = ["Ремонт освещения", "Ярцевский", "energy", [], "Администрация Ярцевского округа"]
        message, version = decisions.submit_item(1, *args, "31.02.2025", "", "in_progress", 0)
        assert version is dash_no_update() and message.color == "danger"
        assert "неверная дата начала: «31.02.2025» (нужно ДД.ММ.ГГГГ или ГГГГ-ММ-ДД)" in str(message.children)
        message, version = decisions.submit_item(1, *args, "01.09.2025", "30.08.2025", "in_progress", 0)
        assert "дата окончания раньше даты начала" in str(message.children)
        message, version = decisions.submit_item(1, *args, "01.09.2025", "31.12.2025", "in_progress", 0)
        assert message.color == "success" and version == 1
    finally:
        source.configure(before)
    rows = _hand(db, "SELECT start_date, planned_end_date FROM roadmap_item WHERE title = ?", ["Ремонт освещения"])
    assert [(str(a), str(b)) for a, b in rows] == [("2025-09-01", "2025-12-31")]


def dash_no_update():
    import dash

    return dash.no_update


# --- 3. a regional body in a warehouse of several regions --------------------------------------------


def test_rating_names_the_region_of_a_regional_body(served: Path) -> None:  # noqa: F811 - fixture
    import app as app_module

    app_module.create_app(served)
    from metrics.catalog import organisation_regions
    from metrics.periods import parse_period
    from metrics.rating import rate_organisations
    from pages.rating import grid_rows

    # by hand: the region most of each unhomed organisation's appeals come from
    hand = dict(_hand(served, """
        SELECT o.id, arg_max(r.name, c.n) FROM organisation o
        JOIN (SELECT a.organisation_id, m.region_id, count(*) AS n FROM appeal a
              JOIN municipality m ON m.id = a.municipality_id GROUP BY ALL) c ON c.organisation_id = o.id
        JOIN region r ON r.id = c.region_id WHERE o.municipality_id IS NULL GROUP BY o.id""", []))
    assert organisation_regions() == hand and len(set(hand.values())) == 3
    df = rate_organisations(parse_period("2025-09"))
    regional = df[df["municipality_name"].isna()]
    assert len(regional)
    rows = {r["name"]: r["municipality"] for r in grid_rows(df, "organisations", organisation_regions())}
    for r in regional.itertuples():
        assert rows[r.organisation_name] == hand[int(r.organisation_id)]
    assert {r["municipality"] for r in grid_rows(df, "organisations")} >= {"регион"}  # without the lookup, as before
    # the demo names its regional bodies after their region: «… Тверской области» is in Тверская область
    named = [(r.organisation_name, rows[r.organisation_name]) for r in regional.itertuples()
             if "Тверской области" in r.organisation_name]
    assert named and all(region == "Тверская область" for _, region in named)
    # the page's grid, through its callback
    from pages import rating

    shown = {r["name"]: r["municipality"] for r in rating.update("2025-09", "organisations", "all")[0]}
    assert all(shown[name] == region for name, region in named)


def test_one_region_rating_still_says_region(small_demo: Path) -> None:
    from metrics.catalog import organisation_regions

    before = source._configured
    source.configure(small_demo)
    try:
        assert organisation_regions() == {}
    finally:
        source.configure(before)


# --- 4. «мало данных» on one line ---------------------------------------------------------------------


def test_low_data_cells_do_not_wrap(tmp_path: Path) -> None:
    import app as app_module

    before = source._configured
    app_module.create_app(tmp_path / "absent.duckdb")
    source.configure(before)
    from pages import drill

    row = pd.DataFrame({"resolve_days_median": [12.0], "resolve_days_median_low": [True]}).iloc[0]
    cell = drill._cell("resolve_days_median", type("Row", (), row.to_dict())())
    assert cell.children == "мало данных" and "text-nowrap" in cell.className.split()
    row = type("Row", (), {"resolve_days_median": 12.0, "resolve_days_median_low": False})()
    assert "text-nowrap" not in drill._cell("resolve_days_median", row).className.split()


# --- 5. the map of one visible unit ------------------------------------------------------------------


def test_map_of_one_visible_unit_shows_its_value_not_a_range() -> None:
    from charts import figures
    from metrics import indicators as ind

    spec = ind.get("resolve_days_median")
    square = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": i, "properties": {"name": f"Округ {i}"},
         "geometry": {"type": "Polygon", "coordinates": [[[x + i, y] for x, y in square[0]]]}} for i in (1, 2, 3)]}
    df = pd.DataFrame({"municipality_id": [1, 2, 3], "resolve_days_median": [15.2, 9.0, 20.0],
                       "resolve_days_median_low": [False, False, False]})
    fig = figures.choropleth(df, geojson, spec, "Карта", allowed={1}, names=False)
    values = fig["data"][1]
    assert values["showscale"] is False and values["zmin"] < 15.2 < values["zmax"]
    assert values["zmax"] - values["zmin"] == pytest.approx(2.0)
    notes = [a["text"] for a in fig["layout"].get("annotations", []) if a.get("name") == "single-value"]
    assert notes == [f"{spec.label}: <b>{spec.format(15.2)}</b>"]
    # every unit visible: the colour bar as before, no written value
    fig = figures.choropleth(df, geojson, spec, "Карта", names=False)
    assert fig["data"][1]["showscale"] is True and "zmin" not in fig["data"][1]
    assert not [a for a in fig["layout"].get("annotations", []) if a.get("name") == "single-value"]


# --- 6. the selected unit outlined on the map ----------------------------------------------------------


def test_selected_unit_is_outlined_on_the_map(small_demo: Path) -> None:
    import app as app_module
    from charts import figures

    before = source._configured
    app_module.create_app(small_demo)
    from pages import heatmap

    try:
        unit = _unit(small_demo, "Ярцевский")
        fig_map = heatmap.update("2025-10", "all", "all", "volume", None, str(unit))[0]
        outline = [t for t in fig_map["data"] if t.get("name") == figures.SELECTION_TRACE]
        assert [(t["locations"], t["marker"]["line"]["width"] > 0.8) for t in outline] == [([unit], True)]
        # above the colours: the third trace, the names (scattergeo) over it
        assert fig_map["data"].index(outline[0]) == 2 and fig_map["data"][3]["type"] == "scattergeo"
        # a click elsewhere moves the outline in the browser (test_clicked_unit_is_outlined_in_the_browser)
        # no unit: nothing outlined; an empty map is left alone
        assert [t["locations"] for t in heatmap.update("2025-10", "all", "all", "volume")[0]["data"]
                if t.get("name") == figures.SELECTION_TRACE] == [[]]
    finally:
        source.configure(before)


@pytest.mark.browser
def test_clicked_unit_is_outlined_in_the_browser(served_app, browser, small_demo: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests.conftest import ARTIFACTS, console_errors, wait_js

    browser.set_window_size(1920, 1080)
    browser.get(served_app(small_demo) + "/?period=2025-10&indicator=volume")
    outline = """const g = document.querySelector('#heatmap-map .js-plotly-plot');
        const t = g && g.data && g.data.find(t => t.name === 'выбранный муниципалитет');
        return t ? JSON.stringify(t.locations) : null;"""
    assert wait_js(browser, outline) == "[]"
    wait_js(browser, "return document.querySelectorAll('#heatmap-map .js-plotly-plot .choroplethlocation').length")
    names: list[str] = []
    for at in (-1, 0):
        paths = browser.find_elements(By.CSS_SELECTOR, "#heatmap-map .trace.choropleth")[1].find_elements(
            By.CSS_SELECTOR, ".choroplethlocation")
        ActionChains(browser).move_to_element(paths[at]).click().perform()
        before = names[-1] if names else ""
        name = wait_js(browser, "const e = document.getElementById('heatmap-profile-name'); "
                                f"return e && e.textContent !== {before!r} ? e.textContent : null;")
        names.append(name)
        (unit,), = _hand(small_demo, "SELECT id FROM municipality WHERE name = ?", [name])
        wait_js(browser, outline.replace("return t ? JSON.stringify(t.locations) : null;",
                                         f"return t && JSON.stringify(t.locations) === '[{unit}]';"))
        # one outlined shape, drawn thick over the colours
        width = wait_js(browser, """const l = document.querySelectorAll('#heatmap-map .trace.choropleth');
            const p = l[2] && l[2].querySelector('.choroplethlocation');
            return p ? parseFloat(getComputedStyle(p).strokeWidth) : null;""")
        assert width >= 3
    assert len(set(names)) == 2  # the outline moved to the second unit clicked
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "heatmap_outline.png"))
    assert console_errors(browser) == []


def test_regional_bodies_regions_are_the_same_on_clickhouse(three_regions: Path, tmp_path: Path) -> None:  # noqa: F811
    from data.clickhouse import ChdbConnection, copy_warehouse
    from metrics.catalog import organisation_regions

    target = ChdbConnection(tmp_path / "chdb", create=True)
    try:
        copy_warehouse(three_regions, target)
        duck = duckdb.connect(str(three_regions), read_only=True)
        try:
            expected = organisation_regions(duck)
        finally:
            duck.close()
        assert organisation_regions(target) == expected and len(expected) > 3
    finally:
        target.close()
