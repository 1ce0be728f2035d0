"""The app in a real headless Chromium: it draws, logs no console error and asks nothing from outside."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, console_errors, make_warehouse, requested_hosts

pytestmark = pytest.mark.browser


def _wait_for(driver, css: str, timeout: float = 20.0):
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"{css} did not appear; page text: {driver.find_element(By.TAG_NAME, 'body').text[:500]}")


def test_start_page_in_chromium_has_no_console_errors_and_stays_offline(
    served_app, browser, tmp_path: Path
) -> None:
    base = served_app(make_warehouse(tmp_path, ["1,01.10.2025,Ярцевский,pos,Отопление"]))
    browser.get(base + "/status")
    total = _wait_for(browser, "#total-appeals")
    assert total.text == "1"
    _wait_for(browser, "#sector-table")
    # Bootstrap from assets/ is applied: the navbar is dark
    navbar_bg = browser.execute_script(
        "return getComputedStyle(document.querySelector('nav.navbar')).backgroundColor")
    assert navbar_bg not in ("rgba(0, 0, 0, 0)", "transparent")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "start_page.png"))

    errors = console_errors(browser)
    assert errors == []
    assert requested_hosts(browser) <= {base.split("/")[2]}


def test_missing_warehouse_page_explains_what_to_do(served_app, browser, tmp_path: Path) -> None:
    browser.get(served_app(tmp_path / "absent.duckdb") + "/")
    alert = _wait_for(browser, "#warehouse-missing")
    assert "make demo" in alert.text
    assert console_errors(browser) == []
