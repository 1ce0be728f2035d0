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

from data.names import MunicipalityIndex, normalise_municipality_name
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


OSM_ATTRIBUTION = "© участники OpenStreetMap"
OSM_LICENSE = "ODbL 1.0"
# Properties that only OpenStreetMap exports carry (osmium, overpass-turbo, QGIS QuickOSM, osm-boundaries).
_OSM_FIELDS = ("osm_id", "@id", "osm_type", "osm_way_id", "osm_relation_id", "osm_version", "@relations")
_SOURCE_FIELDS = ("source", "attribution", "license", "licence", "copyright", "data_source")


@dataclass
class Feature:
    name: str
    code: str | None
    geometry: BaseGeometry | None  # EPSG:4326, polygonal; None when unusable
    repaired: bool = False
    problem: str | None = None
    population: int | None = None  # from ``--population FIELD``


@dataclass
class BoundaryFile:
    source: str
    features: list[Feature]
    name_field: str
    code_field: str | None
    crs: str
    notes: list[str] = field(default_factory=list)
    population_field: str | None = None
    attribution: str | None = None  # shown on every map drawn from these shapes
    license: str | None = None

    @property
    def repaired(self) -> list[str]:
        """Names of the units whose geometry had to be repaired (invalid in the file)."""
        return [f.name for f in self.features if f.repaired and f.geometry is not None]


@dataclass(frozen=True)
class PopulationRow:
    name: str
    population: int
    oktmo: str | None
    line: int = 0


@dataclass
class PopulationFile:
    """A population CSV, row by row: ``read = len(rows) + len(rejected)`` before matching."""

    source: str
    rows: list[PopulationRow]
    rejected: list[dict[str, Any]]  # {"row": line, "unit": text, "reason": text}

    @property
    def read(self) -> int:
        return len(self.rows) + len(self.rejected)


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


# Web Mercator's square: |x|, |y| ≤ π·R (m). Old GeoJSON exports of web tools are often in it
# without a ``crs`` member (RFC 7946 says such a file is in degrees, so GDAL reads it as 4326).
_MERCATOR_LIMIT = 20_037_508.3428
_MERCATOR_MAX_LAT = 85.06


def _looks_like_degrees(bounds: Sequence[float]) -> bool:
    xmin, ymin, xmax, ymax = bounds
    return -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90


def _looks_like_mercator(bounds: Sequence[float]) -> bool:
    # Metres, not degrees: at least one coordinate far beyond 180 (a region is wider than 180 m).
    return all(abs(v) <= _MERCATOR_LIMIT for v in bounds) and max(abs(v) for v in bounds) > 1000


def _to_wgs84(
    frame: gpd.GeoDataFrame, notes: list[str], crs: str | None = None
) -> tuple[gpd.GeoDataFrame, str]:
    """The frame in EPSG:4326 and a label of the CRS it came in.

    The declared CRS is checked against the coordinates: a GeoJSON without ``crs`` whose
    coordinates are metres of Web Mercator is taken as EPSG:3857 (with a note); other
    coordinates that are not degrees are refused with a clear message (``--crs``).
    """
    if crs:
        try:
            declared = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise _fail(f"система координат «{crs}» не распознана; пример: --crs EPSG:3857") from exc
        frame = frame.set_crs(declared, allow_override=True)
    bounds = frame.total_bounds
    finite = all(math.isfinite(v) for v in bounds)
    geographic = frame.crs is None or frame.crs.is_geographic
    if finite and geographic and not _looks_like_degrees(bounds):
        # Only a file that claims degrees (a GeoJSON) is read as Mercator: a Shapefile without
        # .prj is as often in UTM, whose metres fit the same range — that one is refused.
        if not crs and frame.crs is not None and _looks_like_mercator(bounds):
            notes.append(
                "координаты в файле — метры, а не градусы: принята система EPSG:3857 (Web Mercator); "
                "если это не так, укажите систему: --crs EPSG:…"
            )
            frame = frame.set_crs("EPSG:3857", allow_override=True)
            label = "EPSG:3857 (по диапазону координат)"
        else:
            xmin, ymin, xmax, ymax = (round(v) for v in bounds)
            raise _fail(
                f"координаты файла ({xmin}…{xmax}, {ymin}…{ymax}) не похожи на градусы, "
                "а система координат не указана или указана неверно; укажите её: --crs EPSG:…"
            )
    elif frame.crs is None:
        if not finite:
            return frame.set_crs("EPSG:4326"), "EPSG:4326"
        notes.append("в файле не указана система координат — считаю EPSG:4326 (долгота/широта)")
        return frame.set_crs("EPSG:4326"), "EPSG:4326 (принята)"
    else:
        label = frame.crs.to_string()
    if frame.crs.equals(pyproj.CRS.from_epsg(4326)):
        return frame, label
    try:
        out = frame.to_crs("EPSG:4326")
    except Exception as exc:
        raise _fail(f"не удалось перевести координаты из {label} в EPSG:4326: {exc}") from exc
    out_bounds = out.total_bounds
    if all(math.isfinite(v) for v in out_bounds) and not (
        _looks_like_degrees(out_bounds) and abs(out_bounds[1]) <= 90 and abs(out_bounds[3]) <= 90
    ):
        raise _fail(f"после перевода из {label} координаты вышли за пределы Земли; проверьте систему: --crs EPSG:…")
    return out, label


def file_fields(path: str | Path) -> list[str]:
    """The property names of a boundary file (read without geometry)."""
    target = _dataset_target(Path(path))
    try:
        info = pyogrio.read_info(target)
    except Exception as exc:  # GDAL raises many kinds of errors for foreign files
        raise _fail(f"не удалось прочитать файл границ {Path(path).name}: {exc}") from exc
    return [str(f) for f in info.get("fields", [])]


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


def _detect_attribution(frame: gpd.GeoDataFrame, columns: Sequence[str]) -> bool:
    """True when the file's properties show it comes from OpenStreetMap."""
    lowered = {c.lower() for c in columns}
    if lowered & set(_OSM_FIELDS):
        return True
    for column in columns:
        if column.lower() in _SOURCE_FIELDS:
            values = frame[column].dropna().astype(str).str.lower()
            if values.str.contains("openstreetmap|\\bosm\\b", regex=True).any():
                return True
    return False


def _population_value(value: Any) -> int | None:
    """A population from a property: 12 345, "12 345", "12345.0"; None when absent or not a count."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = "".join(ch for ch in str(value) if not ch.isspace()).replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        return None
    return round(number) if math.isfinite(number) and number >= 0 else None


def read_boundary_file(
    path: str | Path,
    name_field: str | None = None,
    code_field: str | None = None,
    *,
    crs: str | None = None,
    population_field: str | None = None,
    attribution: str | None = None,
) -> BoundaryFile:
    """Read and check a boundary file; raises ``BoundaryError`` when it cannot be used.

    ``crs`` overrides the file's coordinate system; ``population_field`` names a property
    holding the population; ``attribution`` is the text to show on maps («osm» for
    OpenStreetMap; by default an OSM file is recognised by its properties).
    """
    path = Path(path)
    frame = _read_frame(path)
    # GDAL opens a CSV or a spreadsheet too, as a table without geometry.
    if not isinstance(frame, gpd.GeoDataFrame) or frame.active_geometry_name is None:
        raise _fail(f"в файле {path.name} нет геометрии — это не файл границ")
    if len(frame) == 0:
        raise _fail(f"в файле {path.name} нет объектов")
    notes: list[str] = []
    frame, crs_label = _to_wgs84(frame, notes, crs)
    name_col = _guess_name_field(frame, name_field)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    code_col = _find_field(columns, code_field, CODE_FIELDS, "с кодом")
    pop_col = _find_field(columns, population_field, (), "с населением") if population_field else None

    codes = frame[code_col] if code_col else [None] * len(frame)
    people = frame[pop_col] if pop_col else [None] * len(frame)
    features: list[Feature] = []
    no_population: list[str] = []
    for number, (raw_name, raw_code, raw_people, geom) in enumerate(
        zip(frame[name_col], codes, people, frame.geometry, strict=True), start=1
    ):
        name = "" if raw_name is None or raw_name is pd.NA or pd.isna(raw_name) else str(raw_name).strip()
        name = name or f"объект №{number}"
        geometry, repaired, problem = _prepare(geom)
        population = _population_value(raw_people) if pop_col else None
        if pop_col and population is None:
            no_population.append(name)
        features.append(Feature(name, _code_text(raw_code), geometry, repaired, problem, population))
    if not any(f.geometry is not None for f in features):
        if any(f.problem == "геометрию не удалось исправить" for f in features):
            raise _fail(f"в файле {path.name} ни одну геометрию не удалось исправить")
        raise _fail(f"в файле {path.name} нет полигонов")
    if no_population:
        notes.append(f"в поле «{pop_col}» нет числа населения: {', '.join(no_population)}")

    license_text: str | None = None
    if attribution and attribution.strip().lower() in ("osm", "openstreetmap"):
        attribution, license_text = OSM_ATTRIBUTION, OSM_LICENSE
    elif attribution:
        attribution = " ".join(attribution.split())
    elif _detect_attribution(frame, columns):
        attribution, license_text = OSM_ATTRIBUTION, OSM_LICENSE
    return BoundaryFile(
        path.name, features, name_col, code_col, crs_label, notes, pop_col, attribution or None, license_text
    )


_NAME_COLUMNS = ("unit", "name", "municipality", "название", "муниципалитет", "муниципальное образование")
_POPULATION_COLUMNS = ("population", "население", "численность")
_CODE_COLUMNS = ("oktmo", "октмо", "code", "код")


def read_population_csv(path: str | Path) -> PopulationFile:
    """CSV with columns unit (or name), population and optionally oktmo (``,``, ``;`` or tab).

    Bad rows do not stop the reading: each is kept in ``rejected`` with its reason.
    Only a file that cannot be read at all raises ``BoundaryError``.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(f"файл населения не найден: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1251", errors="replace")  # Excel's «CSV» on a Russian Windows
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    name_key = next((fields[k] for k in _NAME_COLUMNS if k in fields), None)
    pop_key = next((fields[k] for k in _POPULATION_COLUMNS if k in fields), None)
    code_key = next((fields[k] for k in _CODE_COLUMNS if k in fields), None)
    if pop_key is None or (name_key is None and code_key is None):
        raise _fail(
            f"в файле населения {path.name} нужны столбцы unit (или name) и population; "
            f"есть: {', '.join(f for f in reader.fieldnames or []) or 'нет столбцов'}"
        )
    rows: list[PopulationRow] = []
    rejected: list[dict[str, Any]] = []
    for line, row in enumerate(reader, start=2):
        name = (row.get(name_key) or "").strip() if name_key else ""
        code = _code_text(row.get(code_key)) if code_key else None
        value = (row.get(pop_key) or "").strip()
        unit = name or code or ""
        if not name and not code:
            rejected.append({"row": line, "unit": "", "reason": "не указан муниципалитет"})
            continue
        if not value:
            rejected.append({"row": line, "unit": unit, "reason": "не указано население"})
            continue
        try:
            number = float("".join(ch for ch in value if not ch.isspace()).replace(",", "."))
        except ValueError:
            rejected.append({"row": line, "unit": unit, "reason": f"население «{value}» — не число"})
            continue
        if not math.isfinite(number) or number < 0 or not number.is_integer():
            reason = f"население «{value}» — не целое неотрицательное число"
            rejected.append({"row": line, "unit": unit, "reason": reason})
            continue
        rows.append(PopulationRow(name, int(number), code, line))
    return PopulationFile(path.name, rows, rejected)


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


class _Units:
    """The warehouse's units as a file may name them: by code, name or stored alias
    (``data.names.MunicipalityIndex``, the importer's matcher); an ambiguous name matches nothing."""

    def __init__(self, index: MunicipalityIndex) -> None:
        self.index = index
        self.names: dict[int, str] = dict(index.names)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> _Units:
        return cls(MunicipalityIndex.from_warehouse(con))

    def find(self, name: str, code: str | None) -> int | None:
        mid = self.index.match(code).id if code else None
        if mid is None and name:
            mid = self.index.match(name).id
        return mid


def apply_population(
    con: duckdb.DuckDBPyConnection, population: PopulationFile, *, is_estimate: bool = False
) -> dict[str, Any]:
    """Set ``municipality.population`` from a checked population file (inside the caller's transaction).

    Every row is accepted or rejected with a reason (unknown unit, a second row for one unit);
    ``read = accepted + rejected``. ``population_is_approx`` records ``is_estimate``, so the
    «приблизительная оценка» note is shown only where the data say so.
    """
    units = _Units.load(con)
    rejected = list(population.rejected)
    seen: dict[int, int] = {}
    accepted = 0
    for row in population.rows:
        mid = units.find(row.name, row.oktmo)
        unit = row.name or row.oktmo or ""
        if mid is None:
            rejected.append({"row": row.line, "unit": unit, "reason": f"муниципалитет «{unit}» не найден в хранилище"})
            continue
        if mid in seen:
            reason = f"повтор: население «{units.names[mid]}» уже задано в строке {seen[mid]}"
            rejected.append({"row": row.line, "unit": unit, "reason": reason})
            continue
        seen[mid] = row.line
        con.execute(
            "UPDATE municipality SET population = ?, population_is_approx = ? WHERE id = ?",
            [row.population, is_estimate, mid],
        )
        accepted += 1
    rejected.sort(key=lambda r: r["row"])
    return {
        "file": population.source,
        "read": population.read,
        "accepted": accepted,
        "rejected": len(rejected),
        "rejections": rejected,
        "is_estimate": is_estimate,
    }


def import_population(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, is_estimate: bool = False
) -> dict[str, Any]:
    """``python -m geo population FILE.csv``: read the file, then set the population in one transaction."""
    population = read_population_csv(path)
    with transaction(con):
        return apply_population(con, population, is_estimate=is_estimate)


def apply_boundaries(
    con: duckdb.DuckDBPyConnection,
    boundary: BoundaryFile,
    population: PopulationFile | None = None,
    *,
    population_is_estimate: bool = False,
) -> dict[str, Any]:
    """Write a checked boundary file into the warehouse (one transaction); returns the report.

    A unit whose polygon in this file is unusable keeps the shape it had (``kept_previous``);
    a unit that had none is listed under ``invalid`` and stays without a shape.
    """
    from geo.store import load_shapes  # the stored full-resolution shapes of the previous import

    with transaction(con):
        existing = con.execute("SELECT id, oktmo, okato, name FROM municipality ORDER BY id").fetchall()
        units = _Units.load(con)
        previous = load_shapes(con)

        parts: dict[int, list[BaseGeometry]] = {}
        new_units: dict[str, tuple[Feature, list[BaseGeometry]]] = {}
        matched = 0
        unmatched: list[str] = []
        broken: dict[int, Feature] = {}
        file_population: dict[int, int] = {}
        for feature in boundary.features:
            mid = units.find(feature.name, feature.code)
            if feature.geometry is None:
                if mid is not None:
                    broken.setdefault(mid, feature)
                continue
            if mid is not None:
                matched += 1
                parts.setdefault(mid, []).append(feature.geometry)
                if feature.population is not None:
                    file_population[mid] = file_population.get(mid, 0) + feature.population
                continue
            unmatched.append(feature.name)
            key = normalise_municipality_name(feature.name)
            # Exclaves delivered as separate features of one new unit become one shape.
            new_units.setdefault(key, (feature, []))[1].append(feature.geometry)

        shapes: dict[int, BaseGeometry] = {mid: shapely.union_all(geoms) for mid, geoms in parts.items()}
        # A polygon that could not be repaired never costs a unit its good shape: the previous
        # one stays (only for parts the file gives no usable polygon for).
        kept_previous: list[str] = []
        for mid in broken:
            if mid not in shapes and mid in previous:
                shapes[mid] = previous[mid]
                kept_previous.append(units.names[mid])
        next_id = max((row[0] for row in existing), default=0) + 1
        created: list[tuple[int, Feature, int | None]] = []
        for feature, geoms in new_units.values():
            shapes[next_id] = shapely.union_all(geoms)
            same = [f.population for f in boundary.features
                    if f.geometry is not None and f.population is not None
                    and normalise_municipality_name(f.name) == normalise_municipality_name(feature.name)]
            created.append((next_id, feature, sum(same) if same else None))
            next_id += 1

        ids = sorted(shapes)
        cleaned = dict(zip(ids, clean_coverage([shapes[i] for i in ids]), strict=True))
        centre = shapely.union_all(list(cleaned.values())).representative_point()
        to_area = pyproj.Transformer.from_crs("EPSG:4326", equal_area_crs(centre.x, centre.y), always_xy=True)

        def area_km2(geom: BaseGeometry) -> float:
            return round(project(geom, to_area).area / 1e6, 1)

        # The code column goes to okato only when its name says so; ОКТМО is the usual one.
        is_okato = bool(boundary.code_field and "okato" in boundary.code_field.lower())
        for mid, feature, people in created:
            geom = cleaned[mid]
            point = geom.representative_point()
            code = feature.code
            con.execute(
                "INSERT INTO municipality (id, oktmo, okato, name, kind, admin_centre, population, "
                "population_is_approx, area_km2, lat, lon) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                [
                    mid,
                    None if is_okato else code,
                    code if is_okato else None,
                    feature.name,
                    _guess_kind(feature.name),
                    people,
                    population_is_estimate if people is not None else False,
                    area_km2(geom),
                    round(point.y, 6),
                    round(point.x, 6),
                ],
            )
        for mid, _oktmo, _okato, _name in existing:
            if mid in cleaned:
                geom = cleaned[mid]
                point = geom.representative_point()
                # Reference figures stay; only gaps are filled from the geometry.
                con.execute(
                    """UPDATE municipality SET area_km2 = coalesce(area_km2, ?),
                       lat = coalesce(lat, ?), lon = coalesce(lon, ?) WHERE id = ?""",
                    [area_km2(geom), round(point.y, 6), round(point.x, 6), mid],
                )
            if mid in file_population:
                con.execute(
                    "UPDATE municipality SET population = ?, population_is_approx = ? WHERE id = ?",
                    [file_population[mid], population_is_estimate, mid],
                )
        population_report = (
            apply_population(con, population, is_estimate=population_is_estimate) if population else None
        )

        stored = replace_shapes(
            con, cleaned, is_schematic=False, source=boundary.source, geometry_kind="imported",
            attribution=boundary.attribution, license=boundary.license,
        )

    names = {**units.names, **{mid: f.name for mid, f, _p in created}}
    report: dict[str, Any] = {
        "features": len(boundary.features),
        "matched": matched,
        "created": len(created),
        "repaired": boundary.repaired,
        "kept_previous": kept_previous,
        "unmatched": unmatched,
        "without_shape": [names[mid] for mid, _o, _k, _n in existing if mid not in cleaned],
        "invalid": [f.name for f in boundary.features if f.geometry is None],
        "problems": {f.name: f.problem for f in boundary.features if f.problem},
        "geojson_bytes": stored["geojson_bytes"],
        "tolerance_deg": stored["tolerance_deg"],
        "coverage_valid": stored["coverage_valid"],
        "name_field": boundary.name_field,
        "code_field": boundary.code_field,
        "crs": boundary.crs,
        "attribution": boundary.attribution,
        "notes": boundary.notes,
    }
    if boundary.population_field:
        report["population_field"] = boundary.population_field
        report["population_units"] = len(file_population) + sum(1 for *_x, p in created if p is not None)
    if population_report is not None:
        report["population"] = population_report
    return report


def import_boundaries(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    name_field: str | None = None,
    code_field: str | None = None,
    population: str | Path | None = None,
    *,
    crs: str | None = None,
    population_field: str | None = None,
    population_is_estimate: bool = False,
    attribution: str | None = None,
) -> dict[str, Any]:
    """Read, check and import a boundary file; ``BoundaryError`` leaves the warehouse as it was.

    ``population`` is a CSV (unit, population); ``population_field`` a property of the file.
    """
    boundary = read_boundary_file(
        path, name_field=name_field, code_field=code_field, crs=crs,
        population_field=population_field, attribution=attribution,
    )
    rows = read_population_csv(population) if population else None
    return apply_boundaries(con, boundary, rows, population_is_estimate=population_is_estimate)
