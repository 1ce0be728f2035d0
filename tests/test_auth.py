"""Who sees what: sign-in, roles and scopes through the pages and through crafted callback requests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from auth.users import load_users
from auth.web import AuthSettings
from metrics import catalog, source
from metrics.scope import install_provider
from tests import dash_requests
from tests.dash_requests import plotly_array

PASSWORD = "верный-пароль-123"  # noqa: S105 - a test user
PROJECT = Path(__file__).resolve().parent.parent


def add_user(users: Path, login: str, role: str, *extra: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "auth", "--users", str(users), "add-user", login, "--role", role, *extra],
        input=password + "\n", capture_output=True, text=True, cwd=PROJECT, check=False,
    )


@pytest.fixture(scope="module")
def users_file(tmp_path_factory, small_demo) -> tuple[Path, str, Path]:
    users = tmp_path_factory.mktemp("auth") / "users.toml"
    assert add_user(users, "curator", "curator").returncode == 0
    assert add_user(users, "zhkh", "sector", "--sector", "housing").returncode == 0
    assert add_user(users, "yartsevo", "municipal", "--municipality", "Ярцевский муниципальный округ",
                    "--db", str(small_demo)).returncode == 0
    wall = add_user(users, "wall1", "wall")
    assert wall.returncode == 0
    token = re.search(r"token=(\S+)", wall.stdout).group(1)
    return users, token, small_demo


@pytest.fixture
def app_for(small_demo, users_file, tmp_path):
    import app as app_module

    made = []

    def make():
        settings = AuthSettings(users_file=users_file[0], secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
        dash_app = app_module.create_app(small_demo, settings)
        made.append(dash_app)
        return dash_app

    yield make
    install_provider(None)  # later tests run metrics outside any request
    source.configure(None)


def sign_in(client, login: str, password: str = PASSWORD):
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"login": login, "password": password, "csrf": csrf, "next": "/"})


def callback_body(dash_app, output_fragment: str, values: dict[str, object]) -> dict:
    return dash_requests.callback_body(dash_app.callback_map, output_fragment, values)


def post(client, dash_app, fragment: str, values: dict[str, object]):
    return client.post("/_dash-update-component", json=callback_body(dash_app, fragment, values))


def heatmap_values(period: str = "2025-10", sector: object = "all", indicator: object = "volume") -> dict:
    return {"heatmap-period": period, "heatmap-sector": sector, "heatmap-channel": "all", "heatmap-indicator": indicator}


def coloured_municipalities(response) -> set[int]:
    fig = response.get_json()["response"]["heatmap-map"]["figure"]
    trace = fig["data"][1]  # [0] is the grey base layer
    return {int(loc) for loc, z in zip(trace["locations"], plotly_array(trace["z"]), strict=True)
            if z is not None and z == z}



def test_users_file_holds_hashes_and_rejects_bad_users(users_file, tmp_path):
    users_path, token, _ = users_file
    text = users_path.read_text(encoding="utf-8")
    assert PASSWORD not in text and token not in text
    users = load_users(users_path)
    assert {u.role for u in users.values()} == {"curator", "sector", "municipal", "wall"}
    assert users["yartsevo"].municipality.startswith("Ярцевский")
    bad = tmp_path / "u.toml"
    for args, message in ((["x", "sector", "--sector", "spaceflight"], "неизвестный отраслевой блок"),
                          (["x", "municipal", "--municipality", "Атлантида", "--db", str(users_file[2])],
                           "нет такого муниципального"),
                          (["x", "curator"], "не короче")):
        result = add_user(bad, *args, password="short" if args[1] == "curator" else PASSWORD)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_without_sign_in_only_the_login_page_and_assets_answer(app_for):
    client = app_for().server.test_client()
    assert client.get("/").status_code == 302 and "/login" in client.get("/").headers["Location"]
    assert client.get("/rating?period=2025-10").status_code == 302
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/assets/vendor/bootstrap/bootstrap.min.css").status_code == 200
    assert client.get("/wall?token=forged").status_code == 302


def test_wrong_password_is_refused_and_guessing_is_slowed_without_locking_the_owner_out(app_for):
    dash_app = app_for()
    client = dash_app.server.test_client()
    assert sign_in(client, "curator", "неверный-пароль").status_code == 401
    assert sign_in(client, "nobody", "неверный-пароль").status_code == 401
    for _ in range(2):
        sign_in(client, "curator", "неверный-пароль")
    refused = sign_in(client, "curator")  # this address must wait now, even with the right password
    assert refused.status_code == 429 and "Повторите через" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    owner = dash_app.server.test_client()
    owner.environ_base["REMOTE_ADDR"] = "10.1.2.3"  # the real owner, elsewhere, is not locked out
    assert sign_in(owner, "curator").status_code == 302


def test_login_form_needs_its_token_and_next_stays_local(app_for):
    client = app_for().server.test_client()
    client.get("/login")
    assert client.post("/login", data={"login": "curator", "password": PASSWORD}).status_code == 400
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    assert "evil.example" not in page


def test_curator_sees_the_whole_region(app_for):
    dash_app = app_for()
    client = dash_app.server.test_client()
    assert sign_in(client, "curator").status_code == 302
    assert client.get("/").status_code == 200
    coloured = coloured_municipalities(post(client, dash_app, "heatmap-map", heatmap_values()))
    assert len(coloured) == 27


def test_municipal_user_sees_only_own_municipality_but_the_whole_rating(app_for, small_demo):
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "yartsevo")
    source.configure(small_demo)
    own = next(i for i, n in catalog.names("municipality").items() if n.startswith("Ярцевский"))
    other = next(i for i in catalog.names("municipality") if i != own)
    assert coloured_municipalities(post(client, dash_app, "heatmap-map", heatmap_values())) == {own}
    # another municipality's problems, KPI and profile are refused, not shown empty
    problems = post(client, dash_app, "problems-list", {"problems-period": "2025-10",
                                                        "problems-municipality": str(other)})
    assert "нет доступного муниципального образования" in problems.get_data(as_text=True)
    kpi = post(client, dash_app, "kpi-trend", {"kpi-indicator": "volume", "kpi-sector": "all",
                                               "kpi-municipality": str(other), "kpi-grain": "month"})
    assert "нет доступного муниципального образования" in kpi.get_data(as_text=True)
    router = post(client, dash_app, "_pages_content", {"_pages_location": f"/municipality/{other}"})
    assert "недоступен" in router.get_data(as_text=True)
    # the municipalities' rating compares all of them: that much an МЦУ may see
    rating = post(client, dash_app, "rating-grid", {"rating-period": "2025-10", "rating-who": "municipalities",
                                                    "rating-sector": "all"})
    rows = rating.get_json()["response"]["rating-grid"]["rowData"]
    assert len(rows) == 27
    # while the organisations' rating holds only bodies with appeals in its municipality
    orgs = post(client, dash_app, "rating-grid", {"rating-period": "2025-10", "rating-who": "organisations",
                                                  "rating-sector": "all"})
    region = app_for().server.test_client()
    sign_in(region, "curator")
    all_orgs = post(region, dash_app, "rating-grid", {"rating-period": "2025-10", "rating-who": "organisations",
                                                      "rating-sector": "all"})
    assert 0 < len(orgs.get_json()["response"]["rating-grid"]["rowData"]) < len(
        all_orgs.get_json()["response"]["rating-grid"]["rowData"])
    # the status page (whole-warehouse counts) is for curators
    assert client.get("/status").status_code == 302
    assert post(client, dash_app, "_pages_content", {"_pages_location": "/status"}).status_code == 403


def test_sector_lead_sees_own_sector_and_a_forged_sector_is_refused(app_for):
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "zhkh")
    matrix = post(client, dash_app, "heatmap-map", heatmap_values()).get_json()["response"]["heatmap-matrix"]["figure"]
    assert set(matrix["data"][0]["x"]) == {"ЖКХ"}
    forged = post(client, dash_app, "heatmap-map", heatmap_values(sector="health"))
    assert forged.status_code == 200
    assert "неизвестный отраслевой блок: health" in forged.get_json()["response"]["heatmap-note"]["children"]
    assert forged.get_json()["response"]["heatmap-map"]["figure"]["data"] == []


@pytest.mark.parametrize("values, message", [
    (heatmap_values(indicator="drop_table"), "недопустимое значение поля «показатель»"),
    (heatmap_values(sector="housing' OR 1=1 --"), "неизвестный отраслевой блок"),
    (heatmap_values(period="2025-10'; DROP TABLE appeal; --"), "нет данных за период"),
    (heatmap_values(period="1999-01"), "нет данных за период"),
    (heatmap_values(sector=["housing", "health"]), "недопустимое значение поля «отраслевой блок»"),
    (heatmap_values(indicator={"$ne": 1}), "недопустимое значение поля «показатель»"),
])
def test_forged_values_are_refused_with_a_message(app_for, values, message):
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "curator")
    response = post(client, dash_app, "heatmap-map", values)
    note = response.get_json()["response"]["heatmap-note"]["children"]
    assert message in note
    assert "heatmap-url" not in response.get_json()["response"]  # a refused value never reaches the address
    # and the warehouse is intact
    assert len(coloured_municipalities(post(client, dash_app, "heatmap-map", heatmap_values()))) == 27


def test_a_ten_megabyte_body_is_refused(app_for):
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "curator")
    body = callback_body(dash_app, "heatmap-map", heatmap_values(sector="x" * (10 << 20)))
    response = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 413


def test_wall_token_reaches_only_the_wall(app_for, users_file):
    dash_app = app_for()
    client = dash_app.server.test_client()
    token = users_file[1]
    assert client.get(f"/wall?token={token}").status_code == 302
    assert client.get("/wall").status_code == 200  # the session remembers the display
    for page in ("/", "/rating", "/kpi", "/problems", "/status", "/municipality/1"):
        response = client.get(page)
        assert response.status_code == 302 and response.headers["Location"] == "/wall", page
        assert post(client, dash_app, "_pages_content", {"_pages_location": page}).status_code == 403, page
    assert post(client, dash_app, "heatmap-map", heatmap_values()).status_code == 403
    assert post(client, dash_app, "rating-grid", {"rating-period": "2025-10", "rating-who": "organisations",
                                                  "rating-sector": "all"}).status_code == 403
    assert post(client, dash_app, "_pages_content", {"_pages_location": "/wall"}).status_code == 200
    # a wall token is not a password
    assert sign_in(app_for().server.test_client(), "wall1", token).status_code == 401


def test_security_headers(app_for):
    client = app_for().server.test_client()
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'self'" in csp and response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_removed_user_loses_access_at_once(app_for, small_demo, users_file, tmp_path):
    import shutil

    import app as app_module

    users = tmp_path / "users.toml"
    shutil.copy(users_file[0], users)
    dash_app = app_module.create_app(
        small_demo, AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=tmp_path / "t2.sqlite"))
    client = dash_app.server.test_client()
    sign_in(client, "zhkh")
    assert client.get("/").status_code == 200
    result = subprocess.run([sys.executable, "-m", "auth", "--users", str(users), "remove-user", "zhkh"],
                            capture_output=True, text=True, cwd=PROJECT, check=False)
    assert result.returncode == 0, result.stderr
    assert client.get("/").status_code == 302


def test_production_entry_refuses_without_users_or_secret(tmp_path, users_file, small_demo):
    env = {"PATH": "/usr/bin:/bin", "CUR_DB": str(small_demo)}
    cases = [({}, "CUR_USERS"), ({"CUR_USERS": str(users_file[0])}, "CUR_SECRET_KEY"),
             ({"CUR_USERS": str(users_file[0]), "CUR_SECRET_KEY": "short"}, "CUR_SECRET_KEY")]
    for extra, message in cases:
        result = subprocess.run([sys.executable, "-c", "import wsgi"], env={**env, **extra}, cwd=PROJECT,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    ok = subprocess.run([sys.executable, "-c", "import wsgi; print(wsgi.application.name)"],
                        env={**env, "CUR_USERS": str(users_file[0]), "CUR_SECRET_KEY": "s" * 40}, cwd=PROJECT,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr


def test_open_demo_refuses_a_network_address_without_users(tmp_path):
    everywhere = "0.0.0.0"  # noqa: S104 - the address the app must refuse
    result = subprocess.run([sys.executable, "app.py", "--host", everywhere, "--db", str(tmp_path / "w.duckdb")],
                            env={"PATH": "/usr/bin:/bin"}, cwd=PROJECT, capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 2 and "CUR_USERS" in result.stderr


HOSTILE_CATEGORY = '<img src=x onerror="window.__xss=2">Ямы во дворе'


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    import datetime as dt

    from data.importer import run_import
    from data.mapping import load_mapping
    from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised

    tmp = tmp_path_factory.mktemp("hostile")
    path = tmp / "w.duckdb"
    con = connect(path)
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
    name = HOSTILE_CATEGORY.replace('"', '""')
    rows = ["source_id,received_at,municipality,channel,sector,category,organisation,answered_at"]
    rows += [f'{i},{1 + i % 25:02d}.10.2025 09:00,Ярцевский,pos,roads,"{name}",Администрация,{1 + i % 25:02d}.10.2025 18:00'
             for i in range(80)]
    (tmp / "a.csv").write_text("\n".join(rows), encoding="utf-8")
    run_import(con, tmp / "a.csv", load_mapping(None), now=dt.datetime(2025, 11, 1))
    con.close()
    return path


@pytest.mark.browser
def test_sign_in_in_the_browser_and_names_stay_text(served_app, browser, hostile_db, users_file, tmp_path):
    from tests.conftest import console_errors, wait_js

    settings = AuthSettings(users_file=users_file[0], secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
    try:
        base = served_app(hostile_db, settings)
        browser.get(base + "/problems?period=2025-10")
        wait_js(browser, "return document.querySelector('#login-submit')")
        assert "/login" in browser.current_url
        browser.find_element("id", "login").send_keys("curator")
        browser.find_element("id", "password").send_keys(PASSWORD)
        browser.find_element("id", "login-submit").click()
        wait_js(browser, "return document.querySelector('#navbar-logout')")
        assert "curator · куратор" in browser.find_element("id", "navbar-user").text
        assert browser.find_elements("id", "demo-banner") == []
        browser.get(base + "/problems?period=2025-10")
        text = wait_js(browser, "const t = document.querySelector('#problems-list')?.innerText;"
                                "return t && t.includes('Ямы во дворе') ? t : null")
        assert '<img src=x onerror="window.__xss=2">' in text
        assert browser.execute_script("return window.__xss === undefined")
        assert console_errors(browser) == []  # the Content-Security-Policy breaks nothing
        browser.find_element("id", "navbar-logout").click()
        wait_js(browser, "return document.querySelector('#login-submit')")
    finally:
        install_provider(None)
        source.configure(None)


@pytest.mark.browser
def test_open_demo_shows_its_banner(served_app, browser, small_demo):
    from tests.conftest import wait_js

    browser.get(served_app(small_demo) + "/")
    banner = wait_js(browser, "return document.querySelector('#demo-banner')?.innerText")
    assert "демо-режим" in banner


def test_cached_answers_never_cross_scopes(app_for):
    dash_app = app_for()
    curator, municipal = dash_app.server.test_client(), dash_app.server.test_client()
    sign_in(curator, "curator")
    sign_in(municipal, "yartsevo")
    cache = dash_app.server.extensions["callback_cache"]
    for _ in range(2):  # the second round is answered from the cache
        assert len(coloured_municipalities(post(curator, dash_app, "heatmap-map", heatmap_values()))) == 27
        assert len(coloured_municipalities(post(municipal, dash_app, "heatmap-map", heatmap_values()))) == 1
    assert cache.hits == 2


@pytest.mark.browser
def test_wall_token_opens_the_display_in_the_browser(served_app, browser, small_demo, users_file, tmp_path):
    from tests.conftest import console_errors, wait_js

    settings = AuthSettings(users_file=users_file[0], secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
    try:
        base = served_app(small_demo, settings)
        browser.get(f"{base}/wall?token={users_file[1]}&rotate=3")
        wait_js(browser, "return document.querySelectorAll('.wall-tile').length === 4")
        assert "данные на" in wait_js(browser, "return document.getElementById('wall-asof')?.textContent")
        wait_js(browser, "return document.querySelector('.wall-panel.is-active')?.dataset.panel === '1'", 15)
        assert console_errors(browser) == []  # every callback the wall runs is allowed to it
        browser.get(base + "/rating")
        wait_js(browser, "return location.pathname === '/wall'")
    finally:
        install_provider(None)
        source.configure(None)


def test_map_boundaries_come_from_a_cacheable_url_behind_sign_in(app_for):
    dash_app = app_for()
    client = dash_app.server.test_client()
    assert "/login" in client.get("/region.geojson").headers["Location"]  # nothing without sign-in
    sign_in(client, "curator")
    figure = post(client, dash_app, "heatmap-map", heatmap_values()).get_json()["response"]["heatmap-map"]["figure"]
    url = figure["data"][1]["geojson"]
    assert url.startswith("/region.geojson?v=") and figure["data"][0]["geojson"] == url
    response = client.get(url)
    assert response.status_code == 200 and "max-age" in response.headers["Cache-Control"]
    assert len(response.get_json()["features"]) == 27
