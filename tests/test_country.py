"""The region level: several regions in one warehouse, the region dimension of the metrics against a
hand-written recount, the multi-region demo, federal-subject boundaries, the «Регионы» page and who may open it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from metrics import source
from metrics.periods import Period, parse_period
from metrics.query import facts_only, query_on

PROJECT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("CUR_REALDATA") or Path(__file__).resolve().parents[2] / "shared" / "realdata")
SUBJECTS = REALDATA / "russia-regions" / "russia_federal_subjects_gislab_osm.geojson"
AS_OF_MONTH = "2025-10"


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    """Three regions (Смоленская, Тверская, Ярославская области), 30 000 appeals, May–October 2025."""
    from data.demo import build_demo

    db = tmp_path_factory.mktemp("country") / "country.duckdb"
    stats = build_demo(db, appeals=30_000, months=6, seed=7, end_month=AS_OF_MONTH, regions=3)
    assert stats["appeals"] == 30_000
    return db


@pytest.fixture(scope="module")
def country_with_shapes(country: Path, tmp_path_factory) -> Path:
    if not SUBJECTS.is_file():
        pytest.skip(f"нет реальных данных {SUBJECTS} (границы субъектов РФ лежат в ../shared/realdata)")
    db = tmp_path_factory.mktemp("country_shapes") / "country.duckdb"
    shutil.copy(country, db)
    done = subprocess.run([sys.executable, "-m", "geo", "import-regions", str(SUBJECTS), "--db", str(db),
                           "--name-field", "name"], capture_output=True, text=True, cwd=PROJECT, check=False)
    assert done.returncode == 0, done.stderr
    return db


def test_multi_region_demo_has_three_regions_with_their_own_units(country: Path) -> None:
    con = duckdb.connect(str(country), read_only=True)
    regions = con.execute("SELECT id, name, code, population, population_is_approx FROM region ORDER BY id").fetchall()
    assert [r[1] for r in regions] == ["Смоленская область", "Тверская область", "Ярославская область"]
    assert [r[2] for r in regions] == ["RU-SMO", "RU-TVE", "RU-YAR"]
    assert all(r[3] > 500_000 and r[4] for r in regions)  # approximate, and said so
    per_region = con.execute(
        """SELECT m.region_id, count(DISTINCT m.id), count(a.source_id), count(DISTINCT a.source_id)
           FROM municipality m LEFT JOIN appeal a ON a.municipality_id = m.id GROUP BY 1 ORDER BY 1""").fetchall()
    assert [r[1] for r in per_region] == [27, 27, 27]
    assert all(r[2] > 3000 and r[2] == r[3] for r in per_region)
    assert con.execute("SELECT count(*) FROM appeal WHERE repeat_of IS NOT NULL AND repeat_of NOT IN "
                       "(SELECT source_id FROM appeal)").fetchall()[0][0] == 0  # links stay within the warehouse
    assert con.execute("SELECT name FROM municipality WHERE region_id = 2 ORDER BY id LIMIT 1").fetchall()[0][0] \
        == "город Тверь"
    assert con.execute("SELECT count(*) FROM municipality_shape s JOIN municipality m ON m.id = s.municipality_id "
                       "WHERE m.region_id <> 1").fetchall()[0][0] == 0  # only Smolensk's boundaries ship
    con.close()


def _recount(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime, as_of: dt.datetime) -> dict:
    """Region → (volume, on-time share, satisfaction share, median first reaction in hours), written
    out from DESIGN §4 with a join to the municipalities."""
    rows = con.execute(
        """SELECT m.region_id,
                  count(*) AS volume,
                  count(*) FILTER (WHERE a.answered_at IS NOT NULL AND a.answered_at <= a.due_at) AS on_time,
                  count(*) FILTER (WHERE a.answered_at IS NOT NULL AND a.due_at IS NOT NULL)
                    + count(*) FILTER (WHERE a.answered_at IS NULL AND a.due_at < $as_of) AS on_time_base,
                  count(*) FILTER (WHERE a.satisfaction >= 4) AS satisfied,
                  count(a.satisfaction) AS rated,
                  median(epoch(a.first_response_at - a.received_at) / 3600.0) AS response_median
           FROM appeal a JOIN municipality m ON m.id = a.municipality_id
           WHERE a.received_at >= $start AND a.received_at < $end
           GROUP BY m.region_id ORDER BY m.region_id""",
        {"start": start, "end": end, "as_of": as_of}).fetchall()
    return {r[0]: (r[1], r[2] / r[3], r[4] / r[5], r[6]) for r in rows}


@pytest.mark.parametrize("period_code", ["2025-09", "2025-Q3", "custom"])
def test_region_dimension_equals_a_hand_written_recount(country: Path, period_code: str) -> None:
    con = duckdb.connect(str(country), read_only=True)
    as_of = dt.datetime.fromisoformat(con.execute("SELECT value FROM meta WHERE key = 'data_as_of'").fetchall()[0][0])
    period = Period(dt.date(2025, 8, 10), dt.date(2025, 9, 23), "custom", "10.08–22.09.2025") \
        if period_code == "custom" else parse_period(period_code)
    codes = ["volume", "on_time_share", "satisfaction_share", "response_hours_median"]
    expected = _recount(con, dt.datetime.combine(period.start, dt.time()), dt.datetime.combine(period.end, dt.time()),
                        as_of)
    assert set(expected) == {1, 2, 3}
    for answer in (query_on(con, codes, by=["region"], period=period), _facts(con, codes, period)):
        got = {int(r.region_id): (r.volume, r.on_time_share, r.satisfaction_share, r.response_hours_median)
               for r in answer.itertuples()}
        assert set(got) == set(expected)
        for rid, (volume, on_time, satisfaction, median) in expected.items():
            assert got[rid][0] == volume
            assert got[rid][1] == pytest.approx(on_time, abs=1e-12)
            assert got[rid][2] == pytest.approx(satisfaction, abs=1e-12)
            assert got[rid][3] == pytest.approx(median, abs=1e-9)  # exact median on every path
    con.close()


def _facts(con, codes, period):
    with facts_only():
        return query_on(con, codes, by=["region"], period=period)


def test_region_filter_and_rate_per_region(country: Path) -> None:
    con = duckdb.connect(str(country), read_only=True)
    period = parse_period("2025-09")
    units = query_on(con, ["volume"], by=["municipality"], period=period, filters={"region": [2]})
    region_two = {r[0] for r in con.execute("SELECT id FROM municipality WHERE region_id = 2").fetchall()}
    assert set(units["municipality_id"]) == region_two
    totals = query_on(con, ["volume", "rate_10k", "backlog_open"], by=["region"], period=period)
    one = query_on(con, ["volume", "rate_10k", "backlog_open"], period=period, filters={"region": [2]}).iloc[0]
    row = totals[totals["region_id"] == 2].iloc[0]
    people = con.execute("SELECT sum(population) FROM municipality WHERE region_id = 2").fetchall()[0][0]
    assert row["volume"] == one["volume"] == units["volume"].sum()
    assert row["rate_10k"] == pytest.approx(row["volume"] * 10_000 / people)
    assert one["rate_10k"] == pytest.approx(row["rate_10k"])  # the filter's residents are the region's
    assert row["backlog_open"] == one["backlog_open"]  # stocks by region too
    assert totals["backlog_open"].sum() == query_on(con, ["backlog_open"], period=period).iloc[0]["backlog_open"]
    con.close()


def test_region_rating_ranks_every_region(country: Path) -> None:
    from metrics.country import COMPONENTS, region_rating

    source.configure(country)
    try:
        df = region_rating(parse_period("2025-09"))
    finally:
        source.configure(None)
    assert len(df) == 3
    for c in COMPONENTS:  # rank 1 is the best value, by the component's own direction
        best = df[c.code].max() if c.higher_is_better else df[c.code].min()
        assert df.loc[df[f"{c.code}_rank"] == 1, c.code].iloc[0] == best
        assert sorted(df[f"{c.code}_rank"]) == [1.0, 2.0, 3.0]
    # the place orders the sums of the four ranks; the change is this month less the last
    sums = {r.region_id: sum(getattr(r, f"{c.code}_rank") for c in COMPONENTS) for r in df.itertuples()}
    assert dict(zip(df["region_id"], df["rank_sum"], strict=True)) == sums
    assert df.loc[df["place"] == 1, "rank_sum"].iloc[0] == min(sums.values())
    assert (df["response_change"] == df["response_hours_median"] - df["response_hours_median_prev"]).all()


def test_all_regions_line_and_map_reference_equal_a_hand_written_recount(country: Path) -> None:
    """The table's «Все регионы» line and the share the country map is painted around are counted over
    every appeal of the warehouse (not averaged over regions): checked against DESIGN §4 written out."""
    import app as app_module
    from metrics.country import all_regions

    con = duckdb.connect(str(country), read_only=True)
    as_of = dt.datetime.fromisoformat(con.execute("SELECT value FROM meta WHERE key = 'data_as_of'").fetchall()[0][0])
    volume, on_time, on_time_base, satisfied, rated, median = con.execute(
        """SELECT count(*),
                  count(*) FILTER (WHERE answered_at IS NOT NULL AND answered_at <= due_at),
                  count(*) FILTER (WHERE answered_at IS NOT NULL AND due_at IS NOT NULL)
                    + count(*) FILTER (WHERE answered_at IS NULL AND due_at < $as_of),
                  count(*) FILTER (WHERE satisfaction >= 4), count(satisfaction),
                  median(epoch(first_response_at - received_at) / 3600.0)
           FROM appeal WHERE received_at >= '2025-09-01' AND received_at < '2025-10-01'""",
        {"as_of": as_of}).fetchall()[0]
    people = con.execute("SELECT sum(population) FROM municipality").fetchall()[0][0]
    con.close()
    app_module.create_app(country)
    from pages import regions

    try:
        row = all_regions(parse_period("2025-09"))
        assert row["volume"] == volume
        assert row["on_time_share"] == pytest.approx(on_time / on_time_base, abs=1e-12)
        assert row["satisfaction_share"] == pytest.approx(satisfied / rated, abs=1e-12)
        assert row["response_hours_median"] == pytest.approx(median, abs=1e-9)
        assert row["rate_10k"] == pytest.approx(volume * 10_000 / people)
        table, _fig, note, style, _, _ = regions.update("2025-09", "on_time_share")
        assert "не загружены" in str(note) and style == {"display": "none"}  # no empty map box under the note
        foot = json.dumps(table.to_plotly_json(), ensure_ascii=False, default=str)
        assert "Все регионы" in foot and "regions-all-row" in foot
    finally:
        source.configure(None)


def test_a_one_region_warehouse_is_migrated_and_unchanged(small_demo: Path, tmp_path: Path) -> None:
    from data.warehouse import connect, ensure_initialised

    db = tmp_path / "old.duckdb"
    shutil.copy(small_demo, db)
    con = connect(db)
    before = query_on(con, ["volume", "on_time_share"], by=["municipality"], period=parse_period("2025-09"))
    con.execute("DROP TABLE region")  # as a warehouse made before the region level
    con.execute("DROP TABLE region_shape")
    con.execute("ALTER TABLE municipality DROP COLUMN region_id")
    ensure_initialised(con)
    assert con.execute("SELECT id, name, code FROM region").fetchall() == [(1, "Смоленская область", "RU-SMO")]
    assert con.execute("SELECT DISTINCT region_id FROM municipality").fetchall() == [(1,)]
    after = query_on(con, ["volume", "on_time_share"], by=["municipality"], period=parse_period("2025-09"))
    assert before.equals(after)
    whole = query_on(con, ["volume"], period=parse_period("2025-09")).iloc[0]["volume"]
    assert query_on(con, ["volume"], by=["region"], period=parse_period("2025-09"))["volume"].tolist() == [whole]
    con.close()


def _nav_labels(dash_app) -> list[str]:
    nav = dash_app.layout.children[0].children.children[1]
    return [item.children.children for item in nav.children]


def test_navbar_offers_regions_only_for_several(small_demo: Path, country: Path) -> None:
    import app as app_module

    try:
        assert "Регионы" not in _nav_labels(app_module.create_app(small_demo))
        assert "Регионы" in _nav_labels(app_module.create_app(country))
    finally:
        source.configure(None)


def test_heat_map_narrows_to_a_region(country: Path) -> None:
    import app as app_module

    app_module.create_app(country)
    from pages import heatmap

    try:
        _, matrix, note = heatmap.update("2025-09", "all", "all", "volume", 2)
        rows = set(matrix["data"][0]["y"])
        assert "город Тверь" in rows and not any("Смоленск" in r for r in rows)
        assert "нет границ" in note
        fig_map, _, _ = heatmap.update("2025-09", "all", "all", "volume", 1)
        assert len(fig_map["data"][1]["locations"]) == 27
        assert "Смоленская область" in fig_map["layout"]["title"]["text"]
    finally:
        source.configure(None)


def test_import_regions_matches_the_warehouse_regions(country_with_shapes: Path) -> None:
    from geo.simplify import MAX_GEOJSON_BYTES

    con = duckdb.connect(str(country_with_shapes), read_only=True)
    # the warehouse's three and, as the grey background, the other 80 subjects of the file
    assert con.execute("SELECT count(*) FILTER (WHERE region_id > 0), count(*) FILTER (WHERE region_id < 0) "
                       "FROM region_shape").fetchall()[0] == (3, 80)
    total = sum(len(r[0]) for r in con.execute("SELECT simplified_geojson FROM region_shape").fetchall())
    assert total <= MAX_GEOJSON_BYTES
    from geo.regions import load_regions_geojson

    collection = load_regions_geojson(con)
    assert "GIS-Lab" in collection["attribution"] and "OpenStreetMap" in collection["attribution"]
    assert {f["properties"]["name"] for f in collection["features"]} == \
        {"Смоленская область", "Тверская область", "Ярославская область"}
    assert len(collection["background"]) == 80 and "Татарстан" in {f["properties"]["name"]
                                                                     for f in collection["background"]}
    from shapely.geometry import shape

    chukotka = next(f for f in collection["background"] if f["properties"]["name"] == "Чукотский автономный округ")
    west, _, east, _ = shape(chukotka["geometry"]).bounds  # one piece across 180°, not two ends of the map
    assert west > 150 and east > 180
    con.close()


def test_region_names_match_across_spellings() -> None:
    from data.regions import region_key

    assert region_key("Республика Татарстан") == region_key("Татарстан")
    assert region_key("Северная Осетия - Алания") == region_key("Республика Северная Осетия — Алания")
    assert region_key("г. Москва") == region_key("Москва")
    assert region_key("Алтайский край") != region_key("Республика Алтай")


# --- roles ------------------------------------------------------------------------------------


def test_only_a_curator_opens_regions(country: Path, tmp_path: Path) -> None:
    import app as app_module
    from auth.web import AuthSettings
    from metrics.scope import install_provider
    from tests.test_auth import add_user, post, sign_in

    users = tmp_path / "users.toml"
    assert add_user(users, "curator", "curator").returncode == 0
    assert add_user(users, "zhkh", "sector", "--sector", "housing").returncode == 0
    assert add_user(users, "yartsevo", "municipal", "--municipality", "Ярцевский муниципальный округ",
                    "--db", str(country)).returncode == 0
    settings = AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
    try:
        dash_app = app_module.create_app(country, settings)
        for login, allowed in (("curator", True), ("zhkh", False), ("yartsevo", False)):
            client = dash_app.server.test_client()
            sign_in(client, login)
            page = post(client, dash_app, "_pages_content", {"_pages_location": "/regions"})
            assert (page.status_code == 200) is allowed, login
            table = post(client, dash_app, "regions-table", {"regions-period": "2025-09", "regions-indicator": "place"})
            assert (table.status_code == 200) is allowed, login
            if allowed:
                html = json.dumps(table.get_json()["response"]["regions-table"], ensure_ascii=False)
                assert "Тверская область" in html and "/?region=2" in html
    finally:
        install_provider(None)
        source.configure(None)


# --- the page in a browser --------------------------------------------------------------------


@pytest.mark.browser
def test_regions_page_without_shapes_shows_the_table_and_a_note(served_app, browser, country: Path) -> None:
    from tests.conftest import console_errors, wait_js

    browser.get(served_app(country) + "/regions?period=2025-09")
    rows = wait_js(browser, "return document.querySelectorAll('#regions-rating-table tbody tr').length || null")
    assert rows == 3
    note = wait_js(browser, "return document.getElementById('regions-no-shapes')?.textContent || null")
    assert "Границы субъектов РФ не загружены" in note
    assert "приблизительная оценка" in wait_js(browser, "return document.getElementById('regions-note')?.textContent")
    assert console_errors(browser) == []


@pytest.mark.browser
def test_regions_page_draws_the_map_and_a_click_opens_the_region(served_app, browser,
                                                                 country_with_shapes: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.conftest import ARTIFACTS, console_errors, wait_js

    browser.get(served_app(country_with_shapes) + "/regions?period=2025-09&indicator=on_time_share")
    assert wait_js(browser, "return document.querySelectorAll('#regions-rating-table tbody tr').length || null") == 3
    shapes = wait_js(browser, "return document.querySelectorAll('#regions-map .choroplethlocation').length || null")
    assert shapes == 80 + 2 * 3  # the other subjects, then the grey base layer and the data layer
    names = wait_js(browser, """const g = document.querySelector('#regions-map .js-plotly-plot');
        const t = (g?.data || []).find(d => d.name === 'names'); return t ? t.text.join('|') : null;""")
    assert "Тверская" in names
    attribution = wait_js(browser, """const g = document.querySelector('#regions-map .js-plotly-plot');
        return (g?.layout?.annotations || []).map(a => a.text).join(' ') || null;""")
    assert "GIS-Lab" in attribution
    hover = wait_js(browser, """const g = document.querySelector('#regions-map .js-plotly-plot');
        const t = (g?.data || []).find(d => d.type === 'choropleth' && d.name !== 'background' && d.text);
        return t ? t.text.join('|') : null;""")
    assert "По всем регионам" in hover  # a share is judged against the whole warehouse's value
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "regions.png"))
    assert console_errors(browser) == []
    link = browser.find_element(By.LINK_TEXT, "Тверская область")
    link.click()
    title = wait_js(browser, """const t = document.querySelector('#heatmap-matrix .js-plotly-plot')?.layout?.title?.text;
        return t && t.includes('Тверская область') ? t : null;""")
    assert "Тверская область" in title
    assert "region=2" in browser.current_url
