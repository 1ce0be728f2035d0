"""The wall display left running: does memory grow?

    python bench/wall_soak.py [--minutes 30] [--rotate 5] [--refresh 10] [--every 5] [--touch 5] [--db PATH]

Serves a copy of the demo warehouse with ``python app.py`` in its own process, opens /wall in the
system Chromium headless at 1920×1080 and prints, at the start, every ``--every`` minutes and at
the end: the page's JS heap after a forced garbage collection (CDP ``Performance.getMetrics``
JSHeapUsedSize), its DOM nodes and event listeners, and the server process's RSS. Every
``--touch`` minutes the served file's time is moved, as an import replacing it would: the wall
then rebuilds every panel, so the soak covers the data-refresh path too (0: never).
Aim (issue 6): no growth over 30 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1920,1080"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Performance.enable", {})
    return driver


def page_metrics(driver) -> dict[str, float]:
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return {m["name"]: m["value"] for m in metrics}


def wait_for(driver, script: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return
        time.sleep(0.2)
    raise TimeoutError(script)


def main() -> None:
    ap = argparse.ArgumentParser(description="Wall display soak: JS heap and server RSS over time")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rotate", type=int, default=5)
    ap.add_argument("--refresh", type=int, default=10)
    ap.add_argument("--every", type=float, default=5.0, help="minutes between reports")
    ap.add_argument("--touch", type=float, default=5.0, help="minutes between simulated imports (0: none)")
    ap.add_argument("--db", default=str(ROOT / "var" / "warehouse.duckdb"))
    args = ap.parse_args()

    source = Path(args.db)
    if not source.exists():
        from data.demo import build_demo

        print(f"building the demo warehouse {source}…", flush=True)
        build_demo(source)
    work = Path(tempfile.mkdtemp(prefix="wall_soak_"))
    served = work / "warehouse.duckdb"
    shutil.copy(source, served)
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--db", str(served), "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = None
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        driver = browser()
        url = f"http://127.0.0.1:{port}/wall?rotate={args.rotate}&refresh={args.refresh}"
        driver.get(url)
        wait_for(driver, "return document.querySelectorAll('#wall-map .choroplethlocation').length > 0")
        time.sleep(args.rotate * 5 + 1)  # one whole turn of the panels before the first figure
        print(f"wall soak: {args.minutes:g} min, rotate {args.rotate} s, refresh {args.refresh} s, "
              f"simulated import every {args.touch:g} min; {served.stat().st_size / 2**20:.0f} MiB warehouse",
              flush=True)
        print(f"{'min':>6} {'JS heap MiB':>12} {'DOM nodes':>10} {'listeners':>10} {'server RSS MiB':>15}", flush=True)
        rows = []

        def report(elapsed_min: float) -> None:
            m = page_metrics(driver)
            row = (elapsed_min, m["JSHeapUsedSize"] / 2**20, int(m["Nodes"]), int(m["JSEventListeners"]),
                   rss_mib(server.pid))
            rows.append(row)
            print(f"{row[0]:6.1f} {row[1]:12.2f} {row[2]:10d} {row[3]:10d} {row[4]:15.1f}", flush=True)

        start = time.monotonic()
        report(0.0)
        next_report = args.every * 60
        next_touch = args.touch * 60 if args.touch > 0 else float("inf")
        end = args.minutes * 60
        touches = 0
        while (elapsed := time.monotonic() - start) < end:
            if elapsed >= next_touch:
                os.utime(served)  # the file changed: the wall's next poll rebuilds every panel
                touches += 1
                next_touch += args.touch * 60
            if elapsed >= next_report:
                report(elapsed / 60)
                next_report += args.every * 60
            if server.poll() is not None:
                raise RuntimeError("the server stopped")
            time.sleep(1)
        report((time.monotonic() - start) / 60)
        panel = driver.execute_script("return document.querySelector('.wall-panel.is-active')?.dataset.panel")
        asof = driver.execute_script("return document.getElementById('wall-asof')?.textContent")
        first, last = rows[0], rows[-1]
        print(f"end vs start: JS heap {last[1] - first[1]:+.2f} MiB, DOM nodes {last[2] - first[2]:+d}, "
              f"listeners {last[3] - first[3]:+d}, server RSS {last[4] - first[4]:+.1f} MiB; "
              f"{touches} simulated imports; still rotating (panel {panel}), {asof}")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
