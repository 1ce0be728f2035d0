"""Export speed on the demo warehouse: one PNG chart (cold and warm kaleido), whole packs.

    python bench/export_bench.py [--db var/warehouse.duckdb] [--appeals 300000] [--period 2026-10]

Builds the demo warehouse when the file is missing. «cold» includes starting kaleido's Chromium;
«warm» reuses it, as the CLI does for a pack's charts and the dashboard for every pack request.
Aim (issue 6): a chart ≤ 2 s, a pack ≤ 20 s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from charts import figures  # noqa: E402
from metrics import catalog, source  # noqa: E402
from metrics import indicators as ind  # noqa: E402
from metrics.periods import parse_period  # noqa: E402
from metrics.query import query  # noqa: E402
from report import images, pack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="var/warehouse.duckdb")
    parser.add_argument("--appeals", type=int, default=300_000)
    parser.add_argument("--period", default=None, help="default: the data's last month")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    db = Path(args.db)
    if not db.exists():
        from data.demo import build_demo

        build_demo(db, appeals=args.appeals)
    source.configure(db)
    period = args.period or f"{catalog.months_with_data()[0]:%Y-%m}"
    spec = ind.get("rate_10k")
    frame = query([spec.code], by=["municipality"], period=parse_period(period))
    fig = figures.choropleth(frame, catalog.region_geojson(), spec, f"{spec.label} — {period}")

    images.stop()
    started = time.perf_counter()
    images.render([fig])
    cold = time.perf_counter() - started
    warm = []
    for _ in range(max(args.runs, 3)):
        started = time.perf_counter()
        images.render([fig])
        warm.append(time.perf_counter() - started)
    print(f"one PNG chart (map, 1600×900 ×2): cold {cold:.2f} s, warm median {statistics.median(warm):.2f} s")

    for fmt in ("pptx", "pdf", "xlsx"):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            data, name = pack.make(fmt, period)
            times.append(time.perf_counter() - started)
        print(f"pack {fmt}: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
              f"(browser warm; {len(data) / 1024:.0f} KB, {name})")
    images.stop()
    started = time.perf_counter()
    pack.make("pptx", period)
    print(f"pack pptx with a cold browser (as one CLI run): {time.perf_counter() - started:.2f} s")
    images.stop()


if __name__ == "__main__":
    main()
