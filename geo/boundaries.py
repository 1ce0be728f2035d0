"""Import of real municipal boundaries: GeoJSON, GeoPackage or a zipped Shapefile.

Reading and checking happen before the warehouse is touched, so a file that cannot be
used leaves it as it was (``BoundaryError``, one line in Russian). Writing is one
transaction: municipalities are matched by code (ОКТМО/ОКАТО), then by normalised
name; features that match nothing become new municipalities; all stored shapes are
replaced by the imported ones (the map never mixes schematic and real boundaries).
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from data.names import normalise_municipality_name
from geo.schematic import equal_area_crs, project
from geo.simplify import clean_coverage, polygonal_part
from geo.store import replace_shapes, transaction

NAME_FIELDS: tuple[str, ...] = (
    "district",
    "name",
    "name_ru",
    "name:ru",
    "municipality",
    "mun_name",
    "municipal",
    "nazvanie",
    "название",
    "муниципалитет",
)
CODE_FIELDS: tuple[str, ...] = (
    "oktmo",
    "ref:oktmo",
    "oktmo_code",
    "код_октмо",
    "октмо",
    "okato",
    "ref:okato",
    "окато",
)
_POLYGONAL = ("Polygon", "MultiPolygon")
_ZIP_INNER = (".shp", ".gpkg", ".geojson", ".json")


class BoundaryError(Exception):
    """The boundary (or population) file cannot be used; the message is for the user."""


@dataclass
class Feature:
    name: str
    code: str | None
    geometry: BaseGeometry | None  # EPSG:4326, polygonal; None when unusable
    repaired: bool = False
    problem: str | None = None


@dataclass
class BoundaryFile:
    source: str
    features: list[Feature]
    name_field: str
    code_field: str | None
    crs: str
    notes: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return sum(f.repaired for f in self.features)


@dataclass(frozen=True)
class PopulationRow:
    name: str
    population: int
    oktmo: str | None


def _fail(message: str) -> BoundaryError:
    # GDAL messages can span lines; the CLI promises one line.
    return BoundaryError(" ".join(message.split()))


def _dataset_target(path: Path) -> str:
    """What GDAL should open: the file itself, or the data set inside a .zip."""
    if path.suffix.lower() != ".zip":
        return str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = sorted(n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(f"не удалось открыть архив {path.name}: {exc}") from exc
    for suffix in _ZIP_INNER:
        inner = [n for n in names if n.lower().endswith(suffix)]
        if inner:
            return f"/vsizip/{path.resolve()}/{inner[0]}"
    raise _fail(f"в архиве {path.name} нет ни .shp, ни .gpkg, ни .geojson")


def _read_frame(path: Path) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise _fail(f"файл не найден: {path}")
    target = _dataset_target(path)
    try:
        layers = pyogrio.list_layers(target)
        if len(layers) == 0:
            raise _fail(f"в файле {path.name} нет слоёв с данными")
        # The first layer with polygons (a GeoPackage may also hold points or tables).
        polygon_layers = [name for name, kind in layers if kind and "polygon" in str(kind).lower()]
        layer = polygon_layers[0] if polygon_layers else layers[0][0]
        return gpd.read_file(target, layer=layer, engine="pyogrio")
    except BoundaryError:
        raise
    except pyogrio.errors.DataSourceError as exc:
        raise _fail(
            f"не удалось прочитать файл границ {path.name}: формат не распознан "
            "(нужен GeoJSON, GeoPackage или Shapefile в .zip)"
        ) from exc
    except Exception as exc:  # GDAL raises many kinds of errors for foreign files
        raise _fail(f"не удалось прочитать файл границ {path.name}: {exc}") from exc


def _to_wgs84(frame: gpd.GeoDataFrame, notes: list[str]) -> tuple[gpd.GeoDataFrame, str]:
    if frame.crs is None:
        xmin, ymin, xmax, ymax = frame.total_bounds
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            return frame.set_crs("EPSG:4326"), "EPSG:4326"
        if xmin < -180 or xmax > 180 or ymin < -90 or ymax > 90:
            raise _fail(
                "в файле не указана система координат, а координаты не похожи на градусы; укажите её в файле"
            )
        notes.append("в файле не указана система координат — считаю EPSG:4326 (долгота/широта)")
        return frame.set_crs("EPSG:4326"), "EPSG:4326 (принята)"
    crs = frame.crs
    label = crs.to_string()
    if crs.equals(pyproj.CRS.from_epsg(4326)):
        return frame, label
    try:
        return frame.to_crs("EPSG:4326"), label
    except Exception as exc:
        raise _fail(f"не удалось перевести координаты из {label} в EPSG:4326: {exc}") from exc


def _find_field(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str
) -> str | None:
    if wanted:
        if wanted in columns:
            return wanted
        lowered = {c.lower(): c for c in columns}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        raise _fail(f"поле {what} «{wanted}» не найдено; есть: {', '.join(columns) or 'нет полей'}")
    lowered = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    return None


def _guess_name_field(frame: gpd.GeoDataFrame, wanted: str | None) -> str:
    columns = [c for c in frame.columns if c != frame.geometry.name]
    found = _find_field(columns, wanted, NAME_FIELDS, "с названием")
    if found:
        return found
    for column in columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series):
            return column
    raise _fail("не найдено поле с названием муниципалитета; укажите его: --name-field ПОЛЕ")


def _code_text(value: Any) -> str | None:
    """ОКТМО as text: numeric fields of a Shapefile arrive as 66701000.0."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _prepare(raw: BaseGeometry | None) -> tuple[BaseGeometry | None, bool, str | None]:
    """Polygonal 2-D geometry, whether it had to be repaired, and the problem if unusable."""
    if raw is None or raw.is_empty:
        return None, False, "пустая геометрия"
    geom = shapely.force_2d(raw)
    if geom.geom_type not in (*_POLYGONAL, "GeometryCollection"):
        return None, False, f"не полигон ({geom.geom_type})"
    repaired = False
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        repaired = True
    if geom.geom_type not in _POLYGONAL:
        # Lines and points left by the repair (or present in a collection) are no area.
        repaired = True
        geom = polygonal_part(geom)
    if geom is None or geom.is_empty or geom.area <= 0 or not geom.is_valid:
        return None, repaired, "геометрию не удалось исправить"
    return geom, repaired, None


def read_boundary_file(
    path: str | Path, name_field: str | None = None, code_field: str | None = None
) -> BoundaryFile:
    """Read and check a boundary file; raises ``BoundaryError`` when it cannot be used."""
    path = Path(path)
    frame = _read_frame(path)
    # GDAL opens a CSV or a spreadsheet too, as a table without geometry.
    if not isinstance(frame, gpd.GeoDataFrame) or frame.active_geometry_name is None:
        raise _fail(f"в файле {path.name} нет геометрии — это не файл границ")
    if len(frame) == 0:
        raise _fail(f"в файле {path.name} нет объектов")
    notes: list[str] = []
    frame, crs_label = _to_wgs84(frame, notes)
    name_col = _guess_name_field(frame, name_field)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    code_col = _find_field(columns, code_field, CODE_FIELDS, "с кодом")

    codes = frame[code_col] if code_col else [None] * len(frame)
    features: list[Feature] = []
    for number, (raw_name, raw_code, geom) in enumerate(
        zip(frame[name_col], codes, frame.geometry, strict=True), start=1
    ):
        name = "" if raw_name is None or raw_name is pd.NA or pd.isna(raw_name) else str(raw_name).strip()
        geometry, repaired, problem = _prepare(geom)
        features.append(
            Feature(name or f"объект №{number}", _code_text(raw_code), geometry, repaired, problem)
        )
    if not any(f.geometry is not None for f in features):
        if any(f.problem == "геометрию не удалось исправить" for f in features):
            raise _fail(f"в файле {path.name} ни одну геометрию не удалось исправить")
        raise _fail(f"в файле {path.name} нет полигонов")
    return BoundaryFile(path.name, features, name_col, code_col, crs_label, notes)


def _parse_population(text: str, line: int) -> int:
    cleaned = "".join(ch for ch in text if not ch.isspace()).replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError as exc:
        raise _fail(f"файл населения, строка {line}: «{text}» — не число") from exc
    if value < 0 or not math.isfinite(value):
        raise _fail(f"файл населения, строка {line}: недопустимое значение «{text}»")
    return round(value)


def read_population_csv(path: str | Path) -> list[PopulationRow]:
    """CSV with columns name, population and optionally oktmo (``,``, ``;`` or tab)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"не удалось прочитать файл населения {path.name}: {exc}") from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    name_key = next((fields[k] for k in ("name", "название", "municipality") if k in fields), None)
    pop_key = next((fields[k] for k in ("population", "население", "численность") if k in fields), None)
    code_key = next((fields[k] for k in ("oktmo", "октмо") if k in fields), None)
    if name_key is None or pop_key is None:
        raise _fail(f"в файле населения {path.name} нужны столбцы name и population")
    rows: list[PopulationRow] = []
    for line, row in enumerate(reader, start=2):
        name = (row.get(name_key) or "").strip()
        value = (row.get(pop_key) or "").strip()
        if not name or not value:
            continue
        code = _code_text(row.get(code_key)) if code_key else None
        rows.append(PopulationRow(name, _parse_population(value, line), code))
    return rows


def _guess_kind(name: str) -> str | None:
    text = name.lower()
    for kind in ("городской округ", "муниципальный округ", "муниципальный район"):
        if kind in text:
            return kind
    if "район" in text or "р-н" in text:
        return "муниципальный район"
    if text.startswith(("г.", "город ", "гор.")):
        return "городской округ"
    return None


def _population_for(rows: Sequence[PopulationRow], name: str, code: str | None) -> int | None:
    if code:
        for row in rows:
            if row.oktmo and row.oktmo == code:
                return row.population
    key = normalise_municipality_name(name)
    for row in rows:
        if normalise_municipality_name(row.name) == key:
            return row.population
    return None


def apply_boundaries(
    con: duckdb.DuckDBPyConnection, boundary: BoundaryFile, population: Sequence[PopulationRow] = ()
) -> dict[str, Any]:
    """Write a checked boundary file into the warehouse (one transaction); returns the report."""
    usable = [f for f in boundary.features if f.geometry is not None]
    with transaction(con):
        existing = con.execute("SELECT id, oktmo, okato, name FROM municipality ORDER BY id").fetchall()
        by_code: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for mid, oktmo, okato, name in existing:
            for code in (oktmo, okato):
                if code and str(code).strip():
                    by_code.setdefault(str(code).strip(), mid)
            by_name.setdefault(normalise_municipality_name(name), mid)

        parts: dict[int, list[BaseGeometry]] = {}
        new_units: dict[str, tuple[Feature, list[BaseGeometry]]] = {}
        matched = 0
        unmatched: list[str] = []
        for feature in usable:
            mid = by_code.get(feature.code) if feature.code else None
            if mid is None:
                mid = by_name.get(normalise_municipality_name(feature.name))
            if mid is not None:
                matched += 1
                parts.setdefault(mid, []).append(feature.geometry)
                continue
            unmatched.append(feature.name)
            key = normalise_municipality_name(feature.name)
            # Exclaves delivered as separate features of one new unit become one shape.
            new_units.setdefault(key, (feature, []))[1].append(feature.geometry)

        shapes: dict[int, BaseGeometry] = {mid: shapely.union_all(geoms) for mid, geoms in parts.items()}
        next_id = max((row[0] for row in existing), default=0) + 1
        created: list[tuple[int, Feature]] = []
        for feature, geoms in new_units.values():
            shapes[next_id] = shapely.union_all(geoms)
            created.append((next_id, feature))
            next_id += 1

        ids = sorted(shapes)
        cleaned = dict(zip(ids, clean_coverage([shapes[i] for i in ids]), strict=True))
        centre = shapely.union_all(list(cleaned.values())).representative_point()
        to_area = pyproj.Transformer.from_crs("EPSG:4326", equal_area_crs(centre.x, centre.y), always_xy=True)

        def area_km2(geom: BaseGeometry) -> float:
            return round(project(geom, to_area).area / 1e6, 1)

        # The code column goes to okato only when its name says so; ОКТМО is the usual one.
        is_okato = bool(boundary.code_field and "okato" in boundary.code_field.lower())
        for mid, feature in created:
            geom = cleaned[mid]
            point = geom.representative_point()
            people = _population_for(population, feature.name, feature.code)
            code = feature.code
            con.execute(
                "INSERT INTO municipality VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                [
                    mid,
                    None if is_okato else code,
                    code if is_okato else None,
                    feature.name,
                    _guess_kind(feature.name),
                    people,
                    people is None,
                    area_km2(geom),
                    round(point.y, 6),
                    round(point.x, 6),
                ],
            )
        for mid, oktmo, _okato, name in existing:
            if mid in cleaned:
                geom = cleaned[mid]
                point = geom.representative_point()
                # Reference figures stay; only gaps are filled from the geometry.
                con.execute(
                    """UPDATE municipality SET area_km2 = coalesce(area_km2, ?),
                       lat = coalesce(lat, ?), lon = coalesce(lon, ?) WHERE id = ?""",
                    [area_km2(geom), round(point.y, 6), round(point.x, 6), mid],
                )
            people = _population_for(population, name, oktmo) if population else None
            if people is not None:
                con.execute(
                    "UPDATE municipality SET population = ?, population_is_approx = FALSE WHERE id = ?",
                    [people, mid],
                )

        stored = replace_shapes(
            con, cleaned, is_schematic=False, source=boundary.source, geometry_kind="imported"
        )

    return {
        "features": len(boundary.features),
        "matched": matched,
        "created": len(created),
        "repaired": boundary.repaired,
        "unmatched": unmatched,
        "without_shape": [name for mid, _o, _k, name in existing if mid not in cleaned],
        "invalid": [f.name for f in boundary.features if f.geometry is None],
        "problems": {f.name: f.problem for f in boundary.features if f.problem},
        "geojson_bytes": stored["geojson_bytes"],
        "tolerance_deg": stored["tolerance_deg"],
        "coverage_valid": stored["coverage_valid"],
        "name_field": boundary.name_field,
        "code_field": boundary.code_field,
        "crs": boundary.crs,
        "notes": boundary.notes,
    }


def import_boundaries(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    name_field: str | None = None,
    code_field: str | None = None,
    population: str | Path | None = None,
) -> dict[str, Any]:
    """Read, check and import a boundary file; ``BoundaryError`` leaves the warehouse as it was."""
    boundary = read_boundary_file(path, name_field=name_field, code_field=code_field)
    rows = read_population_csv(population) if population else []
    return apply_boundaries(con, boundary, rows)
