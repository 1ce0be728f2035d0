"""Server cost of each page's callbacks, as bench/load_bench.py asks them, without the answer cache.

    python bench/callback_bench.py [--db var/warehouse.duckdb] [--runs 40] [--profile /kpi]

Posts the load bench's requests (the page router for each page of ``PAGES``, then the page's own
filter changes, same random choices) to the app in this process through Flask's test client — the
whole path a worker runs: the guard, the callback, Dash's JSON serialisation, gzip — with the
answer cache emptied before each request, so every answer is computed (what a burst after a data
switch costs). Prints per page and kind p50/p95 of CPU time (this process, DuckDB's threads
included: on a shared machine it is steadier than wall time) and of wall time. ``--profile PAGE``
adds a cProfile of that page's filter changes (top functions by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_bench import PAGES, callback_specs, filter_change  # noqa: E402
from tests.dash_requests import callback_body  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="var/warehouse.duckdb")
    parser.add_argument("--runs", type=int, default=40, help="requests per page and kind")
    parser.add_argument("--profile", choices=PAGES, help="cProfile the filter changes of this page")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    db = Path(args.db)
    if not db.exists():
        print(f"нет хранилища {db}: python -m data demo --db {db}", file=sys.stderr)
        return 2

    import app as app_module
    from metrics import catalog

    dash_app = app_module.create_app(db)
    client = dash_app.server.test_client()
    client.get("/")
    specs = callback_specs(db)  # builds a second app on the same file: the shapes are the same
    months = [f"{m:%Y-%m}" for m in catalog.months_with_data()]
    sectors = list(catalog.sectors()["sector_code"])
    cache = dash_app.server.extensions["callback_cache"]
    rnd = random.Random(args.seed)

    def post(body: dict) -> tuple[float, float]:
        cache.items.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        response = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip"})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if response.status_code != 200 or "ошибка на сервере".encode() in response.get_data():
            raise RuntimeError(f"{body['output']}: {response.status_code} {response.get_data()[:200]!r}")
        return cpu * 1000, wall * 1000

    for page in PAGES:  # warm each page once: connections, catalog caches, label layouts
        post(callback_body(specs, "_pages_content", {"_pages_location": page}))
        post(filter_change(specs, page, months, sectors, rnd))

    print(f"warehouse {db}, {args.runs} requests per page and kind, answer cache emptied before each")
    print(f"{'page':10} {'kind':9} {'cpu p50':>8} {'cpu p95':>8} {'wall p50':>9} {'wall p95':>9}  (ms)")
    profiler = cProfile.Profile() if args.profile else None
    for page in PAGES:
        for kind in ("router", "callback"):
            cpu, wall = [], []
            for _ in range(args.runs):
                body = (callback_body(specs, "_pages_content", {"_pages_location": page}) if kind == "router"
                        else filter_change(specs, page, months, sectors, rnd))
                if profiler is not None and kind == "callback" and page == args.profile:
                    profiler.enable()
                c, w = post(body)
                if profiler is not None:
                    profiler.disable()
                cpu.append(c)
                wall.append(w)
            print(f"{page:10} {kind:9} {statistics.median(cpu):8.1f} {pct(cpu, 0.95):8.1f} "
                  f"{statistics.median(wall):9.1f} {pct(wall, 0.95):9.1f}", flush=True)
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    return 0


if __name__ == "__main__":
    sys.exit(main())
