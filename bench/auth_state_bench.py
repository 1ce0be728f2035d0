"""What the shared sign-in state costs: sign-in and a signed-in request, SQLite file vs ClickHouse (chDB).

    python bench/auth_state_bench.py [--signins 200] [--requests 400]

Builds a small demo warehouse and a users file in a temp folder, then for each store serves the app
in this process through Flask's test client (the whole guard path a worker runs) and prints p50/p95
wall times of: a sign-in (POST /login with the right password: the throttle's reservation and
outcome plus the password hash check), the store's part of it alone (reserve + finish), and a
signed-in request that does no page work (``/_dash-dependencies``: the guard, the session and the
logout marks), and one reload of the logout marks. The ClickHouse store runs with its 5 s reload of the marks, and once with a reload on
every request (``refresh 0``) to show what the per-process copy saves.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = "верный-пароль-123"  # noqa: S105 - a bench user


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{name:<44} p50 {statistics.median(ms):7.2f} ms   p95 {pct(ms, 0.95):7.2f} ms   (n={len(ms)})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signins", type=int, default=200)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    import app as app_module
    from auth.web import AuthSettings
    from data.demo import build_demo

    work = Path(tempfile.mkdtemp(prefix="cur_auth_bench_"))
    db = work / "demo.duckdb"
    build_demo(db, appeals=5_000, months=3, seed=1, end_month="2025-10")
    users = work / "users.toml"
    subprocess.run([sys.executable, "-m", "auth", "--users", str(users), "add-user", "curator", "--role", "curator"],
                   input=PASSWORD + "\n", text=True, capture_output=True, check=True,
                   cwd=Path(__file__).resolve().parent.parent)
    stores = [("SQLite file", "", None), ("ClickHouse on chDB, marks reloaded every 5 s", f"chdb:{work / 'ch'}", None),
              ("ClickHouse on chDB, marks read per request", f"chdb:{work / 'ch'}", 0.0)]
    for name, spec, refresh in stores:
        settings = AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=work / "t.sqlite",
                                auth_state=spec, revocation_refresh=refresh)
        dash_app = app_module.create_app(db, settings)
        client = dash_app.server.test_client()
        print(name)
        signins, store_part = [], []
        for _ in range(args.signins):
            page = client.get("/login").get_data(as_text=True)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            started = time.perf_counter()
            answer = client.post("/login", data={"login": "curator", "password": PASSWORD, "csrf": csrf})
            signins.append(time.perf_counter() - started)
            assert answer.status_code == 302, answer.status_code
        from auth.throttle import open_state

        state = open_state(spec, users, work / "t.sqlite")
        for _ in range(args.signins):
            started = time.perf_counter()
            _, ticket = state.reserve("bench", "10.0.0.1")
            state.finish("bench", "10.0.0.1", ticket, success=True)
            store_part.append(time.perf_counter() - started)
        reloads = []
        for _ in range(args.requests // 4):
            started = time.perf_counter()
            state.revocations()
            reloads.append(time.perf_counter() - started)
        time.sleep(2)  # the engine's merges of the sign-ins' rows settle before the request timings
        requests = []
        client.get("/_dash-dependencies")  # Dash's one-time set-up
        for _ in range(args.requests):
            started = time.perf_counter()
            answer = client.get("/_dash-dependencies")
            requests.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.status_code
        print("  " + line("sign-in (POST /login)", signins))
        print("  " + line("  of it the store (reserve + finish)", store_part))
        print("  " + line("reading every logout mark (a reload)", reloads))
        print("  " + line("signed-in request (/_dash-dependencies)", requests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
