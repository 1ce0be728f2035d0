"""The situation-centre wall of one region of a multi-region warehouse (``/wall?region=<id>``): every
number for that region (against hand-written DuckDB queries over its appeals), its units only, its
name, time zone and clock; the choice of regions without the parameter; an unknown region's message;
a wall token bound to one municipality cannot see another region. One check in real Chromium."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from metrics import source
from metrics.scope import REGION, Scope
from tests.conftest import ARTIFACTS, console_errors, wait_js
from tests.test_wall import _text

REGION_ID = 2
ZONE = "Asia/Yekaterinburg"  # region 2 gets its own clock: two hours ahead of the warehouse's Moscow time


@pytest.fixture(scope="module")
def three_regions(tmp_path_factory) -> Path:
    """A 3-region demo (Смоленская, Тверская, Ярославская области); region 2 on Yekaterinburg time."""
    from data.demo import build_demo

    db = tmp_path_factory.mktemp("wall_regions") / "demo.duckdb"
    build_demo(db, appeals=30_000, months=6, seed=5, end_month="2025-10", regions=3)
    con = duckdb.connect(str(db))
    con.execute("UPDATE region SET timezone = ? WHERE id = ?", [ZONE, REGION_ID])
    con.close()
    return db


@pytest.fixture(scope="module")
def wall(tmp_path_factory):
    import app as app_module

    app_module.create_app(tmp_path_factory.mktemp("wall_regions_app") / "absent.duckdb")
    from pages import wall as module

    return module


@pytest.fixture
def served(three_regions: Path):
    before = source._configured
    source.configure(three_regions)
    yield three_regions
    source.configure(before)


def _hand(db: Path, sql: str, params: list) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _unit_names(db: Path, region_id: int) -> set[str]:
    return {r[0] for r in _hand(db, "SELECT name FROM municipality WHERE region_id = ?", [region_id])}


def _find(component, id_: str):
    """The component with ``id_`` in a Dash tree."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


def test_region_two_numbers_equal_hand_queries_over_its_appeals(wall, served: Path) -> None:
    from dash import html

    from metrics import catalog
    from metrics.periods import last_complete_days, last_complete_month

    out = wall.render_all(REGION, str(REGION_ID), {})
    header, stamp, note = out[0], out[1], out[2]
    assert header == "Тверская область · время МСК+2 (UTC+5)"
    # the region's last receipt (kept in Moscow time) on the region's own clock, two hours ahead
    (last,), = _hand(served, """SELECT max(received_at) FROM appeal a JOIN municipality m ON m.id = a.municipality_id
                                WHERE m.region_id = ?""", [REGION_ID])
    assert stamp == f"данные на {last + dt.timedelta(hours=2):%d.%m.%Y %H:%M}"
    assert out[-1] == ZONE and out[10] == f"{last:%Y-%m-%dT%H:%M:%S}+03:00"
    assert note == ""
    as_of = catalog.as_of()
    week = last_complete_days(7, as_of)
    (total,), = _hand(served, """SELECT count(*) FROM appeal a JOIN municipality m ON m.id = a.municipality_id
                                 WHERE m.region_id = ? AND a.received_at >= ? AND a.received_at < ?""",
                      [REGION_ID, week.start, week.end])
    side = out[5]
    assert _text(_find(side, "wall-map-total")) == f"{total:,}".replace(",", "\u00a0")
    mine, others = _unit_names(served, REGION_ID), _unit_names(served, 1) | _unit_names(served, 3)
    listed = [_text(li.children[0]) for li in _find_all(side, html.Li)]
    assert len(listed) == 5 and set(listed) <= mine
    # no boundaries for region 2 in the demo: its units as bars, never another region's
    assert out[4]["data"][0]["type"] == "bar" and set(out[4]["data"][0]["y"]) <= mine
    assert "Границ муниципалитетов нет" in _text(side)

    # the priority cards: each category's appeals in the last complete month, region 2 only
    month = last_complete_month(as_of)
    counts = dict(_hand(served, """SELECT c.name, count(*) FROM appeal a JOIN municipality m ON m.id = a.municipality_id
                                   JOIN category c ON c.id = a.category_id
                                   WHERE m.region_id = ? AND a.received_at >= ? AND a.received_at < ? GROUP BY 1""",
                        [REGION_ID, month.start, month.end]))
    checked = 0
    for li in _find_all(out[8], html.Li):
        name, volume = _text(li.children[1]), _text(li.children[2])
        assert volume == f"{counts[name]:,}".replace(",", "\u00a0"), name
        checked += 1
    assert checked >= 6
    # every municipality named on any panel is region 2's
    named = {_text(td) for panel in (out[7], out[11]) for td in _find_all(panel, html.Td)
             if "wall-name" in (getattr(td, "className", "") or "")}
    assert not named & others
    for row in _find_all(out[9], html.Div):
        if getattr(row, "className", "") == "wall-org-meta":
            assert "Смоленск" not in _text(row) and "Ярослав" not in _text(row)


def _find_all(component, kind) -> list:
    found = [component] if isinstance(component, kind) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found += _find_all(child, kind)
    return found


def test_without_region_the_wall_names_the_regions_with_their_addresses(wall, served: Path) -> None:
    from dash import html

    out = wall.render_all(REGION, None, {"rotate": "15"})
    assert out[3] == "wall-message is-shown is-choice"
    assert "Выберите регион" in _text(out[2])
    links = [a.href for a in _find_all(out[2], html.A)]
    assert links == [f"/wall?region={i}&rotate=15" for i in (1, 2, 3)]
    assert out[4] is None and out[-1] == ""


def test_unknown_region_is_a_russian_message_not_a_traceback(wall, served: Path) -> None:
    for raw in ("9", "abc", "-1", "2; DROP TABLE appeal"):
        out = wall.render_all(REGION, raw, {})
        assert out[3] == "wall-message is-shown is-choice"
        assert "Регион не найден" in _text(out[2]), raw
        assert "Traceback" not in _text(out[2])


def test_a_municipal_wall_token_cannot_widen_to_another_region(wall, served: Path) -> None:
    """A wall bound to one Smolensk municipality: ?region=2 is refused; without the parameter it shows
    its own region, and only its municipality's appeals."""
    from metrics import scope as scopes
    from metrics.periods import last_complete_days

    (unit,), = _hand(served, "SELECT id FROM municipality WHERE region_id = 1 ORDER BY id LIMIT 1", [])
    bound = Scope.municipalities([unit], label="МО")
    scopes.install_provider(lambda: bound)
    try:
        refused = wall.render_all(bound, str(REGION_ID), {})
        assert "Регион не найден" in _text(refused[2]) and "Тверская" not in _text(refused[2])
        own = wall.render_all(bound, None, {})
        assert own[0].startswith("Смоленская область") and own[3] == "wall-message"
        week = last_complete_days(7, __import__("metrics.catalog", fromlist=["as_of"]).as_of())
        (total,), = _hand(served, "SELECT count(*) FROM appeal WHERE municipality_id = ? AND received_at >= ? "
                                  "AND received_at < ?", [unit, week.start, week.end])
        assert _text(_find(own[5], "wall-map-total")) == f"{total:,}".replace(",", "\u00a0")
    finally:
        scopes.install_provider(None)


def test_one_region_warehouse_is_unchanged(wall, warehouse_at, small_demo: Path) -> None:
    warehouse_at(small_demo)
    plain = wall.render_all(REGION)
    assert plain[0] == "Смоленская область" and plain[-1] == ""
    assert wall.render_all(REGION, "1", {})[0] == "Смоленская область"
    assert "Регион не найден" in _text(wall.render_all(REGION, "2", {})[2])


@pytest.fixture
def warehouse_at():
    before = source._configured
    yield source.configure
    source.configure(before)


@pytest.mark.browser
def test_region_wall_in_the_browser(served_app, browser, three_regions: Path) -> None:
    base = served_app(three_regions)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
    browser.get(base + f"/wall?region={REGION_ID}&rotate=3")
    wait_js(browser, "return document.querySelectorAll('#wall-map .bars .point').length >= 10")
    wait_js(browser, "return document.querySelectorAll('.wall-tile').length === 4")
    assert wait_js(browser, "return document.getElementById('wall-region')?.textContent").startswith("Тверская")
    # the clock ticks every second: the first tick after the region's zone arrived shows its time
    assert wait_js(browser, "return document.getElementById('wall-timezone')?.textContent || null") == ZONE
    local = dt.datetime.now(ZoneInfo(ZONE))
    allowed = sorted({f"{t:%H:%M}" for t in (local - dt.timedelta(minutes=1), local, local + dt.timedelta(minutes=1))})
    clock = wait_js(browser, f"const c = document.getElementById('wall-clock')?.textContent; "
                             f"return {allowed!r}.includes(c) ? c : null")
    assert clock in allowed, (clock, allowed)
    ARTIFACTS.mkdir(exist_ok=True)
    for i in [*range(1, 6), 0]:
        wait_js(browser, f"return document.querySelector('.wall-panel.is-active')?.dataset.panel === '{i}'", 10)
        time.sleep(0.8)  # past the cross-fade
        browser.save_screenshot(str(ARTIFACTS / f"wall_region{REGION_ID}_1080_{i}.png"))
    browser.get(base + "/wall")
    wait_js(browser, "return document.querySelectorAll('#wall-region-links a').length === 3")
    # the choice screen keeps its clock (the screen's own time: no region chosen yet)
    assert len(wait_js(browser, "return document.getElementById('wall-clock')?.textContent")) == 5
    assert browser.execute_script(
        "return getComputedStyle(document.getElementById('wall-panel-title')).visibility") == "hidden"
    browser.save_screenshot(str(ARTIFACTS / "wall_regions_choice_1080.png"))
    assert console_errors(browser) == []


def test_region_with_boundaries_draws_only_its_units(wall, served: Path) -> None:
    ids = {r[0] for r in _hand(served, "SELECT id FROM municipality WHERE region_id = 1", [])}
    figure = wall.render_all(REGION, "1", {})[4]
    drawn = {int(i) for trace in figure["data"] if trace.get("type") == "choropleth" for i in trace["locations"]}
    assert drawn == ids


def test_wall_tokens_through_the_real_sign_in(three_regions: Path, tmp_path: Path) -> None:
    """A wall token bound to «город Смоленск» (region 1) and an unbound one, signed in by their token
    URLs: the bound wall shows region 1 by itself and refuses ?region=2; the unbound one asks to choose."""
    import app as app_module
    from auth.users import make_user, save_users
    from auth.web import AuthSettings
    from metrics.scope import install_provider
    from tests.dash_requests import callback_body

    bound, bound_token = make_user("wall-smolensk", "wall", municipality="город Смоленск")
    free, free_token = make_user("wall-all", "wall")
    users = tmp_path / "users.toml"
    save_users(users, {u.login: u for u in (bound, free)})
    settings = AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
    dash_app = app_module.create_app(three_regions, settings)
    try:
        def render(token: str, region: object) -> str:
            client = dash_app.server.test_client()
            assert client.get(f"/wall?token={token}").status_code == 302
            body = callback_body(dash_app.callback_map, "wall-tension",
                                 {"wall-version": "v1", "wall-address": {"region": region}})
            response = client.post("/_dash-update-component", json=body)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            return response.get_data(as_text=True)

        refused = render(bound_token, "2")
        assert "Регион не найден" in refused and "Тверская" not in refused and "wall-map-total" not in refused
        own = render(bound_token, None)
        assert "Смоленская область · время" in own and "wall-map-total" in own and "Тверск" not in own
        assert "Выберите регион" in render(free_token, None)
        assert "Тверская область · время" in render(free_token, "2")
    finally:
        install_provider(None)
        source.configure(None)
