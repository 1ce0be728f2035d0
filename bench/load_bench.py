"""Load bench: the production server (gunicorn, several workers, sign-in on) under simulated users.

    python bench/load_bench.py [--db var/warehouse.duckdb] [--users 50] [--minutes 5] [--import-rows 1000000]

Phase 1: ``--users`` signed-in users for ``--minutes``: each opens a page (index, layout, the page
router) and then changes a filter now and then (the page's callback), with a short think time.
Phase 2: the same while ``python -m data import`` loads ``--import-rows`` rows into the served
warehouse (a copy switched in, data/swap.py). Prints requests, errors and p50/p95/p99 per phase,
per kind of request, for the import's own window and for the ``--after-switch`` seconds after it
(every answer is cold then). Aim (issue 18): 0 errors, p95 ≤ 300 ms, p99 ≤ 600 ms. ``--samples``
writes every request (phase, kind, start in seconds from the phase's start, milliseconds, status) as
JSON lines, to see when the slow ones happened.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.dash_requests import callback_body as body  # noqa: E402

PASSWORD = "нагрузочный-тест-1"  # noqa: S105 - users of a throw-away bench file
PAGES = ["/", "/rating", "/kpi", "/problems"]


@dataclass
class Sample:
    kind: str
    started: float
    seconds: float
    status: int
    error: str = ""


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_users(path: Path) -> list[str]:
    from auth.users import make_user, save_users

    specs = [("curator", "curator", [], None), ("zhkh", "sector", ["housing"], None),
             ("roads", "sector", ["roads"], None), ("yartsevo", "municipal", [], "Ярцевский"),
             ("vyazma", "municipal", [], "Вяземский")]
    users = {}
    for login, role, sectors, muni in specs:
        users[login] = make_user(login, role, PASSWORD, sectors, muni)[0]
    save_users(path, users)
    return [s[0] for s in specs]


def callback_specs(db: Path) -> dict[str, dict]:
    """The shapes of the pages' callbacks, read from an app built in this process."""
    import app as app_module

    dash_app = app_module.create_app(db)
    dash_app.server.test_client().get("/")
    return dict(dash_app.callback_map)


def filter_change(specs: dict, page: str, months: list[str], sectors: list[str], rnd: random.Random) -> dict:
    period = rnd.choice(months[:6])
    sector = rnd.choice(["all", *sectors])
    if page == "/":
        return body(specs, "heatmap-map", {"heatmap-period": period, "heatmap-sector": sector,
                                           "heatmap-channel": "all",
                                           "heatmap-indicator": rnd.choice(["rate_10k", "volume", "on_time_share"])})
    if page == "/rating":
        return body(specs, "rating-grid", {"rating-period": period, "rating-sector": sector,
                                           "rating-who": rnd.choice(["organisations", "municipalities"])})
    if page == "/kpi":
        return body(specs, "kpi-trend", {"kpi-indicator": rnd.choice(["on_time_share", "volume"]),
                                         "kpi-sector": sector, "kpi-municipality": "all", "kpi-grain": "month"})
    return body(specs, "problems-list", {"problems-period": period, "problems-municipality": "all"})


class User(threading.Thread):
    def __init__(self, base: str, login: str, specs: dict, months: list[str], sectors: list[str],
                 recorder: Recorder, stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.base, self.login, self.specs, self.months, self.sectors = base, login, specs, months, sectors
        self.recorder, self.stop, self.rnd = recorder, stop, random.Random(seed)
        self.session = requests.Session()

    def timed(self, kind: str, method: str, path: str, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = self.session.request(method, self.base + path, timeout=60, **kwargs)
            ok = response.status_code < 400
            self.recorder.add(Sample(kind, started, time.monotonic() - started, response.status_code,
                                     "" if ok else response.text[:120]))
            return response
        except requests.RequestException as exc:
            self.recorder.add(Sample(kind, started, time.monotonic() - started, 0, repr(exc)[:120]))
            return None

    def sign_in(self) -> None:
        page = self.session.get(self.base + "/login", timeout=60).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        self.session.post(self.base + "/login", data={"login": self.login, "password": PASSWORD, "csrf": csrf},
                          timeout=60, allow_redirects=False)

    def run(self) -> None:
        self.sign_in()
        while not self.stop.is_set():
            page = self.rnd.choice(PAGES)
            # a page load: the index, Dash's layout and the router callback for the address
            self.timed("page", "GET", page)
            self.timed("page", "GET", "/_dash-layout")
            self.timed("router", "POST", "/_dash-update-component",
                       json=body(self.specs, "_pages_content", {"_pages_location": page}))
            for _ in range(self.rnd.randint(1, 3)):  # then a few filter changes
                self.stop.wait(self.rnd.uniform(0.5, 2.0))
                if self.stop.is_set():
                    return
                self.timed("callback", "POST", "/_dash-update-component",
                           json=filter_change(self.specs, page, self.months, self.sectors, self.rnd))
            self.stop.wait(self.rnd.uniform(0.5, 2.0))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def report(title: str, samples: list[Sample]) -> dict:
    errors = [s for s in samples if s.status == 0 or s.status >= 400]
    out = {"phase": title, "requests": len(samples), "errors": len(errors)}
    for kind in ("all", "page", "router", "callback"):
        ms = [s.seconds * 1000 for s in samples if kind == "all" or s.kind == kind]
        out[kind] = {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                     "p99_ms": round(percentile(ms, 99), 1),
                     "mean_ms": round(statistics.fmean(ms), 1) if ms else None}
    if samples:
        span = max(s.started + s.seconds for s in samples) - min(s.started for s in samples)
        out["requests_per_s"] = round(len(samples) / span, 1)
    if errors:
        out["error_examples"] = sorted({f"{e.status} {e.kind} {e.error}" for e in errors})[:5]
    print(json.dumps(out, ensure_ascii=False))
    return out


def write_samples(path: str | None, phase: str, samples: list[Sample]) -> None:
    if not path or not samples:
        return
    start = min(s.started for s in samples)
    with open(path, "a", encoding="utf-8") as fh:
        for s in sorted(samples, key=lambda s: s.started):
            fh.write(json.dumps({"phase": phase, "kind": s.kind, "at_s": round(s.started - start, 3),
                                 "ms": round(s.seconds * 1000, 1), "status": s.status}, ensure_ascii=False) + "\n")


def write_import_csv(path: Path, rows: int) -> None:
    from metrics import catalog

    names = list(catalog.names("municipality").values())
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("source_id,received_at,municipality,channel,category,organisation,answered_at\n")
        for i in range(rows):
            day = 1 + i % 28
            fh.write(f"load-{i},{day:02d}.09.2026 {8 + i % 10:02d}:{i % 60:02d},{names[i % len(names)]},pos,"
                     f"Отопление,УК Нагрузочная {i % 7},{day:02d}.09.2026 20:00\n")


def run_phase(base: str, logins: list[str], specs: dict, months: list[str], sectors: list[str], users: int,
              seconds: float, during=None) -> tuple[list[Sample], tuple[float, float] | None]:
    recorder, stop = Recorder(), threading.Event()
    phase_end = time.monotonic() + seconds
    threads = [User(base, logins[i % len(logins)], specs, months, sectors, recorder, stop, seed=i)
               for i in range(users)]
    for t in threads:
        t.start()
        time.sleep(0.02)  # users arrive over a second, not in one burst
    window = during() if during else None
    time.sleep(max(0.0, phase_end - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(timeout=90)
    return recorder.samples, window


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(PROJECT / "var" / "warehouse.duckdb"))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--only-import", action="store_true", help="skip the phase without an import")
    parser.add_argument("--import-after", type=float, default=30.0,
                        help="seconds into the second phase when the import starts (users first warm up)")
    parser.add_argument("--after-switch", type=float, default=30.0,
                        help="seconds after the import's switch reported on their own")
    parser.add_argument("--samples", help="write every request as a JSON line to this file")
    args = parser.parse_args()

    source_db = Path(args.db)
    if not source_db.exists():
        print(f"нет хранилища {source_db}: make demo", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="cur-load-"))
    db = work / "served.duckdb"
    shutil.copy(source_db, db)
    users_file = work / "users.toml"
    logins = make_users(users_file)

    from metrics import catalog, source

    specs = callback_specs(db)
    source.configure(db)
    months = [f"{m:%Y-%m}" for m in catalog.months_with_data()]
    sectors = list(catalog.sectors()["sector_code"])
    csv = work / "import.csv"
    write_import_csv(csv, args.import_rows)
    source.configure(None)

    port = free_port()
    env = {**os.environ, "CUR_DB": str(db), "CUR_USERS": str(users_file), "CUR_SECRET_KEY": "x" * 48,
           "PORT": str(port), "HOST": "127.0.0.1", "WEB_ACCESS_LOG": "/dev/null", "WEB_LOG_LEVEL": "warning"}
    if args.workers:
        env["WEB_WORKERS"] = str(args.workers)
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:application"]
    server = subprocess.Popen(gunicorn, cwd=PROJECT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/login", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        print(json.dumps({"server": "gunicorn", "workers": env.get("WEB_WORKERS", "default"), "users": args.users,
                          "minutes": args.minutes, "db": str(source_db)}, ensure_ascii=False))
        seconds = args.minutes * 60
        if not args.only_import:
            samples, _ = run_phase(base, logins, specs, months, sectors, args.users, seconds)
            report("без импорта", samples)
            write_samples(args.samples, "без импорта", samples)

        timing: dict[str, float] = {}

        def start_import() -> tuple[float, float] | None:
            def run() -> None:
                time.sleep(args.import_after)
                timing["start"] = time.monotonic()
                result = subprocess.run([sys.executable, "-m", "data", "import", str(csv), "--db", str(db)],
                                        cwd=PROJECT, capture_output=True, text=True, check=False)
                timing["end"] = time.monotonic()
                timing["rc"] = result.returncode
                timing["summary"] = result.stdout.strip()[-300:] or result.stderr.strip()[-300:]
            threading.Thread(target=run, daemon=True).start()
            return None

        samples, _ = run_phase(base, logins, specs, months, sectors, args.users, seconds, during=start_import)
        report("во время импорта (вся фаза)", samples)
        write_samples(args.samples, "во время импорта", samples)
        if "end" in timing:
            inside = [s for s in samples if timing["start"] <= s.started <= timing["end"]]
            report("во время импорта (окно импорта)", inside)
            after = [s for s in samples if timing["end"] < s.started <= timing["end"] + args.after_switch]
            report(f"после переключения ({args.after_switch:.0f} с)", after)
            print(json.dumps({"import_seconds": round(timing["end"] - timing["start"], 1),
                              "import_exit": timing["rc"], "import_summary": timing["summary"]}, ensure_ascii=False))
        else:
            print(json.dumps({"import": "не завершился за фазу"}, ensure_ascii=False))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
