"""Scale bench (issue 17): a many-million-appeal multi-region warehouse on DuckDB and on chDB — build
time, size on disk, import rows/s, and p50/p95 of every page query at each size, with the growth
between the two largest sizes as a ratio.

    python bench/scale_bench.py [--sizes 10M,100M] [--runs 20] [--engines duckdb,chdb] [--dir var/scale]
                                [--keep] [--regions 12] [--template 10M] [--import-rows 1M] [--estimate]

How a warehouse of N appeals is made, fast (the demo generator in Python would take ~7 s per million):
1. a small demo warehouse (``data.demo.build_demo``, several regions where this version of the demo
   has them) is the *template*: its reference lists (regions, municipalities, sectors, categories,
   organisations, channels, targets, boundaries, roadmap) are kept as they are;
2. its facts are resampled in DuckDB SQL, month by month in time order (zone maps): each new appeal
   takes a template appeal of the same month, picked by a hash of its number (``range(N)``), and
   keeps its municipality, sector, category, organisation, channel, closure reason, satisfaction,
   redirects, repeat/duplicate flags and topic — so the demo's joint distributions (seasons, stories,
   organisation quality, answer and first-response times per channel) survive; the receipt time moves
   within ±30 min, answer and first-response times are stretched by a hash-drawn factor (0.74–1.35),
   deadlines move with the receipt; what the data date has not reached stays open;
3. the rollups are built by ``data.rollup.refresh_rollups`` (what the demo and every import use).
The warehouse is a valid one (``data.schema``'s tables; the template's import log, with N rows).

chDB: ``python -m data copy --db W --to chdb:DIR --rebuild-rollups`` (timed; size = ``du`` of DIR).
Imports: DuckDB is timed on ``python -m data import`` of a generated CSV (``--import-rows``) into a
throwaway copy of the warehouse (the command's own copy-and-switch path, so the copy of the served
file is part of the time). A ClickHouse warehouse is written through DuckDB + ``data copy`` today (no
direct ClickHouse import yet), so its figure is the copy's rows/s.

Page queries: ``bench/engine_bench.py``'s set (heat map with comparison, municipality × sector
matrix, every indicator by sector, 12-month series, a day range from the facts, a municipality's
scope, ratings of municipalities and organisations, KPI series, signals) plus priority problems and,
where the version has it, the country rating of regions; one warm-up, then ``--runs`` timed calls.

The bench refuses to start when the free disk under ``--dir`` cannot hold what it estimates the
sizes need. Warehouses stay in ``--dir``; ``--keep`` reuses them instead of building them again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import page_queries  # noqa: E402
from bench.import_bench import MAPPING  # noqa: E402
from data.demo import build_demo  # noqa: E402
from data.rollup import refresh_rollups  # noqa: E402
from data.warehouse import get_meta, set_meta  # noqa: E402

# Measured on this machine (2 cores, shared with other work) at 10 M appeals, 12 regions: the estimates
# printed before a run and the disk check. The bench prints its own figures at every size.
EST_TEMPLATE_S_PER_M = 6.5  # the template demo (10 M: 65 s)
EST_BUILD_S_PER_M = 7.0  # generate + rollups + checkpoint (10 M: 70 s)
EST_COPY_S_PER_M = 10.0  # python -m data copy --rebuild-rollups to chDB (10 M: 95 s)
EST_DUCK_B = 80  # bytes per appeal on disk: the DuckDB file, facts + rollups (10 M: 76)
EST_CHDB_B = 165  # bytes per appeal on disk: the chDB directory (10 M: 158)
# scratch at the worst moment: DuckDB's spill of the rollups' sorts or the copy's Parquet files
EST_SCRATCH_B = 60
SAFETY = 1.3
MAX_APPEALS = 999_999_999  # source ids 'D' + 9 digits
TEMPLATE_MAX = 10_000_000  # 10 M resampled from a 10 M template: 87 % of the real 10 M demo's monthly groups


# --- sizes and estimates -----------------------------------------------------------------------


def parse_size(text: str) -> int:
    """'200k', '1M', '2.5M', '100M' or a plain number → appeals."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"не понят размер «{text}»: нужно число, 200k, 10M")
    n = int(round(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]))
    if not 1_000 <= n <= MAX_APPEALS:
        raise argparse.ArgumentTypeError(f"размер {text}: нужно от 1000 до {MAX_APPEALS:,} обращений")
    return n


def label(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1e6:g}M"
    if n >= 1_000 and n % 100 == 0:
        return f"{n / 1e3:g}k"
    return str(n)


def kept_bytes(n: int, engines: list[str]) -> int:
    """What a warehouse of ``n`` appeals keeps on disk (the DuckDB file is always built)."""
    return n * (EST_DUCK_B + (EST_CHDB_B if "chdb" in engines else 0))


def scratch_bytes(n: int, engines: list[str], import_rows: int) -> int:
    """The most a size needs for a while: the build's spill, or the import's throwaway copy of the
    warehouse with its copy-and-switch file."""
    imp = 2 * (n + import_rows) * EST_DUCK_B if "duckdb" in engines and import_rows else 0
    return max(n * EST_SCRATCH_B, imp)


def needed_bytes(todo: list[int], engines: list[str], import_rows: int) -> int:
    if not todo:
        return 0
    return int(SAFETY * (sum(kept_bytes(n, engines) for n in todo)
                         + max(scratch_bytes(n, engines, import_rows) for n in todo)))


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} ГБ"


def check_disk(folder: Path, todo: list[int], engines: list[str], import_rows: int) -> None:
    """Refuse (exit 2) when the free disk cannot hold the warehouses still to build."""
    free = shutil.disk_usage(folder).free
    need = needed_bytes(todo, engines, import_rows)
    if need > free:
        sizes = ", ".join(label(n) for n in todo)
        print(f"ошибка: недостаточно места на диске для размеров {sizes}: нужно около {gib(need)} "
              f"(оценка {EST_DUCK_B} Б/обращение DuckDB, {EST_CHDB_B} Б chDB, {EST_SCRATCH_B} Б временных, "
              f"копия для замера загрузки), свободно {gib(free)} в {folder}. Освободите место, выберите "
              "другую папку (--dir) или меньшие размеры (--sizes).", file=sys.stderr)
        sys.exit(2)


def du(path: Path) -> int:
    """Bytes on disk (``du``) of a file or directory."""
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


# --- the template and the fast generator ---------------------------------------------------------


def demo_regions_supported() -> bool:
    return "regions" in inspect.signature(build_demo).parameters


def build_template(path: Path, appeals: int, months: int, regions: int, seed: int) -> dict:
    kwargs = {"appeals": appeals, "months": months, "seed": seed}
    if demo_regions_supported():
        kwargs["regions"] = regions
    return build_demo(path, **kwargs)


# The template's facts, one row per appeal, as offsets from the receipt (microseconds)
TEMPLATE_SQL = """
CREATE TEMP TABLE tpl AS
SELECT CAST(date_trunc('month', received_at) AS DATE) AS m,
       CAST(row_number() OVER (PARTITION BY date_trunc('month', received_at)
                               ORDER BY received_at, source_id) - 1 AS BIGINT) AS rn,
       epoch_us(received_at) AS rec_us,
       epoch_us(received_at) - epoch_us(date_trunc('day', received_at)) AS tod_us,
       epoch_us(first_response_at) - epoch_us(received_at) AS first_us,
       epoch_us(answered_at) - epoch_us(received_at) AS ans_us,
       epoch_us(due_at) - epoch_us(received_at) AS due_us,
       epoch_us(first_response_due_at) - epoch_us(received_at) AS fdue_us,
       kind, channel, municipality_id, sector_id, category_id, organisation_id, status, closure_reason,
       answer_on_merits, returned_for_rework, redirect_count, satisfaction,
       repeat_of IS NOT NULL AS is_repeat, duplicate_of IS NOT NULL AS is_dup, topic, lat, lon
FROM tpl_db.appeal
"""

# One month of new appeals: numbers $off+1 .. $off+$n, each a template appeal of month $m (rn picked
# by hash), with its own receipt time and stretched durations; written in time order.
# Bits of h2: 0-15 receipt shift, 16-31 answer stretch, 32-47 first-response stretch, 48-55 / 56-63
# the point's shift; h3 picks how far back a repeat or a duplicate points.
MONTH_SQL = """
INSERT INTO appeal
SELECT 'demo', 'D' || lpad(CAST(seq AS VARCHAR), 9, '0'), kind, channel, make_timestamp(rec), municipality_id,
       sector_id, category_id, organisation_id,
       CASE WHEN closed THEN status WHEN first_at IS NOT NULL THEN 'in_work' ELSE 'new' END,
       make_timestamp(first_at), CASE WHEN closed THEN make_timestamp(ans) END,
       make_timestamp(rec + due_us), make_timestamp(rec + fdue_us),
       CASE WHEN closed THEN closure_reason END, CASE WHEN closed THEN answer_on_merits END,
       CASE WHEN closed THEN returned_for_rework END, redirect_count, CASE WHEN closed THEN satisfaction END,
       CASE WHEN is_repeat AND seq > 1
            THEN 'D' || lpad(CAST(seq - 1 - h3 % least(seq - 1, $repeat_back) AS VARCHAR), 9, '0') END,
       CASE WHEN is_dup AND seq > 1
            THEN 'D' || lpad(CAST(seq - 1 - h3 % least(seq - 1, $dup_back) AS VARCHAR), 9, '0') END,
       topic,
       round(lat + (((h2 >> 48) & 255) / 256.0 - 0.5) * 0.004, 5),
       round(lon + (((h2 >> 56) & 255) / 256.0 - 0.5) * 0.006, 5),
       $import_id
FROM (
    SELECT *, ans IS NOT NULL AND ans <= $as_of AS closed,
           CASE WHEN first <= $as_of THEN first END AS first_at
    FROM (
        SELECT *, CASE WHEN first_us IS NOT NULL THEN rec + least(first_s, ans_s) * 1000000 END AS first,
               rec + ans_s * 1000000 AS ans
        FROM (
            SELECT g.seq, g.h2, g.h3, t.*,
                   least(t.rec_us - t.tod_us + greatest(0, least(86399000000,
                         t.tod_us + CAST(((g.h2 & 65535) / 65536.0 - 0.5) * 3600 AS BIGINT) * 1000000)),
                         $as_of) AS rec,
                   CAST(t.ans_us / 1e6 * exp(0.6 * (((g.h2 >> 16) & 65535) / 65536.0 - 0.5)) AS BIGINT) AS ans_s,
                   CAST(t.first_us / 1e6 * exp(0.6 * (((g.h2 >> 32) & 65535) / 65536.0 - 0.5)) AS BIGINT)
                       AS first_s
            FROM (SELECT $off + i + 1 AS seq, hash(i + $off, $seed) % $c AS pick, hash(i + $off, $seed + 1) AS h2,
                         hash(i + $off, $seed + 2) AS h3
                  FROM range($n) r(i)) g
            JOIN (SELECT * FROM tpl WHERE m = $m) t ON t.rn = g.pick)))
ORDER BY rec
"""


def month_counts(template: list[tuple[dt.date, int]], n: int) -> list[tuple[dt.date, int, int]]:
    """(month, template appeals, new appeals): ``n`` split as the template's months are (largest remainder)."""
    total = sum(c for _, c in template)
    exact = [n * c / total for _, c in template]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: n - sum(counts)]:
        counts[i] += 1
    return [(m, c, k) for (m, c), k in zip(template, counts, strict=True)]


def copy_catalog(con: duckdb.DuckDBPyConnection) -> None:
    """Every table of the template (attached as ``tpl_db``) created here by its own CREATE statement
    (the schema exactly as data.schema and the other modules made it); the rows of every table but the
    facts and rollups (``appeal*``), which ``generate`` makes. A fresh file, not a copy of the template's:
    the template's dropped facts would stay in it as free blocks and inflate the size measured."""
    tables = con.execute("SELECT table_name, sql FROM duckdb_tables() WHERE database_name = 'tpl_db' "
                         "ORDER BY table_name").fetchall()
    for name, sql in tables:
        con.execute(sql)
        if not name.startswith("appeal"):
            con.execute(f'INSERT INTO "{name}" SELECT * FROM tpl_db."{name}"')  # noqa: S608 - catalog names


def generate(con: duckdb.DuckDBPyConnection, n: int, seed: int) -> dict:
    """Fill ``con`` (the template's catalog and reference rows, template attached as ``tpl_db``) with
    ``n`` resampled appeals, then build every rollup. Seconds of each step."""
    t0 = time.perf_counter()
    con.execute(TEMPLATE_SQL)
    months = [(m, int(c)) for m, c in con.execute("SELECT m, count(*) FROM tpl GROUP BY m ORDER BY m").fetchall()]
    import_id = int(con.execute("SELECT min(import_id) FROM import_log").fetchall()[0][0])
    as_of = dt.datetime.fromisoformat(get_meta(con, "data_as_of"))
    as_of_us = int(con.execute("SELECT epoch_us(CAST($t AS TIMESTAMP))", {"t": as_of}).fetchall()[0][0])
    off = 0
    for m, c, k in month_counts(months, n):
        if k == 0:
            continue
        con.execute(MONTH_SQL, {"off": off, "n": k, "m": m, "c": c, "seed": seed, "as_of": as_of_us,
                                "import_id": import_id,
                                # a repeat points up to ~a month back, a duplicate to the last ~6 hours
                                "repeat_back": max(1, k), "dup_back": max(1, k // 120)})
        off += k
    con.execute("UPDATE import_log SET read = $n, accepted = $n, inserted = $n, file = file || $note "
                "WHERE import_id = $id", {"n": n, "id": import_id, "note": f"; scale bench: {n} appeals"})
    set_meta(con, "scale_bench", json.dumps({"appeals": n, "seed": seed, "template_appeals": sum(c for _, c in months)}))
    # the rollup code lists the tables of every attached database: only this warehouse's may be left
    con.execute("DROP TABLE tpl")
    con.execute("DETACH tpl_db")
    t1 = time.perf_counter()
    refresh_rollups(con)
    t2 = time.perf_counter()
    con.execute("CHECKPOINT")
    t3 = time.perf_counter()
    return {"generate_s": t1 - t0, "rollups_s": t2 - t1, "checkpoint_s": t3 - t2}


def build_warehouse(path: Path, template: Path, n: int, seed: int, memory_limit: str, scratch: Path) -> dict:
    """The warehouse of ``n`` appeals at ``path``, written next to it and moved into place when complete."""
    building = path.with_name(path.name + ".building")
    for p in (building, Path(str(building) + ".wal")):
        p.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(building))
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{scratch}'")
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{template}' AS tpl_db (READ_ONLY)")
        copy_catalog(con)
        steps = generate(con, n, seed)
    finally:
        con.close()
    Path(str(path) + ".wal").unlink(missing_ok=True)
    os.replace(building, path)
    return {**steps, "build_s": time.perf_counter() - started}


# --- chDB copy and imports ----------------------------------------------------------------------


def run_cli(args: list[str], scratch: Path) -> tuple[float, dict]:
    """``python -m data ARGS`` from the project; (wall seconds, its JSON answer)."""
    env = {**os.environ, "TMPDIR": str(scratch), "CUR_IMPORT_NICE": "0"}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "data", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"python -m data {' '.join(args)}: {done.stderr.strip()[-800:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def copy_to_chdb(duck: Path, folder: Path, scratch: Path) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    seconds, answer = run_cli(["copy", "--db", str(duck), "--to", f"chdb:{folder}", "--rebuild-rollups"], scratch)
    return {"copy_s": seconds, "copy_inner_s": answer.get("seconds")}


def write_import_csv(duck: Path, path: Path, rows: int) -> None:
    """``rows`` new appeals in the shape of an export (import_bench's columns and mapping): the latest
    appeals of the warehouse under new numbers, so an import adds them to the last month or two."""
    con = duckdb.connect(str(duck), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        # One region's export, as a centre sends it: the further regions of the multi-region demo name
        # their units «МО № 17 (Тверская обл.)», which the importer's name matching (it drops the region
        # tail) cannot tell from «МО № 17 (Брянская обл.)», so their rows would be rejected as ambiguous.
        home = ("WHERE municipality_id IN (SELECT id FROM municipality WHERE region_id = 1)"
                if con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'municipality' "
                               "AND column_name = 'region_id'").fetchall()[0][0] else "")
        have = con.execute(f"SELECT count(*) FROM appeal {home}").fetchall()[0][0]  # noqa: S608 - constant
        copies = -(-rows // max(1, min(have, rows)))
        con.execute(
            f"""COPY (
                SELECT 'I' || r.j || '-' || a.source_id AS "Номер",
                       strftime(a.received_at, '%d.%m.%Y %H:%M') AS "Дата поступления",
                       m.name AS "Муниципалитет", a.channel AS "Канал", s.code AS "Блок", c.name AS "Категория",
                       o.name AS "Организация", a.answered_at AS "Дата ответа", a.satisfaction AS "Оценка",
                       coalesce(a.topic, c.name) AS "Суть", 'Иванов Иван Иванович' AS "ФИО заявителя"
                FROM (SELECT * FROM appeal {home} ORDER BY received_at DESC LIMIT {min(have, rows)}) a
                CROSS JOIN range({copies}) r(j)
                JOIN municipality m ON m.id = a.municipality_id JOIN sector s ON s.id = a.sector_id
                LEFT JOIN category c ON c.id = a.category_id LEFT JOIN organisation o ON o.id = a.organisation_id
                ORDER BY a.received_at LIMIT {rows}
            ) TO '{path}' (HEADER, DELIMITER ';')"""  # noqa: S608 - numbers and own paths
        )
    finally:
        con.close()


def measure_import(duck: Path, rows: int, scratch: Path) -> dict:
    """``python -m data import`` of ``rows`` new appeals into a throwaway copy of ``duck``."""
    csv_path = scratch / f"import-{rows}.csv"
    mapping = scratch / "import-map.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    write_import_csv(duck, csv_path, rows)
    target = scratch / "import-target.duckdb"
    shutil.copyfile(duck, target)
    try:
        seconds, answer = run_cli(["import", str(csv_path), "--mapping", str(mapping), "--db", str(target)], scratch)
    finally:
        for p in (target, Path(str(target) + ".wal"), Path(str(target) + ".lock"), csv_path):
            p.unlink(missing_ok=True)
    return {"import_s": seconds, "import_rows_per_s": rows / seconds, "accepted": answer.get("accepted"),
            "rejected": answer.get("rejected")}


# --- page queries ---------------------------------------------------------------------------------


def all_page_queries(con) -> dict[str, Callable[[], object]]:
    from metrics import query
    from metrics.periods import last_complete_month
    from metrics.priority import priority_problems

    queries = page_queries(con)
    last = last_complete_month(query.data_as_of(con))
    queries["priority problems"] = lambda: priority_problems(last, con=con)
    # the country view exists from the multi-region version on (looked up in this checkout only: the
    # installed project may be another one)
    if (ROOT / "metrics" / "country.py").exists():
        from metrics.country import region_rating

        queries["country rating of regions"] = lambda: region_rating(last)
    return queries


def p95(samples: list[float]) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def time_pages(engine: str, runs: int, only: list[str] | None = None) -> dict[str, tuple[float, float, float]]:
    """p50 and p95 wall ms and the median CPU ms of this process per call of every page query on ``engine``
    (``duckdb:FILE`` or ``chdb:DIR``); ``only``: the queries whose name holds one of these words. On a shared
    machine the CPU time per call is the steadier figure (an in-process engine's threads count in it)."""
    from metrics import source
    from metrics.scope import system_scope

    source.configure(engine)
    out = {}
    try:
        with system_scope(), source.reader() as con:
            for name, run in all_page_queries(con).items():
                if only and not any(word in name for word in only):
                    continue
                try:
                    run()  # warm-up: connection caches, the statement's translation
                    samples, cpu = [], []
                    for _ in range(runs):
                        t, c = time.perf_counter(), time.process_time()
                        run()
                        samples.append((time.perf_counter() - t) * 1000)
                        cpu.append((time.process_time() - c) * 1000)
                except Exception as exc:  # one failing query must not lose an hour of measurements
                    print(f"{engine}: {name} failed: {str(exc)[:300]}", file=sys.stderr, flush=True)
                    out[name] = (float("nan"), float("nan"), float("nan"))
                    continue
                out[name] = (statistics.median(samples), p95(samples), statistics.median(cpu))
    finally:
        source.configure(None)
    return out


# --- the run --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "var" / "scale", help="where the warehouses go")
    ap.add_argument("--sizes", default="10M,100M", help="appeals per warehouse, e.g. 200k,1M,10M,100M")
    ap.add_argument("--runs", type=int, default=20, help="timed calls of each page query (after one warm-up)")
    ap.add_argument("--engines", default="duckdb,chdb")
    ap.add_argument("--keep", action="store_true", help="reuse warehouses already built in --dir")
    ap.add_argument("--regions", type=int, default=12, help="regions of the template demo (where it has them)")
    ap.add_argument("--months", type=int, default=30, help="months of data")
    ap.add_argument("--template", type=parse_size, help=f"appeals of the template demo (default: the largest "
                    f"size, at most {TEMPLATE_MAX:,})")
    ap.add_argument("--import-rows", type=parse_size, default=1_000_000)
    ap.add_argument("--no-import", action="store_true", help="skip the import measurement")
    ap.add_argument("--memory-limit", default="6GB", help="DuckDB memory while building")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--only", help="time only the page queries whose name holds one of these comma-separated words")
    ap.add_argument("--estimate", action="store_true", help="print the time and disk estimates and stop")
    args = ap.parse_args()
    try:
        sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    only = [w.strip() for w in (args.only or "").split(",") if w.strip()] or None
    if not sizes or not engines or set(engines) - {"duckdb", "chdb"}:
        ap.error("--engines: duckdb и/или chdb; --sizes: хотя бы один размер")
    folder = args.dir.resolve()
    scratch = folder / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    template_n = args.template or min(TEMPLATE_MAX, sizes[-1])
    regions = args.regions if demo_regions_supported() else 1
    tag = f"r{regions}-m{args.months}"

    def duck_path(n: int) -> Path:
        return folder / f"scale-{label(n)}-{tag}.duckdb"

    def chdb_path(n: int) -> Path:
        return folder / f"scale-{label(n)}-{tag}.chdb"

    def built(n: int) -> bool:
        return args.keep and duck_path(n).exists() and ("chdb" not in engines or (chdb_path(n) / "data").exists())

    todo = [n for n in sizes if not built(n)]
    import_rows = 0 if args.no_import else args.import_rows
    for n in todo:
        est = n / 1e6 * (EST_BUILD_S_PER_M + (EST_COPY_S_PER_M if "chdb" in engines else 0))
        print(f"{label(n)}: estimated build {est / 60:.1f} min (+ copy of the warehouse for the import), "
              f"kept on disk ≈ {gib(kept_bytes(n, engines))}, scratch ≈ {gib(scratch_bytes(n, engines, import_rows))}",
              flush=True)
    if todo:
        print(f"all sizes: disk needed ≈ {gib(needed_bytes(todo, engines, import_rows))} (×{SAFETY} margin), free "
              f"{gib(shutil.disk_usage(folder).free)}; template demo of {label(template_n)} ≈ "
              f"{template_n / 1e6 * EST_TEMPLATE_S_PER_M / 60:.1f} min", flush=True)
    check_disk(folder, todo, engines, import_rows)
    if args.estimate:
        return 0
    if not demo_regions_supported():
        print("note: this version's demo has no regions: one region (its municipalities) is used", flush=True)

    template = folder / f"template-{label(template_n)}-{tag}.duckdb"
    if todo and not (args.keep and template.exists()):
        t = time.perf_counter()
        stats = build_template(template, template_n, args.months, regions, args.seed)
        print(f"template demo: {stats['appeals']:,} appeals, {stats['first_month']}..{stats['last_month']}, "
              f"{time.perf_counter() - t:.1f} s", flush=True)

    results: dict[str, dict] = {}
    for n in sizes:
        key = label(n)
        r: dict = {"appeals": n}
        duck, chdb_dir = duck_path(n), chdb_path(n)
        if n in todo:
            check_disk(folder, todo[todo.index(n):], engines, import_rows)  # other work may have used the disk
            print(f"{key}: building {duck.name}…", flush=True)
            r.update(build_warehouse(duck, template, n, args.seed, args.memory_limit, scratch))
            print(f"{key}: built in {r['build_s']:.1f} s (generate {r['generate_s']:.1f}, rollups "
                  f"{r['rollups_s']:.1f}, checkpoint {r['checkpoint_s']:.1f}) = {r['build_s'] / (n / 1e6):.1f} s "
                  f"per million → 10M ≈ {r['build_s'] / n * 1e7 / 60:.1f} min, 100M ≈ "
                  f"{r['build_s'] / n * 1e8 / 60:.0f} min if linear", flush=True)
            if "chdb" in engines:
                try:
                    r.update(copy_to_chdb(duck, chdb_dir, scratch))
                    print(f"{key}: copied to chDB in {r['copy_s']:.1f} s", flush=True)
                except RuntimeError as exc:  # the DuckDB figures of this size are still worth having
                    print(f"{key}: copy to chDB failed: {exc}", file=sys.stderr, flush=True)
                    shutil.rmtree(chdb_dir, ignore_errors=True)
        r["duckdb_bytes"] = du(duck)
        if "chdb" in engines and chdb_dir.exists():
            r["chdb_bytes"] = du(chdb_dir)
        if "duckdb" in engines:
            if not args.no_import:
                r.update(measure_import(duck, args.import_rows, scratch))
                print(f"{key}: import of {args.import_rows:,} rows: {r['import_s']:.1f} s "
                      f"({r['import_rows_per_s']:,.0f} rows/s; accepted {r['accepted']:,}, rejected "
                      f"{r['rejected']:,})", flush=True)
            r["duckdb_ms"] = time_pages(f"duckdb:{duck}", args.runs, only)
            print(f"{key}: DuckDB page queries timed", flush=True)
        if "chdb" in engines and chdb_dir.exists():
            r["chdb_ms"] = time_pages(f"chdb:{chdb_dir}", args.runs, only)
            print(f"{key}: chDB page queries timed", flush=True)
        results[key] = r
        if args.json:  # after every size: a long run stopped midway keeps what it measured
            args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, exist_ok=True)

    report(results, engines, args.runs)
    return 0


def report(results: dict[str, dict], engines: list[str], runs: int) -> None:
    keys = list(results)
    print("\nbuild and storage")
    print(f"{'size':>6s} {'build s':>8s} {'s/M':>6s} {'DuckDB MB':>10s} {'B/appeal':>9s} {'import rows/s':>14s} "
          f"{'chDB copy s':>12s} {'copy rows/s':>12s} {'chDB MB':>8s} {'B/appeal':>9s}")
    for k in keys:
        r = results[k]
        n = r["appeals"]

        def cell(value, fmt: str, width: int) -> str:
            return f"{value:{width}{fmt}}" if value is not None else f"{'—':>{width}s}"

        build = r.get("build_s")
        copy = r.get("copy_s")
        print(f"{k:>6s} {cell(build, '.1f', 8)} {cell(build and build / (n / 1e6), '.1f', 6)} "
              f"{cell(r.get('duckdb_bytes', 0) / 2**20, '.0f', 10)} {cell(r.get('duckdb_bytes', 0) / n, '.0f', 9)} "
              f"{cell(r.get('import_rows_per_s'), ',.0f', 14)} {cell(copy, '.1f', 12)} "
              f"{cell(copy and n / copy, ',.0f', 12)} {cell(r.get('chdb_bytes') and r['chdb_bytes'] / 2**20, '.0f', 8)} "
              f"{cell(r.get('chdb_bytes') and r['chdb_bytes'] / n, '.0f', 9)}")
    print("(build = generate + rollups + checkpoint, cached template excluded; import = python -m data import of "
          "a CSV into a copy of the DuckDB warehouse, wall time; chDB is written by that + copy, no direct import)")
    for engine in engines:
        col = f"{engine}_ms"
        names = list(next((r[col] for r in results.values() if col in r), {}))
        if not names:
            continue
        print(f"\npage queries on {'DuckDB' if engine == 'duckdb' else 'chDB'}, ms p50 / p95 (wall) / CPU per call "
              f"over {runs} runs"
              + (f"; growth = p95 {keys[-1]} / p95 {keys[-2]}" if len(keys) > 1 else ""))
        header = "".join(f"{k + ' p50/p95/CPU':>26s}" for k in keys)
        print(f"{'query':42s}{header}{'growth':>8s}{'≤100 ms':>9s}")
        for name in names:
            cells = ""
            for k in keys:
                p50, p95_, cpu = (tuple(results[k].get(col, {}).get(name, ())) + (float("nan"),) * 3)[:3]
                cells += f"{p50:9.1f} /{p95_:7.1f} /{cpu:7.1f}"
            growth = ""
            if len(keys) > 1:
                a = results[keys[-2]].get(col, {}).get(name, (0, 0))[1]
                b = results[keys[-1]].get(col, {}).get(name, (0, 0))[1]
                growth = f"{b / a:8.2f}" if a else f"{'—':>8s}"
            last = results[keys[-1]].get(col, {}).get(name, (0, float("nan")))[1]
            print(f"{name:42s}{cells}{growth}{'yes' if last <= 100 else 'NO':>9s}")


if __name__ == "__main__":
    sys.exit(main())
