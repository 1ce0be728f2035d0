"""The rating page: its method text and rows (plain functions), and in headless Chromium: the grid
fills, the URL picks the list, names stay text."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest

from data.importer import run_import
from data.mapping import load_mapping
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics import source
from tests.conftest import ARTIFACTS, console_errors, requested_hosts

HOSTILE = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rating_page")
    path = tmp / "w.duckdb"
    con = connect(path)
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
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


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page module (Dash registers pages only once an app exists)."""
    import app as app_module

    app_module.create_app(tmp_path_factory.mktemp("rating_page_app") / "absent.duckdb")
    from pages import rating as module

    return module


@pytest.fixture
def warehouse_at():
    before = source._configured
    yield source.configure
    source.configure(before)


def _text(component) -> str:
    if isinstance(component, str):
        return component
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None) or "")


def test_method_text_publishes_the_scales_weights_and_rules(page) -> None:
    from metrics.rating import load_config

    text = _text(page.method_text(load_config())).replace("\u00a0", " ")
    # the scales of config/rating.toml in Russian number formats
    for part in ("80,0 % и ниже", "72,0 ч и больше", "8,0 ч и меньше", "20,0 % и больше", "60,0 % и выше"):
        assert part in text, part
    # a worked example anyone can repeat with a calculator
    assert "90 % ответов в срок при шкале 70–100 % дают 100 × (90 − 70) / (100 − 70) = 66,7 балла" in text
    assert "доля ответов — 25,0 %" in text and "«нет данных»" in text
    assert "лучшее возможное место = 1 + число участников" in text
    assert "единственная своего вида, она сравнивается со всеми организациями" in text
    assert "20 обращений" in text
    assert not re.search(r"\d\.\d", text)  # «99,5», never «99.5»


def test_rows_show_ranges_intervals_and_no_data_in_russian(page, db: Path) -> None:
    import duckdb

    from metrics.periods import parse_period
    from metrics.rating import rate_organisations

    con = duckdb.connect(str(db), read_only=True)
    try:
        df = rate_organisations(parse_period("2025-10"), con=con, min_volume=20)
    finally:
        con.close()
    rows = {r["name"]: r for r in page.grid_rows(df, "organisations")}
    first = rows["УК Первая"]
    # 30 appeals each: wide intervals, so the place is a range in the group of four
    assert first["place_text"].endswith(" из 4") and "–" in first["place_text"]
    assert "," in first["composite_text"] and "." not in first["composite_text"]
    low, high = first["interval"].split("–")
    assert "," in low and "," in high
    # the export has no rework, merits or repeat fields: «полнота» has no data, said on the row
    assert first["no_data"] == "полнота"
    assert first["completeness"] is None and first["completeness_text"] == ""
    assert first["satisfaction_share_text"].endswith("\u00a0%") and "," in first["satisfaction_share_text"]
    assert first["change"] == "—"  # no previous period
    assert first["volume_text"] == "30"


def test_note_says_which_kind_is_compared_with_all(page, small_demo: Path, warehouse_at) -> None:
    warehouse_at(small_demo)
    rows, _, _, note, _ = page.update("2025-Q3", "organisations", "all")
    # the kinds alone in their group are named in one sentence, not one repeated sentence per kind
    assert "«региональный оператор ТКО»" in note and note.count("одной организацией") == 1
    assert "со всеми организациями" in note
    assert "только там, где оно больше погрешности" in note
    alone = [r for r in rows if r["group"].startswith("все организации")]
    assert alone and all(r["place_text"].endswith(f" из {sum(1 for x in rows if x['place'] is not None)}")
                         for r in alone)
    changes = {r["change"] for r in rows}
    assert "в пределах точности" in changes and not any(c.startswith(("▲ 0", "▼ 0")) for c in changes)
    assert "Прошлый период взят в том же возрасте" not in note  # a settled quarter
    rows, _, _, note, _ = page.update("2025-10", "organisations", "all")
    assert "Ответы ещё поступают." in note and "Прошлый период взят в том же возрасте — по состоянию на " in note
    big = max(rows, key=lambda r: r["volume"])
    assert "\u00a0" in big["volume_text"] or big["volume"] < 1000  # «1 234»


@pytest.mark.browser
def test_rating_grid_lists_bodies_and_keeps_names_as_text(served_app, browser, db: Path) -> None:
    base = served_app(db)
    browser.get(base + "/rating?period=2025-10&who=organisations")
    names = _rows(browser)
    assert set(names) >= {"УК Первая", "УК Вторая", "УК Третья", HOSTILE}
    assert browser.execute_script("return window.__xss === undefined")
    # numbers in Russian formats: the value formatter shows the server's text, sorting uses the number
    cells = browser.execute_script(
        "return ['composite', 'place', 'satisfaction_share'].map(c => Array.from(document.querySelectorAll("
        "'#rating-grid .ag-row [col-id=\"' + c + '\"]')).map(e => e.textContent))")
    composite, places, satisfaction = cells
    assert composite and all("," in v and "." not in v for v in composite if v), composite
    assert all(" из 4" in v for v in places), places
    assert all(v.endswith("%") and "," in v for v in satisfaction if v), satisfaction
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "rating.png"))
    method = browser.find_element("id", "rating-method")
    assert "72,0" in method.text
    browser.execute_script("arguments[0].scrollIntoView()", method)
    browser.save_screenshot(str(ARTIFACTS / "rating_method.png"))
    assert console_errors(browser) == []
    assert requested_hosts(browser) <= {base.split("/")[2]}


@pytest.mark.browser
def test_the_address_chooses_municipalities(served_app, browser, db: Path) -> None:
    browser.get(served_app(db) + "/rating?period=2025-10&who=municipalities")
    assert _rows(browser) == ["Ярцевский"]
    assert "who=municipalities" in browser.current_url
