"""Chart export: file names and notes from the builders; PNG and SVG downloads from a real modebar."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import plotly.graph_objects as go
import pytest

from charts import figures
from tests.conftest import console_errors, wait_js


def test_export_filename_keeps_cyrillic_and_drops_what_file_systems_refuse() -> None:
    name = figures.export_filename("Доля ответов в срок", 'ЖКХ: "дворы"/подъезды?', "2025-10")
    assert name == "Доля_ответов_в_срок_ЖКХ_дворы_подъезды_2025-10"
    assert figures.export_filename("", None) == "график"
    assert not set('\\/:*?"<>|') & set(figures.export_filename("a\\b/c:d*e?f\"g<h>i|j\tk"))
    assert len(figures.export_filename("очень длинное имя " * 20)) <= 120


def test_mark_export_puts_filters_and_data_date_under_the_title() -> None:
    fig = go.Figure(figures.mark_export(  # read through go.Figure: Plotly checks the properties set
        figures.empty_figure("Количество обращений — октябрь 2025", "нет данных"), "Количество_обращений_2025-10",
        figures.data_note("октябрь 2025, ЖКХ", dt.datetime(2025, 10, 31, 23, 59))))
    assert fig.layout.meta["export_filename"] == "Количество_обращений_2025-10"
    assert fig.layout.title.subtitle.text == "октябрь 2025, ЖКХ · данные на 31.10.2025 23:59"
    assert fig.layout.margin.t > 48  # room for the subtitle


def _downloaded(folder: Path, suffix: str, timeout: float = 20.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} in {sorted(p.name for p in folder.iterdir())}")


BUTTON = """const b = [...document.querySelectorAll('#heatmap-map .modebar-btn')]
              .find(a => a.getAttribute('data-title') === arguments[0]);
            if (!b) return false; b.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;"""


@pytest.mark.browser
def test_modebar_downloads_png_and_svg_named_after_indicator_filters_and_period(
        served_app, browser, small_demo: Path, tmp_path: Path) -> None:
    base = served_app(small_demo)
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.get(base + "/?period=2025-10&sector=housing&indicator=volume")
    wait_js(browser, "return document.querySelector('#heatmap-map .js-plotly-plot')"
                     "?.layout?.meta?.export_filename?.includes('ЖКХ')")
    expected = "Количество_обращений_ЖКХ_2025-10"
    subtitle = wait_js(browser, "return document.querySelector('#heatmap-map .js-plotly-plot')"
                                "?.layout?.title?.subtitle?.text")
    assert "октябрь 2025, ЖКХ" in subtitle and "данные на 31.10.2025" in subtitle

    assert browser.execute_script(BUTTON, "Сохранить в формате PNG")
    png = _downloaded(tmp_path, ".png")
    assert png.name == expected + ".png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert browser.execute_script(BUTTON, "Сохранить в формате SVG")
    svg = _downloaded(tmp_path, ".svg")
    assert svg.name == expected + ".svg"
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg") and "Количество обращений" in text and "данные на 31.10.2025" in text
    # slide quality: the configured 1600 × 900 layout size
    assert 'width="1600"' in text and 'height="900"' in text
    assert console_errors(browser) == []


def test_pack_request_reads_each_pages_filters_from_its_address() -> None:
    from pages.pack_button import pack_request

    assert pack_request("/", "?period=2025-10&sector=housing&channel=all&indicator=volume") == {
        "period": "2025-10", "sector": "housing", "indicator": "volume"}
    assert pack_request("/rating", "?period=2025-Q3&who=organisations&sector=all") == {"period": "2025-Q3"}
    assert pack_request("/kpi", "?indicator=on_time_share&sector=roads&municipality=7&grain=month") == {
        "indicator": "on_time_share", "sector": "roads", "municipality": "7"}
    assert pack_request("/problems", "?period=2025-10&municipality=all") == {"period": "2025-10"}
    assert pack_request("/municipality/12", "?period=2025-09") == {"municipality": "12", "period": "2025-09"}
    assert pack_request("/wall", "") is None


@pytest.mark.browser
def test_pack_button_downloads_the_pack_for_the_pages_filters(
        served_app, browser, small_demo: Path, tmp_path: Path) -> None:
    base = served_app(small_demo)
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.get(base + "/rating?period=2025-Q3&who=organisations&sector=housing")
    wait_js(browser, "const a = document.getElementById('pack-area'); return a && a.offsetParent !== null")
    browser.find_element("css selector", "#pack-menu").click()  # dbc.DropdownMenu's toggle
    item = wait_js(browser, "return [...document.querySelectorAll('.dropdown-item')]"
                            ".find(e => e.textContent.includes('XLSX') && e.offsetParent !== null) || null")
    item.click()
    xlsx = _downloaded(tmp_path, ".xlsx", timeout=60)
    assert xlsx.name == "Пакет_к_совещанию_ЖКХ_2025-Q3.xlsx"
    from openpyxl import load_workbook

    about = load_workbook(xlsx)["О документе"]
    assert about["B3"].value == "3 квартал 2025" and about["B4"].value == "ЖКХ"
    assert console_errors(browser) == []

    # the page writes its default selection into the address; the pack follows the address
    xlsx.unlink()
    browser.get(base + "/rating")
    wait_js(browser, "return location.search.includes('period=2025-Q3')")
    wait_js(browser, "const a = document.getElementById('pack-area'); return a && a.offsetParent !== null")
    browser.find_element("css selector", "#pack-menu").click()
    wait_js(browser, "return [...document.querySelectorAll('.dropdown-item')]"
                     ".find(e => e.textContent.includes('XLSX') && e.offsetParent !== null) || null").click()
    assert _downloaded(tmp_path, ".xlsx", timeout=60).name == "Пакет_к_совещанию_2025-Q3.xlsx"

    # a profile's pack as slides: the charts are rendered by kaleido inside the server
    from metrics import catalog

    first = catalog.municipalities().iloc[0]
    browser.get(base + f"/municipality/{int(first['municipality_id'])}?period=2025-10")
    wait_js(browser, "const a = document.getElementById('pack-area'); return a && a.offsetParent !== null")
    browser.find_element("css selector", "#pack-menu").click()
    wait_js(browser, "return [...document.querySelectorAll('.dropdown-item')]"
                     ".find(e => e.textContent.includes('PPTX') && e.offsetParent !== null) || null").click()
    pptx = _downloaded(tmp_path, ".pptx", timeout=90)
    assert pptx.name == figures.export_filename("Пакет к совещанию", first["municipality_name"], "2025-10") + ".pptx"
    from pptx import Presentation

    assert len(Presentation(pptx).slides) >= 10

    # a page without a pack has no button
    browser.get(base + "/nowhere")
    wait_js(browser, "return document.getElementById('pack-area')?.style.display === 'none'")
