"""Server cost of each page's callbacks, as bench/load_bench.py asks them, without the answer cache.

    python bench/callback_bench.py [--db var/warehouse.duckdb] [--runs 40] [--profile /kpi] [--signed-in LOGIN]

Posts the load bench's requests (the page router for each page of ``PAGES``, then the page's own
filter changes, same random choices) to the app in this process through Flask's test client — the
whole path a worker runs: the guard, the callback, Dash's JSON serialisation, gzip — with the
answer cache emptied before each request, so every answer is computed (what a burst after a data
switch costs). Prints per page and kind p50/p95 of CPU time (this process, DuckDB's threads
included: on a shared machine it is steadier than wall time) and of wall time; then the page itself
(the index and ``/_dash-layout``) and a callback answered from the cache. ``--signed-in LOGIN``
serves with sign-in on (one of load_bench's users: the session and the callback guard run too).
``--profile PAGE`` adds a cProfile of that page's filter changes (top functions by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_bench import PAGES, PASSWORD, callback_specs, filter_change, make_users  # noqa: E402
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
    parser.add_argument("--signed-in", metavar="LOGIN", help="sign-in on, as this user of load_bench")
    parser.add_argument("--cold", action="store_true",
                        help="also forget the pieces shared between answers (callback_cache.per_data) each time")
    args = parser.parse_args()
    db = Path(args.db)
    if not db.exists():
        print(f"нет хранилища {db}: python -m data demo --db {db}", file=sys.stderr)
        return 2

    import app as app_module
    from metrics import catalog
    from pages import callback_cache

    settings = None
    if args.signed_in:
        from auth.web import AuthSettings

        work = Path(tempfile.mkdtemp(prefix="cur-callback-bench-"))
        make_users(work / "users.toml")
        settings = AuthSettings(users_file=work / "users.toml", secret_key="x" * 48,
                                throttle_path=work / "throttle.sqlite")
    dash_app = app_module.create_app(db, settings)
    client = dash_app.server.test_client()
    if args.signed_in:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
        client.post("/login", data={"login": args.signed_in, "password": PASSWORD, "csrf": csrf})
    client.get("/")
    specs = callback_specs(db)  # builds a second app on the same file: the shapes are the same
    months = [f"{m:%Y-%m}" for m in catalog.months_with_data()]
    sectors = list(catalog.sectors()["sector_code"])
    cache = dash_app.server.extensions["callback_cache"]
    rnd = random.Random(args.seed)

    def post(body: dict, cold: bool = True) -> tuple[float, float]:
        if cold:
            cache.items.clear()
            if args.cold:
                callback_cache.forget_remembered()
        cpu, wall = time.process_time(), time.perf_counter()
        response = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip"})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if response.status_code != 200 or "ошибка на сервере".encode() in response.get_data():
            raise RuntimeError(f"{body['output']}: {response.status_code} {response.get_data()[:200]!r}")
        return cpu * 1000, wall * 1000

    for page in PAGES:  # warm each page once: connections, catalog caches, label layouts
        post(callback_body(specs, "_pages_content", {"_pages_location": page}))
        post(filter_change(specs, page, months, sectors, rnd))

    print(f"warehouse {db}, {args.runs} requests per page and kind, answer cache emptied before each"
          + (" (and the shared pieces)" if args.cold else ""))
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
    for name, request in (("page", lambda: client.get("/kpi", headers={"Accept-Encoding": "gzip"})),
                          ("layout", lambda: client.get("/_dash-layout", headers={"Accept-Encoding": "gzip"}))):
        cpu = []
        for _ in range(args.runs):
            started = time.process_time()
            request()
            cpu.append((time.process_time() - started) * 1000)
        print(f"{name:10} {'get':9} {statistics.median(cpu):8.1f} {pct(cpu, 0.95):8.1f}")
    body = filter_change(specs, "/", months, sectors, rnd)
    post(body)
    cached = [post(body, cold=False)[0] for _ in range(args.runs)]
    print(f"{'/':10} {'cached':9} {statistics.median(cached):8.1f} {pct(cached, 0.95):8.1f}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    return 0


if __name__ == "__main__":
    sys.exit(main())
