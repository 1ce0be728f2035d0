"""Pages open on the last complete month and say when a period is unfinished or its answers are still
coming — exercised as Dash calls them, without a browser, on the small demo (data date 31.10.2025)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from metrics import source
from metrics.periods import INCOMPLETE, UNSETTLED
from tests.test_app import find


def _text(component) -> str:
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


@pytest.fixture(scope="module")
def pages(small_demo: Path, tmp_path_factory):
    """The page modules (Dash registers pages once an app exists), reading the small demo."""
    import app as app_module

    app_module.create_app(tmp_path_factory.mktemp("pages") / "absent.duckdb")
    before = source._configured
    source.configure(small_demo)
    from pages import decisions, heatmap, kpi, municipality, problems

    yield {"heatmap": heatmap, "problems": problems, "municipality": municipality, "kpi": kpi,
           "decisions": decisions}
    source.configure(before)


def test_the_demo_data_date_ends_inside_october(pages) -> None:
    from metrics import catalog

    as_of = catalog.as_of()
    assert as_of.date() == dt.date(2025, 10, 31) and as_of < dt.datetime(2025, 11, 1)


def test_selectors_open_on_the_last_complete_month(pages) -> None:
    heat = find(pages["heatmap"].layout(), "heatmap-period")
    assert heat.value == "2025-09"
    labels = {o["value"]: o["label"] for o in heat.options}
    assert labels["2025-10"] == "Октябрь 2025 — неполный" and labels["2025-09"] == "Сентябрь 2025"
    assert find(pages["problems"].layout(), "problems-period").value == "2025-09"
    assert find(pages["decisions"].layout(), "decisions-brief-period").value == "2025-09"
    # an explicit period in the address still wins
    assert find(pages["heatmap"].layout(period="2025-10"), "heatmap-period").value == "2025-10"


def test_the_current_month_says_it_is_unfinished_and_answers_are_coming(pages) -> None:
    update = pages["heatmap"].update
    fig_map, fig_matrix, note = update("2025-10", "all", "all", "on_time_share")
    title = fig_map["layout"]["title"]["text"]
    assert INCOMPLETE in title and UNSETTLED in title and INCOMPLETE in fig_matrix["layout"]["title"]["text"]
    assert "неполный период" in note and "Ответы ещё поступают" in note
    # a receipt count of the same month: unfinished, but no answers to wait for
    fig_map, _, note = update("2025-10", "all", "all", "volume")
    assert INCOMPLETE in fig_map["layout"]["title"]["text"] and UNSETTLED not in fig_map["layout"]["title"]["text"]
    # September ended 30 days before the data date: complete and settled, no warning
    fig_map, _, note = update("2025-09", "all", "all", "on_time_share")
    assert INCOMPLETE not in fig_map["layout"]["title"]["text"] and UNSETTLED not in fig_map["layout"]["title"]["text"]
    assert "неполный" not in note and "поступают" not in note


def test_problems_and_profile_flag_the_current_month(pages) -> None:
    listing, _ = pages["problems"].update("2025-10", "all")
    text = _text(listing)
    assert INCOMPLETE in text and UNSETTLED in text  # growth of a month still receiving; ratings still coming
    listing, _ = pages["problems"].update("2025-09", "all")
    assert INCOMPLETE not in _text(listing) and UNSETTLED not in _text(listing)
    profile = pages["municipality"].layout("27")
    assert "Сентябрь 2025" in _text(profile) and UNSETTLED not in _text(profile)  # opens on September
    current = pages["municipality"].layout("27", period="2025-10")
    warnings = find(current, "municipality-period-warnings")
    assert _text(warnings).split() == f"{INCOMPLETE} {UNSETTLED}".split()
    tiles = _text(find(current, "municipality-tiles"))
    assert tiles.count(UNSETTLED) == 3  # on time, satisfaction, median: not volume, rate or overdue


def test_kpi_trend_marks_the_unfinished_month_hollow(pages) -> None:
    trend, _, note, _ = pages["kpi"].update("on_time_share", "all", "all", "month")
    from metrics import indicators

    line = next(t for t in trend["data"] if t["name"] == indicators.get("on_time_share").label)
    assert list(line["marker"]["symbol"])[-1] == "circle-open" and list(line["marker"]["symbol"])[-2] == "circle"
    assert UNSETTLED in line["text"][-1] and INCOMPLETE in line["text"][-1]
    assert "Полые точки (1)" in note


@pytest.mark.browser
def test_heatmap_in_a_browser_opens_on_september_and_flags_october(served_app, browser, small_demo: Path) -> None:
    from tests.conftest import ARTIFACTS, console_errors, wait_js

    base = served_app(small_demo)
    browser.get(base + "/")
    title = wait_js(browser, "return document.querySelector('#heatmap-map .js-plotly-plot')?.layout?.title?.text")
    assert "сентябрь 2025" in title and INCOMPLETE not in title
    assert "period=2025-09" in browser.current_url
    browser.get(base + "/?period=2025-10&indicator=on_time_share")
    title = wait_js(browser, "const t = document.querySelector('#heatmap-map .js-plotly-plot')?.layout?.title?.text;"
                             "return t && t.includes('октябрь') ? t : null")
    assert INCOMPLETE in title and UNSETTLED in title
    note = wait_js(browser, "return document.getElementById('heatmap-note')?.textContent")
    assert "неполный период" in note
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "heatmap_unfinished_month.png"))
    assert console_errors(browser) == []
