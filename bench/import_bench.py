"""Import speed: 1 000 000 rows from Parquet and from CSV into a fresh warehouse.

    python bench/import_bench.py [ROWS] [--profile] [--repeat N] [--files DIR] [--only csv|parquet] [--bare]
                                 [--bad-share X] [--data random|demo]

Prints rows/s for each format (aim: >= 1 000 000 rows/s Parquet, >= 300 000 rows/s CSV)
and a second run of the same file (upsert path: every row unchanged).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.importer import run_import  # noqa: E402
from data.mapping import load_mapping  # noqa: E402
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised, read_reference  # noqa: E402


def make_table(rows: int, seed: int = 7, bad_share: float = 0.0) -> pa.Table:
    """A realistic export: Russian names, dd.mm.yyyy dates in CSV, every optional field present.

    ``bad_share`` of the rows name a municipality that does not exist (they are rejected).
    """
    rng = np.random.default_rng(seed)
    munis = [r["name"] for r in read_reference("smolensk_municipalities.csv")]
    muni_names = np.array(munis, dtype=object)[rng.integers(0, len(munis), rows)]
    muni_names[rng.random(rows) < bad_share] = "Нигдевский район"
    cats = [(r["sector"], r["subcategory"] or r["category"]) for r in read_reference("categories.csv")]
    channels = ["pos", "im", "gospublic", "letter", "e_reception", "hotline", "reception"]
    received = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 700 * 86400, rows).astype("timedelta64[s]")
    answered = received + rng.integers(3600, 20 * 86400, rows).astype("timedelta64[s]")
    open_mask = rng.random(rows) < 0.1
    cat_idx = rng.integers(0, len(cats), rows)
    return pa.table({
        "Номер": pa.array([f"B{i:08d}" for i in range(rows)]),
        "Дата поступления": pa.array(received.astype("datetime64[us]")),
        "Муниципалитет": pa.array(muni_names.tolist()),
        "Канал": pa.array(np.array(channels, dtype=object)[rng.integers(0, len(channels), rows)].tolist()),
        "Блок": pa.array([cats[i][0] for i in cat_idx]),
        "Категория": pa.array([cats[i][1] for i in cat_idx]),
        "Организация": pa.array([f"Организация № {i}" for i in rng.integers(1, 150, rows)]),
        "Дата ответа": pa.array(np.where(open_mask, np.datetime64("NaT"), answered).astype("datetime64[us]")),
        "Оценка": pa.array(np.where(rng.random(rows) < 0.3, rng.integers(1, 6, rows), 0)).cast(pa.int16()),
        "Суть": pa.array(np.array(["Яма на дороге", "Нет отопления", "Не вывозят мусор"], dtype=object)[
            rng.integers(0, 3, rows)].tolist()),
        "ФИО заявителя": pa.array(["Иванов Иван Иванович"] * rows),
    })


MAPPING = """
[source]
name = "bench"
[columns]
source_id = "Номер"
received_at = "Дата поступления"
municipality = "Муниципалитет"
channel = "Канал"
sector = "Блок"
category = "Категория"
organisation = "Организация"
answered_at = "Дата ответа"
satisfaction = "Оценка"
topic = "Суть"

"""


def timed_import(path: Path, mapping_path: Path, db: Path) -> tuple[float, dict, dict[str, float]]:
    con = connect(db)
    try:
        ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)  # the file names the demo's units
        t0 = time.perf_counter()
        result = run_import(con, path, load_mapping(mapping_path))
        return time.perf_counter() - t0, result.summary(), result.phases
    finally:
        con.close()


def bare_copy(path: Path, db: Path, fmt: str) -> float:
    """A plain DuckDB copy of the file into a persistent table: the floor for any import."""
    con = duckdb.connect(str(db))
    try:
        t0 = time.perf_counter()
        if fmt == "parquet":
            con.execute("CREATE TABLE t AS SELECT * FROM read_parquet($p)", {"p": str(path)})
        else:
            con.execute("CREATE TABLE t AS SELECT * FROM read_csv($p, delim = ';', header = true, all_varchar = true)",
                        {"p": str(path)})
        return time.perf_counter() - t0
    finally:
        con.close()


def demo_table(rows: int, folder: Path) -> pa.Table:
    """The demo region's own appeals (``python -m data demo``) as an export with Russian column
    names: organisations serve their own municipalities and sectors, months and categories follow
    the planted seasons, so the rollups have the cardinality of real data."""
    from data.demo import build_demo

    db = folder / f"demo-{rows}.duckdb"
    if not db.exists():
        build_demo(db, appeals=rows)
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(
            """SELECT a.source_id AS "Номер", a.received_at AS "Дата поступления", m.name AS "Муниципалитет",
                      a.channel AS "Канал", s.code AS "Блок", c.name AS "Категория", o.name AS "Организация",
                      a.answered_at AS "Дата ответа", CAST(a.satisfaction AS SMALLINT) AS "Оценка",
                      coalesce(a.topic, c.name) AS "Суть", 'Иванов Иван Иванович' AS "ФИО заявителя"
               FROM appeal a JOIN municipality m ON m.id = a.municipality_id JOIN sector s ON s.id = a.sector_id
               LEFT JOIN category c ON c.id = a.category_id LEFT JOIN organisation o ON o.id = a.organisation_id
               ORDER BY a.received_at"""
        ).to_arrow_table()
    finally:
        con.close()


def write_files(rows: int, folder: Path, bad_share: float = 0.0, shape: str = "random") -> tuple[Path, Path, Path]:
    tag = f"{rows}" + (f"-bad{bad_share:g}" if bad_share else "") + ("-demo" if shape == "demo" else "")
    parquet_path, csv_path = folder / f"appeals-{tag}.parquet", folder / f"appeals-{tag}.csv"
    mapping_path = folder / "map.toml"
    mapping_path.write_text(MAPPING, encoding="utf-8")
    if parquet_path.exists() and csv_path.exists():
        return parquet_path, csv_path, mapping_path
    table = make_table(rows, bad_share=bad_share) if shape == "random" else demo_table(rows, folder)
    # satisfaction 0 stands for "no rating" in this synthetic export -> empty cell
    sat = pc.if_else(pc.equal(table["Оценка"], 0), pa.scalar(None, pa.int16()), table["Оценка"])
    table = table.set_column(table.schema.get_field_index("Оценка"), "Оценка", sat)
    pq.write_table(table, parquet_path)
    csv_table = table.set_column(1, "Дата поступления", pc.strftime(table["Дата поступления"], "%d.%m.%Y %H:%M"))
    pacsv.write_csv(csv_table, csv_path, pacsv.WriteOptions(delimiter=";"))
    return parquet_path, csv_path, mapping_path


def print_phases(phases: dict[str, float]) -> None:
    print("           " + ", ".join(f"{name} {secs:.2f}" for name, secs in phases.items() if secs >= 0.005))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print seconds per import phase")
    parser.add_argument("--repeat", type=int, default=1, help="run each import N times, report the best")
    parser.add_argument("--files", type=Path, help="folder to keep the generated files in between runs")
    parser.add_argument("--only", choices=("parquet", "csv"), help="one format only")
    parser.add_argument("--bare", action="store_true", help="also time a plain CREATE TABLE AS from the file")
    parser.add_argument("--bad-share", type=float, default=0.0, help="share of rows to be rejected (default 0)")
    parser.add_argument("--data", choices=("random", "demo"), default="random",
                        help="random: every field drawn independently (the worst case for the rollups: nearly "
                             "every row is its own group); demo: the demo region's appeals, as real data")
    args = parser.parse_args()
    rows = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        folder = args.files or tmpdir
        folder.mkdir(parents=True, exist_ok=True)
        parquet_path, csv_path, mapping_path = write_files(rows, folder, args.bad_share, args.data)
        print(f"data: {args.data}; rows: {rows:,}; parquet {parquet_path.stat().st_size / 2**20:.1f} MiB, "
              f"csv {csv_path.stat().st_size / 2**20:.1f} MiB")
        for label, path in (("parquet", parquet_path), ("csv", csv_path)):
            if args.only and label != args.only:
                continue
            if args.bare:
                best = min(bare_copy(path, tmpdir / f"bare-{label}-{i}.duckdb", label) for i in range(args.repeat))
                print(f"{label:8s} bare CTAS:    {best:6.2f} s  {rows / best:>12,.0f} rows/s")
            runs = []
            for i in range(args.repeat):
                db = tmpdir / f"{label}-{i}.duckdb"
                first = timed_import(path, mapping_path, db)
                again = timed_import(path, mapping_path, db)
                runs.append((first, again))
            (secs, summary, phases) = min((r[0] for r in runs), key=lambda r: r[0])
            assert summary["read"] == rows and summary["accepted"] + summary["rejected"] == rows, summary
            print(f"{label:8s} first import: {secs:6.2f} s  {rows / secs:>12,.0f} rows/s  "
                  f"(accepted {summary['accepted']:,}, rejected {summary['rejected']:,})")
            if args.profile:
                print_phases(phases)
            (secs, summary, phases) = min((r[1] for r in runs), key=lambda r: r[0])
            print(f"{label:8s} re-import:    {secs:6.2f} s  {rows / secs:>12,.0f} rows/s  "
                  f"(unchanged {summary['unchanged']:,}, updated {summary['updated']:,})")
            if args.profile:
                print_phases(phases)


if __name__ == "__main__":
    main()
