"""Imports while the dashboard serves: a killed import changes nothing, a finished one shows up, and
every request in between is answered."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from metrics import source
from tests.dash_requests import callback_body, plotly_array

PROJECT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def write_csv(path: Path, rows: int, start: int) -> None:
    municipalities = ["Ярцевский", "Гагаринский", "Вяземский", "город Смоленск"]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("source_id,received_at,municipality,channel,category,organisation,answered_at\n")
        for i in range(start, start + rows):
            day = 1 + i % 28
            fh.write(f"bulk-{i},{day:02d}.10.2025 {8 + i % 10:02d}:00,{municipalities[i % 4]},pos,Отопление,"
                     f"УК Тестовая,{day:02d}.10.2025 20:00\n")


class Hammer:
    """Page loads and heat-map callbacks from a few threads; every answer is recorded."""

    def __init__(self, base: str, body: dict, threads: int = 3) -> None:
        self.base, self.body = base, body
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.totals: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                page = session.get(self.base + "/", timeout=30)
                answer = session.post(self.base + "/_dash-update-component", json=self.body, timeout=30)
                self.statuses += [page.status_code, answer.status_code]
                if answer.status_code == 200:
                    self.totals.append(volume_total(answer.json()))
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.errors.append(repr(exc))

    def __enter__(self) -> Hammer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def volume_total(payload: dict) -> float:
    response = payload["response"]
    assert "не удалось" not in str(response["heatmap-note"]["children"]).lower(), response["heatmap-note"]
    z = plotly_array(response["heatmap-map"]["figure"]["data"][1]["z"])
    return float(sum(v for v in z if v is not None and v == v))


def run_import(db: Path, csv: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "data", "import", str(csv), "--db", str(db)], cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_import_leaves_old_data_and_the_next_import_succeeds(served_app, small_demo, tmp_path):
    import app as app_module

    db = tmp_path / "served.duckdb"
    shutil.copy(small_demo, db)
    big = tmp_path / "big.csv"
    write_csv(big, 400_000, 0)
    small = tmp_path / "small.csv"
    write_csv(small, 5_000, 1_000_000)
    try:
        base = served_app(db)
        requests.get(base + "/", timeout=30)  # the served app sets up its callbacks first
        dash_app = app_module.create_app(db)  # only to read the callback's shape
        dash_app.server.test_client().get("/")
        body = callback_body(dash_app.callback_map, "heatmap-map", {"heatmap-period": "2025-10", "heatmap-sector": "all",
                                                       "heatmap-channel": "all", "heatmap-indicator": "volume"})
        before = volume_total(requests.post(base + "/_dash-update-component", json=body, timeout=30).json())
        inode = os.stat(db).st_ino

        with Hammer(base, body) as hammer:
            killed = run_import(db, big)
            work = Path(str(db) + ".writing")
            deadline = time.monotonic() + 60
            while not work.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            assert killed.poll() is None, "the import finished before it could be killed"
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            time.sleep(1.0)
            assert os.stat(db).st_ino == inode  # the served file was never touched
            during_kill = list(hammer.totals)

            finished = run_import(db, small)
            out, err = finished.communicate(timeout=300)
            assert finished.returncode == 0, err
            summary = json.loads(out)
            time.sleep(1.5)  # let the hammer see the new file
        assert hammer.errors == []
        assert set(hammer.statuses) == {200}, sorted(set(hammer.statuses))
        assert during_kill and set(during_kill) == {before}  # nobody saw a half-imported state
        assert summary["inserted"] == 5_000
        assert hammer.totals[-1] == before + 5_000
        assert set(hammer.totals) <= {before, before + 5_000}
        assert not Path(str(db) + ".writing").exists() and not Path(str(db) + ".wal").exists()
    finally:
        source.configure(None)
