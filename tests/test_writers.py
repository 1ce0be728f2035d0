"""Writers that never fill the disk and never copy the warehouse for nothing (issue 18, item 5)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from data.roadmap import add_item
from data.swap import writer_lock
from tests.conftest import make_warehouse

PROJECT = Path(__file__).resolve().parent.parent


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tmpfs(tmp_path):
    """A small filesystem of its own (root only: mount); skipped with a reason elsewhere."""
    where = tmp_path / "small"
    where.mkdir()

    def mount(size_kib: int) -> Path:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"нельзя смонтировать tmpfs (нужен root): {result.stderr.strip()[:120]}")
        return where

    yield mount
    subprocess.run(["umount", str(where)], capture_output=True, check=False)


def _import(db: Path, source: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data", "import", str(source), "--db", str(db)],
                          cwd=PROJECT, capture_output=True, text=True, check=False,
                          env={**os.environ, "CUR_IMPORT_NICE": "0", **env})


def _rows(n: int, start: int = 0) -> str:
    lines = ["source_id,received_at,municipality,channel,category"]
    lines += [f"x{i},2025-10-{1 + i % 28:02d} 10:00,город Смоленск,pos,Дороги и ямы" for i in range(start, start + n)]
    return "\n".join(lines)


def test_no_room_for_the_copy_exits_2_and_changes_nothing(tmp_path, tmpfs):
    built = make_warehouse(tmp_path, ["a1,2025-10-01 10:00,город Смоленск,pos,Дороги и ямы"])
    size = built.stat().st_size
    small = tmpfs(size // 1024 + 2048)  # the file fits, a copy and its headroom do not
    db = small / "w.duckdb"
    shutil.copy(built, db)
    before = _digest(db)
    source = tmp_path / "more.csv"
    source.write_text(_rows(100), encoding="utf-8")
    result = _import(db, source)
    assert result.returncode == 2, result.stderr
    assert "недостаточно места" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in small.iterdir()) == ["w.duckdb", "w.duckdb.lock"]
    assert _digest(db) == before


def test_a_disk_that_fills_midway_leaves_no_partial_copy(tmp_path, tmpfs, monkeypatch, capsys):
    from data import swap

    built = make_warehouse(tmp_path, ["a1,2025-10-01 10:00,город Смоленск,pos,Дороги и ямы"])
    size = built.stat().st_size
    small = tmpfs(2 * size // 1024 + 4096)
    db = small / "w.duckdb"
    shutil.copy(built, db)
    # leave room for the copy and very little more, and let the writer's own check pass
    free = shutil.disk_usage(small).free
    (small / "filler").write_bytes(b"\0" * (free - size - 64 * 1024))
    before = _digest(db)
    monkeypatch.setattr(swap, "HEADROOM_MIN", 0)
    monkeypatch.setattr(swap, "HEADROOM_SHARE", 0.0)
    source = tmp_path / "more.csv"
    source.write_text(_rows(200_000), encoding="utf-8")
    from data.__main__ import main

    code = main(["import", str(source), "--db", str(db)])
    assert code == 2
    assert "диск заполнился" in capsys.readouterr().err
    assert not (small / "w.duckdb.writing").exists() and not (small / "w.duckdb.writing.wal").exists()
    assert _digest(db) == before
    (small / "filler").unlink()
    assert shutil.disk_usage(small).free > size  # the partial copy does not keep the disk full


def test_a_refused_form_never_copies_the_warehouse_nor_waits_for_a_writer(tmp_path):
    db = make_warehouse(tmp_path, ["a1,2025-10-01 10:00,город Смоленск,pos,Дороги и ямы"])
    stamp = (db.stat().st_ino, db.stat().st_mtime_ns)
    held, release = threading.Event(), threading.Event()

    def import_in_progress() -> None:
        with writer_lock(db):
            held.set()
            release.wait(30)

    writer = threading.Thread(target=import_in_progress)
    writer.start()
    held.wait(10)
    try:
        started = time.monotonic()
        new_id, reasons = add_item(db, {"title": "", "sector": "нет такого"})
        assert new_id is None and reasons
        assert time.monotonic() - started < 5  # answered without the writer's lock
    finally:
        release.set()
        writer.join()
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == stamp
    assert not Path(str(db) + ".writing").exists()
