"""The same questions on DuckDB and on ClickHouse (chDB in-process) give the same frames (DESIGN §6).

A 20 000-appeal demo of three regions is built once in DuckDB and copied to chDB; every indicator (the
social-tension index and its parts included) is asked by every dimension (the region too) over a
calendar month, a quarter, an arbitrary day range and the unfinished current month (plus several
periods at once, an earlier moment, filters and scopes), on the rollup path and on the facts path; the
country rating, the wall and the pages built on them answer the same. The DuckDB answer is the reference: counts and shares must match exactly, floats to 1e-9
(quantiles are exact on both engines: DuckDB's quantile_cont, ClickHouse's quantileExactInclusive).

With ``CUR_TEST_CLICKHOUSE_URL`` (``clickhouse://user:password@host:8123/db``) the same tests also run
against that server, in a fresh database named after ``db`` (dropped afterwards).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from data.clickhouse import REBUILT, ChdbConnection, ClickHouseError, ServerConnection, copy_warehouse
from data.demo import build_demo
from data.dialect import to_clickhouse
from data.warehouse import connect
from metrics import appeals, kpi, priority, rating, roadmap, signals, workload
from metrics import compare as comparison
from metrics import indicators as ind
from metrics import query as q
from metrics.periods import Period, month, quarter_of
from metrics.scope import Scope

CODES = [i.code for i in ind.INDICATORS]
KEYS = ["period_index", "region_id", "municipality_id", "sector_id", "category_id", "organisation_id", "channel", "kind",
        "month", "quarter", "year", "week", "day"]
TODAY = dt.date.today()
CURRENT = month(TODAY.replace(day=1))  # the demo runs to now: this month is unfinished
LAST = CURRENT.previous()  # the last complete month
QUARTER = quarter_of(LAST.start)
DAYS = Period(LAST.start + dt.timedelta(days=3), LAST.start + dt.timedelta(days=41), "range", "r")
PERIODS = {"month": LAST, "quarter": QUARTER, "days": DAYS, "current": CURRENT}
DIMS = [(), ("municipality",), ("sector",), ("category",), ("organisation",), ("channel",), ("kind",),
        ("month",), ("quarter",), ("year",), ("week",), ("day",), ("municipality", "sector"),
        ("category", "month"), ("region",), ("region", "month"), ("region", "sector")]


def _targets(tmp: Path) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("chdb", ChdbConnection(tmp / "chdb", create=True))]
    url = os.environ.get("CUR_TEST_CLICKHOUSE_URL")
    if url:
        base, _, _db = url.rstrip("/").rpartition("/")
        out.append(("server", ServerConnection(f"{base}/cur_test_{uuid.uuid4().hex[:8]}")))
    return out


@pytest.fixture(scope="module", params=["chdb", *(["server"] if os.environ.get("CUR_TEST_CLICKHOUSE_URL") else [])])
def engines(request, tmp_path_factory):
    """(DuckDB connection, ClickHouse connection with the same warehouse)."""
    tmp = tmp_path_factory.mktemp("engines")
    db = tmp / "demo.duckdb"
    build_demo(db, appeals=20_000, months=6, seed=11, end_month=f"{TODAY:%Y-%m}", regions=3)
    _add_region_shapes(db)
    target = dict(_targets(tmp))[request.param]
    copy_warehouse(db, target, rebuild=True)  # the rollups computed by ClickHouse from the facts
    duck = connect(db, read_only=True)
    yield duck, target
    duck.close()
    if request.param == "server":
        target.command(f"DROP DATABASE IF EXISTS {target.database}", in_database=False)
    target.close()


def _add_region_shapes(db: Path) -> None:
    """Boundaries of two regions and of a subject the warehouse does not hold (what ``geo import-regions``
    writes): squares, enough to see that ``copy`` carries them and the country map reads them alike."""
    import json

    import shapely
    from shapely.geometry import mapping

    w = connect(db)
    for region_id, (lon, lat), name in ((1, (32.0, 54.8), None), (2, (35.9, 56.9), None), (-7, (40.0, 50.0), "Х")):
        square = shapely.box(lon - 1, lat - 1, lon + 1, lat + 1)
        w.execute("INSERT INTO region_shape VALUES ($id, $wkb, $geojson, 'test', TIMESTAMP '2025-01-02 03:04:05', $name)",
                  {"id": region_id, "wkb": shapely.to_wkb(square), "geojson": json.dumps(mapping(square)),
                   "name": name})
    w.close()


def same(duck: pd.DataFrame, ch: pd.DataFrame) -> None:
    """Equal frames up to row order: the same columns in the same order, the same dtypes, the same
    values (floats to a relative 1e-9)."""
    assert list(ch.columns) == list(duck.columns)
    keys = [k for k in KEYS if k in duck.columns]
    if keys:
        duck = duck.sort_values(keys).reset_index(drop=True)
        ch = ch.sort_values(keys).reset_index(drop=True)
    assert len(ch) == len(duck)
    # integers may come wider from ClickHouse (its counts are 64-bit): the kind must agree
    kinds = {c: (duck[c].dtype.kind, ch[c].dtype.kind) for c in duck.columns}
    assert {c: k for c, k in kinds.items() if k[0] != k[1]} == {}
    pd.testing.assert_frame_equal(duck, ch, check_dtype=False, rtol=1e-9)


def both(engines, fn, *args, **kwargs) -> None:
    duck, ch = engines
    same(fn(duck, *args, **kwargs), fn(ch, *args, **kwargs))


def _duck_file(duck) -> Path:  # noqa: ANN001 - a DuckDB connection of the fixture
    """The file behind the fixture's DuckDB connection."""
    return Path(duck.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
                .fetchall()[0][0])


@pytest.mark.parametrize("by", DIMS, ids=lambda b: "+".join(b) or "total")
@pytest.mark.parametrize("period", list(PERIODS), ids=str)
def test_every_indicator_by_every_dimension(engines, by, period):
    compare = bool(by) and not any(q.DIMENSIONS[b].is_time for b in by)
    both(engines, q.query_on, CODES, list(by), PERIODS[period], compare=compare)


@pytest.mark.parametrize("by", [(), ("organisation",), ("category", "week"), ("region",)],
                         ids=lambda b: "+".join(b) or "total")
@pytest.mark.parametrize("period", ["month", "days"])
def test_facts_path(engines, by, period):
    """The same definitions read from the facts (what every non-aligned range and ``as_of`` uses)."""
    with q.facts_only():
        both(engines, q.query_on, CODES, list(by), PERIODS[period])


@pytest.mark.parametrize("by", [("municipality",), (), ("region",)], ids=lambda b: "+".join(b) or "total")
def test_several_periods_at_once(engines, by):
    months = [LAST.previous().previous(), LAST.previous(), LAST]
    both(engines, q.query_periods, [c for c in CODES if c != "growth"], list(by), months)


def test_an_earlier_moment(engines):
    duck, _ = engines
    as_of = q.data_as_of(duck) - dt.timedelta(days=9, hours=5)
    both(engines, q.query_on, CODES, ["municipality"], LAST, as_of=as_of)
    both(engines, q.query_on, CODES, ["week"], CURRENT, as_of=as_of)


FILTERS = {"sectors": {"sector": [1, 4]}, "channel": {"channel": ["pos"]}, "kind": {"kind": "appeal"},
           "category-with-children": {"category": [1]}, "muni+sector-code": {"municipality": [1, 3], "sector": "housing"},
           "region": {"region": [2]}, "regions+muni": {"region": [1, 3], "municipality": [2, 60, 61]}}


@pytest.mark.parametrize("filters", list(FILTERS))
def test_filters(engines, filters):
    both(engines, q.query_on, CODES, ["municipality"], LAST, filters=FILTERS[filters], compare=True)


@pytest.mark.parametrize(("filters", "by"), [("sectors", "month"), ("channel", "organisation"),
                                             ("category-with-children", "week"), ("region", "region"),
                                             ("regions+muni", "region")])
def test_filters_by_other_dimensions(engines, filters, by):
    both(engines, q.query_on, CODES, [by], QUARTER, filters=FILTERS[filters])


@pytest.mark.parametrize("scope", [Scope.municipalities({1, 3}), Scope.sectors({2}),
                                   Scope(municipality_ids=frozenset({2}), sector_ids=frozenset({1, 4}))],
                         ids=["municipalities", "sector", "both"])
@pytest.mark.parametrize("by", [("sector",), ("day",), ("region",)], ids=lambda b: "+".join(b) or "total")
def test_scopes(engines, scope, by):
    both(engines, q.query_on, CODES, list(by), DAYS if by == ("day",) else LAST, scope=scope)


def test_a_municipality_scope_never_shows_another_municipality(engines):
    _, ch = engines
    scope = Scope.municipalities({2})
    for by in (["municipality"], ["municipality", "sector"], ["municipality", "month"]):
        out = q.query_on(ch, CODES, by, QUARTER, scope=scope)
        assert set(out["municipality_id"]) == {2}
    # a filter naming another municipality cannot widen the scope
    out = q.query_on(ch, ["volume"], ["municipality"], QUARTER, filters={"municipality": [1, 2]}, scope=scope)
    assert set(out["municipality_id"]) == {2}
    total = q.query_on(ch, ["volume"], [], QUARTER, scope=scope)["volume"].iloc[0]
    duck, _ = engines
    by_hand = duck.execute("SELECT count(*) FROM appeal WHERE municipality_id = 2 AND received_at >= $a "
                           "AND received_at < $b", {"a": QUARTER.start, "b": QUARTER.end}).fetchall()[0][0]
    assert total == by_hand


def test_reference_and_data_date(engines):
    duck, ch = engines
    assert q.data_as_of(ch) == q.data_as_of(duck)
    for name in ("municipality", "sector", "category", "organisation", "channel", "region"):
        same(q.reference(duck, name), q.reference(ch, name))


@pytest.mark.parametrize("table", REBUILT)
def test_rollups_built_on_clickhouse_equal_duckdb_s(engines, table):
    """The same measure, duration, quantile and stock definitions, computed by each engine from the facts."""
    same_table(*engines, table)


def same_table(duck, ch, table: str) -> None:
    columns = [r[0] for r in duck.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = $t "
                                          "ORDER BY column_index", {"t": table}).fetchall()]
    order = ", ".join(c for c in columns if c not in ("micros",) or table != "appeal_quantile")
    # DuckDB's columns by name: ClickHouse's rollups also hold their keys and weights (appeal_duration's
    # appeal key and weight; the hour sums as microseconds, read as hours through an ALIAS column)
    sql = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"  # noqa: S608 - catalog names
    d, c = duck.execute(sql).df(), ch.execute(sql).df()
    if table == "appeal_quantile":  # lists of floats: compared element by element
        for frame in (d, c):
            frame["micros"] = frame["micros"].map(list)
        assert len(d) == len(c)
        assert all(pytest.approx(x, rel=1e-12) == y for x, y in zip(d.pop("micros"), c.pop("micros"), strict=True))
    same(d, c)


def test_copy_carries_regions_shapes_and_severity(engines):
    """The region level (``region``, ``municipality.region_id``, ``region_shape``) and the categories'
    severity reach ClickHouse as they are in DuckDB; boundaries' bytes unchanged."""
    duck, ch = engines
    for table in ("region", "municipality", "category"):
        same_table(duck, ch, table)
    sql = ("SELECT region_id, hex(geometry_wkb) AS wkb, simplified_geojson, source, updated_at, name "
           "FROM region_shape ORDER BY region_id")
    shapes = duck.execute(sql).df()
    assert len(shapes) == 3
    same(shapes, ch.execute(sql).df())
    assert duck.execute("SELECT count(*) FROM category WHERE severity = 'high'").fetchall()[0][0] > 0


def test_a_copy_never_overwrites_a_warehouse(engines, tmp_path):
    _, ch = engines
    with pytest.raises(ClickHouseError, match="уже есть хранилище"):
        copy_warehouse(tmp_path / "nothing.duckdb", ch)


# --- the other metrics modules: their own SQL goes through the same translation ---------------------


def equal(duck: object, ch: object) -> None:
    """Frames as ``same``; anything else (dataclasses of counts, lists, numbers) by value."""
    if isinstance(duck, pd.DataFrame):
        same(duck.reset_index(drop=True), ch.reset_index(drop=True))
    else:
        assert repr(ch) == repr(duck)


MODULE_CASES = {
    "rating-municipalities": lambda con: rating.rate_municipalities(LAST, con=con),
    "rating-organisations": lambda con: rating.rate_organisations(QUARTER, con=con),
    "rating-unsettled": lambda con: rating.rate_municipalities(CURRENT, con=con),
    "kpi-series": lambda con: kpi.kpi_series("on_time_share", "month", 6, con=con),
    "kpi-weekly": lambda con: kpi.kpi_series("resolve_days_median", "week", 8, sector=4, con=con),
    "kpi-small-multiples": lambda con: kpi.kpi_small_multiples("volume", 6, con=con),
    "signals": lambda con: signals.detect_signals(con=con),
    "priority": lambda con: priority.priority_problems(LAST, con=con),
    "priority-municipality": lambda con: priority.municipality_problems(LAST, 1, con=con),
    "workload": lambda con: workload.monthly_load(con=con),
    "appeal-list": lambda con: appeals.appeal_list(LAST, municipality=1, con=con).rows,
    "appeal-count": lambda con: appeals.appeal_list(QUARTER, sector=4, limit=5, con=con).total,
    "organisation-card": lambda con: appeals.organisation_card(64, con=con),
    "roadmap": lambda con: roadmap.roadmap_items(con=con),
    "roadmap-effects": lambda con: roadmap.roadmap_effects(con=con),
    "compare": lambda con: comparison.compare(
        ["volume", "on_time_share", "resolve_days_median"], ["municipality"], LAST, con=con
    ).sort_values("municipality_id"),
}


@pytest.mark.parametrize("case", list(MODULE_CASES))
def test_other_metrics_modules(engines, case):
    from metrics.scope import system_scope

    duck, ch = engines
    with system_scope():
        equal(MODULE_CASES[case](duck), MODULE_CASES[case](ch))


def test_served_through_the_engine_setting(engines, tmp_path):
    """``source.configure("chdb:DIR")`` (what ``CUR_ENGINE`` sets) serves every page's modules from
    ClickHouse: the status and catalog answers equal the DuckDB file's."""
    from metrics import catalog, source, status
    from metrics.scope import system_scope

    duck, ch = engines
    if not isinstance(ch, ChdbConnection):
        pytest.skip("the served engine is checked on chDB")
    db = _duck_file(duck)
    answers = []
    try:
        for setting in (str(db), f"chdb:{ch.directory}"):
            source.configure(setting)
            with system_scope():
                answers.append((status.warehouse_status(), catalog.months_with_data(), catalog.as_of(),
                                q.query(CODES, ["sector"], LAST)))
            assert source.warehouse_identity()
    finally:
        source.configure(None)
    (s1, m1, a1, f1), (s2, m2, a2, f2) = answers
    assert (repr(s2), m2, a2) == (repr(s1), m1, a1)
    same(f1, f2)


def test_values_with_quotes_and_backslashes_stay_values(engines):
    """A filter value is bound, never spliced: quotes and backslashes reach the engine as data."""
    for value in ["it's", "a\\'b", "x\tb\\n", "'; DROP TABLE appeal; --"]:
        both(engines, q.query_on, ["volume", "on_time_share"], ["municipality"], LAST, filters={"channel": [value]})
    _, ch = engines
    assert "appeal" in ch.tables()


def test_a_failed_copy_leaves_nothing_visible(engines, monkeypatch):
    duck, ch = engines
    if not isinstance(ch, ChdbConnection):
        pytest.skip("checked on chDB")
    db = _duck_file(duck)
    target = ChdbConnection(ch.directory, database="cur_failed", create=True)
    calls = []

    def failing(table, path):
        calls.append(table)
        if len(calls) == 3:
            raise ClickHouseError("обрыв связи")
        ChdbConnection.insert_parquet(target, table, path)

    monkeypatch.setattr(target, "insert_parquet", failing)
    with pytest.raises(ClickHouseError, match="обрыв"):
        copy_warehouse(db, target)
    databases = {r[0] for r in ch.native("SELECT name FROM system.databases").fetchall()}
    assert not {"cur_failed_building"} & databases
    assert target.native("SELECT count() FROM system.tables WHERE database = 'cur_failed'").fetchall()[0][0] == 0
    assert "appeal" in ch.tables()  # the served copy is untouched


def test_several_threads_share_the_engine(engines):
    """The web server's threads share one chDB engine: answers in parallel equal the sequential ones."""
    from concurrent.futures import ThreadPoolExecutor

    duck, ch = engines
    asks = [(["municipality"], LAST), (["sector"], QUARTER), (["week"], DAYS), (["channel"], CURRENT)] * 3
    expected = [q.query_on(duck, ["volume", "on_time_share", "resolve_days_median"], by, p) for by, p in asks]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda a: q.query_on(ch, ["volume", "on_time_share", "resolve_days_median"], *a), asks))
    for d, c in zip(expected, got, strict=True):
        same(d, c)


# name -> (a fragment of the callback's outputs, the values it is posted with; a period None = LAST)
PAGE_CALLBACKS = {
    "heatmap": ("heatmap-map", {"heatmap-period": None, "heatmap-sector": "all", "heatmap-channel": "all",
                                "heatmap-indicator": "on_time_share"}),
    "heatmap-region-tension": ("heatmap-map", {"heatmap-period": None, "heatmap-sector": "all",
                                               "heatmap-channel": "all", "heatmap-indicator": "tension_index",
                                               "heatmap-region": 2}),
    "rating": ("rating-grid", {"rating-period": None, "rating-who": "municipality", "rating-sector": "all"}),
    "kpi": ("kpi-trend", {"kpi-indicator": "resolve_days_median", "kpi-sector": "all", "kpi-municipality": None,
                          "kpi-grain": "month"}),
    "problems": ("problems-list", {"problems-period": None, "problems-municipality": None}),
    "regions": ("regions-table", {"regions-period": None, "regions-indicator": "tension_index"}),
    # every panel of the wall, the tension panel too; a warehouse of several regions: one region's wall
    "wall": ("wall-tension", {"wall-version": "v1", "wall-address": {"region": "2"}}),
}


def test_pages_answer_the_same_on_both_engines(engines):
    """The dashboard's callbacks (heat map, of a region too, rating, KPI, problems, «Регионы», the wall)
    on ``chdb:`` give the very JSON they give on the DuckDB file (the boundaries' URL carries each
    warehouse's own version)."""
    import re

    import app as app_module
    from metrics import source
    from tests.dash_requests import callback_body

    duck, ch = engines
    if not isinstance(ch, ChdbConnection):
        pytest.skip("the served engine is checked on chDB")
    db = str(_duck_file(duck))
    answers = []
    try:
        for setting in (db, f"chdb:{ch.directory}"):
            dash_app = app_module.create_app(setting)
            client = dash_app.server.test_client()
            client.get("/")
            out = {}
            for name, (fragment, values) in PAGE_CALLBACKS.items():
                values = {k: (LAST.code if k.endswith("period") and v is None else v) for k, v in values.items()}
                response = client.post("/_dash-update-component",
                                       json=callback_body(dash_app.callback_map, fragment, values))
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
                out[name] = re.sub(r"region\.geojson\?v=[\w-]+", "region.geojson", response.get_data(as_text=True))
            assert all(len(body) > 2000 for body in out.values()), {k: len(v) for k, v in out.items()}
            # the panels asked about are drawn, not messages: the region's tension, the three regions ranked
            assert "wall-tension-total" in out["wall"] and "Мало обращений" not in out["wall"]
            assert "Тверская область" in out["wall"]  # the wall of region 2
            assert all(name in out["regions"] for name in ("Смоленская", "Тверская", "Ярославская"))
            assert "Тверская" in out["heatmap-region-tension"]  # narrowed to region 2
            answers.append(out)
    finally:
        source.configure(None)
    for name in PAGE_CALLBACKS:
        assert answers[1][name] == answers[0][name], name


def test_an_import_refreshes_only_its_months_on_both_engines(engines, tmp_path):
    """What an import does to the facts (answers arrive, appeals are withdrawn, new ones come), followed
    by each engine's rollup upkeep (``refresh_rollups`` of the touched months on DuckDB; on ClickHouse the
    removed and added versions fed with their signs to the views of ``data.chrollup``): the rollups and
    the answers stay equal."""
    import shutil

    from data import chrollup
    from data.clickhouse import latest_receipt
    from data.rollup import refresh_rollups

    duck, ch = engines
    if not isinstance(ch, ChdbConnection):
        pytest.skip("checked on chDB")
    original = _duck_file(duck)
    db = tmp_path / "changed.duckdb"
    shutil.copy(original, db)
    target = ChdbConnection(ch.directory, database="cur_changed", create=True)
    copy_warehouse(original, target, rebuild=True)
    w = connect(db)
    pick = "SELECT source_id FROM appeal WHERE received_at >= $a AND received_at < $b AND {} ORDER BY source_id LIMIT 40"
    answered = [r[0] for r in w.execute(pick.format("answered_at IS NULL"),
                                        {"a": LAST.start, "b": LAST.end}).fetchall()]
    withdrawn = [r[0] for r in w.execute(pick.format("TRUE"), {"a": QUARTER.start, "b": LAST.start}).fetchall()]
    copied = [r[0] for r in w.execute(pick.format("TRUE"), {"a": CURRENT.start, "b": CURRENT.end}).fetchall()]
    assert answered and withdrawn and copied
    days = [r[0] for r in w.execute("SELECT DISTINCT CAST(received_at AS DATE) FROM appeal WHERE "
                                    "list_contains($ids, source_id)", {"ids": answered + withdrawn + copied}).fetchall()]
    w.execute("BEGIN")
    w.execute("UPDATE appeal SET answered_at = received_at + INTERVAL 2 DAY, status = 'resolved', "
              "closure_reason = 'resolved', answer_on_merits = TRUE WHERE list_contains($ids, source_id)",
              {"ids": answered})
    w.execute("DELETE FROM appeal WHERE list_contains($ids, source_id)", {"ids": withdrawn})
    w.execute("INSERT INTO appeal SELECT * REPLACE ('N' || source_id AS source_id) FROM appeal "
              "WHERE list_contains($ids, source_id)", {"ids": copied})
    refresh_rollups(w, days)
    w.execute("COMMIT")
    # the same change on ClickHouse: the changed and withdrawn rows out, the new versions in, signed
    parquet = tmp_path / "rows.parquet"
    w.execute(f"COPY (SELECT *, 1 AS sign FROM appeal WHERE list_contains($ids, source_id)) TO '{parquet}' "
              "(FORMAT parquet)", {"ids": answered + ["N" + s for s in copied]})
    old_latest = latest_receipt(target)
    chrollup.create_pending(target)
    target.command("INSERT INTO imp_change SELECT * FROM file({p:String}, Parquet)", {"p": str(parquet)})
    text, values = to_clickhouse("list_contains($ids, source_id)", {"ids": answered + withdrawn})
    chrollup.remove(target, text.removeprefix("SELECT "), values)
    chrollup.add_pending(target)
    assert chrollup.apply_pending(target, old_latest)
    target.command("DROP TABLE imp_change")
    w.close()
    changed = connect(db, read_only=True)
    try:
        assert q.query_on(changed, ["volume", "on_time_share"], [], QUARTER).iloc[0].tolist() != \
            q.query_on(duck, ["volume", "on_time_share"], [], QUARTER).iloc[0].tolist()  # the change shows
        for table in REBUILT:
            same_table(changed, target, table)
        for by, period in ((["municipality"], LAST), (["week"], QUARTER), (["sector"], CURRENT), ([], QUARTER)):
            same(q.query_on(changed, CODES, by, period), q.query_on(target, CODES, by, period))
    finally:
        changed.close()


def test_a_duckdb_file_from_before_a_rollup_gets_every_rollup_built(engines, tmp_path):
    """A DuckDB file lacking some rollups (made before them): ``copy`` still builds every one on ClickHouse,
    equal to what DuckDB builds from the same facts."""
    import shutil

    import duckdb

    duck, ch = engines
    if not isinstance(ch, ChdbConnection):
        pytest.skip("checked on chDB")
    old = tmp_path / "old.duckdb"
    shutil.copy(_duck_file(duck), old)
    con = duckdb.connect(str(old))
    for table in ("appeal_daily", "appeal_known_o", "appeal_open", "appeal_quantile"):
        con.execute(f"DROP TABLE {table}")  # noqa: S608 - constant names
    con.close()
    target = ChdbConnection(ch.directory, database="cur_from_old", create=True)
    copy_warehouse(old, target)
    for table in ("appeal_daily", "appeal_known_o", "appeal_open", "appeal_quantile", "appeal_monthly"):
        same_table(duck, target, table)
    target.command("DROP DATABASE cur_from_old", in_database=False)


def test_country_view_served_from_either_engine(engines):
    """``metrics.country`` (the /regions rating: rate per region's residents, exact medians and their
    change, the tension index beside it) and the region lists of ``metrics.catalog`` answer the same
    from the DuckDB file and from ``chdb:``."""
    from metrics import catalog, country, source
    from metrics.scope import system_scope

    duck, ch = engines
    if not isinstance(ch, ChdbConnection):
        pytest.skip("the served engine is checked on chDB")
    db = str(_duck_file(duck))
    answers = []
    try:
        for setting in (db, f"chdb:{ch.directory}"):
            source.configure(setting)
            with system_scope():
                answers.append({
                    "rating-month": country.region_rating(LAST), "rating-quarter": country.region_rating(QUARTER),
                    "rating-days": country.region_rating(DAYS), "rating-current": country.region_rating(CURRENT),
                    "regions": catalog.regions(), "count": catalog.region_count(),
                    "units": catalog.region_municipalities(2), "no-units": catalog.region_municipalities(99),
                    "shapes": catalog.regions_geojson(),
                })
    finally:
        source.configure(None)
    duck_answers, ch_answers = answers
    assert duck_answers["count"] == 3 and len(duck_answers["units"]) == 27
    assert len(duck_answers["shapes"]["features"]) == 2 and len(duck_answers["shapes"]["background"]) == 1
    assert duck_answers["rating-month"]["place"].notna().all()
    for name, value in duck_answers.items():
        equal(value, ch_answers[name])


def test_a_missing_table_or_column_fails_as_on_duckdb(engines):
    """Code written for a warehouse from before a table or column (``except duckdb.CatalogException``,
    ``duckdb.BinderException``) handles ClickHouse's UNKNOWN_TABLE and UNKNOWN_IDENTIFIER the same way."""
    import duckdb

    for con in engines:
        with pytest.raises(duckdb.CatalogException):
            con.execute("SELECT count(*) FROM no_such_table").fetchall()
        with pytest.raises(duckdb.BinderException):
            con.execute("SELECT no_such_column FROM category").fetchall()
    _, ch = engines
    with pytest.raises(ClickHouseError):  # still the engine's own error, with its message
        ch.execute("SELECT count(*) FROM no_such_table")
