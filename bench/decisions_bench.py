"""Figures for decision support: forecast backtest per block, the effect test's false alarms, brief build time.

    python bench/decisions_bench.py [--db var/warehouse.duckdb] [--long var/bench_48m.duckdb] [--big PATH]

- backtest MAPE / sMAPE per sector block, Holt-Winters against the seasonal naive forecast on the same
  origins, on a 48-month demo (built under var/ if missing; the default demo has 24 months, too few for
  a Holt-Winters backtest);
- placebo check of the roadmap effect: measures with no planted effect (random municipality × category
  × start week on the default demo) — the share called «эффект доказан» should be near 5 %;
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
from metrics.roadmap import _effect  # noqa: E402
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
    """Fake measures where the demo plants nothing: how often is an effect «proven»?"""
    rng = np.random.default_rng(seed)
    con = connect(db, read_only=True)
    try:
        munis = con.execute("SELECT id FROM municipality").fetchall()
        cats = con.execute("""SELECT c.id, c.sector_id, c.name FROM category c WHERE NOT c.is_other""").df()
        planted = {(st.MEASURE_EFFECT.municipality, st.MEASURE_EFFECT.category)}
        names = dict(con.execute("SELECT id, name FROM municipality").fetchall())
        verdicts = []
        for _ in range(n):
            m = int(munis[rng.integers(len(munis))][0])
            c = cats.iloc[rng.integers(len(cats))]
            if (names[m], c["name"]) in planted:
                continue
            start = dt.date(2026, 10, 26) - dt.timedelta(weeks=int(rng.integers(6, 40)))
            item = pd.Series({"id": -1, "municipality_id": m, "sector_id": int(c["sector_id"]),
                              "category_ids": [int(c["id"])], "start_date": start, "status": "in_progress"})
            verdicts.append(_effect(con, item, pd.DataFrame(columns=item.index), REGION, None).verdict)
    finally:
        con.close()
    counts = pd.Series(verdicts).value_counts()
    tested = int(counts.drop("too_few", errors="ignore").sum())
    return {"measures": len(verdicts), "tested": tested, "too_few": int(counts.get("too_few", 0)),
            "proven_decrease": int(counts.get("decrease", 0)), "proven_increase": int(counts.get("increase", 0)),
            "false_alarm_share": round((counts.get("decrease", 0) + counts.get("increase", 0)) / max(tested, 1), 3)}


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
    parser.add_argument("--big", type=Path, default=Path("/work/main/var/bench10m.duckdb"))
    parser.add_argument("--placebo", type=int, default=200)
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
    print("\nPlacebo measures on the default demo:", placebo(args.db, args.placebo))
    build_brief("2026-10", REGION, connect(args.db, read_only=True))  # warm-up: imports, holiday calendar
    print(f"\nBrief 2026-10, default demo: {brief_seconds(args.db, '2026-10')} s")
    if args.big.exists():
        print(f"Brief 2026-10, 10 M warehouse (read-only): {brief_seconds(args.big, '2026-10', repeats=2)} s")


if __name__ == "__main__":
    main()
