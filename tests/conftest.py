"""Shared fixtures: a served app and a headless Chromium (Debian chromium + chromium-driver)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def make_warehouse(tmp_path: Path, csv_rows: list[str]) -> Path:
    """A warehouse with the reference lists and the given appeals (CSV rows under a plain header)."""
    import datetime as dt

    from data.importer import run_import
    from data.mapping import load_mapping
    from data.warehouse import DEMO_MUNICIPALITIES, DEMO_REGION, connect, ensure_initialised, set_region

    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
    set_region(con, DEMO_REGION)  # the demo's units: the demo's region
    f = tmp_path / "appeals.csv"
    f.write_text("\n".join(["source_id,received_at,municipality,channel,category", *csv_rows]), encoding="utf-8")
    run_import(con, f, load_mapping(None), now=dt.datetime(2025, 11, 1))
    con.close()
    return db


def finish_warehouse(con, as_of: str, rows: list[dict] | None = None) -> None:
    """Insert hand-made appeal rows (dicts keyed by column), set the data date, refresh the rollups."""
    import pandas as pd

    from data.rollup import refresh_rollups
    from data.warehouse import set_meta

    if rows:
        con.register("_hand_made_facts", pd.DataFrame(rows))
        con.execute("INSERT INTO appeal BY NAME SELECT * FROM _hand_made_facts")
        con.unregister("_hand_made_facts")
    set_meta(con, "data_as_of", as_of)
    con.execute("BEGIN")
    refresh_rollups(con)
    con.execute("COMMIT")


def wait_js(driver, script: str, timeout: float = 25.0):
    """Poll a JavaScript snippet until it returns something truthy; that value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}")


def console_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_hosts(driver) -> set[str]:
    """Every host the page asked for since the last call (offline means: only our own server)."""
    import json

    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith("http"):
                hosts.add(url.split("/")[2])
    return hosts


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An empty warehouse with the reference lists (import tests)."""
    from data.warehouse import DEMO_MUNICIPALITIES, DEMO_REGION, connect, ensure_initialised, set_region

    path = tmp_path / "w.duckdb"
    con = connect(path)
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
    set_region(con, DEMO_REGION)  # the demo's units: the demo's region
    con.close()
    return path


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """A small demo warehouse (20 000 appeals, May–October 2025) shared by the page tests."""
    from data.demo import build_demo

    db = tmp_path_factory.mktemp("small_demo") / "demo.duckdb"
    build_demo(db, appeals=20_000, months=6, seed=5, end_month="2025-10")
    return db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_app():
    """Start ``create_app(db)`` on a free loopback port in a thread; yields a function db -> base URL."""
    from werkzeug.serving import make_server

    servers = []

    def serve(db: Path, auth=None) -> str:
        import app as app_module

        dash_app = app_module.create_app(db, auth)
        port = _free_port()
        server = make_server("127.0.0.1", port, dash_app.server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.shutdown()


@pytest.fixture
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("нет Debian chromium/chromium-driver (их ставит .ci/run)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
