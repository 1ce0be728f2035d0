"""Figures for decision support: forecast backtest per block, the effect test's false alarms, brief build time.

    python bench/decisions_bench.py [--db var/warehouse.duckdb] [--long var/bench_48m.duckdb] [--big PATH]

- backtest MAPE / sMAPE per sector block, Holt-Winters against the seasonal naive forecast on the same
  origins, on a 48-month demo (built under var/ if missing; the default demo has 24 months, too few for
  a Holt-Winters backtest);
- placebo check of the roadmap effect: measures with no planted effect (random municipality × category
  × start week on the default demo) — the share called «эффект доказан» (either direction) should be
  at most about 5 % (the permutation test's exact size with 24 placebos is 4 %); milliseconds per
  measure, and the seconds the roadmap page callbacks take;
- seconds to build the monthly brief on the default demo and on a 10 M warehouse (opened read-only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import demo_stories as st  # noqa: E402
from data.demo import build_demo  # noqa: E402
from data.warehouse import connect  # noqa: E402
from metrics.roadmap import MIN_APPEALS_BEFORE, _effect, item_effect, roadmap_effects, roadmap_items  # noqa: E402
from metrics.scope import REGION  # noqa: E402
from metrics.workload import staffing_plan  # noqa: E402
from report.brief import build_brief  # noqa: E402


def backtest_table(db: Path) -> pd.DataFrame:
    con = connect(db, read_only=True)
    try:
        plan = staffing_plan(con=con)
    finally:
        con.close()
    wide = plan.backtest.pivot_table(index="sector_name", columns="model", values=["mape", "smape"])
    wide.columns = [f"{m}_{model}" for m, model in wide.columns]
    chosen = plan.forecast.drop_duplicates("sector_name").set_index("sector_name")["model"]
    origins = plan.backtest.groupby("sector_name")["origins"].max()
    return (wide * 100).round(1).join(chosen).join(origins)


def placebo(db: Path, n: int, seed: int = 1) -> dict[str, float]:
    """Fake measures where the demo plants nothing: how often is an effect «proven»?

    A placebo measure is a random municipality × category with at least ``MIN_APPEALS_BEFORE`` appeals
    in the last 60 weeks (smaller pairs are «данных мало» anyway and would only thin the sample) and a
    random start 6–40 weeks before the data end; the planted measure's and the planted spikes' pairs
    are left out, and the demo's real roadmap decides which municipalities are busy.
    """
    rng = np.random.default_rng(seed)
    con = connect(db, read_only=True)
    try:
        end = con.execute("SELECT max(week) FROM appeal_weekly").fetchall()[0][0]
        pairs = con.execute(
            """SELECT w.municipality_id, m.name AS municipality, c.id AS category_id, c.sector_id, c.name AS category
               FROM appeal_weekly w JOIN category c ON c.id = w.category_id JOIN municipality m ON m.id = w.municipality_id
               WHERE w.week >= $since AND NOT c.is_other GROUP BY ALL HAVING sum(w.n) >= $min""",
            {"since": end - dt.timedelta(weeks=60), "min": MIN_APPEALS_BEFORE}).df()
        planted = {(st.MEASURE_EFFECT.municipality, st.MEASURE_EFFECT.category)}
        planted |= {(s.municipality, s.category) for s in st.SPIKES}
        pairs = pairs[[(m, c) not in planted for m, c in zip(pairs["municipality"], pairs["category"], strict=True)]]
        items = roadmap_items(con=con)
        effects, seconds = [], 0.0
        for _ in range(n):
            pair = pairs.iloc[rng.integers(len(pairs))]
            start = end - dt.timedelta(weeks=int(rng.integers(6, 40)))
            item = pd.Series({"id": -1, "municipality_id": int(pair["municipality_id"]),
                              "sector_id": int(pair["sector_id"]), "category_ids": [int(pair["category_id"])],
                              "start_date": start, "status": "in_progress"})
            started = time.perf_counter()
            effects.append(_effect(con, item, items, REGION, None))
            seconds += time.perf_counter() - started
    finally:
        con.close()
    counts = pd.Series([e.verdict for e in effects]).value_counts()
    tested = int(counts.drop("too_few", errors="ignore").sum())
    alarms = int(counts.get("decrease", 0) + counts.get("increase", 0))
    share = alarms / max(tested, 1)
    p = np.array([e.p_value for e in effects if e.p_value is not None])
    return {"pairs": len(pairs), "measures": len(effects), "tested": tested, "too_few": int(counts.get("too_few", 0)),
            "proven_decrease": int(counts.get("decrease", 0)), "proven_increase": int(counts.get("increase", 0)),
            "false_alarm_share": round(share, 3), "false_alarm_se": round(float(np.sqrt(share * (1 - share) / max(tested, 1))), 3),
            "share_p_le_0.10": round(float(np.mean(p <= 0.10)), 3) if len(p) else None,
            "median_placebos": int(np.median([e.placebos for e in effects if e.p_value is not None])) if len(p) else 0,
            "ms_per_measure": round(seconds / max(len(effects), 1) * 1000, 1)}


def page_seconds(db: Path, repeats: int = 5) -> dict[str, float]:
    """What the roadmap page callbacks compute: every measure's effect (the table) and one measure (the chart)."""
    con = connect(db, read_only=True)
    try:
        table, chart = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            effects = roadmap_effects(REGION, None, con)
            table.append(time.perf_counter() - started)
            started = time.perf_counter()
            item_effect(int(effects["id"].iloc[-1]), REGION, None, con)
            roadmap_items(REGION, con)
            chart.append(time.perf_counter() - started)
    finally:
        con.close()
    return {"measures": len(effects), "table_s": round(min(table), 3), "chart_s": round(min(chart), 3)}


def brief_seconds(db: Path, period: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        con = connect(db, read_only=True)
        started = time.perf_counter()
        try:
            build_brief(period, REGION, con)
        finally:
            con.close()
        times.append(time.perf_counter() - started)
    return round(min(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=Path("var/warehouse.duckdb"))
    parser.add_argument("--long", type=Path, default=Path("var/bench_48m.duckdb"))
    parser.add_argument("--big", type=Path, default=Path("var/bench10m.duckdb"))
    parser.add_argument("--placebo", type=int, default=1000)
    args = parser.parse_args()
    if not args.db.exists():
        build_demo(args.db)
    if not args.long.exists():
        build_demo(args.long, appeals=600_000, months=48, seed=20251, end_month="2026-10")
    pd.set_option("display.width", 200)
    print("Backtest, 48 months (%, MAPE / sMAPE; origins = last 12, horizon 1–3 months):")
    print(backtest_table(args.long).to_string())
    print("\nBacktest, default demo (24 months):")
    print(backtest_table(args.db).to_string())
    print(f"\nPlacebo measures on the default demo ({args.placebo}; permutation test, nominal 5 %, "
          "smallest p with 24 placebos 1/25):")
    print(placebo(args.db, args.placebo))
    print("Roadmap page callbacks, default demo (seconds):", page_seconds(args.db))
    build_brief("2026-10", REGION, connect(args.db, read_only=True))  # warm-up: imports, holiday calendar
    print(f"\nBrief 2026-10, default demo: {brief_seconds(args.db, '2026-10')} s")
    if args.big.exists():
        print(f"Brief 2026-10, 10 M warehouse (read-only): {brief_seconds(args.big, '2026-10', repeats=2)} s")


if __name__ == "__main__":
    main()
