"""The page «Решения» in headless Chromium: all three sections draw, the form adds a measure, no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, console_errors
from tests.conftest import wait_js as _wait

pytestmark = pytest.mark.browser


@pytest.fixture
def decisions_db(tmp_path: Path, small_demo: Path) -> Path:
    """A private copy of the small demo: the form writes to it."""
    db = tmp_path / "demo.duckdb"
    db.write_bytes(small_demo.read_bytes())
    return db


def test_decisions_page_shows_workload_roadmap_and_brief(served_app, browser, decisions_db: Path) -> None:
    browser.get(served_app(decisions_db) + "/decisions")
    proposals = _wait(browser, """const l = document.querySelectorAll('#decisions-proposals .list-group-item');
        return l.length ? l.length : null;""")
    assert proposals == 9
    traces = _wait(browser, """const g = document.querySelector('#decisions-workload-chart .js-plotly-plot');
        return g && g.data && g.data.length ? g.data.map(t => t.name) : null;""")
    assert "прогноз" in traces and "просрочено на конец месяца" in traces
    verdicts = _wait(browser, """const rows = document.querySelectorAll('#decisions-roadmap-table tbody tr');
        return rows.length ? Array.from(rows).map(r => r.dataset.verdict) : null;""")
    assert len(verdicts) == 3 and "not_started" in verdicts
    shapes = _wait(browser, """const g = document.querySelector('#decisions-item-chart .js-plotly-plot');
        return g && g.data && g.data.length === 2 && g.layout.shapes ? g.layout.shapes.length : null;""")
    assert shapes == 1
    brief = _wait(browser, """const b = document.getElementById('decisions-brief-text');
        return b && b.textContent.length > 200 ? b.textContent : null;""")
    assert "Сколько обращений" in brief and "Сигналы" in brief
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "decisions.png"))
    assert console_errors(browser) == []


def _click(browser, element_id: str) -> None:
    # a real click can land on a loading overlay of the section above; the button itself is what matters
    browser.execute_script(f"document.getElementById('{element_id}').scrollIntoView({{block: 'center'}});"
                           f"document.getElementById('{element_id}').click()")


def test_form_refuses_a_bad_measure_and_adds_a_good_one(served_app, browser, decisions_db: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(served_app(decisions_db) + "/decisions")
    _wait(browser, "return document.querySelectorAll('#decisions-roadmap-table tbody tr').length === 3")
    _click(browser, "decisions-form-submit")
    error = _wait(browser, "const e = document.getElementById('decisions-form-error'); return e && e.textContent;")
    assert "муниципалитет" in error

    def choose(dropdown_id: str, text: str) -> None:
        # Dash 4's dropdown is a button opening a list of role=option elements


        # a script click: a real one can land on a section's loading overlay while the page settles
        button = browser.find_element(By.ID, dropdown_id)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", button)
        option = _wait(browser, f"""return Array.from(document.querySelectorAll('[role=option]'))
            .find(o => o.textContent.trim() === {text!r}) || null;""")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", option)
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    browser.find_element(By.ID, "decisions-form-title").send_keys("Ремонт уличного освещения")
    choose("decisions-form-municipality", "Ярцевский")
    choose("decisions-form-sector", "Энергетика")
    _wait(browser, "return document.querySelector('#decisions-form-categories') !== null")
    browser.find_element(By.ID, "decisions-form-organisation").send_keys("Администрация Ярцевского округа")
    browser.execute_script("""const i = document.getElementById('decisions-form-start');
        const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
        set.call(i, '2025-09-01'); i.dispatchEvent(new Event('input', {bubbles: true}));""")
    _click(browser, "decisions-form-submit")
    ok = _wait(browser, "const e = document.getElementById('decisions-form-ok'); return e && e.textContent;")
    assert "добавлена" in ok
    _wait(browser, "return document.querySelectorAll('#decisions-roadmap-table tbody tr').length === 4")
    assert console_errors(browser) == []
