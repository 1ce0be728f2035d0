"""Undo an import with ``python -m data revert``, with and without later imports (issue 18, item 6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from tests.conftest import make_warehouse

PROJECT = Path(__file__).resolve().parent.parent
HEADER = "source_id,received_at,municipality,channel,category"
ROADS, WASTE = "Дороги и ямы", "Вывоз мусора"


def _data(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data", *args], cwd=PROJECT, capture_output=True, text=True,
                          check=False, env={"PATH": "/usr/bin:/bin", "CUR_IMPORT_NICE": "0"})


def _import(db: Path, tmp_path: Path, name: str, rows: list[str]) -> None:
    f = tmp_path / f"{name}.csv"
    f.write_text("\n".join([HEADER, *rows]), encoding="utf-8")
    result = _data("import", str(f), "--db", str(db), "--source", "appeals")
    assert result.returncode == 0, result.stderr


def _facts(db: Path) -> dict[str, tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""SELECT a.source_id, CAST(a.received_at AS VARCHAR), c.name, a.import_id
                              FROM appeal a LEFT JOIN category c ON c.id = a.category_id""").fetchall()
        # the rollups follow the facts: the monthly count equals a count of the facts
        monthly = con.execute("SELECT CAST(sum(n) AS BIGINT) FROM appeal_monthly").fetchall()[0][0] or 0
        assert monthly == len(rows)
        opened = con.execute("SELECT count(*) FROM appeal_open").fetchall()[0][0]
        assert opened == con.execute("SELECT count(*) FROM appeal WHERE status IN ('new', 'in_work')").fetchall()[0][0]
    return {r[0]: r[1:] for r in rows}


def _city(source_id: str, day: str, category: str) -> str:
    return f"{source_id},2025-10-{day} 10:00,город Смоленск,pos,{category}"


def _history(tmp_path: Path) -> Path:
    """Import 1 loads a1–a3; import 2 changes a1, a2 and adds b1, b2; import 3 changes a2 and b1."""
    db = make_warehouse(tmp_path, [])  # the reference lists only
    _import(db, tmp_path, "first", [_city("a1", "01", ROADS), _city("a2", "02", ROADS), _city("a3", "03", ROADS)])
    _import(db, tmp_path, "second", [_city("a1", "01", WASTE), _city("a2", "02", WASTE), _city("b1", "05", ROADS),
                                     _city("b2", "06", ROADS)])
    _import(db, tmp_path, "third", [_city("a2", "12", ROADS), _city("b1", "15", WASTE)])
    return db


def test_revert_of_the_last_import_puts_back_what_it_replaced(tmp_path):
    db = _history(tmp_path)
    imports = _data("imports", "--db", str(db))
    assert imports.returncode == 0 and "third.csv" in imports.stdout and "действует" in imports.stdout
    before = _facts(db)
    third = max(v[2] for v in before.values())
    result = _data("revert", str(third), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "удалено строк — 0" in result.stdout and "восстановлено прежних версий — 2" in result.stdout
    after = _facts(db)
    assert after["a2"][:2] == ("2025-10-02 10:00:00", WASTE)  # as import 2 left it
    assert after["b1"][:2] == ("2025-10-05 10:00:00", ROADS)
    assert after["a1"] == before["a1"] and after["a3"] == before["a3"] and after["b2"] == before["b2"]
    assert set(after) == {"a1", "a2", "a3", "b1", "b2"}
    again = _data("revert", str(third), "--db", str(db))
    assert again.returncode == 2 and "уже отменена" in again.stderr and "Traceback" not in again.stderr


def test_revert_after_later_imports_keeps_what_they_changed_and_says_so(tmp_path):
    db = _history(tmp_path)
    second = sorted({v[2] for v in _facts(db).values()})[1]
    result = _data("revert", str(second), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "удалено строк — 1" in result.stdout  # b2
    assert "восстановлено прежних версий — 1" in result.stdout  # a1
    assert "2 строк позже изменены" in result.stdout  # a2 and b1 belong to import 3 now
    after = _facts(db)
    assert set(after) == {"a1", "a2", "a3", "b1"}
    assert after["a1"][:2] == ("2025-10-01 10:00:00", ROADS)  # back to import 1
    assert after["a2"][:2] == ("2025-10-12 10:00:00", ROADS)  # import 3's version stays
    assert after["b1"][:2] == ("2025-10-15 10:00:00", WASTE)
    listed = _data("imports", "--db", str(db)).stdout
    assert "отменена" in listed


def test_an_unknown_import_is_a_clear_error(tmp_path):
    db = _history(tmp_path)
    result = _data("revert", "99", "--db", str(db))
    assert result.returncode == 2 and "нет загрузки с номером 99" in result.stderr
