"""Any region, any export (issue 15): a file's unit lands in that unit or is refused with a reason.

Units are named by code, name or alias — never by the warehouse's internal id; official spellings
(«город-курорт Кисловодск», «г. Ставрополь», «… муниципальный округ» for «… район») are one unit;
any mapped value may be empty; organisation kinds come from the mapping. The real exports of
``../shared/realdata`` (Los Angeles, Stavropol boundaries) are checked against pandas counts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data.aliases import import_aliases
from data.importer import low_acceptance_warning, run_import
from data.mapping import MappingError, load_mapping
from data.names import MunicipalityIndex
from data.warehouse import connect, ensure_initialised
from tests.test_import import query

PROJECT = Path(__file__).resolve().parents[1]
# CUR_REALDATA lets a worktree outside the shared checkout point at the same files
REALDATA = Path(os.environ.get("CUR_REALDATA") or Path(__file__).resolve().parents[2] / "shared" / "realdata")
LA = REALDATA / "la-311"
STAVROPOL = REALDATA / "osm-boundaries" / "stavropol_krai_municipal.geojson"
NOW = dt.datetime(2025, 11, 20, 12, 0)


def needs(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not path.exists(), reason=f"нет реальных данных {path} (../shared/realdata есть только в общей рабочей копии)")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUR_IMPORT_NICE": "0"}
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=300, env=env)


def warehouse(tmp_path: Path, units: list[tuple[int, str, str | None]]) -> Path:
    """A warehouse with the reference lists and exactly these units (id, name, oktmo)."""
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_initialised(con, municipalities_csv=None)
    con.executemany("INSERT INTO municipality (id, oktmo, name) VALUES (?, ?, ?)",
                    [(mid, oktmo, name) for mid, name, oktmo in units])
    con.close()
    return db


def do_import(db: Path, text: str, tmp_path: Path, mapping: str | None = None, name: str = "a.csv"):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    m = None
    if mapping is not None:
        m = tmp_path / "map.toml"
        m.write_text(mapping, encoding="utf-8")
    con = connect(db)
    try:
        result = run_import(con, f, load_mapping(m), now=NOW)
    finally:
        con.close()
    assert result.read == result.accepted + result.rejected
    return result


def placed(db: Path) -> dict[str, str]:
    """source_id → the name of the unit the row landed in."""
    return dict(query(db, "SELECT a.source_id, m.name FROM appeal a JOIN municipality m ON m.id = a.municipality_id"))


def reasons(db: Path, import_id: int) -> dict[int, str]:
    return dict(query(db, "SELECT row_number, reason FROM rejected_row WHERE import_id = ?", [import_id]))


# --- the internal id is never matched ---------------------------------------------------------------


def test_numbered_units_land_by_name_never_by_internal_id(tmp_path: Path) -> None:
    # ids 1..4 collide with the names: unit id 1 is named «3», id 2 «1», id 3 «2», id 4 «Центральный»
    db = warehouse(tmp_path, [(1, "3", None), (2, "1", None), (3, "2", None), (4, "Центральный", "45000000")])
    r = do_import(db, "\n".join([
        "source_id,received_at,municipality,channel",
        "a,01.10.2025 10:00,1,pos",
        "b,01.10.2025 10:00,2,pos",
        "c,01.10.2025 10:00,3,pos",
        "d,01.10.2025 10:00,4,pos",          # the id of «Центральный», not its name: refused
        "e,01.10.2025 10:00,45000000,pos",   # its code
    ]), tmp_path)
    assert (r.read, r.accepted, r.rejected) == (5, 4, 1)
    assert placed(db) == {"a": "1", "b": "2", "c": "3", "e": "Центральный"}
    assert reasons(db, r.import_id) == {5: 'неизвестный муниципалитет: "4"'}


def test_internal_id_columns_are_not_taken_for_units(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Центральный", None)])
    f = tmp_path / "a.csv"
    f.write_text("source_id,received_at,municipality_id,channel\na,01.10.2025,1,pos\n", encoding="utf-8")
    con = connect(db)
    try:
        with pytest.raises(Exception, match="нет обязательного столбца: municipality"):
            run_import(con, f, load_mapping(None), now=NOW)
    finally:
        con.close()


def test_organisations_and_categories_are_not_matched_by_id(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Центральный", None)])
    con = connect(db)
    con.execute("INSERT INTO organisation (id, name) VALUES (7, 'УК Первая')")
    con.close()
    do_import(db, "source_id,received_at,municipality,channel,organisation\na,01.10.2025,Центральный,pos,7\n",
              tmp_path)
    # «7» is a new organisation named «7», not organisation id 7
    assert query(db, "SELECT o.name FROM appeal a JOIN organisation o ON o.id = a.organisation_id") == [("7",)]


# --- official spellings, ambiguity, aliases ---------------------------------------------------------


def test_ambiguous_distinctive_part_is_refused_with_the_candidates(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Кировский район", None), (2, "Кировский городской округ", None),
                              (3, "город Георгиевск", None), (4, "Георгиевский", None)])
    r = do_import(db, "\n".join([
        "source_id,received_at,municipality,channel",
        "a,01.10.2025,Кировский р-н,pos",            # the same designation: the district
        "b,01.10.2025,Кировский ГО,pos",             # the okrug
        "c,01.10.2025,Кировский,pos",                # which one? refused, not guessed
        "d,01.10.2025,Кировский муниципальный округ,pos",  # neither designation fits: refused
        "e,01.10.2025,г. Георгиевск,pos",
        "f,01.10.2025,Георгиевский муниципальный округ,pos",
    ]), tmp_path)
    assert placed(db) == {"a": "Кировский район", "b": "Кировский городской округ", "e": "город Георгиевск",
                          "f": "Георгиевский"}
    ambiguous = 'неоднозначный муниципалитет: "{}" (подходят: Кировский городской округ; Кировский район)'
    assert reasons(db, r.import_id) == {4: ambiguous.format("Кировский"),
                                        5: ambiguous.format("Кировский муниципальный округ")}


def test_index_official_forms() -> None:
    index = MunicipalityIndex([(1, "Кисловодск", None, None), (2, "Будённовский ", None, None),
                               (3, "Ставрополь", "07701000", None), (4, "Холм-Жирковский", None, None)])
    for text, mid in [("город-курорт Кисловодск", 1), ("ГОРОД–КУРОРТ «КИСЛОВОДСК»", 1), ("г.Кисловодск", 1),
                      ("Буденновский муниципальный округ", 2), ("Будённовский р-н", 2), ("буденновский район", 2),
                      ("г. Ставрополь", 3), ("07701000", 3), ("7701000", 3), ("Холм — Жирковский район", 4)]:
        assert index.match(text).id == mid, text
    assert index.match("3").id is None and index.match("Пятигорск").id is None


def test_aliases_from_csv_every_bad_row_with_a_reason(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Кисловодск", "07715000"), (2, "Ессентуки", None), (3, "Предгорный", None)])
    f = tmp_path / "aliases.csv"
    f.write_bytes("\n".join([
        "муниципалитет;псевдоним",
        "07715000;Курортная столица",      # 2: by code → accepted
        "Ессентуки;Ессентуки-курорт",      # 3: accepted
        "Ессентуки;Курортная столица",     # 4: already Кисловодск's (row 2) → refused
        "Пятигорск;Пятигорье",             # 5: no such unit
        "Предгорный;",                     # 6: no alias
        "Предгорный;Ессентуки",            # 7: the name of another unit
        ";Что-то",                         # 8: no unit
        "Кисловодск;Курортная столица",    # 9: the same alias again: unchanged
    ]).encode("cp1251"))
    r = cli("data", "aliases", str(f), "--db", str(db))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["read"], out["accepted"], out["inserted"], out["unchanged"], out["rejected"]) == (8, 3, 2, 1, 5)
    assert {row["line"]: row["reason"] for row in out["rejected_rows"]} == {
        4: 'псевдоним "Курортная столица" уже означает другой муниципалитет: Кисловодск',
        5: 'неизвестный муниципалитет: "Пятигорск"',
        6: "не указан псевдоним",
        7: 'псевдоним "Ессентуки" уже означает другой муниципалитет: Ессентуки',
        8: "не указан муниципалитет",
    }
    assert sorted(query(db, "SELECT municipality_id, alias FROM municipality_alias")) == [
        (1, "Курортная столица"), (2, "Ессентуки-курорт")]
    do_import(db, "source_id,received_at,municipality,channel\n"
                  "a,01.10.2025,курортная столица,pos\nb,01.10.2025,Ессентуки - курорт,pos\n", tmp_path)
    assert placed(db) == {"a": "Кисловодск", "b": "Ессентуки"}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,other\nx,y\n", encoding="utf-8")
    r = cli("data", "aliases", str(bad), "--db", str(db))
    assert r.returncode == 2 and r.stderr.startswith("ошибка: нужны столбцы municipality")


def test_alias_module_refuses_an_alias_that_would_make_units_ambiguous(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Кировский район", None), (2, "город Кировск", None)])
    f = tmp_path / "a.csv"
    f.write_text("municipality,alias\nгород Кировск,Кировский\n", encoding="utf-8")
    con = connect(db)
    try:
        result = import_aliases(con, f)
    finally:
        con.close()
    assert result.rejects == [(2, 'псевдоним "Кировский" уже означает другой муниципалитет: Кировский район')]


# --- the mapping: municipality values, empty values, organisation kinds ------------------------------


def test_values_municipality_maps_to_names_and_codes_and_empty(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Кисловодск", "07715000"), (2, "Ессентуки", None)])
    mapping = """
[values.municipality]
"КСЛ" = "город-курорт Кисловодск"
"ЕСС" = "Ессентуки"
"99" = "07715000"
"не определён" = ""
"""
    r = do_import(db, "\n".join([
        "source_id,received_at,municipality,channel",
        "a,01.10.2025,КСЛ,pos", "b,01.10.2025,есс,pos", "c,01.10.2025,99,pos", "d,01.10.2025,Не определён,pos",
    ]), tmp_path, mapping)
    assert placed(db) == {"a": "Кисловодск", "b": "Ессентуки", "c": "Кисловодск"}
    assert reasons(db, r.import_id) == {
        5: 'не указан муниципалитет (значение "Не определён" в соответствии сопоставлено пустому)'}
    bad = tmp_path / "bad.toml"
    bad.write_text('[values.municipality]\n"X" = "Пятигорск"\n', encoding="utf-8")
    f = tmp_path / "a.csv"
    con = connect(db)
    try:
        with pytest.raises(MappingError, match="«X» = «Пятигорск»: такого муниципалитета нет"):
            run_import(con, f, load_mapping(bad), now=NOW)
    finally:
        con.close()


def test_any_mapped_value_may_be_empty(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Центральный", None)])
    mapping = """
[values.lat]
"39" = ""
[values.lon]
"-77" = ""
[values.closure_reason]
"SR Created" = ""
"Закрыто (дубль)" = "duplicate"
[values.status]
"Черновик" = ""
[values.topic]
"-" = ""
[values.organisation]
"BOS" = "Bureau of Sanitation"
"""
    r = do_import(db, "\n".join([
        "source_id,received_at,municipality,channel,lat,lon,status,closure_reason,topic,organisation,answered_at",
        "a,01.10.2025 10:00,Центральный,pos,39,-77,new,SR Created,-,BOS,",             # placeholder point
        "b,01.10.2025 10:00,Центральный,pos,39,-76,Черновик,,Яма,,",                    # half a point: none
        "c,01.10.2025 10:00,Центральный,pos,54.1,32.2,answered,Закрыто (дубль),,,02.10.2025",
        "d,01.10.2025 10:00,Центральный,pos,39,-77,new,Непонятно,-,,",                  # unmapped: refused
    ]), tmp_path, mapping)
    assert (r.accepted, r.rejected) == (3, 1)
    assert query(db, """SELECT a.source_id, lat, lon, status, closure_reason, topic, o.name FROM appeal a
                        LEFT JOIN organisation o ON o.id = a.organisation_id ORDER BY 1""") == [
        ("a", None, None, "new", None, None, "Bureau of Sanitation"),
        ("b", None, None, "new", None, "Яма", None),
        ("c", 54.1, 32.2, "answered", "duplicate", None, None),
    ]
    # the rejected row keeps the file's own text, not the recoded one
    raw, reason = query(db, "SELECT raw, reason FROM rejected_row")[0]
    assert reason == 'неизвестная причина закрытия: "Непонятно"'
    assert (json.loads(raw)["lat"], json.loads(raw)["topic"]) == ("39", "-")


def test_unknown_values_field_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[values.mood]\n"x" = "y"\n', encoding="utf-8")
    with pytest.raises(MappingError, match=r"\[values.mood\]: нет такого поля"):
        load_mapping(bad)


def test_organisation_kinds_from_a_column_and_from_the_mapping(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Центральный", None)])
    con = connect(db)
    con.execute("INSERT INTO organisation (id, name, kind) VALUES (1, 'МУП Водоканал', NULL), (2, 'Школа', 'ОМСУ')")
    con.close()
    mapping = """
[columns]
organisation_kind = "Вид"
[organisation_kind]
"Школа" = "учреждение"
"""
    r = do_import(db, "\n".join([
        "source_id,received_at,municipality,channel,organisation,Вид",
        "a,01.10.2025,Центральный,pos,МУП Водоканал,ресурсоснабжающая организация",
        "b,01.10.2025,Центральный,pos,мУП водоканал,ресурсоснабжающая организация",
        "c,01.10.2025,Центральный,pos,МУП Водоканал,управляющая организация",   # the minority
        "d,01.10.2025,Центральный,pos,Школа,ОМСУ",                                # the mapping wins
        "e,01.10.2025,Центральный,pos,Перевозчик-1,перевозчик",                   # a new one
    ]), tmp_path, mapping)
    assert r.organisation_kinds == 3
    assert query(db, "SELECT name, kind FROM organisation ORDER BY id") == [
        ("МУП Водоканал", "ресурсоснабжающая организация"), ("Школа", "учреждение"), ("Перевозчик-1", "перевозчик")]


# --- fewer than half accepted: a warning, exit 0 -----------------------------------------------------


def test_less_than_half_accepted_warns_and_exits_0(tmp_path: Path) -> None:
    db = warehouse(tmp_path, [(1, "Центральный", None)])
    f = tmp_path / "a.csv"
    f.write_text("\n".join(["source_id,received_at,municipality,channel",
                            "a,01.10.2025,Центральный,pos", "b,01.10.2025,Северный,pos",
                            "c,01.10.2025,Южный,pos", "d,01.10.2025,Западный,pos"]), encoding="utf-8")
    r = cli("data", "import", str(f), "--db", str(db))
    assert r.returncode == 0
    assert json.loads(r.stdout)["accepted"] == 1
    assert r.stderr.strip() == ("внимание: принято меньше половины строк — 1 из 4; чаще всего: неизвестный "
                                "муниципалитет (3); все причины: python -m data rejected --import-id 1")
    half = tmp_path / "b.csv"
    half.write_text("source_id,received_at,municipality,channel\ne,01.10.2025,Центральный,pos\n"
                    "f,01.10.2025,Южный,pos\n", encoding="utf-8")
    r = cli("data", "import", str(half), "--db", str(db))
    assert r.returncode == 0 and r.stderr == ""


def test_warning_text_only_below_half() -> None:
    from data.importer import ImportResult

    assert low_acceptance_warning(ImportResult(import_id=1, read=0)) is None
    assert low_acceptance_warning(ImportResult(import_id=1, read=10, accepted=5, rejected=5)) is None
    assert low_acceptance_warning(ImportResult(import_id=1, read=10, accepted=4, rejected=6)) is not None


# --- real exports ------------------------------------------------------------------------------------


@needs(LA / "myla311_2018-01_10k.csv")
def test_la_council_districts_hold_exactly_the_rows_the_file_gives_them(tmp_path: Path) -> None:
    db = tmp_path / "la.duckdb"
    geo = cli("geo", "import", str(LA / "la_city_council_districts_2012.geojson"), "--no-reference", "--db", str(db))
    assert geo.returncode == 0, geo.stderr
    csv = LA / "myla311_2018-01_10k.csv"
    r = cli("data", "import", str(csv), "--mapping", str(PROJECT / "config/examples/la311.toml"), "--db", str(db))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["read"] == out["accepted"] + out["rejected"] == 10_000

    # independently: pandas reads the file, drops rows without a district and rows closed before
    # they were created (the importer's own rule), and counts per district
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    fmt = "%m/%d/%Y %I:%M:%S %p"
    created, closed = pd.to_datetime(df["CreatedDate"], format=fmt), pd.to_datetime(df["ClosedDate"], format=fmt)
    has_district = df["CD"].str.strip() != ""
    valid = has_district & ~(closed < created)
    expected = df[valid]["CD"].value_counts().to_dict()
    got = dict(query(db, """SELECT m.name, count(*) FROM appeal a JOIN municipality m ON m.id = a.municipality_id
                            GROUP BY 1"""))
    assert got == expected
    assert len(expected) == 15 and sum(expected.values()) == out["accepted"]
    assert dict(query(db, "SELECT reason, count(*) FROM rejected_row GROUP BY 1")) == {
        "не указан муниципалитет": int((~has_district).sum()),
        "дата ответа раньше даты поступления": int((has_district & (closed < created)).sum()),
    }
    # the agencies have kinds, so the rating has peer groups
    assert dict(query(db, "SELECT name, kind FROM organisation"))["Department of Water and Power"] == \
        "ресурсоснабжающая организация"


OSM_STAVROPOL_SPELLINGS = {
    # OSM name (stripped) → how an official export spells it
    "Кисловодск": "город-курорт Кисловодск",
    "Ессентуки": "город-курорт Ессентуки",
    "Железноводск": "город-курорт Железноводск",
    "Пятигорск": "город-курорт Пятигорск",
    "Ставрополь": "г. Ставрополь",
    "Невинномысск": "город Невинномысск",
    "Лермонтов": "г. Лермонтов",
    "Георгиевск": "город Георгиевск",
}


def stavropol_spelling(osm_name: str, i: int) -> str:
    if osm_name in OSM_STAVROPOL_SPELLINGS:
        return OSM_STAVROPOL_SPELLINGS[osm_name]
    forms = ("{} муниципальный округ", "{} район", "{} р-н", "{} МУНИЦИПАЛЬНЫЙ ОКРУГ", "«{} муниципальный округ»")
    name = osm_name.replace("ё", "е") if i % 2 else osm_name
    return forms[i % len(forms)].format(name)


@needs(STAVROPOL)
def test_stavropol_warehouse_and_a_cp1251_export_lose_no_row_to_spelling(tmp_path: Path) -> None:
    db = tmp_path / "st.duckdb"
    geo = cli("geo", "import", str(STAVROPOL), "--no-reference", "--db", str(db))
    assert geo.returncode == 0, geo.stderr
    units = [name for (name,) in query(db, "SELECT name FROM municipality")]
    osm = json.loads(STAVROPOL.read_text(encoding="utf-8"))
    assert len(units) == 34 and sorted(u.strip() for u in units) == sorted(
        f["properties"]["district"].strip() for f in osm["features"])

    names = sorted(u.strip() for u in units)
    rows, expected = [], {}
    for i in range(340):
        unit = names[(i * 7) % len(names)]
        expected[unit] = expected.get(unit, 0) + 1
        rows.append(f"СТ-{i:05d};{1 + i % 28:02d}.10.2025 {8 + i % 10:02d}:15;{stavropol_spelling(unit, i)};"
                    f"ПОС;Отопление")
    f = tmp_path / "export.csv"
    f.write_bytes("\r\n".join(["Номер;Дата поступления;Муниципалитет;Канал;Рубрика", *rows]).encode("cp1251"))
    mapping = tmp_path / "map.toml"
    mapping.write_text('[source]\nname = "pos-stavropol"\n[columns]\nsource_id = "Номер"\n'
                       'received_at = "Дата поступления"\nmunicipality = "Муниципалитет"\nchannel = "Канал"\n'
                       'category = "Рубрика"\n', encoding="utf-8")
    r = cli("data", "import", str(f), "--mapping", str(mapping), "--db", str(db))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["read"], out["accepted"], out["rejected"]) == (340, 340, 0)
    got = dict(query(db, """SELECT trim(m.name), count(*) FROM appeal a JOIN municipality m
                            ON m.id = a.municipality_id GROUP BY 1"""))
    assert got == expected
    assert query(db, "SELECT count(*) FROM municipality")[0][0] == 34


BALTIMORE = REALDATA / "baltimore-311"


@needs(BALTIMORE / "baltimore311_sample_2014-2019_10k.csv")
def test_baltimore_placeholder_points_are_empty_and_neighbourhoods_hold_their_rows(tmp_path: Path) -> None:
    db = tmp_path / "b.duckdb"
    geo = cli("geo", "import", str(BALTIMORE / "baltimore_neighborhoods_2013.geojson"), "--no-reference",
              "--db", str(db))
    assert geo.returncode == 0, geo.stderr
    csv = BALTIMORE / "baltimore311_sample_2014-2019_10k.csv"
    r = cli("data", "import", str(csv), "--mapping", str(PROJECT / "config/examples/baltimore311.toml"),
            "--db", str(db))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)

    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    placed_rows = df[df["Neighborhood"].str.strip() != ""]
    assert (out["read"], out["accepted"], out["rejected"]) == (10_000, len(placed_rows), 10_000 - len(placed_rows))
    got = dict(query(db, """SELECT lower(m.name), count(*) FROM appeal a JOIN municipality m
                            ON m.id = a.municipality_id GROUP BY 1"""))
    assert got == placed_rows["Neighborhood"].str.strip().str.lower().value_counts().to_dict()
    # the placeholder 39 / -77 (either half) and half-empty points are stored as no point at all
    no_point = ((placed_rows["Latitude"] == "") | (placed_rows["Longitude"] == "")
                | (placed_rows["Latitude"] == "39") | (placed_rows["Longitude"] == "-77"))
    assert query(db, "SELECT count(*) FILTER (WHERE lat IS NULL), count(*) FILTER (WHERE lon IS NULL), "
                     "count(*) FILTER (WHERE lat = 39 OR lon = -77) FROM appeal")[0] == (
        int(no_point.sum()), int(no_point.sum()), 0)
    # open requests keep their rows: their status text is no closure reason, it becomes empty
    statuses = placed_rows["SRStatus"]
    assert dict(query(db, "SELECT closure_reason, count(*) FROM appeal WHERE closure_reason IS NOT NULL "
                          "GROUP BY 1")) == {"duplicate": int((statuses == "Closed (Duplicate)").sum()),
                                             "redirected": int((statuses == "Closed (Transferred)").sum())}
    assert query(db, "SELECT count(*) FROM organisation WHERE kind IS NULL")[0][0] == 0
