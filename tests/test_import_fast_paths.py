"""The importer's fast paths keep its promises: what is staged, in which order facts land, who wins."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from data import importer, readers
from data.readers import STAGE_TABLE, drop_stage, stage_file
from tests.test_import import HEADER, do_import, query, write


def test_only_the_kept_columns_are_staged(tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", "Номер;ФИО заявителя;Телефон;Дата\n1;Иванов И. И.;+7 900 000-00-00;01.10.2025\n")
    con = duckdb.connect()
    staged = stage_file(con, f, keep=lambda header: [h for h in header if h in ("Номер", "Дата")])
    staged_columns = [r[0] for r in con.execute(f"DESCRIBE {STAGE_TABLE}").fetchall()]  # noqa: S608
    assert staged.header == ["Номер", "ФИО заявителя", "Телефон", "Дата"]
    assert staged_columns == ["Номер", "Дата"]
    assert con.execute(f"SELECT {staged.row_expr}, * FROM {STAGE_TABLE}").fetchall() == [(2, "1", "01.10.2025")]  # noqa: S608
    drop_stage(con)


def test_crlf_file_without_final_newline_keeps_line_numbers(db: Path, tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes("\r\n".join([
        HEADER,
        "1,01.10.2025 10:00,г. Смоленск,pos,,,,,",
        "2,01.10.2025 10:00,Нигде,pos,,,,,",
        "3,02.10.2025 10:00,Вяземский,pos,,,,,",
    ]).encode("utf-8"))
    r = do_import(db, f)
    assert (r.read, r.accepted, r.rejected) == (3, 2, 1)
    assert query(db, "SELECT row_number, reason FROM rejected_row") == [(3, 'неизвестный муниципалитет: "Нигде"')]


def import_days(db: Path, tmp_path: Path, days: list[int]) -> list[int]:
    rows = [f"{i},{d:02d}.10.2025 10:00,Вяземский,pos,,,,," for i, d in enumerate(days)]
    f = write(tmp_path, "a.csv", "\n".join([HEADER, *rows]))
    do_import(db, f)
    return [r[0].day for r in query(db, "SELECT received_at FROM appeal ORDER BY rowid")]


def test_a_shuffled_file_is_stored_in_received_order(db: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(importer, "ROW_GROUP_ROWS", 2)  # row groups of two rows: a small file is "big"
    days = [17, 3, 25, 9, 1, 30, 12, 5]
    assert import_days(db, tmp_path, days) == sorted(days)


def test_a_file_nearly_in_order_is_not_sorted(db: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(importer, "ROW_GROUP_ROWS", 2)
    days = [1, 2, 3, 4, 6, 5, 7, 8]  # each pair of rows spans a day or two: zone maps already work
    assert import_days(db, tmp_path, days) == days


def test_first_valid_occurrence_wins_even_after_an_invalid_one(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", "\n".join([
        HEADER,
        "7,01.10.2025 10:00,Нигде,pos,,,,,",      # line 2: invalid, so not "the first occurrence"
        "7,02.10.2025 10:00,Вяземский,pos,,,,,",  # 3: accepted
        "7,03.10.2025 10:00,Вяземский,pos,,,,,",  # 4: repeat of line 3
        "8,04.10.2025 10:00,Вяземский,pos,,,,,",
    ]))
    r = do_import(db, f)
    assert (r.accepted, r.rejected) == (2, 2)
    assert dict(query(db, "SELECT row_number, reason FROM rejected_row")) == {
        2: 'неизвестный муниципалитет: "Нигде"',
        4: "повтор номера обращения в файле (первое вхождение — строка 3)",
    }
    assert query(db, "SELECT source_id, received_at FROM appeal ORDER BY 1") == [
        ("7", dt.datetime(2025, 10, 2, 10)), ("8", dt.datetime(2025, 10, 4, 10))]


def test_a_new_name_is_created_as_first_written(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", "\n".join([
        HEADER,
        "1,01.10.2025,Вяземский,pos,Отопление,ООО «Ромашка-Сервис»,,,",
        "2,01.10.2025,Вяземский,pos,Отопление,ооо ромашка-сервис,,,",
        "3,01.10.2025,Вяземский,pos,Отопление,ООО  \"Ромашка-Сервис\",,,",
    ]))
    r = do_import(db, f)
    assert r.new_organisations == ["ООО «Ромашка-Сервис»"]
    assert query(db, "SELECT count(DISTINCT organisation_id) FROM appeal") == [(1,)]


def test_unchanged_reimport_leaves_facts_and_rollups_alone(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", "\n".join([HEADER] + [f"{i},0{1 + i % 9}.10.2025 10:00,Вяземский,im,,,,," for i in range(30)]))
    do_import(db, f)
    before = query(db, "SELECT count(*), sum(n) FROM appeal_monthly"), query(db, "SELECT * FROM appeal ORDER BY rowid")
    again = do_import(db, f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 30)
    after = query(db, "SELECT count(*), sum(n) FROM appeal_monthly"), query(db, "SELECT * FROM appeal ORDER BY rowid")
    assert after == before


def test_each_phase_is_timed(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", HEADER + "\n1,01.10.2025,Вяземский,pos,,,,,\n")
    r = do_import(db, f)
    assert {"stage", "check", "deadlines", "upsert", "rollups", "commit"} <= set(r.phases)
    assert all(v >= 0 for v in r.phases.values())
    assert "phases" not in r.summary()


def test_a_one_row_group_parquet_read_in_slices_keeps_every_row_and_its_number(
    db: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(readers, "PARQUET_SLICE_MIN_ROWS", 10)
    n = 41
    table = pa.table({
        "source_id": [str(i % 40) for i in range(n)],  # row 41 repeats row 1
        "received_at": pa.array([dt.datetime(2025, 10, 1 + i % 28, 8) for i in range(n)]),
        "municipality": ["Нигде" if i == 20 else "Вяземский" for i in range(n)],
        "channel": ["pos"] * n,
    })
    path = tmp_path / "a.parquet"
    pq.write_table(table, path, row_group_size=n)
    con = duckdb.connect()
    assert len(readers._parquet_slices(con, path)) == int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    r = do_import(db, path)
    assert (r.read, r.accepted, r.rejected) == (41, 39, 2)
    assert dict(query(db, "SELECT row_number, reason FROM rejected_row")) == {
        21: 'неизвестный муниципалитет: "Нигде"',
        41: "повтор номера обращения в файле (первое вхождение — строка 1)",
    }
