"""The heat map as a person meets it, at 10 million appeals.

    python bench/ui_bench.py [--db var/bench10m.duckdb] [--runs 10]

Serves the app on loopback, drives the system Chromium headless and prints: time from navigation
to the map drawn (first load with an empty browser cache, then warm), time from choosing another
sector to the new map, server time per callback (p50/p95, with JSON serialisation), and the
size of the map's figure over the wire (raw and gzip).
Aims (issue 4): first load ≤ 1.5 s, callback ≤ 100 ms p95, map GeoJSON ≤ 300 KB.

Then the drill-down (issue 16), server time per step as the app spends it (the callback or the page
router's layout, serialised to JSON, no answer cache): the unit's panel on the map, the unit, a
category in it, an organisation in that, the organisation's page, the appeals CSV. Aim: each step
≤ 300 ms p95. ``--drill-only`` skips the browser part.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAP_DRAWN = """const g = document.querySelector('#heatmap-map .js-plotly-plot');
return !!(g && g.data && g.data.length > 1 && g.data[1].z && g.layout?.title?.text?.includes(arguments[0]));"""


# which plotly.js the page loaded, and its size as executed (the parse cost follows it)
PLOTLY_SCRIPTS = """return performance.getEntriesByType('resource')
    .filter(e => e.initiatorType === 'script' && /plotly/i.test(e.name))
    .map(e => [new URL(e.name).pathname, e.decodedBodySize]);"""


# every block of «Решения» has its content: the staffing table, the roadmap and the brief's text
DECISIONS_DRAWN = """return ['decisions-workload', 'decisions-roadmap', 'decisions-brief'].every(
    id => { const el = document.getElementById(id); return el && el.innerText.trim().length > 20; })"""


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def wait(driver, script: str, *args: object, timeout: float = 30.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if driver.execute_script(script, *args):
            return time.perf_counter() - t0
        time.sleep(0.01)
    raise TimeoutError(script)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--window-size=1600,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="var/bench10m.duckdb")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--drill-only", action="store_true", help="only the drill-down steps (no browser)")
    args = ap.parse_args()
    db = Path(args.db)
    if not db.exists():
        from data.demo import build_demo

        print(f"building {db}…", flush=True)
        build_demo(db, appeals=10_000_000)

    import logging

    from plotly.io.json import to_json_plotly
    from werkzeug.serving import make_server

    import app as app_module

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    dash_app = app_module.create_app(db)
    app_module.warm_up().join()  # as the production start does (wsgi.py), before the first user
    from metrics import catalog  # pages register themselves: import them after the app exists
    from pages import heatmap
    server = make_server("127.0.0.1", 0, dash_app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    period = f"{catalog.months_with_data()[0]:%Y-%m}"
    url = f"{base}/?period={period}&sector=housing&indicator=on_time_share"
    print(f"warehouse {db} ({db.stat().st_size / 2**20:.0f} MiB), period {period}")
    if args.drill_only:
        drill_steps(period, args.runs)
        server.shutdown()
        return

    # «Решения» first, while the server's caches are cold: its first open is the one a curator waits for
    decisions = []
    for _ in range(3):
        d = browser()
        try:
            d.get("about:blank")
            t0 = time.perf_counter()
            d.get(f"{base}/decisions")
            wait(d, DECISIONS_DRAWN)
            decisions.append(time.perf_counter() - t0)
        finally:
            d.quit()

    # first load: a fresh browser with an empty cache, already started (its own start-up is not the page's)
    first = []
    scripts: list[tuple[str, int]] = []
    for _ in range(3):
        d = browser()
        try:
            d.get("about:blank")
            t0 = time.perf_counter()
            d.get(url)
            wait(d, MAP_DRAWN, "ЖКХ")
            first.append(time.perf_counter() - t0)
            scripts = d.execute_script(PLOTLY_SCRIPTS)
        finally:
            d.quit()
    d = browser()
    warm, change = [], []
    try:
        from selenium.webdriver.common.by import By

        for _ in range(args.runs):
            t0 = time.perf_counter()
            d.get(url)
            wait(d, MAP_DRAWN, "ЖКХ")
            warm.append(time.perf_counter() - t0)
        for i in range(args.runs):
            target = ("Дороги", "ЖКХ")[i % 2]
            d.find_element(By.ID, "heatmap-sector").click()
            time.sleep(0.3)
            options = [o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == target]
            t0 = time.perf_counter()
            d.execute_script("arguments[0].click()", options[0])  # the list's search box overlaps it
            wait(d, MAP_DRAWN, target)
            change.append(time.perf_counter() - t0)
    finally:
        d.quit()

    combos = [(period, "housing", "all", "on_time_share"), (period, "all", "all", "rate_10k"),
              (period, "roads", "pos", "resolve_days_median"), (period, "waste", "all", "overdue_open")]
    server_ms = []
    heatmap.update(*combos[0])
    for _ in range(args.runs):
        for combo in combos:
            t0 = time.perf_counter()
            out = heatmap.update(*combo)
            to_json_plotly(list(out[:2]))  # what Dash does with a callback's figures
            server_ms.append((time.perf_counter() - t0) * 1000)
    fig_map = heatmap.update(*combos[0])[0]
    raw = to_json_plotly(fig_map).encode()
    geojson = json.dumps(catalog.region_geojson(), separators=(",", ":")).encode()
    server.shutdown()

    print(f"«Решения» opened in a fresh browser (workload, roadmap and brief drawn): "
          f"{', '.join(f'{t:.2f}' for t in decisions)} s (the first right after the server's start and warm-up)")
    print(f"first load (empty cache) to map drawn: {', '.join(f'{t:.2f}' for t in first)} s "
          f"(median {statistics.median(first):.2f} s)")
    for path, size in scripts:
        print(f"plotly.js loaded: {path} ({size / 2**20:.2f} MiB)")
    print(f"warm load to map drawn:  p50 {statistics.median(warm):.2f} s, p95 {pct(warm, 0.95):.2f} s")
    print(f"sector change to new map: p50 {statistics.median(change) * 1000:.0f} ms, "
          f"p95 {pct(change, 0.95) * 1000:.0f} ms")
    print(f"server time per callback (map + matrix, serialised): p50 {statistics.median(server_ms):.0f} ms, "
          f"p95 {pct(server_ms, 0.95):.0f} ms over {len(server_ms)} calls")
    print(f"map figure JSON: {len(raw) / 1024:.0f} KB raw, {len(gzip.compress(raw)) / 1024:.0f} KB gzip; "
          f"region GeoJSON {len(geojson) / 1024:.0f} KB")
    drill_steps(period, args.runs)


def drill_steps(period: str, runs: int) -> None:
    """Server time of each drill-down step (issue 16: ≤ 300 ms p95), on the period's busiest unit,
    its busiest housing category and that category's busiest organisation."""
    from dash._utils import to_json

    from metrics.source import reader
    from pages import drill, heatmap, organisation

    with reader() as con:  # the path a curator would take: where the most appeals are
        unit, category, body = con.execute(
            """SELECT a.municipality_id, a.category_id, a.organisation_id FROM appeal a
               JOIN sector s ON s.id = a.sector_id
               WHERE s.code = 'housing' AND a.organisation_id IS NOT NULL
                 AND a.received_at >= CAST($p AS DATE) AND a.received_at < CAST($p AS DATE) + INTERVAL 1 MONTH
               GROUP BY ALL ORDER BY count(*) DESC LIMIT 1""", {"p": f"{period}-01"}).fetchall()[0]
    common = {"period": period, "sector": "housing", "channel": "all", "indicator": "on_time_share"}
    view = {"unit": str(unit), **common, "category": str(category), "organisation": str(body)}
    steps = {
        "панель муниципалитета на карте": lambda: heatmap.profile(unit, period, "housing", "all", "on_time_share"),
        "муниципалитет (разбор)": lambda: drill.layout(str(unit), **common),
        "категория в муниципалитете": lambda: drill.layout(str(unit), **common, category=str(category)),
        "организация: её обращения": lambda: drill.layout(str(unit), **common, category=str(category),
                                                          organisation=str(body)),
        "профиль организации": lambda: organisation.layout(str(body), **common),
        "CSV обращений": lambda: drill.download_csv(1, view),
    }
    print(f"drill-down at {period}: unit {unit}, category {category}, organisation {body}")
    for name, step in steps.items():
        to_json(step())  # the first call warms the connection's caches
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            to_json(step())
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"  {name}: p50 {statistics.median(samples):.0f} ms, p95 {pct(samples, 0.95):.0f} ms "
              f"over {runs} calls")


if __name__ == "__main__":
    main()
