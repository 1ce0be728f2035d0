"""Boundaries: schematic demo shapes, import of real files, simplification, the region GeoJSON."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from itertools import combinations
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import box, shape

from data.warehouse import connect, ensure_initialised, get_meta, open_warehouse
from geo.boundaries import BoundaryError, import_boundaries, read_boundary_file
from geo.schematic import build_schematic_shapes, equal_area_crs, project, store_schematic_shapes
from geo.simplify import MAX_GEOJSON_BYTES, dumps
from geo.store import load_region_geojson, load_shapes

PROJECT = Path(__file__).resolve().parents[1]
# ../shared/realdata beside the checkout; CUR_REALDATA points elsewhere (e.g. from a git worktree).
REALDATA = Path(os.environ.get("CUR_REALDATA") or Path(__file__).resolve().parents[2] / "shared" / "realdata")
OSM = REALDATA / "osm-boundaries"
SMOLENSK_OSM = OSM / "smolensk_oblast_municipal.geojson"
YAROSLAVL_OSM = OSM / "yaroslavl_oblast_municipal.geojson"

needs_realdata = pytest.mark.skipif(
    not SMOLENSK_OSM.exists(),
    reason=f"нет реальных данных {OSM} (../shared/realdata есть только в общей рабочей копии)",
)


# ---------------------------------------------------------------- helpers


def _areas_km2(geoms: list[Any]) -> np.ndarray:
    union = shapely.union_all(geoms)
    centre = union.representative_point()
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", equal_area_crs(centre.x, centre.y), always_xy=True)
    return np.array([project(g, to_metric).area / 1e6 for g in geoms])


def _geojson_shapes(fc: dict[str, Any]) -> list[Any]:
    return [shape(f["geometry"]) for f in fc["features"]]


def _assert_clean_coverage(geoms: list[Any], rel: float = 1e-6) -> None:
    """No overlaps and no gaps: the union's area is the sum of the parts' areas."""
    assert all(g.is_valid and not g.is_empty for g in geoms)
    areas = _areas_km2(geoms)
    union = shapely.union_all(geoms)
    union_area = _areas_km2([union])[0]
    overlaps = sum(
        _areas_km2([a.intersection(b)])[0]
        for a, b in combinations(geoms, 2)
        if a.intersects(b) and a.overlaps(b)
    )
    assert overlaps <= rel * areas.sum()
    assert union_area == pytest.approx(areas.sum(), rel=rel)


def _assert_clockwise(fc: dict[str, Any]) -> None:
    for feature in fc["features"]:
        geometry = feature["geometry"]
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        for rings in polygons:
            assert not shapely.LinearRing(rings[0]).is_ccw, feature["properties"]["name"]
            for hole in rings[1:]:
                assert shapely.LinearRing(hole).is_ccw


def _snapshot(db: Path) -> tuple[Any, ...]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return tuple(
            con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("municipality", "municipality_shape", "meta")
        )
    finally:
        con.close()


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geo", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _grid_frame(crs: str, code_name: str = "OKTMO") -> gpd.GeoDataFrame:
    """Four adjoining squares (a tiny region of 2 × 2 districts) near Smolensk, in ``crs``."""
    cells = [
        box(33.0 + dx * 0.5, 55.0 + dy * 0.3, 33.5 + dx * 0.5, 55.3 + dy * 0.3)
        for dy in (0, 1)
        for dx in (0, 1)
    ]
    frame = gpd.GeoDataFrame(
        {
            "NAME": [
                "Альфинский район",
                "Бетинский район",
                "г. Гаммаград",
                "Дельтинский муниципальный округ",
            ],
            code_name: ["99601000", "99602000", "99701000", "99603000"],
            "SQKM": [1.0, 2.0, 3.0, 4.0],
        },
        geometry=cells,
        crs="EPSG:4326",
    )
    return frame.to_crs(crs)


def _zip_shapefile(frame: gpd.GeoDataFrame, folder: Path, keep_prj: bool = True) -> Path:
    shp_dir = folder / "shp"
    shp_dir.mkdir()
    frame.to_file(shp_dir / "units.shp", engine="pyogrio")
    archive = folder / "units.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in sorted(shp_dir.iterdir()):
            if part.suffix == ".prj" and not keep_prj:
                continue
            zf.write(part, f"boundaries/{part.name}")
    return archive


def _empty_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(path)
    ensure_initialised(con, municipalities_csv=None)
    return con


# ---------------------------------------------------------------- schematic


@pytest.fixture(scope="module")
def schematic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("schematic") / "w.duckdb"
    with open_warehouse(db) as con:
        build_schematic_shapes(con)
    return db


def test_schematic_one_valid_shape_per_municipality(schematic_db: Path) -> None:
    con = connect(schematic_db, read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM municipality ORDER BY id").fetchall()]
        rows = con.execute("SELECT DISTINCT is_schematic, source FROM municipality_shape").fetchall()
        shapes = load_shapes(con)
        assert get_meta(con, "geometry_kind") == "schematic"
        fc = load_region_geojson(con)
    finally:
        con.close()
    assert len(ids) == 27
    assert sorted(shapes) == ids
    assert rows == [(True, "schematic")]
    assert all(
        g.is_valid and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon") for g in shapes.values()
    )
    assert [f["id"] for f in fc["features"]] == ids
    assert all(f["properties"]["is_schematic"] is True for f in fc["features"])
    assert {f["properties"]["municipality_id"] for f in fc["features"]} == set(ids)


def test_schematic_tiles_the_region_without_gaps_or_overlaps(schematic_db: Path) -> None:
    con = connect(schematic_db, read_only=True)
    try:
        shapes = load_shapes(con)
    finally:
        con.close()
    geoms = list(shapes.values())
    assert shapely.coverage_is_valid(np.asarray(geoms, dtype=object))
    _assert_clean_coverage(geoms)
    union = shapely.union_all(geoms)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    # The outline is sized to the region's total area (49 779 km² by the reference list).
    assert _areas_km2([union])[0] == pytest.approx(49_826.4, rel=0.01)


def test_schematic_sizes_and_admin_centres(schematic_db: Path) -> None:
    con = connect(schematic_db, read_only=True)
    try:
        units = con.execute(
            "SELECT id, name, kind, area_km2, lon, lat FROM municipality ORDER BY id"
        ).fetchall()
        shapes = load_shapes(con)
    finally:
        con.close()
    areas = dict(zip(shapes, _areas_km2(list(shapes.values())), strict=True))
    by_name = {name: mid for mid, name, *_ in units}
    assert areas[by_name["город Смоленск"]] == pytest.approx(166.5, rel=0.3)
    assert areas[by_name["город Десногорск"]] == pytest.approx(56.8, rel=0.3)
    # The cities are carved out: each lies inside the district around it, not at the edge of the map.
    union = shapely.union_all(list(shapes.values()))
    assert not shapes[by_name["город Смоленск"]].touches(union.boundary)
    for mid, _name, kind, area, lon, lat in units:
        if kind != "городской округ":
            assert shapes[mid].contains(shapely.Point(lon, lat))
            assert areas[mid] == pytest.approx(area, rel=0.35)


def test_schematic_geojson_is_small_clockwise_and_a_valid_coverage(schematic_db: Path) -> None:
    con = connect(schematic_db, read_only=True)
    try:
        fc = load_region_geojson(con)
    finally:
        con.close()
    assert len(dumps(fc).encode("utf-8")) <= MAX_GEOJSON_BYTES
    _assert_clockwise(fc)
    simplified = _geojson_shapes(fc)
    assert shapely.coverage_is_valid(np.asarray(simplified, dtype=object))


def test_schematic_is_deterministic(schematic_db: Path, tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "again.duckdb") as con:
        build_schematic_shapes(con)
    query = "SELECT municipality_id, geometry_wkb, simplified_geojson FROM municipality_shape ORDER BY 1"
    first = duckdb.connect(str(schematic_db), read_only=True)
    second = duckdb.connect(str(tmp_path / "again.duckdb"), read_only=True)
    try:
        assert first.execute(query).fetchall() == second.execute(query).fetchall()
    finally:
        first.close()
        second.close()


def test_store_schematic_shapes_joins_the_callers_transaction(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "w.duckdb") as con:
        con.begin()
        store_schematic_shapes(con)
        con.rollback()
        assert con.execute("SELECT count(*) FROM municipality_shape").fetchall() == [(0,)]
        con.begin()
        stats = store_schematic_shapes(con)
        con.commit()
        assert stats["shapes"] == 27
        assert con.execute("SELECT count(*) FROM municipality_shape").fetchall() == [(27,)]


# ---------------------------------------------------------------- real boundaries (OSM)


@needs_realdata
def test_import_osm_smolensk_matches_the_reference_list(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "w.duckdb") as con:
        build_schematic_shapes(con)  # the import replaces the schematic set entirely
        started = time.perf_counter()
        report = import_boundaries(con, SMOLENSK_OSM)
        seconds = time.perf_counter() - started
        fc = load_region_geojson(con)
        kinds = con.execute("SELECT DISTINCT is_schematic, source FROM municipality_shape").fetchall()
        count = con.execute("SELECT count(*) FROM municipality").fetchall()[0][0]
        meta_kind = get_meta(con, "geometry_kind")
    assert report["features"] == 27
    assert report["matched"] == 27
    assert report["created"] == 0
    assert report["unmatched"] == []
    assert report["without_shape"] == []
    assert report["invalid"] == []
    assert report["name_field"] == "district"
    assert count == 27
    assert kinds == [(False, SMOLENSK_OSM.name)]
    assert meta_kind == "imported"
    size = len(dumps(fc).encode("utf-8"))
    assert size == report["geojson_bytes"] <= MAX_GEOJSON_BYTES
    assert size > 0.8 * MAX_GEOJSON_BYTES, "the budget should be used for detail, not thrown away"
    assert seconds < 20
    _assert_clockwise(fc)
    simplified = _geojson_shapes(fc)
    # The source has sub-metre overlaps along three borders; after cleaning and coverage
    # simplification the units tile exactly.
    assert shapely.coverage_is_valid(np.asarray(simplified, dtype=object))
    _assert_clean_coverage(simplified)
    names = {f["properties"]["name"]: f for f in fc["features"]}
    assert "город Смоленск" in names and "Смоленский" in names
    city, district = shape(names["город Смоленск"]["geometry"]), shape(names["Смоленский"]["geometry"])
    assert district.contains(city.representative_point()) is False
    assert _areas_km2([city])[0] == pytest.approx(166.5, rel=0.3)


@needs_realdata
def test_import_yaroslavl_into_an_empty_warehouse_creates_units(tmp_path: Path) -> None:
    population = tmp_path / "population.csv"
    population.write_text("name;population\nг. Ярославль;570 000\nРыбинский район;20000\n", encoding="utf-8")
    con = _empty_warehouse(tmp_path / "w.duckdb")
    try:
        report = import_boundaries(con, YAROSLAVL_OSM, population=population)
        units = con.execute(
            "SELECT name, population, population_is_approx, area_km2, lat, lon FROM municipality ORDER BY id"
        ).fetchall()
        fc = load_region_geojson(con)
    finally:
        con.close()
    assert report["created"] == 19
    assert report["matched"] == 0
    assert len(report["unmatched"]) == 19
    assert report["without_shape"] == []
    assert report["geojson_bytes"] <= MAX_GEOJSON_BYTES
    assert len(units) == 19
    by_name = {u[0]: u for u in units}
    assert by_name["Ярославль"][1:3] == (570_000, False)
    assert by_name["Рыбинский район"][1] == 20_000
    assert by_name["Рыбинск"][1] is None  # the city is not the district
    assert sum(u[3] for u in units) == pytest.approx(36_175, rel=0.01)
    assert all(56 < u[4] < 59 and 37 < u[5] < 41 for u in units)
    assert any(f["geometry"]["type"] == "MultiPolygon" for f in fc["features"])
    _assert_clockwise(fc)


# ---------------------------------------------------------------- files written by the tests


def test_cli_imports_a_geopackage_in_web_mercator(tmp_path: Path) -> None:
    gpkg = tmp_path / "units.gpkg"
    _grid_frame("EPSG:3857").to_file(gpkg, layer="mo", engine="pyogrio")
    db = tmp_path / "w.duckdb"
    result = _run_cli("import", str(gpkg), "--db", str(db), "--no-reference")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["features"] == 4 and report["created"] == 4 and report["repaired"] == []
    assert report["name_field"] == "NAME" and report["code_field"] == "OKTMO"
    assert "3857" in report["crs"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT name, oktmo, kind, area_km2, lat, lon FROM municipality ORDER BY id"
        ).fetchall()
        shapes = load_shapes(con)
    finally:
        con.close()
    assert [r[0] for r in rows] == [
        "Альфинский район",
        "Бетинский район",
        "г. Гаммаград",
        "Дельтинский муниципальный округ",
    ]
    assert rows[0][1] == "99601000"
    assert rows[2][2] == "городской округ"
    # Back in degrees: the first square is 33.0–33.5 E, 55.0–55.3 N (≈ 0.5° × 0.3° ≈ 1 060 km²).
    assert shapes[1].bounds == pytest.approx((33.0, 55.0, 33.5, 55.3), abs=1e-6)
    assert rows[0][3] == pytest.approx(1060, rel=0.02)
    assert 55.0 < rows[0][4] < 55.3 and 33.0 < rows[0][5] < 33.5


def test_zipped_shapefile_matches_existing_units_by_code(tmp_path: Path) -> None:
    frame = _grid_frame("EPSG:32636")
    archive = _zip_shapefile(frame, tmp_path)
    con = _empty_warehouse(tmp_path / "w.duckdb")
    try:
        first = import_boundaries(con, archive)
        # Renamed units keep their code: the second import must match them by ОКТМО.
        renamed = frame.assign(NAME=["Один", "Два", "Три", "Четыре"])
        (tmp_path / "second").mkdir()
        second = import_boundaries(con, _zip_shapefile(renamed, tmp_path / "second"))
        count = con.execute("SELECT count(*) FROM municipality").fetchall()[0][0]
        shapes = load_shapes(con)
    finally:
        con.close()
    assert first["created"] == 4 and "32636" in first["crs"]
    assert second["matched"] == 4 and second["created"] == 0 and second["unmatched"] == []
    assert count == 4
    assert shapes[4].bounds == pytest.approx((33.5, 55.3, 34.0, 55.6), abs=1e-6)


def test_shapefile_without_crs(tmp_path: Path) -> None:
    degrees = _zip_shapefile(_grid_frame("EPSG:4326"), tmp_path, keep_prj=False)
    boundary = read_boundary_file(degrees)
    assert boundary.notes and "EPSG:4326" in boundary.notes[0]
    (tmp_path / "metres").mkdir()
    metres = _zip_shapefile(_grid_frame("EPSG:3857"), tmp_path / "metres", keep_prj=False)
    with pytest.raises(BoundaryError, match="не похожи на градусы"):
        read_boundary_file(metres)


def test_bow_tie_is_repaired_and_empty_geometry_is_reported(tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"name": "Бабочкинский район"},
            # Self-intersecting ring (a bow-tie): invalid as a polygon.
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[33, 55], [34, 56], [34, 55], [33, 56], [33, 55]]],
            },
        },
        {
            "type": "Feature",
            "properties": {"name": "Квадратный район"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[34, 55], [35, 55], [35, 56], [34, 56], [34, 55]]],
            },
        },
        {"type": "Feature", "properties": {"name": "Пустой район"}, "geometry": None},
    ]
    path = tmp_path / "bad.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8"
    )
    con = _empty_warehouse(tmp_path / "w.duckdb")
    try:
        report = import_boundaries(con, path)
        shapes = load_shapes(con)
        names = [r[0] for r in con.execute("SELECT name FROM municipality ORDER BY id").fetchall()]
    finally:
        con.close()
    assert report["repaired"] == ["Бабочкинский район"]
    assert report["invalid"] == ["Пустой район"]
    assert report["problems"]["Пустой район"] == "пустая геометрия"
    assert names == ["Бабочкинский район", "Квадратный район"]
    bow_tie = shapes[1]
    assert bow_tie.is_valid and bow_tie.geom_type == "MultiPolygon" and len(bow_tie.geoms) == 2
    assert bow_tie.area == pytest.approx(0.5)


def test_city_drawn_over_its_district_is_cut_out(tmp_path: Path) -> None:
    district = box(33.0, 55.0, 34.0, 55.6)
    city = box(33.4, 55.2, 33.5, 55.3)
    frame = gpd.GeoDataFrame(
        {"name": ["Районный район", "г. Городск"]}, geometry=[district, city], crs="EPSG:4326"
    )
    path = tmp_path / "nested.geojson"
    frame.to_file(path, engine="pyogrio")
    con = _empty_warehouse(tmp_path / "w.duckdb")
    try:
        import_boundaries(con, path)
        shapes = load_shapes(con)
        fc = load_region_geojson(con)
    finally:
        con.close()
    assert shapes[2].equals(city)
    assert shapes[1].equals(district.difference(city))  # a hole where the city is, no overlap
    _assert_clean_coverage(list(shapes.values()))
    _assert_clockwise(fc)


def test_non_geo_file_exits_2_and_leaves_the_warehouse_alone(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with open_warehouse(db) as con:
        build_schematic_shapes(con)
    before = _snapshot(db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    not_geo = tmp_path / "appeals.csv"
    not_geo.write_text("id,text\n1,яма на дороге\n", encoding="utf-8")
    result = _run_cli("import", str(not_geo), "--db", str(db))
    assert result.returncode == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "ошибка" in message
    assert _snapshot(db) == before
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    # Nor is a missing warehouse created for a file that cannot be used.
    garbage = tmp_path / "garbage.geojson"
    garbage.write_bytes(b"\x00\x01 not json")
    fresh = tmp_path / "fresh.duckdb"
    result = _run_cli("import", str(garbage), "--db", str(fresh))
    assert result.returncode == 2 and not fresh.exists()
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_schematic_and_export(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    built = _run_cli("schematic", "--db", str(db))
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["shapes"] == 27
    out = tmp_path / "region.geojson"
    exported = _run_cli("export", "--db", str(db), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    with open_warehouse(db) as con:
        expected = dumps(load_region_geojson(con))
    assert out.read_text(encoding="utf-8") == expected
    assert json.loads(exported.stdout)["bytes"] == len(expected.encode("utf-8"))
