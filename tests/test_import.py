"""Import: every bad input gets a clear reason, counts always add up, nothing half-written."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data import importer
from data.importer import ImportFailed, run_import
from data.mapping import MappingError, load_mapping
from data.warehouse import connect

PROJECT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2025, 11, 20, 12, 0)
HEADER = "source_id,received_at,municipality,channel,category,organisation,answered_at,satisfaction,topic"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def do_import(db: Path, file: Path, mapping: Path | None = None, source: str | None = None):
    con = connect(db)
    try:
        result = run_import(con, file, load_mapping(mapping), source=source, now=NOW)
    finally:
        con.close()
    assert result.read == result.accepted + result.rejected
    assert result.accepted == result.inserted + result.updated + result.unchanged
    return result


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def rejected(db: Path, import_id: int) -> dict[int, str]:
    return dict(query(db, "SELECT row_number, reason FROM rejected_row WHERE import_id = ?", [import_id]))


def table_counts(db: Path) -> dict[str, int]:
    return {
        t: query(db, f"SELECT count(*) FROM {t}")[0][0]  # noqa: S608
        for t in ("appeal", "rejected_row", "import_log", "category", "organisation")
    }


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data", *args], cwd=PROJECT, capture_output=True, text=True, timeout=120
    )


def test_valid_rows_get_ids_sector_kind_status_and_deadlines(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "ok.csv", "\n".join([
        HEADER,
        "1,31.10.2025 10:30,г. Смоленск,pos,Отопление,УК Тёплый дом,05.11.2025 12:00,5,Нет отопления",
        "2,2025-10-01 09:00,Вяземский район,letter,Ямы и разрушение покрытия,,,,",
        "3,2025-10-03T18:30:00,Сычёвский,im,Грубость персонала,,,,",
    ]))
    r = do_import(db, f)
    assert (r.read, r.accepted, r.inserted, r.rejected) == (3, 3, 3, 0)
    assert r.new_organisations == ["УК Тёплый дом"]
    rows = {row[0]: row[1:] for row in query(db, """
        SELECT a.source_id, a.kind, s.code, c.name, a.status, a.due_at, a.first_response_due_at, m.name
        FROM appeal a JOIN sector s ON s.id = a.sector_id LEFT JOIN category c ON c.id = a.category_id
        JOIN municipality m ON m.id = a.municipality_id""")}
    # ПОС: 8 working days; 31.10 → 01.11 is a working Saturday, 03–04.11 are days off
    assert rows["1"] == ("message", "housing", "Отопление", "answered",
                         dt.datetime(2025, 11, 13, 23, 59, 59), None, "город Смоленск")
    # 59-ФЗ letter: 30 calendar days
    assert rows["2"][:5] == ("appeal", "roads", "Ямы и разрушение покрытия", "new", dt.datetime(2025, 10, 31, 23, 59, 59))
    # a child of «Прочие по направлению» is found by its own name; social media: 8 working hours for a reaction
    assert rows["3"][1:3] == ("health", "Грубость персонала")
    assert rows["3"][5] == dt.datetime(2025, 10, 6, 17, 0)
    assert rows["3"][6] == "Сычевский"
    assert query(db, "SELECT sector_id FROM organisation WHERE name = 'УК Тёплый дом'") == [(4,)]


def test_each_bad_row_is_kept_with_its_reason(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "bad.csv", "\n".join([
        HEADER,
        "1,01.10.2025 10:00,г. Смоленск,pos,Отопление,,,,",          # line 2: fine
        "2,02.10.2025 10:00,Смолнск,pos,Отопление,,,,",              # 3: unknown municipality
        "3,03.10.2025,Вяземский,letter,,,01.10.2025,,",              # 4: answer before receipt
        "4,32.13.2025,Вяземский,im,,,,,",                            # 5: unparseable date
        "5,2030-01-01,Вяземский,im,,,,,",                            # 6: future
        "1,01.10.2025 10:00,г. Смоленск,pos,Отопление,,,,",          # 7: duplicate id in the file
        "6,05.10.2025,Ельнинский,почта голубями,,,,,",               # 8: unknown channel
        "7,05.10.2025,Ельнинский,pos,,,,7,",                         # 9: rating out of range
        ",05.10.2025,Ельнинский,pos,,,,,",                           # 10: no id
        "8,,Ельнинский,pos,,,,,",                                    # 11: no date
    ]))
    r = do_import(db, f)
    assert (r.read, r.accepted, r.rejected) == (10, 1, 9)
    assert rejected(db, r.import_id) == {
        3: 'неизвестный муниципалитет: "Смолнск"',
        4: "дата ответа раньше даты поступления",
        5: 'не удалось разобрать дату поступления: "32.13.2025"',
        6: "дата поступления в будущем: 01.01.2030 00:00",
        7: "повтор номера обращения в файле (первое вхождение — строка 2)",
        8: 'неизвестный канал: "почта голубями"',
        9: 'оценка должна быть целым числом от 1 до 5: "7"',
        10: "не указан номер обращения (source_id)",
        11: "не указана дата поступления",
    }
    raw = json.loads(query(db, "SELECT raw FROM rejected_row WHERE row_number = 3")[0][0])
    assert raw["municipality"] == "Смолнск" and raw["source_id"] == "2"
    log = query(db, "SELECT read, accepted, rejected FROM import_log WHERE import_id = ?", [r.import_id])
    assert log == [(10, 1, 9)]


def test_broken_quoting_rejects_only_the_broken_lines(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "broken.csv", "\n".join([
        "source_id,received_at,municipality,channel,topic",
        "1,01.10.2025 10:00,Вяземский,pos,Яма",                     # 2 ok
        '2,01.10.2025 10:00,Вяземский,pos,"Яма у дома',              # 3 quote never closed
        "3,01.10.2025 10:00,Вяземский,pos,Свалка",                  # 4 ok: not swallowed by line 3
        '4,01.10.2025 10:00,Вяземский,pos,"Поле, на двух',           # 5-6 a legitimate multi-line field
        'строках"',
        "5,01.10.2025,Вяземский,pos,x,лишнее",                      # 7 too many fields
        "6,01.10.2025,Вяземский",                                   # 8 too few
    ]) + "\n")
    r = do_import(db, f)
    assert (r.read, r.accepted, r.rejected) == (6, 3, 3)
    assert rejected(db, r.import_id) == {
        3: "строка повреждена: незакрытая кавычка",
        7: "неверное число полей: 6 вместо 5",
        8: "неверное число полей: 3 вместо 5",
    }
    topics = dict(query(db, "SELECT source_id, topic FROM appeal"))
    assert topics == {"1": "Яма", "3": "Свалка", "4": "Поле, на двух\nстроках"}


def test_cp1251_and_bom_and_semicolons_are_read(db: Path, tmp_path: Path) -> None:
    text = "source_id;received_at;municipality;channel\r\n1;01.10.2025 10:00;Ярцевский;ПОС\r\n"
    r = do_import(db, write(tmp_path, "cp.csv", text, "cp1251"))
    assert (r.read, r.accepted) == (1, 1)
    r = do_import(db, write(tmp_path, "bom.csv", "\ufeff" + text.replace("1;", "2;", 1), "utf-8"))
    assert (r.read, r.accepted) == (1, 1)
    tab = text.replace(";", "\t").replace("1\t", "3\t", 1)
    r = do_import(db, write(tmp_path, "tab.csv", tab))
    assert (r.read, r.accepted) == (1, 1)
    assert query(db, "SELECT count(*) FROM appeal WHERE channel = 'pos'") == [(3,)]


def test_line_in_another_encoding_is_rejected(db: Path, tmp_path: Path) -> None:
    p = tmp_path / "mixed.csv"
    p.write_bytes(
        "source_id,received_at,municipality,channel\n1,01.10.2025,Ярцевский,pos\n".encode()
        + "2,01.10.2025,Ярцевский,pos\n".encode("cp1251")
        + "3,01.10.2025,Ярцевский,pos\n".encode()
    )
    r = do_import(db, p)
    assert (r.read, r.accepted, r.rejected) == (3, 2, 1)
    assert rejected(db, r.import_id) == {3: "строка не в кодировке UTF-8 (в файле смешаны кодировки)"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "файл пуст"),
        ("blank.csv", b"\n\n  \n", "файл пуст"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "не похож на CSV"),
        ("nocols.csv", b"id,date\n1,2025-01-01\n", "нет обязательного столбца: source_id, received_at, municipality, channel"),
        ("fake.xlsx", b"PK\x03\x04 not really a zip", "не читается как книга Excel"),
        ("fake.parquet", b"PAR1 nope", "не читается как Parquet"),
    ],
)
def test_unusable_file_exits_2_and_leaves_warehouse_untouched(
    db: Path, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    before = table_counts(db)
    p = tmp_path / name
    p.write_bytes(content)
    proc = run_cli("import", str(p), "--db", str(db))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert table_counts(db) == before


def test_unusable_file_does_not_create_a_warehouse(tmp_path: Path) -> None:
    p = write(tmp_path, "e.csv", "")
    target = tmp_path / "new.duckdb"
    proc = run_cli("import", str(p), "--db", str(target))
    assert proc.returncode == 2
    assert not target.exists()


def test_header_only_file_reads_zero_rows(db: Path, tmp_path: Path) -> None:
    proc = run_cli("import", str(write(tmp_path, "h.csv", HEADER + "\n")), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {k: out[k] for k in ("read", "accepted", "inserted", "updated", "rejected")} == dict.fromkeys(
        ("read", "accepted", "inserted", "updated", "rejected"), 0
    )
    assert set(out) >= {"import_id", "read", "accepted", "inserted", "updated", "rejected",
                        "new_categories", "new_organisations"}


def test_reimport_is_idempotent_and_changes_are_updates(db: Path, tmp_path: Path) -> None:
    rows = [HEADER] + [f"{i},0{1 + i % 9}.10.2025 10:00,Рославльский,pos,Отопление,,,," for i in range(1, 21)]
    f = write(tmp_path, "a.csv", "\n".join(rows))
    first = do_import(db, f)
    assert (first.inserted, first.updated, first.unchanged) == (20, 0, 0)
    second = do_import(db, f)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 20)
    rows[5] = rows[5].replace(",,,,", ",,10.10.2025 12:00,4,")
    rows.append("21,01.10.2025,Рославльский,pos,Отопление,,,,")
    third = do_import(db, write(tmp_path, "a.csv", "\n".join(rows)))
    assert (third.inserted, third.updated, third.unchanged) == (1, 1, 19)
    assert query(db, "SELECT count(*), count(DISTINCT source_id) FROM appeal") == [(21, 21)]
    assert query(db, "SELECT status, satisfaction FROM appeal WHERE source_id = '5'") == [("answered", 4)]


def test_same_ids_from_another_source_are_other_appeals(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", HEADER + "\n1,01.10.2025,Рославльский,pos,,,,,\n")
    do_import(db, f, source="pos")
    do_import(db, f, source="letters")
    assert query(db, "SELECT source FROM appeal ORDER BY source") == [("letters",), ("pos",)]


def test_failure_midway_leaves_every_table_as_it_was(db: Path, tmp_path: Path, monkeypatch) -> None:
    do_import(db, write(tmp_path, "a.csv", HEADER + "\n1,01.10.2025,Рославльский,pos,,,,,\n"))
    before = table_counts(db)

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "_register_deadlines", boom)
    f = write(tmp_path, "b.csv", HEADER + "\n2,01.10.2025,Рославльский,pos,Новая беда,Новая контора,,,\n"
              "3,01.10.2025,Нигде,pos,,,,,\n")
    with pytest.raises(RuntimeError, match="disk full"):
        do_import(db, f)
    assert table_counts(db) == before


def test_mapping_with_russian_columns_value_maps_and_sector_rules(db: Path, tmp_path: Path) -> None:
    mapping = write(tmp_path, "map.toml", """
[source]
name = "pos-export"
date_format = "%m/%d/%Y %I:%M:%S %p"
timezone = "Asia/Yekaterinburg"

[columns]
source_id = "Номер"
received_at = "Дата"
municipality = "МО"
category = "Рубрика"
status = "Статус"

[defaults]
channel = "pos"

[values.status]
"Ответ направлен" = "answered"

[sector_by_category]
"Освещение улиц" = "energy"
""")
    f = write(tmp_path, "export.csv", "\n".join([
        "Номер;Дата;МО;Рубрика;Статус;ФИО заявителя;Телефон",
        "A-1;10/01/2025 02:00:00 PM;Гагаринский район;Освещение улиц;Ответ направлен;Иванов Иван;+79101234567",
        "A-2;10/02/2025 09:15:00 AM;66410;Прочее непонятное;В работе;Петров Пётр;89001112233",
        "A-3;10/02/2025 09:15:00 AM;66410;Прочее непонятное;Потерялось;Сидоров;8900",
    ]))
    r = do_import(db, f, mapping)
    assert (r.read, r.accepted, r.rejected) == (3, 2, 1)
    assert rejected(db, r.import_id) == {4: 'неизвестный статус: "Потерялось"'}
    assert r.new_categories == ["Иные тематики: Прочее непонятное", "Энергетика: Освещение улиц"]
    got = query(db, """SELECT a.source, a.source_id, a.received_at, m.name, s.code, a.status FROM appeal a
                       JOIN municipality m ON m.id = a.municipality_id JOIN sector s ON s.id = a.sector_id
                       ORDER BY a.source_id""")
    # 14:00 in Yekaterinburg (UTC+5) is 12:00 in Moscow
    assert got == [
        ("pos-export", "A-1", dt.datetime(2025, 10, 1, 12, 0), "Гагаринский", "energy", "answered"),
        ("pos-export", "A-2", dt.datetime(2025, 10, 2, 7, 15), "город Десногорск", "other", "in_work"),
    ]
    # personal data never enters the warehouse, not even the rejected rows
    dump = json.dumps(query(db, "SELECT * FROM rejected_row"), default=str, ensure_ascii=False)
    dump += json.dumps(query(db, "SELECT * FROM appeal"), default=str, ensure_ascii=False)
    assert "Сидоров" not in dump and "Иванов" not in dump and "8900" not in dump


def test_topic_is_scrubbed_of_contacts(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "t.csv", "\n".join([
        "source_id,received_at,municipality,channel,topic",
        '1,01.10.2025,Ярцевский,pos,"Нет света, звоните +7 (910) 123-45-67 или a.ivanov@mail.ru"',
        '2,01.10.2025,Ярцевский,pos,"Яма во дворе, ул. Ленина, д. 5"',
    ]))
    do_import(db, f)
    topics = dict(query(db, "SELECT source_id, topic FROM appeal"))
    assert topics["1"] == "Нет света, звоните [телефон] или [e-mail]"
    assert "Ленина" not in topics["2"] and "[адрес]" in topics["2"]


def test_xlsx_with_dates_and_numbers(db: Path, tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["source_id", "received_at", "municipality", "channel", "answered_at", "satisfaction"])
    ws.append([101, dt.datetime(2025, 10, 1, 9, 30), "Дорогобужский", "hotline", 45933.5, 4])
    ws.append([102, "01.10.2025", "Дорогобужский", "hotline", None, None])
    ws.append([None, None, None, None, None, None])
    ws.append([103, "вчера", "Дорогобужский", "hotline", None, None])
    path = tmp_path / "a.xlsx"
    wb.save(path)
    r = do_import(db, path)
    assert (r.read, r.accepted, r.rejected) == (3, 2, 1)
    assert rejected(db, r.import_id) == {5: 'не удалось разобрать дату поступления: "вчера"'}
    assert query(db, "SELECT source_id, received_at, answered_at, satisfaction FROM appeal ORDER BY 1") == [
        ("101", dt.datetime(2025, 10, 1, 9, 30), dt.datetime(2025, 10, 3, 12, 0), 4),
        ("102", dt.datetime(2025, 10, 1), None, None),
    ]


def test_parquet_with_typed_columns(db: Path, tmp_path: Path) -> None:
    table = pa.table({
        "source_id": ["p1", "p2", "p3"],
        "received_at": pa.array([dt.datetime(2025, 10, 1, 8), dt.datetime(2025, 10, 2, 8), dt.datetime(2031, 1, 1)]),
        # OKTMO codes as a typed column: matched as text, never taken for the warehouse's ids
        "municipality": pa.array([66701000, 66710000, 66603000], pa.int64()),
        "channel": ["e_reception", "e_reception", "e_reception"],
        "satisfaction": pa.array([5, None, None], pa.int16()),
    })
    path = tmp_path / "a.parquet"
    pq.write_table(table, path)
    r = do_import(db, path)
    assert (r.read, r.accepted, r.rejected) == (3, 2, 1)
    assert rejected(db, r.import_id) == {3: "дата поступления в будущем: 01.01.2031 00:00"}
    assert query(db, """SELECT a.source_id, m.name, a.kind, a.satisfaction FROM appeal a
                        JOIN municipality m ON m.id = a.municipality_id ORDER BY 1""") == [
        ("p1", "город Смоленск", "appeal", 5), ("p2", "город Десногорск", "appeal", None)
    ]


def test_bad_mapping_is_refused_with_a_clear_message(db: Path, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.toml", '[columns]\nsource_id = "N"\nnomer = "X"\n')
    with pytest.raises(MappingError, match="неизвестные поля nomer"):
        load_mapping(bad)
    codes = write(tmp_path, "codes.toml", '[columns]\nsource_id = "N"\n[values.status]\n"Готово" = "done"\n')
    f = write(tmp_path, "a.csv", "N,received_at,municipality,channel\n1,01.10.2025,Ярцевский,pos\n")
    with pytest.raises(MappingError, match="done"):
        do_import(db, f, codes)
    missing = write(tmp_path, "missing.toml", '[columns]\nsource_id = "Номер"\n')
    with pytest.raises(ImportFailed, match="нет столбцов из соответствия"):
        do_import(db, f, missing)
    proc = run_cli("import", str(f), "--db", str(db), "--mapping", str(bad))
    assert proc.returncode == 2 and "nomer" in proc.stderr


def test_rejected_command_prints_reasons_as_csv(db: Path, tmp_path: Path) -> None:
    f = write(tmp_path, "a.csv", HEADER + "\n1,01.10.2025,Смолнск,pos,,,,,\n2,01.10.2025,Ярцевский,pos,,,,,\n")
    proc = run_cli("import", str(f), "--db", str(db))
    assert proc.returncode == 0
    summary = json.loads(proc.stdout)
    assert (summary["read"], summary["accepted"], summary["rejected"]) == (2, 1, 1)
    out = run_cli("rejected", "--db", str(db), "--import-id", str(summary["import_id"]))
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "import_id,row_number,reason,raw"
    assert lines[1].startswith(f'{summary["import_id"]},2,"неизвестный муниципалитет: ""Смолнск"""')
