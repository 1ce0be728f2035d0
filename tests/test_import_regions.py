"""Units named within a region: a warehouse of several regions may hold one name twice.

A 3-region demo (Смоленская, Тверская, Ярославская) plus two «Ленинский район» (Смоленская and
Тверская) and one «Кировский район» (Ярославская), added here by SQL with their ids chosen by hand.
A file names a unit by code anywhere, by a unique name anywhere, or by name within a region given by
``--region``, a region column, or a qualifier in the name; an ambiguous name without a region is
refused with the candidate regions. Every expected id below is written out by hand.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data.demo import build_demo
from data.importer import ImportFailed, run_import
from data.mapping import load_mapping
from data.names import MunicipalityIndex
from data.roadmap import import_roadmap
from data.targets import import_targets
from data.warehouse import connect
from tests.test_import import query

PROJECT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2025, 11, 20, 12, 0)
SMO, TVE, YAR = 1, 2, 3  # region ids of the demo: the home region first, then the shipped list's order
LENINSKY_SMO, LENINSKY_TVE, KIROVSKY_YAR = 901, 902, 903
HEADER = "source_id,received_at,channel,municipality"


@pytest.fixture(scope="module")
def demo3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("regions") / "demo3.duckdb"
    build_demo(db, appeals=2000, months=2, seed=7, end_month="2025-10", regions=3)
    return db


def fresh(demo3: Path, tmp_path: Path, duplicates: bool = True) -> Path:
    db = tmp_path / "w.duckdb"
    shutil.copy(demo3, db)
    if duplicates:
        con = connect(db)
        con.executemany(
            "INSERT INTO municipality (id, name, oktmo, region_id) VALUES (?, ?, ?, ?)",
            [(LENINSKY_SMO, "Ленинский район", "66999000", SMO), (LENINSKY_TVE, "Ленинский район", "28999000", TVE),
             (KIROVSKY_YAR, "Кировский район", None, YAR)])
        con.close()
    return db


def unit(db: Path, name: str) -> int:
    """The id of the unit stored under exactly this name (the demo's numbered okrugs)."""
    return query(db, "SELECT id FROM municipality WHERE name = ?", [name])[0][0]


def do_import(db: Path, tmp_path: Path, lines: list[str], header: str = HEADER, mapping: str | None = None,
              region: str | None = None):
    f = tmp_path / "a.csv"
    f.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    m = None
    if mapping is not None:
        m = tmp_path / "map.toml"
        m.write_text(mapping, encoding="utf-8")
    con = connect(db)
    try:
        result = run_import(con, f, load_mapping(m), source="t", now=NOW, region=region)
    finally:
        con.close()
    assert result.read == result.accepted + result.rejected
    return result


def placed(db: Path) -> dict[str, int]:
    return dict(query(db, "SELECT source_id, municipality_id FROM appeal WHERE source = 't'"))


def reasons(db: Path, import_id: int) -> dict[int, str]:
    """line of the file (the header is line 1) → reason"""
    return dict(query(db, "SELECT row_number, reason FROM rejected_row WHERE import_id = ?", [import_id]))


def test_region_column_qualifiers_codes_and_unique_names(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path)
    r = do_import(db, tmp_path, [
        "a,01.10.2025 10:00,pos,Велижский,",                             # unique (Смоленская)
        "b,01.10.2025 10:00,pos,Кировский район,",                       # unique (Ярославская)
        "c,01.10.2025 10:00,pos,Ленинский район,Тверская обл.",          # region column, short form
        "d,01.10.2025 10:00,pos,Ленинский район,RU-SMO",                 # ISO code
        "e,01.10.2025 10:00,pos,Ленинский район,66",                     # ОКАТО of the region
        "f,01.10.2025 10:00,pos,Ленинский район (Тверская обл.),",       # qualifier in parentheses
        "g,01.10.2025 10:00,pos,\"Ленинский район, Смоленская область\",",  # qualifier after a comma
        "h,01.10.2025 10:00,pos,Ленинский район,",                       # no region: refused
        "i,01.10.2025 10:00,pos,28999000,",                              # a code: anywhere
        "j,01.10.2025 10:00,pos,Ленинский район,Ярославская область",    # none there: refused
        "k,01.10.2025 10:00,pos,Ленинский район,Марс",                   # no such region: refused
        "l,01.10.2025 10:00,pos,МО № 17 (Тверская обл.),",               # the demo's own spelling
        "m,01.10.2025 10:00,pos,МО № 17,Ярославская обл.",
        "n,01.10.2025 10:00,pos,МО № 17,",                               # in Тверская and Ярославская
        "o,01.10.2025 10:00,pos,Ленинский район Тверской области,",      # genitive tail
    ], header=HEADER + ",Регион", mapping='[columns]\nregion = "Регион"\n')
    assert (r.read, r.accepted, r.rejected) == (15, 11, 4)
    assert placed(db) == {
        "a": 3, "b": KIROVSKY_YAR, "c": LENINSKY_TVE, "d": LENINSKY_SMO, "e": LENINSKY_SMO, "f": LENINSKY_TVE,
        "g": LENINSKY_SMO, "i": LENINSKY_TVE, "l": unit(db, "МО № 17 (Тверская обл.)"),
        "m": unit(db, "МО № 17 (Ярославская обл.)"), "o": LENINSKY_TVE,
    }
    assert unit(db, "Велижский") == 3
    assert reasons(db, r.import_id) == {
        9: "муниципалитет «Ленинский район» есть в регионах: Смоленская область, Тверская область; укажите регион",
        11: "муниципалитет «Ленинский район» есть в регионах: Смоленская область, Тверская область, "
            "но не в регионе «Ярославская область»",
        12: 'неизвестный регион: "Марс"',
        15: "муниципалитет «МО № 17» есть в регионах: Тверская область, Ярославская область; укажите регион",
    }
    # a rejected row keeps its region text with the other mapped fields
    raw = query(db, "SELECT raw FROM rejected_row WHERE import_id = ? AND row_number = 11", [r.import_id])[0][0]
    assert "Ярославская область" in raw


def test_region_option_restricts_the_whole_file(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path)
    r = do_import(db, tmp_path, [
        "a,01.10.2025 10:00,pos,Ленинский район,",
        "b,01.10.2025 10:00,pos,МО № 05,",
        "c,01.10.2025 10:00,pos,город Тверь,",
        "d,01.10.2025 10:00,pos,Велижский,",                          # only in Смоленская: refused
        "e,01.10.2025 10:00,pos,Ленинский район (Смоленская обл.),",  # the name says another region
        "f,01.10.2025 10:00,pos,66999000,",                           # a code of another region
        "g,01.10.2025 10:00,pos,28999000,",
        "h,01.10.2025 10:00,pos,Ленинский район,Смоленская область",  # the column says another region
        "i,01.10.2025 10:00,pos,Ленинский район,Тверская область",
    ], header=HEADER + ",region", region="Тверская область")
    assert (r.read, r.accepted, r.rejected) == (9, 5, 4)
    assert placed(db) == {"a": LENINSKY_TVE, "b": unit(db, "МО № 05 (Тверская обл.)"), "c": 28,
                          "g": LENINSKY_TVE, "i": LENINSKY_TVE}
    assert unit(db, "город Тверь") == 28
    outside = "есть в регионах: Смоленская область, но не в регионе «Тверская область»"
    assert reasons(db, r.import_id) == {
        5: f"муниципалитет «Велижский» {outside}",
        6: f"муниципалитет «Ленинский район (Смоленская обл.)» {outside}",
        7: f"муниципалитет «66999000» {outside}",
        9: 'регион "Смоленская область" не тот, что указан для файла («Тверская область»)',
    }


def test_unknown_region_option_is_refused_in_russian(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path)
    with pytest.raises(ImportFailed, match="неизвестный регион: «Марс»; в хранилище: Смоленская область, "
                                           "Тверская область, Ярославская область"):
        do_import(db, tmp_path, ["a,01.10.2025 10:00,pos,Ленинский район"], region="Марс")
    assert query(db, "SELECT count(*) FROM appeal WHERE source = 't'") == [(0,)]


def test_every_demo_unit_name_imports_without_rejections(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path, duplicates=False)
    units = query(db, "SELECT id, name FROM municipality ORDER BY id")
    assert len(units) == 81 and sum("(Тверская обл.)" in n for _, n in units) == 26
    lines = [f'u{mid},01.10.2025 10:00,pos,"{name}"' for mid, name in units]
    r = do_import(db, tmp_path, lines)
    assert (r.read, r.accepted, r.rejected) == (81, 81, 0)
    assert placed(db) == {f"u{mid}": mid for mid, _ in units}


def test_cli_region_option(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path)
    f = tmp_path / "b.csv"
    f.write_text(HEADER + "\na,01.10.2025 10:00,pos,Ленинский район\n", encoding="utf-8")
    env = {**os.environ, "CUR_IMPORT_NICE": "0"}
    run = [sys.executable, "-m", "data", "import", str(f), "--db", str(db), "--source", "t"]
    ok = subprocess.run([*run, "--region", "RU-TVE"], cwd=PROJECT, capture_output=True, text=True, env=env,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert placed(db) == {"a": LENINSKY_TVE}
    bad = subprocess.run([*run, "--region", "Марс"], cwd=PROJECT, capture_output=True, text=True, env=env,
                         timeout=300)
    assert bad.returncode != 0 and "неизвестный регион: «Марс»" in bad.stderr and "Traceback" not in bad.stderr


def test_targets_file_names_units_within_a_region(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path)
    f = tmp_path / "t.csv"
    f.write_text("indicator,municipality,period,value\n"
                 "volume,Ленинский район,2025-10,10\n"
                 "volume,Ленинский район (Смоленская обл.),2025-10,20\n", encoding="utf-8")
    con = connect(db)
    try:
        result = import_targets(con, f)
        assert (result.read, result.accepted, result.rejected) == (2, 1, 1)
        assert "есть в регионах: Смоленская область, Тверская область; укажите регион" in \
            result.rejected_rows[0]["reason"]
        result = import_targets(con, f, region="Тверская область")
        assert (result.read, result.accepted, result.rejected) == (2, 1, 1)
        got = con.execute("SELECT municipality_id, value FROM target WHERE indicator = 'volume' "
                          "ORDER BY value").fetchall()
    finally:
        con.close()
    assert got == [(LENINSKY_TVE, 10.0), (LENINSKY_SMO, 20.0)]


def test_roadmap_file_names_units_within_a_region(demo3: Path, tmp_path: Path) -> None:
    db = fresh(demo3, tmp_path)
    f = tmp_path / "r.csv"
    f.write_text("title,municipality,sector,organisation,start_date\n"
                 "Мера-тест,Ленинский район,roads,ГБУ Дороги,2025-09-01\n"
                 "Мера-тест 2,\"Ленинский район, Смоленская область\",roads,ГБУ Дороги,2025-09-01\n",
                 encoding="utf-8")
    con = connect(db)
    try:
        first = import_roadmap(con, f)
        assert (first.read, first.accepted, first.rejected) == (2, 1, 1)
        assert "укажите регион" in first.rejected_rows[0]["reason"]
        second = import_roadmap(con, f, region="RU-TVE")
        assert (second.read, second.accepted, second.rejected) == (2, 1, 1)
        got = con.execute("SELECT title, municipality_id FROM roadmap_item WHERE title LIKE 'Мера-тест%' ORDER BY title").fetchall()
    finally:
        con.close()
    assert got == [("Мера-тест", LENINSKY_TVE), ("Мера-тест 2", LENINSKY_SMO)]


def test_one_region_index_needs_no_region() -> None:
    # units without a region (a warehouse from before the region level): names match as before
    index = MunicipalityIndex([(1, "Ленинский район", None, None), (2, "город Киров", None, None)])
    assert index.match("Ленинский р-н").id == 1
    assert index.match("Киров").id == 2
    # no region list: the region part is dropped, as it always was
    assert index.match("Ленинский район (Тверская обл.)").id == 1
