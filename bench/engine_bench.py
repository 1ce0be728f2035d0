"""The page queries on DuckDB and on ClickHouse (chDB) over the same warehouse: copy time, then the
median and p95 of each query, warm (the statement's translation is cached after the first call); on
chDB again after every 20th appeal was written again through the change stream (the rollups' parts
unmerged, as after imports: what the reads' FINAL costs), and once more when the engine has merged
them again in the background (``data.chrollup.FORCE_MERGE_SECONDS``).

    python bench/engine_bench.py --db var/warehouse.duckdb [--repeat 7] [--chdb DIR]

Without ``--chdb`` the warehouse is copied into a scratch directory (and removed at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.clickhouse import ChdbConnection, copy_warehouse  # noqa: E402
from data.warehouse import connect  # noqa: E402
from metrics import indicators as ind  # noqa: E402
from metrics import kpi, query, rating, signals  # noqa: E402
from metrics.periods import Period, last_complete_month, month  # noqa: E402
from metrics.scope import Scope, system_scope  # noqa: E402

HEAT = ["volume", "rate_10k", "on_time_share", "overdue_open", "resolve_days_median", "satisfaction_share"]


def page_queries(con) -> dict:
    as_of = query.data_as_of(con)
    last = last_complete_month(as_of)
    year = Period(month(dt.date(last.start.year - 1, last.start.month, 1)).end, last.end, "range", "12m")
    days = Period(last.start + dt.timedelta(days=5), last.end + dt.timedelta(days=9), "range", "r")
    codes = [i.code for i in ind.INDICATORS]
    return {
        "heat map (municipality, compare)": lambda: query.query_on(con, HEAT, ["municipality"], last, compare=True),
        "heat map matrix (municipality × sector)": lambda: query.query_on(con, ["volume", "on_time_share"],
                                                                         ["municipality", "sector"], last),
        "every indicator by sector": lambda: query.query_on(con, codes, ["sector"], last),
        "12-month series": lambda: query.query_on(con, ["volume", "on_time_share", "resolve_days_median"],
                                                  ["month"], year),
        "day range by municipality (facts)": lambda: query.query_on(con, HEAT, ["municipality"], days),
        "municipality scope by category": lambda: query.query_on(con, HEAT, ["category"], last,
                                                                 scope=Scope.municipalities({1})),
        "rating of municipalities": lambda: rating.rate_municipalities(last, con=con),
        "rating of organisations": lambda: rating.rate_organisations(last, con=con),
        "KPI series (24 months)": lambda: kpi.kpi_series("on_time_share", "month", 24, con=con),
        "signals": lambda: signals.detect_signals(con=con),
    }


def timings(con, repeat: int) -> dict[str, dict[str, float]]:
    out = {}
    with system_scope():
        for name, run in page_queries(con).items():
            run()  # warm: connection caches, the statement's translation
            samples = []
            for _ in range(repeat):
                t = time.perf_counter()
                run()
                samples.append((time.perf_counter() - t) * 1000)
            samples.sort()
            out[name] = {"p50_ms": round(statistics.median(samples), 1),
                         "p95_ms": round(samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))], 1)}
    return out


def touch(ch: ChdbConnection, every: int) -> float:
    """Every ``every``-th appeal removed and added again, as an import writes (the answers stay equal)."""
    from data import chrollup
    from data.clickhouse import latest_receipt

    started = time.perf_counter()
    old_latest = latest_receipt(ch)
    chrollup.create_pending(ch)
    which = f"cityHash64(source_id) % {int(every)} = 0"
    ch.command(f"INSERT INTO imp_change SELECT *, CAST(1 AS Int8) FROM appeal WHERE {which}")  # noqa: S608
    chrollup.remove(ch, which)
    chrollup.add_pending(ch)
    chrollup.apply_pending(ch, old_latest)
    ch.command("DROP TABLE imp_change")
    return round(time.perf_counter() - started, 2)


def wait_merged(ch: ChdbConnection, limit: float = 180.0) -> float:
    """Seconds until every partition of the summing tables is one part again (at most ``limit``)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        split = ch.native("SELECT count() FROM (SELECT table, partition FROM system.parts WHERE active "
                          "AND database = {db:String} AND table LIKE '%\\_signed' GROUP BY ALL HAVING count() > 1)",
                          {"db": ch.database}).fetchall()[0][0]
        if not split:
            break
        time.sleep(1)
    return round(time.perf_counter() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--chdb", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    scratch = None
    if args.chdb is None:
        scratch = Path(tempfile.mkdtemp(prefix="cur_bench_chdb_"))
        args.chdb = scratch / "chdb"
    try:
        ch = ChdbConnection(args.chdb, create=True)
        copied = copy_warehouse(args.db, ch)  # the rollups computed by ClickHouse from the facts
        report = {"appeals": copied["appeals"], "copy_seconds": copied["seconds"]}
        duck = connect(args.db, read_only=True)
        report["duckdb"] = timings(duck, args.repeat)
        report["chdb"] = timings(ch, args.repeat)
        # as after imports: every 20th appeal written again (−1 and +1 through the change stream), so each
        # month's rollups hold unmerged parts and the reads' FINAL has work to do
        report["touch_seconds"] = touch(ch, 20)
        report["chdb_unmerged"] = timings(ch, args.repeat)
        # the engine merges the written months in the background (``chrollup.FORCE_MERGE_SECONDS``)
        report["merge_wait_seconds"] = wait_merged(ch)
        report["chdb_merged_again"] = timings(ch, args.repeat)
        print(json.dumps(report, ensure_ascii=False, indent=1))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
