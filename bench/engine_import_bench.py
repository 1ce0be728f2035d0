"""Import speed on both engines: the same export into a DuckDB warehouse and straight into its chDB copy.

    python bench/engine_import_bench.py [ROWS] [--files DIR] [--format csv|parquet]

A fresh warehouse (reference lists and the demo's municipalities) is built in DuckDB and copied to
chDB; the file of ``bench/import_bench.py`` is imported into each (first load), then again (every row
unchanged: the upsert path), then a day's changes (answers to 5 % of the appeals: the incremental
path, where the rollups are appended to). Prints rows/s and the phases of the chDB import.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.import_bench import write_files  # noqa: E402
from data.chimport import import_to_clickhouse  # noqa: E402
from data.clickhouse import ChdbConnection, copy_warehouse  # noqa: E402
from data.importer import run_import  # noqa: E402
from data.mapping import load_mapping  # noqa: E402
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="?", type=int, default=500_000)
    parser.add_argument("--files", type=Path, help="folder for the generated files (kept between runs)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cur_engine_import_") as scratch:
        folder = args.files or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        parquet, csv, mapping_path = write_files(args.rows, folder)
        path = csv if args.format == "csv" else parquet
        mapping = load_mapping(mapping_path)
        db = Path(scratch) / "w.duckdb"
        con = connect(db)
        ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
        con.close()
        ch = ChdbConnection(Path(scratch) / "chdb", create=True)
        copy_warehouse(db, ch)
        for run in ("first load", "again (unchanged)"):
            con = connect(db)
            t0 = time.perf_counter()
            duck = run_import(con, path, mapping)
            duck_s = time.perf_counter() - t0
            con.close()
            t0 = time.perf_counter()
            click = import_to_clickhouse(ch, path, mapping)
            ch_s = time.perf_counter() - t0
            assert (duck.read, duck.inserted, duck.unchanged) == (click.read, click.inserted, click.unchanged)
            print(f"{run}: {duck.read:,} rows ({args.format}) — DuckDB {duck_s:.1f} s, {duck.read / duck_s:,.0f} rows/s; "
                  f"chDB {ch_s:.1f} s, {click.read / ch_s:,.0f} rows/s")
            print("  chDB phases: " + ", ".join(f"{k} {v:.2f}" for k, v in click.phases.items() if v >= 0.05))
        # a day's changes to a loaded warehouse: answers to 5 % of its appeals (the incremental case)
        answers = _answers_file(csv, folder, max(1, args.rows // 20))
        con = connect(db)
        t0 = time.perf_counter()
        duck = run_import(con, answers, mapping)
        duck_s = time.perf_counter() - t0
        con.close()
        t0 = time.perf_counter()
        click = import_to_clickhouse(ch, answers, mapping)
        ch_s = time.perf_counter() - t0
        assert (duck.updated, duck.inserted) == (click.updated, click.inserted)
        print(f"answers to {click.updated:,} of them: DuckDB {duck_s:.1f} s; chDB {ch_s:.1f} s")
        print("  chDB phases: " + ", ".join(f"{k} {v:.2f}" for k, v in click.phases.items() if v >= 0.05))
        ch.close()


def _answers_file(csv: Path, folder: Path, n: int) -> Path:
    """The first ``n`` unanswered rows of the bench file (received over 3 days ago), answered 2 days later."""
    import duckdb

    out = folder / f"answers-{n}.csv"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * REPLACE (strftime(strptime("Дата поступления", '%d.%m.%Y %H:%M') + INTERVAL 2 DAY,
                                                     '%Y-%m-%d %H:%M:%S') AS "Дата ответа")
                          FROM read_csv('{csv}', delim = ';', header = true, all_varchar = true)
                          WHERE "Дата ответа" IS NULL
                            AND strptime("Дата поступления", '%d.%m.%Y %H:%M') < now()::TIMESTAMP - INTERVAL 3 DAY
                          LIMIT {int(n)})
                    TO '{out}' (HEADER, DELIMITER ';', FORCE_QUOTE *)""")  # noqa: S608 - our own file names
    con.close()
    return out


if __name__ == "__main__":
    main()
