"""Boundaries of any region: coordinate systems, re-imports that never lose a shape, the size
budget on real files, the demo's shipped OpenStreetMap boundaries, population files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import box, shape

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised, get_meta
from geo.boundaries import OSM_ATTRIBUTION, import_boundaries
from geo.schematic import equal_area_crs, project
from geo.shipped import SMOLENSK_OSM as SHIPPED
from geo.shipped import load_demo_boundaries
from geo.simplify import MAX_GEOJSON_BYTES, dumps
from geo.store import load_region_geojson, load_shapes

PROJECT = Path(__file__).resolve().parents[1]
# ../shared/realdata beside the checkout; CUR_REALDATA points elsewhere (e.g. from a git worktree).
REALDATA = Path(os.environ.get("CUR_REALDATA") or PROJECT.parent / "shared" / "realdata")
REFERENCE_CSV = PROJECT / "data" / "reference" / "smolensk_municipalities.csv"

needs_realdata = pytest.mark.skipif(
    not (REALDATA / "osm-boundaries").is_dir(),
    reason=f"нет реальных данных {REALDATA} (../shared/realdata есть только в общей рабочей копии)",
)

# Every real boundary set of ../shared/realdata: (file, features).
REAL_FILES = [
    ("osm-boundaries/smolensk_oblast_municipal.geojson", 27),
    ("osm-boundaries/yaroslavl_oblast_municipal.geojson", 19),
    ("osm-boundaries/stavropol_krai_municipal.geojson", 34),
    ("la-311/la_neighborhood_councils_2019.geojson", 99),
    ("la-311/la_city_council_districts_2012.geojson", 15),
    ("baltimore-311/baltimore_neighborhoods_2013.geojson", 278),
]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geo", *args], cwd=PROJECT, capture_output=True, text=True, timeout=180, check=False
    )


def _empty_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(path)
    ensure_initialised(con, municipalities_csv=None)
    return con


def _area_km2(geom: Any) -> float:
    centre = geom.representative_point()
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", equal_area_crs(centre.x, centre.y), always_xy=True)
    return project(geom, to_metric).area / 1e6


def _is_coverage(fc: dict[str, Any]) -> bool:
    geoms = np.asarray([shape(f["geometry"]) for f in fc["features"]], dtype=object)
    return all(g.is_valid and not g.is_empty for g in geoms) and bool(shapely.coverage_is_valid(geoms))


def _write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
    return path


def _square(name: str, x: float, y: float, size: float = 0.5, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"name": name, **props},
        "geometry": shapely.geometry.mapping(box(x, y, x + size, y + size)),
    }


# ---------------------------------------------------------------- coordinate systems


@needs_realdata
def test_geojson_in_web_mercator_without_crs_is_recognised(tmp_path: Path) -> None:
    source = REALDATA / "osm-boundaries" / "yaroslavl_oblast_municipal.geojson"
    frame = gpd.read_file(source).to_crs("EPSG:3857")
    data = json.loads(frame.to_json())
    data.pop("crs", None)  # as old web exports write it: metres, and no word about them
    mercator = tmp_path / "yaroslavl_3857.geojson"
    mercator.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert "crs" not in json.loads(mercator.read_text(encoding="utf-8"))

    db = tmp_path / "w.duckdb"
    result = _run_cli("import", str(mercator), "--db", str(db), "--no-reference")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "EPSG:3857" in result.stderr  # the guess is said aloud
    report = json.loads(result.stdout)
    assert "3857" in report["crs"] and report["created"] == 19
    con = duckdb.connect(str(db), read_only=True)
    try:
        shapes = load_shapes(con)
        total = con.execute("SELECT sum(area_km2) FROM municipality").fetchall()[0][0]
    finally:
        con.close()
    # Back in degrees, where the region is: 56–59 °N, 37–41 °E, 36 175 km² (SOURCE.txt).
    xmin, ymin, xmax, ymax = shapely.total_bounds(np.asarray(list(shapes.values()), dtype=object))
    assert 37 < xmin < xmax < 41.5 and 56 < ymin < ymax < 59
    assert total == pytest.approx(36_175, rel=0.01)


def test_coordinates_of_no_known_system_are_refused_in_one_russian_line(tmp_path: Path) -> None:
    # 30 000 km east of the origin: no degrees and outside Web Mercator's square.
    far = _write_geojson(tmp_path / "far.geojson", [_square("Далёкий район", 30_000_000, 7_000_000, 50_000)])
    db = tmp_path / "w.duckdb"
    result = _run_cli("import", str(far), "--db", str(db), "--no-reference")
    assert result.returncode == 2
    assert result.stdout == "" and not db.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ошибка:") and "--crs" in lines[0]
    assert "Traceback" not in result.stderr


def test_crs_option_names_the_system_of_a_file_without_one(tmp_path: Path) -> None:
    # UTM 36N metres fit Web Mercator's range too: only --crs can tell them apart.
    cells = gpd.GeoDataFrame({"name": ["Западный район", "Восточный район"]},
                             geometry=[box(33.0, 55.0, 33.5, 55.3), box(33.5, 55.0, 34.0, 55.3)], crs="EPSG:4326")
    data = json.loads(cells.to_crs("EPSG:32636").to_json())
    data.pop("crs", None)
    path = tmp_path / "utm.geojson"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    result = _run_cli("import", str(path), "--db", str(db), "--no-reference", "--crs", "EPSG:32636")
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        shapes = load_shapes(con)
    finally:
        con.close()
    assert shapes[1].bounds == pytest.approx((33.0, 55.0, 33.5, 55.3), abs=1e-6)
    bad = _run_cli("import", str(path), "--db", str(db), "--crs", "EPSG:нет")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- re-import never loses a shape


def test_reimport_with_an_unrepairable_polygon_keeps_the_previous_shape(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = _write_geojson(tmp_path / "first.geojson", [
        _square("Альфинский район", 33.0, 55.0),
        _square("Бетинский район", 33.5, 55.0),
        _square("Гаммский район", 34.0, 55.0),
    ])
    assert _run_cli("import", str(first), "--db", str(db), "--no-reference").returncode == 0
    con = duckdb.connect(str(db), read_only=True)
    before = load_shapes(con)
    con.close()

    collinear = {"type": "Polygon", "coordinates": [[[33.5, 55.0], [33.7, 55.0], [34.0, 55.0], [33.5, 55.0]]]}
    second = _write_geojson(tmp_path / "second.geojson", [
        _square("Альфинский район", 33.0, 55.0, 0.49),  # a changed border: this one is taken
        {"type": "Feature", "properties": {"name": "Бетинский район"}, "geometry": collinear},
        _square("Гаммский район", 34.0, 55.0),
        # A new unit whose only polygon is unusable is named and not created.
        {"type": "Feature", "properties": {"name": "Дельтинский район"}, "geometry": collinear},
        # A bow-tie is repaired, and named.
        {"type": "Feature", "properties": {"name": "Эпсилонский район"},
         "geometry": {"type": "Polygon", "coordinates": [[[35, 55], [36, 56], [36, 55], [35, 56], [35, 55]]]}},
    ])
    result = _run_cli("import", str(second), "--db", str(db))
    # Exit 0: the import is done, the warehouse consistent; what could not be used is named.
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kept_previous"] == ["Бетинский район"]
    assert report["invalid"] == ["Бетинский район", "Дельтинский район"]
    assert report["repaired"] == ["Эпсилонский район"]
    assert report["without_shape"] == []
    assert "оставлена прежняя граница: Бетинский район" in result.stderr
    assert "границы нет: Дельтинский район" in result.stderr
    assert "исправлена геометрия: Эпсилонский район" in result.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        after = load_shapes(con)
        names = [r[0] for r in con.execute("SELECT name FROM municipality ORDER BY id").fetchall()]
        served = load_region_geojson(con)
    finally:
        con.close()
    assert names == ["Альфинский район", "Бетинский район", "Гаммский район", "Эпсилонский район"]
    assert after[2].equals(before[2])  # the good shape survived the broken file
    assert after[1].bounds == pytest.approx((33.0, 55.0, 33.49, 55.49))
    assert {f["id"] for f in served["features"]} == {1, 2, 3, 4}


# ---------------------------------------------------------------- size budget on real files


@needs_realdata
@pytest.mark.parametrize(("name", "features"), REAL_FILES, ids=[Path(n).stem for n, _ in REAL_FILES])
def test_any_region_fits_the_budget_with_its_topology(tmp_path: Path, name: str, features: int) -> None:
    con = _empty_warehouse(tmp_path / "w.duckdb")
    try:
        started = time.perf_counter()
        report = import_boundaries(con, REALDATA / name)
        seconds = time.perf_counter() - started
        fc = load_region_geojson(con)
        units = con.execute("SELECT count(*) FROM municipality").fetchall()[0][0]
    finally:
        con.close()
    size = len(dumps(fc).encode("utf-8"))
    assert size == report["geojson_bytes"] <= MAX_GEOJSON_BYTES
    assert report["features"] == features
    assert len(fc["features"]) == units  # no unit lost on the way
    assert report["coverage_valid"] is True
    assert _is_coverage(fc), "neighbours must share their simplified borders exactly"
    assert seconds < 60
    print(f"{name}: {size / 1000:.0f} KB, tolerance {report['tolerance_deg']:.2g}°, {seconds:.1f} s")


# ---------------------------------------------------------------- the demo's real boundaries


def test_shipped_copy_is_small_licensed_and_a_coverage() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= MAX_GEOJSON_BYTES
    data = json.loads(text)
    assert len(data["features"]) == 27
    assert all(f["properties"]["source"] == "OpenStreetMap" for f in data["features"])
    assert all(f["properties"]["license"] == "ODbL 1.0" for f in data["features"])
    assert _is_coverage(data)
    note = (SHIPPED.parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "© участники OpenStreetMap" in note and "ODbL" in note


def test_demo_warehouse_has_the_real_smolensk_shapes(small_demo: Path) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    try:
        fc = load_region_geojson(con)
        shapes = load_shapes(con)
        rows = con.execute(
            "SELECT DISTINCT is_schematic, source FROM municipality_shape"
        ).fetchall()
        meta = {k: get_meta(con, k) for k in ("geometry_attribution", "geometry_license", "geometry_source")}
        names = dict(con.execute("SELECT id, name FROM municipality").fetchall())
    finally:
        con.close()
    assert rows == [(False, SHIPPED.name)]
    assert meta == {"geometry_attribution": OSM_ATTRIBUTION, "geometry_license": "ODbL 1.0",
                    "geometry_source": SHIPPED.name}
    assert fc["attribution"] == OSM_ATTRIBUTION
    assert len(shapes) == len(names) == 27
    # The official areas of the reference list (independent of OSM) within 10 %.
    with open(REFERENCE_CSV, encoding="utf-8") as fh:
        official = {r["name"]: float(r["area_km2"]) for r in csv.DictReader(fh)}
    for mid, geom in shapes.items():
        assert _area_km2(geom) == pytest.approx(official[names[mid]], rel=0.1), names[mid]
    assert len(dumps(fc).encode("utf-8")) <= MAX_GEOJSON_BYTES and _is_coverage(fc)


def test_demo_falls_back_to_schematic_cells_for_another_region(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    try:
        ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
        con.execute("DELETE FROM municipality WHERE name = 'Велижский'")  # not the shipped region any more
        result = load_demo_boundaries(con)
        kinds = con.execute("SELECT DISTINCT is_schematic FROM municipality_shape").fetchall()
        attribution = get_meta(con, "geometry_attribution")
    finally:
        con.close()
    assert result["kind"] == "schematic"
    assert kinds == [(True,)] and attribution == ""


def test_map_figures_carry_the_attribution(small_demo: Path) -> None:
    import pandas as pd
    import plotly.graph_objects as go

    from charts import figures
    from metrics import indicators

    con = duckdb.connect(str(small_demo), read_only=True)
    try:
        fc = load_region_geojson(con)
    finally:
        con.close()
    spec = indicators.get("volume")
    frame = pd.DataFrame({"municipality_id": [f["id"] for f in fc["features"]], "volume": 1.0})
    for fig in (figures.choropleth(frame, fc, spec, "Карта"), figures.wall_choropleth(frame, fc, spec)):
        texts = [a.text for a in go.Figure(fig).layout.annotations]
        assert OSM_ATTRIBUTION in texts
    without = {k: v for k, v in fc.items() if k != "attribution"}
    assert not go.Figure(figures.choropleth(frame, without, spec, "Карта")).layout.annotations


# ---------------------------------------------------------------- population


def test_population_file_rejects_every_bad_row_with_a_reason(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)  # the 27 Smolensk units
    con.close()
    path = tmp_path / "population.csv"
    path.write_text(
        "unit;population\n"
        "г. Смоленск;320 000\n"          # accepted (official form of «город Смоленск»)
        "Вяземский район;70000\n"       # accepted
        "Неведомский район;1000\n"      # unknown unit
        "Вяземский;71000\n"             # the same unit again
        "Гагаринский;много\n"           # not a number
        "Ельнинский;-5\n"               # negative
        "Ершичский;\n"                  # empty
        ";500\n"                        # no unit
        "Сафоновский;1,5\n",            # not a whole number
        encoding="utf-8",
    )
    result = _run_cli("population", str(path), "--db", str(db), "--estimate")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["read"] == 9 == report["accepted"] + report["rejected"]
    assert report["accepted"] == 2
    reasons = {r["row"]: r["reason"] for r in report["rejections"]}
    assert sorted(reasons) == [4, 5, 6, 7, 8, 9, 10]
    assert "не найден" in reasons[4] and "повтор" in reasons[5] and "строке 3" in reasons[5]
    assert "не число" in reasons[6] and "не целое" in reasons[7]
    assert "не указано население" in reasons[8] and "не указан муниципалитет" in reasons[9]
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = dict(con.execute(
            "SELECT name, (population, population_is_approx) FROM municipality"
        ).fetchall())
    finally:
        con.close()
    assert rows["город Смоленск"] == (320_000, True)
    assert rows["Вяземский"] == (70_000, True)
    unreadable = _run_cli("population", str(tmp_path / "missing.csv"), "--db", str(db))
    assert unreadable.returncode == 2 and len(unreadable.stderr.strip().splitlines()) == 1


def test_population_from_a_property_of_the_boundary_file(tmp_path: Path) -> None:
    path = _write_geojson(tmp_path / "units.geojson", [
        _square("Альфинский район", 33.0, 55.0, pop="12 345"),
        _square("Бетинский район", 33.5, 55.0, pop=None),
    ])
    db = tmp_path / "w.duckdb"
    result = _run_cli("import", str(path), "--db", str(db), "--no-reference", "--population", "pop")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["population_field"] == "pop" and report["population_units"] == 1
    assert "Бетинский район" in result.stderr  # the unit without a number is named
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT name, population, population_is_approx FROM municipality ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows == [("Альфинский район", 12_345, False), ("Бетинский район", None, False)]
    wrong = _run_cli("import", str(path), "--db", str(db), "--population", "people")
    assert wrong.returncode == 2 and "people" in wrong.stderr


def test_population_info_tells_whether_population_exists_and_is_estimated(tmp_path: Path) -> None:
    from metrics import source
    from metrics.catalog import population_info

    units = _write_geojson(tmp_path / "u.geojson", [
        _square("Альфинский район", 33.0, 55.0), _square("Бетинский район", 33.5, 55.0),
        _square("Гаммский район", 34.0, 55.0),
    ])
    bare, counted = tmp_path / "bare.duckdb", tmp_path / "counted.duckdb"
    for db in (bare, counted):
        con = _empty_warehouse(db)
        try:
            import_boundaries(con, units)
            if db == counted:
                con.execute("UPDATE municipality SET population = 1000, population_is_approx = FALSE WHERE id = 1")
                con.execute("UPDATE municipality SET population = 2000, population_is_approx = TRUE WHERE id = 2")
        finally:
            con.close()
    try:
        source.configure(bare)
        none = population_info()
        source.configure(counted)
        some = population_info()
    finally:
        source.configure(None)
    assert (none.units, none.with_population, none.has_population, none.is_estimate) == (3, 0, False, False)
    assert (some.with_population, some.estimated, some.has_population, some.is_estimate) == (2, 1, True, True)
    assert some.without_population == ("Гаммский район",)


@pytest.mark.browser
def test_heat_map_page_draws_the_real_shapes_with_the_attribution(served_app, browser, small_demo: Path) -> None:
    from tests.conftest import ARTIFACTS, console_errors, wait_js

    browser.get(served_app(small_demo) + "/?period=2025-10&indicator=volume")
    credit = wait_js(browser, """return [...document.querySelectorAll('#heatmap-map .annotation-text')]
                                 .map(a => a.textContent).find(t => t.includes('OpenStreetMap')) || null;""")
    assert credit == OSM_ATTRIBUTION
    shapes = browser.execute_script(
        "return document.querySelectorAll('#heatmap-map .js-plotly-plot .choroplethlocation').length")
    assert shapes == 2 * 27
    assert not console_errors(browser)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "heatmap_osm.png"))


@needs_realdata
def test_another_regions_file_into_a_new_warehouse_holds_only_its_units(tmp_path: Path) -> None:
    stavropol = REALDATA / "osm-boundaries" / "stavropol_krai_municipal.geojson"
    db = tmp_path / "w.duckdb"
    result = _run_cli("import", str(stavropol), "--db", str(db))  # no --no-reference needed
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        units = con.execute("SELECT count(*), count(*) FILTER (WHERE name = 'город Смоленск') FROM municipality"
                            ).fetchall()[0]
    finally:
        con.close()
    assert units == (34, 0)
    # The demo region's own file still gets the reference list (population, ОКТМО) in a new warehouse.
    smolensk = tmp_path / "s.duckdb"
    assert _run_cli("import", str(SHIPPED), "--db", str(smolensk)).returncode == 0
    con = duckdb.connect(str(smolensk), read_only=True)
    try:
        rows = con.execute("SELECT count(*), count(population), count(oktmo) FROM municipality").fetchall()[0]
        attribution = get_meta(con, "geometry_attribution")
    finally:
        con.close()
    assert rows == (27, 27, 27) and attribution == OSM_ATTRIBUTION
