"""`python -m report pack`: the meeting pack (or the monthly report to the governor) as PPTX, PDF or XLSX.

    python -m report pack [--db PATH] --period 2025-10 [--sector S] [--municipality M]
                          [--indicator CODE] [--channel CODE] [--kind meeting|governor]
                          [--region ID|NAME] --out FILE.pptx|FILE.pdf|FILE.xlsx

``--region`` (a warehouse of several regions): the pack of one region — its name on the title and in
the file name, its units on the map, every table and number counted over them.

The dashboard's «Пакет к совещанию» button calls ``make`` with the page's filters and the user's scope.
Charts and the map are native (PowerPoint chart objects and shapes, reportlab drawings): no browser
is started, a pack takes about a second or two.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from metrics.scope import REGION, Scope
from metrics.source import WarehouseMissing, configure, warehouse_path
from report import content

FORMATS = {"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
           "pdf": "application/pdf",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def make(fmt: str, period: str, sector: str | None = None, municipality: str | int | None = None,
         scope: Scope = REGION, kind: str = "meeting", indicator: str | None = None,
         channel: str | None = None, region: str | int | None = None) -> tuple[bytes, str]:
    """(file content, suggested file name) for ``fmt`` in pptx / pdf / xlsx; ``PackError`` on bad input."""
    if fmt not in FORMATS:
        raise content.PackError(f"неизвестный формат: {fmt} (допустимы: {', '.join(FORMATS)})")
    pack = content.build(period, sector, municipality, scope, kind, indicator, channel, region)
    if fmt == "xlsx":
        from report import sheets

        return sheets.write(pack), f"{pack.file_stem}.xlsx"
    if fmt == "pptx":
        from report import slides

        return slides.write(pack), f"{pack.file_stem}.pptx"
    from report import document

    return document.write(pack), f"{pack.file_stem}.pdf"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m report pack",
                                     description="Пакет к совещанию или ежемесячный доклад: PPTX, PDF или XLSX.")
    parser.add_argument("--db", help="файл хранилища DuckDB (по умолчанию — как у дашборда)")
    parser.add_argument("--period", required=True, help="период: 2025-10, 2025-Q3, 2025, последние 30 дней")
    parser.add_argument("--sector", help="отраслевой блок: код (housing) или название (ЖКХ)")
    parser.add_argument("--municipality", help="муниципалитет: код или точное название")
    parser.add_argument("--indicator", help="показатель карты, матрицы и первой динамики: код (on_time_share)")
    parser.add_argument("--channel", help="канал поступления: код (pos) или название")
    parser.add_argument("--region", help="регион хранилища нескольких регионов: код (2), название или код ISO (RU-TVE)")
    parser.add_argument("--kind", default="meeting", choices=sorted(content.KINDS),
                        help="meeting — пакет к совещанию, governor — ежемесячный доклад губернатору")
    parser.add_argument("--out", required=True, help="файл результата: .pptx, .pdf или .xlsx")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        print(f"ошибка: файл результата должен оканчиваться на .pptx, .pdf или .xlsx, а не «{out.name}»",
              file=sys.stderr)
        return 2
    if args.db:
        configure(args.db)
    if not warehouse_path().exists():
        print(f"ошибка: хранилище данных не найдено: {warehouse_path()}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        data, _name = make(fmt, args.period, args.sector, args.municipality, REGION, args.kind,
                             args.indicator, args.channel, args.region)
    except content.PackError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return 2
    except WarehouseMissing:
        print(f"ошибка: хранилище данных не найдено: {warehouse_path()}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"{out} — {len(data) / 1024:.0f} КБ за {time.perf_counter() - started:.1f} с")
    return 0
