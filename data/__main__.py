"""Command line of the data room: ``python -m data init|region|demo|import|aliases|targets|roadmap|rejected|imports|revert|severity|copy``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from data.swap import WriteFailed
from data.warehouse import default_db_path

REGION_HELP = ("регион, в котором искать муниципалитеты файла по названию (название, код ISO или ОКАТО, "
               "например «Тверская область» или RU-TVE); в хранилище из нескольких регионов")


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else default_db_path()


class CommandError(ValueError):
    """A command cannot run; the message is for a person (``main`` prints it and exits 2)."""


def _existing_db(args: argparse.Namespace, hint: str = "") -> Path:
    db = _db(args)
    if not db.exists():
        raise CommandError(f"хранилище не найдено: {db}{hint}")
    return db


def _person_errors() -> tuple[type[BaseException], ...]:
    """Every error whose message is written for a person: printed as one line, exit 2. Imported when
    one is raised, so that a command loads only the modules it needs."""
    from data.aliases import AliasFileError
    from data.clickhouse import ClickHouseError
    from data.dialect import DialectError
    from data.engine import EngineError
    from data.importer import ImportFailed
    from data.mapping import MappingError
    from data.revert import RevertFailed
    from data.roadmap import RoadmapFileError
    from data.severity import SeverityConfigError
    from data.targets import TargetFileError
    from data.warehouse import RegionError

    return (CommandError, WriteFailed, RegionError, TargetFileError, MappingError, ImportFailed, AliasFileError,
            RoadmapFileError, RevertFailed, SeverityConfigError, ClickHouseError, DialectError, EngineError)


def cmd_init(args: argparse.Namespace) -> int:
    from data.swap import writing
    from data.warehouse import check_calendar, check_timezone, ensure_initialised, set_region

    db = _db(args)
    # checked before the file is touched: a typo in the zone must not leave a half-made warehouse
    timezone = check_timezone(args.timezone) if args.timezone else None
    calendar = check_calendar(args.calendar) if args.calendar else None
    with writing(db) as con:
        ensure_initialised(con)  # the reference lists only: no municipality of any region
        region = set_region(con, args.region, timezone, calendar)
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]  # noqa: S608
                  for t in ("sector", "category", "channel", "municipality")}
    print(json.dumps({"db": str(db), "region": region.name, "timezone": region.timezone,
                      "calendar": region.calendar, **counts}, ensure_ascii=False))
    return 0


def cmd_region(args: argparse.Namespace) -> int:
    from data.swap import writing
    from data.warehouse import connect, read_region, set_region

    db = _existing_db(args, " (создайте его: python -m data init --region НАЗВАНИЕ)")
    if args.name is None and args.timezone is None and args.calendar is None:
        con = connect(db, read_only=True)  # only show the settings
        try:
            region = read_region(con)
        finally:
            con.close()
    else:
        with writing(db) as con:  # the dashboard may be serving this file
            region = set_region(con, args.name, args.timezone, args.calendar,
                                convert_times=args.convert_times)
    print(json.dumps({"db": str(db), "region": region.name, "timezone": region.timezone,
                      "calendar": region.calendar}, ensure_ascii=False))
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from data.swap import writing
    from data.targets import import_targets

    db = _existing_db(args)
    with writing(db) as con:  # the dashboard may be serving this file
        result = import_targets(con, args.file, region=args.region)
    print(json.dumps(result.summary(), ensure_ascii=False))
    return 0


def _clickhouse_target(text: str):
    """The ClickHouse engine named by ``--to`` / ``--engine`` (DuckDB is not a copy target)."""
    from data.engine import open_clickhouse, parse_engine

    spec = parse_engine(text)
    if spec.kind == "duckdb":
        raise CommandError("копировать можно в ClickHouse: chdb:ПАПКА или clickhouse://пользователь:пароль@сервер:8123/база")
    return spec, open_clickhouse(spec, create=True)


def cmd_copy(args: argparse.Namespace) -> int:
    from data.clickhouse import copy_warehouse

    db = _existing_db(args)
    spec, target = _clickhouse_target(args.to)
    try:
        result = copy_warehouse(db, target, rebuild=args.rebuild_rollups)
    finally:
        target.close()
    print(json.dumps({"db": str(db), "to": str(spec), **result}, ensure_ascii=False))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from data.demo import build_demo
    from data.regions import federal_subjects

    regions = len(federal_subjects()) if args.country else args.regions
    if args.engine:
        return _demo_on_clickhouse(args, regions)
    db = _db(args)
    if args.if_missing and db.exists():
        print(json.dumps({"db": str(db), "built": False, "reason": "хранилище уже есть"}, ensure_ascii=False))
        return 0
    stats = build_demo(db, appeals=args.appeals, months=args.months, seed=args.seed, end_month=args.end,
                       regions=regions)
    print(json.dumps({"db": str(db), "built": True, **stats}, ensure_ascii=False, default=str))
    return 0


def _demo_on_clickhouse(args: argparse.Namespace, regions: int) -> int:
    """The demo on ClickHouse: built by the one generator into a scratch DuckDB file, then copied."""
    import tempfile

    from data.clickhouse import copy_warehouse
    from data.demo import build_demo

    spec, target = _clickhouse_target(args.engine)
    try:
        with tempfile.TemporaryDirectory(prefix="cur_demo_") as scratch:
            db = Path(scratch) / "demo.duckdb"
            stats = build_demo(db, appeals=args.appeals, months=args.months, seed=args.seed, end_month=args.end,
                               regions=regions)
            copied = copy_warehouse(db, target, rebuild=True)
    finally:
        target.close()
    print(json.dumps({"engine": str(spec), "built": True, **stats, "copy_seconds": copied["seconds"]},
                     ensure_ascii=False, default=str))
    return 0


def _yield_to_the_dashboard() -> None:
    """Bulk writes run at low CPU priority: on a machine that also serves the dashboard, people
    waiting for a page matter more than an import finishing a few seconds sooner."""
    if os.environ.get("CUR_IMPORT_NICE", "10") != "0":
        os.nice(int(os.environ.get("CUR_IMPORT_NICE", "10")))


def cmd_import(args: argparse.Namespace) -> int:
    from data.importer import low_acceptance_warning, run_import, summary_json
    from data.mapping import load_mapping
    from data.swap import writing

    mapping = load_mapping(args.mapping)
    if (spec := _import_engine(args)) is not None:
        return _import_on_clickhouse(args, spec, mapping)
    db = _db(args)
    _yield_to_the_dashboard()
    # the served file is never written in place: the dashboard keeps answering with the old
    # data until the finished import is switched in (data/swap.py)
    with writing(db) as con:
        if threads := os.environ.get("CUR_IMPORT_THREADS"):  # leave cores to the dashboard
            con.execute("SET threads = $n", {"n": int(threads)})
        result = run_import(con, args.file, mapping, source=args.source, region=args.region)
    print(summary_json(result))
    if warning := low_acceptance_warning(result):
        print(warning, file=sys.stderr)  # the rows that did load are good: exit 0, but say so
    return 0


def _import_engine(args: argparse.Namespace):
    """The ClickHouse engine an import writes to: ``--engine``, else ``CUR_ENGINE`` unless ``--db`` names
    a file; None for DuckDB."""
    from data.engine import parse_engine

    if args.engine is None and args.db:
        return None
    spec = parse_engine(args.engine)
    if spec.kind == "duckdb":
        if args.engine is not None:
            args.db = spec.target
        return None
    return spec


def _import_on_clickhouse(args: argparse.Namespace, spec, mapping) -> int:  # noqa: ANN001
    from data.chimport import import_to_clickhouse
    from data.engine import open_clickhouse
    from data.importer import low_acceptance_warning, summary_json

    _yield_to_the_dashboard()
    con = open_clickhouse(spec)
    try:
        result = import_to_clickhouse(con, args.file, mapping, source=args.source, region=args.region)
    finally:
        con.close()
    print(summary_json(result))
    if warning := low_acceptance_warning(result):
        print(warning, file=sys.stderr)
    return 0


def cmd_aliases(args: argparse.Namespace) -> int:
    from data.aliases import import_aliases
    from data.swap import writing
    from data.warehouse import ensure_initialised

    db = _existing_db(args)
    with writing(db) as con:  # the dashboard may be serving this file
        ensure_initialised(con, municipalities_csv=None)
        result = import_aliases(con, args.file)
    print(json.dumps(result.summary(), ensure_ascii=False))
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    import time

    from data.rollup import refresh_rollups
    from data.swap import writing
    from data.warehouse import ensure_initialised

    started = time.perf_counter()
    with writing(_db(args)) as con:
        ensure_initialised(con)
        con.execute("BEGIN TRANSACTION")
        refresh_rollups(con)
        con.execute("COMMIT")
        rows = con.execute("SELECT count(*) FROM appeal_monthly").fetchall()[0][0]
    print(json.dumps({"db": str(_db(args)), "appeal_monthly": rows,
                      "seconds": round(time.perf_counter() - started, 2)}, ensure_ascii=False))
    return 0


def cmd_severity(args: argparse.Namespace) -> int:
    from data.severity import apply, load_config
    from data.swap import writing
    from data.warehouse import ensure_initialised

    db = _existing_db(args)
    config = load_config(args.file)  # checked before the file is touched
    # read at query time through category_id: no rollup to rebuild; the new file resets the answer caches
    with writing(db) as con:
        ensure_initialised(con, municipalities_csv=None)
        result = apply(con, config)
    print(json.dumps({"db": str(db), **result}, ensure_ascii=False))
    return 0


def cmd_roadmap(args: argparse.Namespace) -> int:
    from data.roadmap import import_roadmap
    from data.swap import writing

    db = _existing_db(args)
    with writing(db) as con:  # the dashboard may be serving this file
        result = import_roadmap(con, args.file, source=args.source, region=args.region)
    print(json.dumps(result.summary(), ensure_ascii=False))
    return 0


def _read_only(args: argparse.Namespace):
    """A reading connection to the warehouse: the ClickHouse one of ``--engine`` / ``CUR_ENGINE``, else
    the DuckDB file."""
    from data.engine import open_clickhouse
    from data.warehouse import connect

    if (spec := _import_engine(args)) is not None:
        return open_clickhouse(spec)
    return connect(_existing_db(args), read_only=True)


def cmd_rejected(args: argparse.Namespace) -> int:
    from data.importer import rejected_rows_csv

    con = _read_only(args)
    try:
        rejected_rows_csv(con, args.import_id, sys.stdout)
    finally:
        con.close()
    return 0


def cmd_imports(args: argparse.Namespace) -> int:
    from data.revert import list_imports

    con = _read_only(args)
    try:
        imports = list_imports(con)
    finally:
        con.close()
    print("номер\tначало\tфайл\tпрочитано\tпринято\tновых\tизменено\tбез изменений\tотклонено\tсостояние")
    for i in imports:
        state = ("отменена " + f"{i['reverted_at']:%d.%m.%Y %H:%M}" if i["reverted_at"]
                 else "не завершена" if i["finished_at"] is None else "действует")
        print("\t".join(str(x if x is not None else "—") for x in (
            i["import_id"], f"{i['started_at']:%d.%m.%Y %H:%M:%S}", i["file"], i["read"], i["accepted"], i["inserted"],
            i["updated"], i["unchanged"], i["rejected"], state)))
    return 0


def cmd_revert(args: argparse.Namespace) -> int:
    from data.revert import revert_import
    from data.swap import writing

    if (spec := _import_engine(args)) is not None:
        from data.chimport import revert_on_clickhouse
        from data.engine import open_clickhouse

        con = open_clickhouse(spec)
        try:
            result = revert_on_clickhouse(con, args.import_id)
        finally:
            con.close()
        print(result.summary())
        return 0
    db = _existing_db(args)
    with writing(db) as con:  # the dashboard switches to the reverted file at once
        result = revert_import(con, args.import_id)
    print(result.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data", description="Хранилище ЦУР: демо-данные и загрузка")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="файл хранилища (по умолчанию $CUR_DB или var/warehouse.duckdb)")
        return p

    p = with_db(sub.add_parser("init", help="создать хранилище региона со справочниками (без муниципалитетов)"))
    p.add_argument("--region", help="название региона, например «Ставропольский край»")
    p.add_argument("--timezone", help="часовой пояс IANA (по умолчанию Europe/Moscow), например America/New_York")
    p.add_argument("--calendar", help="календарь рабочих дней: RU (по умолчанию), код страны (US, BY…) или none")
    p.set_defaults(func=cmd_init)

    p = with_db(sub.add_parser("region", help="показать или изменить название, часовой пояс, календарь региона"))
    p.add_argument("--name", help="название региона")
    p.add_argument("--timezone", help="часовой пояс IANA")
    p.add_argument("--calendar", help="календарь рабочих дней: RU, код страны или none")
    times = p.add_mutually_exclusive_group()
    times.add_argument("--convert-times", dest="convert_times", action="store_const", const=True,
                       help="при смене пояса пересчитать хранимое время в новый пояс")
    times.add_argument("--keep-times", dest="convert_times", action="store_const", const=False,
                       help="при смене пояса оставить хранимое время как есть (оно уже местное)")
    p.set_defaults(func=cmd_region)

    p = with_db(sub.add_parser("demo", help="построить демо-хранилище: Смоленская область"))
    p.add_argument("--appeals", type=int, default=300_000, help="число обращений (по умолчанию 300 000)")
    p.add_argument("--months", type=int, default=24, help="число месяцев (по умолчанию 24)")
    p.add_argument("--seed", type=int, default=20251, help="зерно генератора")
    p.add_argument("--end", help="последний месяц ГГГГ-ММ (по умолчанию прошлый месяц)")
    p.add_argument("--if-missing", action="store_true", help="ничего не делать, если хранилище уже есть")
    p.add_argument("--engine", help="построить в ClickHouse: chdb:ПАПКА или clickhouse://… (по умолчанию файл DuckDB)")
    p.add_argument("--regions", type=int, default=1,
                   help="число регионов: 1 — только Смоленская область; больше — ещё субъекты РФ "
                        "с синтетическими муниципалитетами (население приблизительное)")
    p.add_argument("--country", action="store_true", help="все субъекты РФ из списка демо (как --regions 12)")
    p.set_defaults(func=cmd_demo)

    p = with_db(sub.add_parser("import", help="загрузить файл обращений (CSV, XLSX, Parquet)"))
    p.add_argument("file", type=Path)
    p.add_argument("--mapping", type=Path, help="файл соответствия столбцов (TOML)")
    p.add_argument("--source", help="имя источника (по умолчанию из соответствия или имя файла)")
    p.add_argument("--engine", help="загрузить в ClickHouse: chdb:ПАПКА или clickhouse://… "
                                    "(по умолчанию $CUR_ENGINE или файл DuckDB)")
    p.add_argument("--region", help=REGION_HELP)
    p.set_defaults(func=cmd_import)

    p = with_db(sub.add_parser("aliases", help="другие написания муниципалитетов (CSV: municipality, alias)"))
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_aliases)

    p = with_db(sub.add_parser("targets", help="загрузить целевые показатели (CSV, XLSX)"))
    p.add_argument("file", type=Path)
    p.add_argument("--region", help=REGION_HELP)
    p.set_defaults(func=cmd_targets)

    p = with_db(sub.add_parser("refresh", help="пересчитать сводные таблицы (после обновления версии)"))
    p.set_defaults(func=cmd_refresh)

    p = with_db(sub.add_parser("roadmap", help="загрузить меры дорожной карты (CSV, XLSX)"))
    p.add_argument("file", type=Path)
    p.add_argument("--source", help="откуда меры (по умолчанию имя файла)")
    p.add_argument("--region", help=REGION_HELP)
    p.set_defaults(func=cmd_roadmap)

    p = with_db(sub.add_parser("rejected", help="отклонённые строки с причинами (CSV)"))
    p.add_argument("--import-id", type=int)
    p.add_argument("--engine", help="хранилище в ClickHouse: chdb:ПАПКА или clickhouse://…")
    p.set_defaults(func=cmd_rejected)

    p = with_db(sub.add_parser("imports", help="список загрузок: файл, время, счётчики"))
    p.add_argument("--engine", help="хранилище в ClickHouse: chdb:ПАПКА или clickhouse://…")
    p.set_defaults(func=cmd_imports)
    p = with_db(sub.add_parser("revert", help="отменить загрузку: удалить её строки и вернуть заменённые"))
    p.add_argument("import_id", type=int, help="номер загрузки (python -m data imports)")
    p.add_argument("--engine", help="хранилище в ClickHouse: chdb:ПАПКА или clickhouse://…")
    p.set_defaults(func=cmd_revert)

    p = with_db(sub.add_parser("copy", help="скопировать хранилище DuckDB в ClickHouse (chdb:ПАПКА или clickhouse://…)"))
    p.add_argument("--to", required=True, help="куда: chdb:ПАПКА или clickhouse://пользователь:пароль@сервер:8123/база")
    p.add_argument("--rebuild-rollups", action="store_true",
                   help="оставлен для совместимости: сводные таблицы всегда считаются в ClickHouse из фактов")
    p.set_defaults(func=cmd_copy)

    p = with_db(sub.add_parser("severity", help="задать тяжесть категорий из файла (индекс напряжённости)"))
    p.add_argument("--file", type=Path, help="файл TOML (по умолчанию $CUR_SEVERITY_CONFIG или config/severity.toml)")
    p.set_defaults(func=cmd_severity)

    args = parser.parse_args(argv)
    import duckdb

    try:
        return int(args.func(args))
    except _person_errors() as exc:  # the warehouse is as it was (writers switch in only finished work)
        print(f"ошибка: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"ошибка: не удалось открыть хранилище {_db(args)}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
