"""Rollups always equal a rebuild from the facts, after the demo and after incremental imports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from data.importer import run_import
from data.mapping import load_mapping
from data.rollup import MEASURES, refresh_rollups
from data.warehouse import connect

TABLES = ("appeal_monthly", "appeal_monthly_hist", "appeal_monthly_hist_body", "appeal_weekly", "appeal_open")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    out = {}
    for table in TABLES:
        out[table] = sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)  # noqa: S608
    return out


def test_rollups_add_up_to_the_facts(small_demo: Path) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    facts = con.execute("SELECT count(*), count(answered_at), count(first_response_at) FROM appeal").fetchall()[0]
    assert con.execute("SELECT sum(n), sum(n_answered), sum(n_responded) FROM appeal_monthly").fetchall()[0] == facts
    assert con.execute("SELECT sum(n) FROM appeal_weekly").fetchall()[0][0] == facts[0]
    hist = dict(con.execute("SELECT duration, sum(n) FROM appeal_monthly_hist GROUP BY 1").fetchall())
    assert (hist[1], hist[0]) == (facts[1], facts[2])
    body = dict(con.execute("SELECT duration, sum(n) FROM appeal_monthly_hist_body GROUP BY 1").fetchall())
    assert body == hist
    assert con.execute("SELECT count(*) FROM appeal_open").fetchall()[0][0] == con.execute(
        "SELECT count(*) FROM appeal WHERE status IN ('new', 'in_work')").fetchall()[0][0]
    sums = ", ".join(f"sum({m})" for m in MEASURES if not m.startswith("sum_"))
    assert all(v is not None for v in con.execute(f"SELECT {sums} FROM appeal_monthly").fetchall()[0])  # noqa: S608


def test_incremental_refresh_after_import_equals_full_rebuild(small_demo: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = connect(db)
    existing = con.execute("SELECT source_id FROM appeal ORDER BY received_at LIMIT 1").fetchall()[0][0]
    f = tmp_path / "a.csv"
    f.write_text(
        "source,source_id,received_at,municipality,channel,category,answered_at\n"
        f"demo,{existing},2025-05-03 10:00,Вяземский,pos,Отопление,2025-05-04 10:00\n"  # moved to another month
        "extra,1,2025-10-31 23:00,Ярцевский,im,Газификация,\n"
        "extra,2,2025-08-15 12:00,Ярцевский,im,Газификация,2025-08-15 13:30\n",
        encoding="utf-8",
    )
    result = run_import(con, f, load_mapping(None), now=dt.datetime(2025, 11, 5))
    assert (result.inserted, result.updated) == (2, 1)
    incremental = snapshot(con)
    con.execute("BEGIN")
    refresh_rollups(con)
    con.execute("COMMIT")
    assert snapshot(con) == incremental
    con.close()
