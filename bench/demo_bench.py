"""Benchmark of the demo build: time, rows/s, peak RSS and file size.

    python bench/demo_bench.py [APPEALS] [--db PATH] [--keep]

APPEALS defaults to 10 000 000; the warehouse goes to a temporary folder (removed after
the run unless ``--keep``) or to ``--db``. Peak RSS is the whole process (Python, numpy and
DuckDB are in one process), read from ``getrusage`` after the build.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Замер сборки демо-хранилища")
    parser.add_argument("appeals", nargs="?", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=20251)
    parser.add_argument("--end", default=None, help="последний месяц ГГГГ-ММ")
    parser.add_argument("--db", type=Path, default=None, help="куда писать (по умолчанию во временную папку)")
    parser.add_argument("--keep", action="store_true", help="не удалять временную папку")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(PROJECT_DIR))  # run as a script from anywhere
    from data.demo import build_demo

    tmp = None
    if args.db is None:
        tmp = Path(tempfile.mkdtemp(prefix="demo_bench_"))
        db = tmp / "warehouse.duckdb"
    else:
        db = args.db
    try:
        stats = build_demo(db, appeals=args.appeals, months=args.months, seed=args.seed, end_month=args.end)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        size_mib = db.stat().st_size / 2**20
        result = {
            "appeals": stats["appeals"],
            "months": f"{stats['first_month']}..{stats['last_month']}",
            "seconds": stats["seconds"],
            "rows_per_second": round(stats["appeals"] / stats["seconds"]),
            "peak_rss_mib": round(peak_mib),
            "file_mib": round(size_mib, 1),
            "db": str(db),
        }
        print(json.dumps(result, ensure_ascii=False))
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
