"""Command line: ``python -m geo import|population|simplify|schematic|export|import-regions``.

Each command prints one JSON line with its result on stdout. A file that cannot be used
gives exit code 2 and one line in Russian on stderr, with the warehouse untouched.

Exit codes of ``import``: 0 — imported; units whose polygon in the file was unusable keep
their previous shape and are named on a «внимание:» line on stderr (and in ``kept_previous``
/ ``invalid`` of the JSON), repaired polygons likewise (``repaired``); 2 — the file cannot be
used at all (not a boundary file, unknown coordinate system, no usable polygon), nothing written.
``population`` exits 0 even when rows are rejected (each with its reason in the JSON), 2 when
the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from data.swap import WriteFailed, writing
from data.warehouse import (
    DEFAULT_MUNICIPALITIES,
    connect,
    default_db_path,
    ensure_initialised,
    load_municipalities,
)
from geo.simplify import dumps

if TYPE_CHECKING:
    from geo.boundaries import BoundaryFile

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m geo", description="Границы муниципалитетов для карты")
    sub = parser.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import", help="загрузить настоящие границы (GeoJSON, GeoPackage, Shapefile в .zip)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--db", type=Path, default=None, help="файл хранилища (по умолчанию CUR_DB или var/)")
    imp.add_argument("--name-field", default=None, help="поле с названием (по умолчанию угадывается)")
    imp.add_argument("--code-field", default=None, help="поле с кодом ОКТМО/ОКАТО")
    imp.add_argument(
        "--population",
        default=None,
        metavar="ПОЛЕ|ФАЙЛ.csv",
        help="население: поле файла границ или CSV (unit, population[, oktmo])",
    )
    imp.add_argument(
        "--population-estimate",
        action="store_true",
        help="население — приблизительная оценка (на страницах будет пометка)",
    )
    imp.add_argument("--crs", default=None, help="система координат файла, если в нём не указана (EPSG:3857…)")
    imp.add_argument(
        "--attribution",
        default=None,
        help="подпись источника границ на картах; osm — «© участники OpenStreetMap» (OSM-файл узнаётся сам)",
    )
    imp.add_argument(
        "--no-reference",
        action="store_true",
        help="не загружать в новое хранилище список муниципалитетов демо-региона "
        "(он и так загружается, только если файл — границы демо-региона)",
    )

    pop = sub.add_parser("population", help="загрузить население муниципалитетов из CSV (unit, population)")
    pop.add_argument("file", type=Path)
    pop.add_argument("--db", type=Path, default=None)
    pop.add_argument("--estimate", action="store_true", help="население — приблизительная оценка")

    simp = sub.add_parser("simplify", help="упрощённая копия файла границ (GeoJSON ≤ заданного размера)")
    simp.add_argument("file", type=Path)
    simp.add_argument("--out", type=Path, required=True)
    simp.add_argument("--max-kb", type=int, default=240, help="предел размера, КБ (по умолчанию 240)")
    simp.add_argument("--attribution", default=None, help="подпись источника; osm — OpenStreetMap")

    sch = sub.add_parser("schematic", help="построить схематичные границы вокруг административных центров")
    sch.add_argument("--db", type=Path, default=None)

    reg = sub.add_parser("import-regions", help="границы субъектов РФ для карты регионов (GeoJSON, GeoPackage, …)")
    reg.add_argument("file", type=Path)
    reg.add_argument("--db", type=Path, default=None)
    reg.add_argument("--name-field", default=None, help="поле с названием субъекта (по умолчанию угадывается)")
    reg.add_argument("--code-field", default=None, help="поле с кодом ISO 3166-2 (RU-SMO) или ОКАТО")
    reg.add_argument("--attribution", default=None,
                     help="подпись источника на карте (по умолчанию «© участники OpenStreetMap, GIS-Lab»)")

    exp = sub.add_parser("export", help="выгрузить GeoJSON региона для карты")
    exp.add_argument("--db", type=Path, default=None)
    exp.add_argument("--out", type=Path, default=None, help="файл GeoJSON (по умолчанию stdout)")
    return parser


def _print(result: dict) -> None:
    print(json.dumps(result, ensure_ascii=False))


def _import(args: argparse.Namespace) -> int:
    # Heavy imports here: `schematic` and `export` need no GDAL.
    from geo.boundaries import BoundaryError, apply_boundaries, read_boundary_file, read_population_csv

    started = time.perf_counter()
    try:
        # Everything is read and checked before the warehouse is opened.
        population_csv = None
        population_field = None
        if args.population:
            candidate = Path(args.population)
            # A property of the boundary file wins; otherwise the value is a CSV path.
            fields = _boundary_fields(args.file)
            if args.population in fields or args.population.lower() in {f.lower() for f in fields}:
                population_field = args.population
            elif candidate.is_file():
                population_csv = read_population_csv(candidate)
            else:
                raise BoundaryError(
                    f"--population «{args.population}»: нет ни такого поля в файле границ "
                    f"({', '.join(fields) or 'полей нет'}), ни такого файла"
                )
        boundary = read_boundary_file(
            args.file, name_field=args.name_field, code_field=args.code_field, crs=args.crs,
            population_field=population_field, attribution=args.attribution,
        )
    except BoundaryError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for note in boundary.notes:
        print(f"внимание: {note}", file=sys.stderr)
    with writing(args.db or default_db_path()) as con:  # the dashboard may be serving this file
        fresh = not _has_units(con)
        ensure_initialised(con, municipalities_csv=None)
        # A new warehouse gets the demo region's reference list (population, ОКТМО) only when
        # the file is that region's: another region's file must not land beside 27 Smolensk units.
        if fresh and not args.no_reference and _is_demo_region(boundary):
            load_municipalities(con, DEFAULT_MUNICIPALITIES)
        result = apply_boundaries(
            con, boundary, population_csv, population_is_estimate=args.population_estimate
        )
    if result["kept_previous"]:
        print(
            "внимание: полигон не удалось исправить, оставлена прежняя граница: " + ", ".join(result["kept_previous"]),
            file=sys.stderr,
        )
    lost = [n for n in result["invalid"] if n not in result["kept_previous"]]
    if lost:
        print("внимание: полигон не удалось использовать, границы нет: " + ", ".join(lost), file=sys.stderr)
    if result["repaired"]:
        print("внимание: исправлена геометрия: " + ", ".join(result["repaired"]), file=sys.stderr)
    result["seconds"] = round(time.perf_counter() - started, 2)
    _print(result)
    return 0


def _has_units(con: duckdb.DuckDBPyConnection) -> bool:
    tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'municipality'").fetchall()
    return bool(tables[0][0]) and con.execute("SELECT count(*) FROM municipality").fetchall()[0][0] > 0


def _is_demo_region(boundary: BoundaryFile) -> bool:
    """Every usable feature of the file names a unit of the demo region's reference list."""
    from data.names import normalise_municipality_name
    from data.warehouse import read_reference

    known = {normalise_municipality_name(r["name"]) for r in read_reference(DEFAULT_MUNICIPALITIES.name)}
    names = [normalise_municipality_name(f.name) for f in boundary.features if f.geometry is not None]
    return bool(names) and all(n in known for n in names)


def _boundary_fields(path: Path) -> list[str]:
    """Property names of a boundary file (empty when it cannot be read: the import then says why)."""
    from geo.boundaries import BoundaryError, file_fields

    try:
        return file_fields(path)
    except BoundaryError:
        return []


def _population(args: argparse.Namespace) -> int:
    from geo.boundaries import BoundaryError, apply_population, read_population_csv
    from geo.store import transaction

    try:
        population = read_population_csv(args.file)
    except BoundaryError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with writing(args.db or default_db_path()) as con:
        ensure_initialised(con)
        with transaction(con):
            result = apply_population(con, population, is_estimate=args.estimate)
    _print(result)
    return 0


def _simplify(args: argparse.Namespace) -> int:
    from geo.boundaries import BoundaryError
    from geo.shipped import write_simplified_copy

    try:
        result = write_simplified_copy(
            args.file, args.out, max_bytes=args.max_kb * 1000, attribution=args.attribution
        )
    except BoundaryError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print(result)
    return 0


def _schematic(args: argparse.Namespace) -> int:
    from geo.schematic import build_schematic_shapes

    try:
        with writing(args.db or default_db_path()) as con:
            ensure_initialised(con)
            result = build_schematic_shapes(con)
    except ValueError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print(result)
    return 0


def _import_regions(args: argparse.Namespace) -> int:
    from geo.boundaries import BoundaryError, read_boundary_file
    from geo.regions import apply_region_boundaries

    started = time.perf_counter()
    try:
        boundary = read_boundary_file(args.file, name_field=args.name_field, code_field=args.code_field)
    except BoundaryError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with writing(args.db or default_db_path()) as con:
            ensure_initialised(con)
            result = apply_region_boundaries(con, boundary, args.attribution)
    except ValueError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result["without_shape"]:
        print("внимание: в файле нет границ регионов: " + ", ".join(result["without_shape"]), file=sys.stderr)
    result["seconds"] = round(time.perf_counter() - started, 2)
    _print(result)
    return 0


def _export(args: argparse.Namespace) -> int:
    from geo.store import load_region_geojson

    try:
        con = connect(args.db, read_only=True)
    except FileNotFoundError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        collection = load_region_geojson(con)
    finally:
        con.close()
    if not collection["features"]:
        print("ошибка: в хранилище нет границ; выполните python -m geo schematic или import", file=sys.stderr)
        return EXIT_BAD_INPUT
    text = dumps(collection)
    if args.out is None:
        sys.stdout.write(text + "\n")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    _print(
        {"out": str(args.out), "features": len(collection["features"]), "bytes": len(text.encode("utf-8"))}
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"import": _import, "population": _population, "simplify": _simplify, "schematic": _schematic, "export": _export,
                "import-regions": _import_regions}
    try:
        return handlers[args.command](args)
    except WriteFailed as exc:  # no room on the disk: the warehouse is as it was, no partial copy left
        print(f"ошибка: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
