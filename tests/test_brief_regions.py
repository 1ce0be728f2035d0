"""The monthly brief of one region of a multi-region warehouse (``build_brief(region=)``, ``python -m
report brief --region``, the region choice of «Решения»): every number it states for that region
against hand-written DuckDB queries over the region's appeals, only its units named, its name in the
title, the DOCX and the file name, its data date on its own clock (the pack's too); a one-region
warehouse's brief unchanged. One look in real Chromium."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import duckdb
import pytest
from docx import Document
from openpyxl import load_workbook

from metrics import source
from metrics.scope import Scope
from report import brief as brief_module
from report import content, pack
from report.brief import BriefError, build_brief
from tests.conftest import ARTIFACTS, console_errors, wait_js
from tests.test_report_regions import _slide_texts
from tests.test_wall_regions import _hand, served, three_regions  # noqa: F401  (the 3-region demo)
from tests.test_wall_regions import _unit_names as _names

PERIOD = "2025-09"
REGION_ID = 2
IN_REGION = "FROM appeal a JOIN municipality m ON m.id = a.municipality_id WHERE m.region_id = 2"
SEPTEMBER = "a.received_at >= DATE '2025-09-01' AND a.received_at < DATE '2025-10-01'"


def _int(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _text(brief) -> str:
    return "\n".join([brief.title, brief.subtitle] + [t for s in brief.sections
                                                      for t in [s.title, *s.paragraphs, *s.bullets, *s.notes]])


def _section(brief, title: str):
    return next(s for s in brief.sections if s.title == title)


def _last_receipt(db: Path) -> dt.datetime:
    (last,), = _hand(db, f"SELECT max(a.received_at) {IN_REGION}", [])
    return last


def test_region_brief_numbers_equal_hand_queries_over_its_appeals(served: Path) -> None:  # noqa: F811 - fixture
    brief = build_brief(PERIOD, region=REGION_ID)
    assert brief.title == "Обращения граждан: сентябрь 2025 (Тверская область)"
    # the region's last receipt (kept in Moscow time) on the region's own clock, two hours ahead — as its wall
    stamp = _last_receipt(served) + dt.timedelta(hours=2)
    assert brief.subtitle.startswith(f"Тверская область. Доклад сформирован автоматически по данным на "
                                     f"{stamp:%d.%m.%Y %H:%M}, время МСК+2 (UTC+5).")
    assert brief.file_stem == "doklad_2025-09_Тверская_область"

    # «Сколько обращений»: the month's total, August's, and each sector's
    (total,), = _hand(served, f"SELECT count(*) {IN_REGION} AND {SEPTEMBER}", [])
    (august,), = _hand(served, f"""SELECT count(*) {IN_REGION}
                                  AND a.received_at >= DATE '2025-08-01' AND a.received_at < DATE '2025-09-01'""", [])
    volume = _section(brief, "Сколько обращений")
    said = re.search(r"поступило ([\d\s]+?)\sобращ.*августе\s\(([\d\s]+)\)\.$", volume.paragraphs[0])
    assert said and (_int(said[1]), _int(said[2])) == (total, august), volume.paragraphs[0]
    by_sector = dict(_hand(served, f"""SELECT s.name, count(*) {IN_REGION.replace('WHERE', 'JOIN sector s ON s.id = a.sector_id WHERE')}
                                      AND {SEPTEMBER} GROUP BY 1""", []))
    stated = {b.split(" — ")[0]: _int(re.split(r"\sобращ", b.split(" — ")[1])[0]) for b in volume.bullets}
    assert stated == by_sector and sum(stated.values()) == total

    # «Самые острые проблемы»: the municipalities it names for a problem are region 2's busiest for it
    mine, others = _names(served, REGION_ID), _names(served, 1) | _names(served, 3)
    cells = {(c, m): n for c, m, n in _hand(served, f"""SELECT c.name, m.name, count(*)
        {IN_REGION.replace('WHERE', 'JOIN category c ON c.id = a.category_id WHERE')} AND {SEPTEMBER} GROUP BY 1, 2""",
                                           [])}
    checked = 0
    for bullet in _section(brief, "Самые острые проблемы по блокам").bullets:
        for item in bullet.split(": ", 1)[1].rstrip(".").split("; "):
            if ", больше всего: " not in item:
                continue
            category = item.split(" — ")[0]
            places = re.findall(r"([^,]+?) \((\d+)\)(?:,|$)", item.split(", больше всего: ")[1])
            for name, count in places:
                assert name.strip() in mine, name
                assert cells[(category, name.strip())] == int(count), (category, name)
                checked += 1
            assert int(places[0][1]) == max(n for (c, _m), n in cells.items() if c == category), item
    assert checked >= 20

    # «Отстающие организации»: each named body works in region 2, with its appeals of the month there
    organisations = dict(_hand(served, f"""SELECT o.name, count(*)
        {IN_REGION.replace('WHERE', 'JOIN organisation o ON o.id = a.organisation_id WHERE')} AND {SEPTEMBER}
        GROUP BY 1""", []))
    weakest = _section(brief, "Отстающие организации").bullets
    assert weakest
    for bullet in weakest:
        name = bullet.split(" (")[0]
        assert _int(re.search(r"в группе, (.+?)\sобращ", bullet)[1]) == organisations[name], bullet
        assert "Тверской области" in name or any(n in name for n in mine), name

    # «Без ответа и просрочено» at the end of September (the data date is later: every event counted)
    (open_end, overdue_end), = _hand(served, f"""SELECT
        count(*) FILTER (WHERE a.received_at < DATE '2025-10-01'),
        count(*) FILTER (WHERE a.due_at < DATE '2025-10-01')
        {IN_REGION} AND (a.answered_at IS NULL OR a.answered_at >= DATE '2025-10-01')""", [])
    overdue = _section(brief, "Без ответа и просрочено").paragraphs[0]
    said = re.search(r"без ответа (.+?)\sобращ.*сроком — (.+?)\.$", overdue)
    assert said and (_int(said[1]), _int(said[2])) == (open_end, overdue_end), overdue

    # only region 2's units: no other region's municipality anywhere in the text
    text = _text(brief)
    assert not [n for n in others if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]
    assert "Смоленск" not in text and "Ярослав" not in text


def test_region_brief_docx_command_line_and_refusals(served: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    out = tmp_path / "brief.docx"
    assert brief_module.main(["--db", str(served), "--period", PERIOD, "--region", "Тверская", "--out", str(out)]) == 0
    doc = Document(str(out))
    paragraphs = [p.text for p in doc.paragraphs]
    assert paragraphs[0] == "Обращения граждан: сентябрь 2025 (Тверская область)"
    assert paragraphs[1].startswith("Тверская область. ")
    assert paragraphs[1] == build_brief(PERIOD, region="RU-TVE").subtitle  # the same brief however named
    assert brief_module.main(["--db", str(served), "--period", PERIOD, "--region", "Марс"]) == 2
    assert "неизвестный регион: «Марс». Есть: 1 (Смоленская область), 2 (Тверская область)" in capsys.readouterr().err
    (unit,), = _hand(served, "SELECT id FROM municipality WHERE region_id = 1 ORDER BY id LIMIT 1", [])
    with pytest.raises(BriefError, match="регион «Тверская область» вне вашей зоны доступа"):
        build_brief(PERIOD, Scope.municipalities([unit], label="МО"), region=REGION_ID)


def test_region_pack_states_the_data_date_on_the_regions_clock(served: Path) -> None:  # noqa: F811 - fixture
    stamp = (_last_receipt(served) + dt.timedelta(hours=2)).replace(microsecond=0)
    data, _name = pack.make("xlsx", PERIOD, region=REGION_ID)
    about = {r[0]: r[1] for r in load_workbook(io.BytesIO(data))["О документе"].iter_rows(values_only=True)}
    assert about["Данные на"] == stamp
    built = content.build(PERIOD, region=REGION_ID)
    assert built.note.endswith(f"данные на {stamp:%d.%m.%Y %H:%M}")
    assert built.as_of != built.data_date  # the periods still follow the warehouse's data date
    slides, _name = pack.make("pptx", PERIOD, region=REGION_ID)  # the cover names the region's clock
    assert f"Данные на {stamp:%d.%m.%Y %H:%M}, время МСК+2 (UTC+5)" in _slide_texts(slides)
    # a region on the warehouse's own clock (Moscow): its last receipt as it is, no clock named
    (last1,), = _hand(served, "SELECT max(a.received_at) FROM appeal a JOIN municipality m ON m.id = a.municipality_id "
                              "WHERE m.region_id = 1", [])
    assert f"Данные на {last1:%d.%m.%Y %H:%M}" in _slide_texts(pack.make("pptx", PERIOD, region=1)[0])


def test_decisions_offers_the_region_next_to_the_month(served: Path) -> None:  # noqa: F811 - fixture
    import app as app_module

    app_module.create_app(served)
    from pages import decisions

    dropdown = _by_id(decisions.layout(), "decisions-brief-region")
    assert [o["label"] for o in dropdown.options] == ["Все регионы", "Смоленская область", "Тверская область",
                                                      "Ярославская область"]
    view = decisions.update_brief(PERIOD, 0, str(REGION_ID))
    assert view.children[0].children == "Обращения граждан: сентябрь 2025 (Тверская область)"
    refused = decisions.update_brief(PERIOD, 0, "9")
    assert refused.children == "нет доступного региона с кодом 9"
    sent = decisions.download_brief(1, PERIOD, str(REGION_ID))
    assert sent["filename"] == "doklad_2025-09_Тверская_область.docx"

    # a user who sees region 2 only: no choice shown, and the brief is that region's (its name, its clock)
    from metrics import scope as scope_module

    units = [u for (u,) in _hand(served, "SELECT id FROM municipality WHERE region_id = ?", [REGION_ID])]
    scope_module.install_provider(lambda: Scope.municipalities(units, label="Тверская область"))
    try:
        dropdown = _by_id(decisions.layout(), "decisions-brief-region")
        assert dropdown.options == [] and dropdown.value == str(REGION_ID)
        view = decisions.update_brief(PERIOD, 0, dropdown.value)
        assert view.children[0].children == "Обращения граждан: сентябрь 2025 (Тверская область)"
        assert decisions.update_brief(PERIOD, 0, "1").children == "нет доступного региона с кодом 1"
    finally:
        scope_module.install_provider(None)


def test_one_region_warehouse_brief_is_unchanged(small_demo: Path) -> None:
    """The brief of a warehouse of one region does not change with the region given: the same
    Markdown and DOCX text as without it (and as before regions existed: ``--region`` was added beside)."""
    con = duckdb.connect(str(small_demo), read_only=True)
    try:
        plain = build_brief(PERIOD, con=con)
        for region in (1, "Смоленская область", "RU-SMO"):
            same = build_brief(PERIOD, con=con, region=region)
            assert same.to_markdown() == plain.to_markdown() and same.file_stem == "doklad_2025-09"
        assert plain.title == "Обращения граждан: сентябрь 2025"
        assert plain.subtitle.startswith("Смоленская область. Доклад сформирован автоматически по данным на "
                                         "31.10.2025 23:")
        with pytest.raises(BriefError, match="неизвестный регион: «Тверская»"):
            build_brief(PERIOD, con=con, region="Тверская")
    finally:
        con.close()
    before = source._configured
    source.configure(small_demo)
    try:
        import app as app_module

        app_module.create_app(small_demo)
        from pages import decisions

        assert _by_id(decisions.layout(), "decisions-brief-region").options == []  # no choice shown
    finally:
        source.configure(before)


def _by_id(component, id_: str):
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _by_id(child, id_)
            if found is not None:
                return found
    return None


@pytest.mark.browser
def test_region_brief_on_decisions_in_the_browser(served_app, browser, three_regions: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(served_app(three_regions) + "/decisions")
    wait_js(browser, "const b = document.getElementById('decisions-brief-text'); return b && b.textContent.length > 200")
    # Dash 4's dropdown is a button opening role=option elements; script clicks (a loading overlay may cover it)
    button = browser.find_element(By.ID, "decisions-brief-region")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", button)
    option = wait_js(browser, """return Array.from(document.querySelectorAll('[role=option]'))
        .find(o => o.textContent.trim() === 'Тверская область') || null;""")
    browser.execute_script("arguments[0].click()", option)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    title = wait_js(browser, """const h = document.querySelector('#decisions-brief-text h4');
        return h && h.textContent.includes('Тверская') ? h.textContent : null;""")
    assert title.endswith("(Тверская область)")
    text = browser.find_element(By.ID, "decisions-brief-text").text
    assert "Смоленск" not in text and "Ярослав" not in text
    browser.execute_script("document.getElementById('decisions-brief-text').scrollIntoView({block: 'start'})")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"decisions_brief_region{REGION_ID}.png"))
    assert console_errors(browser) == []
