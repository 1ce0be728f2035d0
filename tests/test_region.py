"""Region settings (issue 15): a warehouse of any region names it everywhere and keeps its clock.

A New York warehouse (``init --region … --timezone America/New_York --calendar US``) is built
through the command line from three square boroughs and an export whose times are in UTC: the
header, the wall, the status page and every slide of the pack name it, and every displayed time is
New York's. Targets load from a file with each kind of bad row rejected for its reason;
``auth add-user`` checks a municipality against the warehouse. A Stavropol warehouse from the real
OpenStreetMap file holds its 34 units and no other (skipped without ``../shared/realdata``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from metrics import source

PROJECT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("CUR_REALDATA") or Path(__file__).resolve().parents[2] / "shared" / "realdata")
STAVROPOL = REALDATA / "osm-boundaries" / "stavropol_krai_municipal.geojson"
NY = "Нью-Йорк"
BOROUGHS = ("Manhattan", "Brooklyn", "Queens")
PER_DAY = 4  # appeals per borough per day in October 2025


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT, capture_output=True, text=True,
                          input=stdin, check=False, env={**os.environ, "CUR_IMPORT_NICE": "0"})


def _boroughs(path: Path) -> Path:
    features = []
    for i, name in enumerate(BOROUGHS):
        x, y = -74.0 + 0.1 * i, 40.7
        ring = [[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]
        features.append({"type": "Feature", "properties": {"name": name},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def _export(path: Path) -> Path:
    """October 2025 in UTC («Z»); the last receipt is 2025-10-31 22:30 UTC = 18:30 in New York (EDT)."""
    rows = ["source_id,received_at,municipality,channel,sector,category"]
    n = 0
    for day in range(1, 32):
        for borough in BOROUGHS:
            for hour in range(PER_DAY):
                n += 1
                rows.append(f"N{n},2025-10-{day:02d}T{10 + hour:02d}:15:00Z,{borough},hotline,roads,Ямы на дорогах")
    rows.append("LAST,2025-10-31T22:30:00Z,Queens,pos,roads,Ямы на дорогах")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ny_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ny")
    db = folder / "ny.duckdb"
    init = cli("data", "init", "--region", NY, "--timezone", "America/New_York", "--calendar", "US", "--db", str(db))
    assert init.returncode == 0, init.stderr
    geo = cli("geo", "import", str(_boroughs(folder / "boroughs.geojson")), "--db", str(db))
    assert geo.returncode == 0, geo.stderr
    imported = cli("data", "import", str(_export(folder / "export.csv")), "--db", str(db))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["rejected"] == 0
    return db


@pytest.fixture(scope="module")
def pages_app(tmp_path_factory):
    """Dash registers the pages only once an app exists."""
    import app as app_module

    app_module.create_app(tmp_path_factory.mktemp("app") / "absent.duckdb")


@pytest.fixture
def warehouse_at():
    before = source._configured
    yield source.configure
    source.configure(before)


# --- init and region ----------------------------------------------------------------------------------------


def test_init_makes_a_warehouse_of_the_region_without_any_other_regions_units(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    made = cli("data", "init", "--region", "Ярославская область", "--db", str(db))
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert report["municipality"] == 0 and report["sector"] == 9 and report["channel"] == 7
    assert (report["region"], report["timezone"], report["calendar"]) == ("Ярославская область", "Europe/Moscow", "RU")
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM municipality").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM category").fetchall()[0][0] > 0
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    assert meta["region_name"] == "Ярославская область"
    # changed later; shown without arguments
    assert cli("data", "region", "--name", "Ярославская обл.", "--calendar", "none", "--db", str(db)).returncode == 0
    shown = json.loads(cli("data", "region", "--db", str(db)).stdout)
    assert (shown["region"], shown["calendar"]) == ("Ярославская обл.", "none")


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--timezone", "Europe/Smolensk", "неизвестный часовой пояс"),
    ("--calendar", "XX", "неизвестный календарь"),
])
def test_init_refuses_an_unknown_zone_or_calendar_and_makes_no_file(tmp_path: Path, flag, value, message) -> None:
    db = tmp_path / "w.duckdb"
    result = cli("data", "init", "--region", "X", flag, value, "--db", str(db))
    assert result.returncode == 2 and result.stderr.startswith("ошибка: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not db.exists()


# --- the New York warehouse: names and times ----------------------------------------------------------------


def test_ny_header_wall_and_status_name_the_region_in_its_own_time(ny_db, pages_app, warehouse_at) -> None:
    from metrics import catalog
    from metrics.scope import REGION
    from metrics.status import warehouse_status
    from pages import shell, wall

    warehouse_at(ny_db)
    region = catalog.region()
    assert (region.name, region.timezone, region.calendar) == (NY, "America/New_York", "US")
    # 22:30 UTC is 18:30 in New York; Moscow time would be 01.11.2025 01:30
    assert shell.navbar_status(None) == f"{NY} · данные на 31.10.2025 18:30"
    name, stamp, *_ = wall.render_all(REGION)
    assert name == NY and stamp == "данные на 31.10.2025 18:30"
    status = warehouse_status()
    assert status.region_name == NY and status.data_as_of == dt.datetime(2025, 10, 31, 18, 30)
    assert status.municipalities == 3
    # the import log is written in the region's clock too: within a minute of New York's now
    con = duckdb.connect(str(ny_db), read_only=True)
    try:
        started = con.execute("SELECT started_at FROM import_log").fetchall()[0][0]
    finally:
        con.close()
    assert abs((region.now() - started).total_seconds()) < 3600


def test_ny_times_are_stored_as_new_york_wall_clock(ny_db) -> None:
    con = duckdb.connect(str(ny_db), read_only=True)
    try:
        first = con.execute("SELECT received_at FROM appeal WHERE source_id = 'N1'").fetchall()[0][0]
        last = con.execute("SELECT received_at, due_at FROM appeal WHERE source_id = 'LAST'").fetchall()[0]
        months = con.execute("SELECT DISTINCT month FROM appeal_monthly").fetchall()
    finally:
        con.close()
    assert first == dt.datetime(2025, 10, 1, 6, 15)  # 10:15 UTC, EDT = UTC−4
    assert last[0] == dt.datetime(2025, 10, 31, 18, 30)
    # in Moscow the last receipt would fall into November: month boundaries are New York's
    assert months == [(dt.date(2025, 10, 1),)]
    # ПОС: 8 working days by the US calendar — Veterans Day (11 November) is a day off there:
    # 3, 4, 5, 6, 7, 10, 12, 13 November
    assert last[1] == dt.datetime(2025, 11, 13, 23, 59, 59)


def test_working_day_calendars_differ_by_region() -> None:
    import numpy as np

    from data import workcalendar

    start = np.array([np.datetime64("2025-10-31T18:30:00")])
    # RU 2025: 3 and 4 November are days off (the 1 November Saturday moved to the 3rd)
    assert str(workcalendar.deadline(start, "working_days", 8, "RU")[0]) == "2025-11-13T23:59:59"
    # weekends only: 3…7, 10, 11, 12
    assert str(workcalendar.deadline(start, "working_days", 8, "none")[0]) == "2025-11-12T23:59:59"
    assert str(workcalendar.deadline(start, "working_days", 8, "US")[0]) == "2025-11-13T23:59:59"
    # Thanksgiving: 27 November 2025 is a working day in Russia, a day off in the US
    day = np.array([np.datetime64("2025-11-27")])
    assert workcalendar.is_working_day(day, "RU")[0] and not workcalendar.is_working_day(day, "US")[0]


def test_ny_pack_names_the_region_on_every_slide(ny_db, warehouse_at) -> None:
    from pptx import Presentation

    from report import pack

    warehouse_at(ny_db)
    data, _ = pack.make("pptx", "2025-10")
    slides = list(Presentation(io.BytesIO(data)).slides)
    texts = [" ".join(s.text_frame.text for s in slide.shapes if s.has_text_frame) for slide in slides]
    assert len(texts) > 3
    assert all(NY in t for t in texts), [t[:80] for t in texts if NY not in t]
    assert not any("Смолен" in t for t in texts)
    assert "Данные на 31.10.2025 18:30" in texts[0]
    # no population: the map is the volume, and no slide calls a population an estimate
    assert any("Количество обращений по муниципалитетам" in t for t in texts)
    assert not any("оценка)" in t or "На 10 тыс." in t for t in texts)


def test_ny_brief_names_the_region(ny_db) -> None:
    from report.brief import build_brief

    con = duckdb.connect(str(ny_db), read_only=True)
    try:
        brief = build_brief("2025-10", con=con)
    finally:
        con.close()
    assert brief.subtitle.startswith(f"{NY}. ") and "31.10.2025 18:30" in brief.subtitle


def test_without_population_the_map_opens_on_volume_and_says_why(ny_db, pages_app, warehouse_at) -> None:
    from metrics import catalog
    from pages import heatmap

    warehouse_at(ny_db)
    assert not catalog.population_known()
    assert heatmap.DEFAULT_INDICATOR == "rate_10k"
    page = str(heatmap.layout())
    assert "'value': 'volume'" in page.split("heatmap-indicator")[1][:2000]
    fig_map, _, note = heatmap.update("2025-10", "all", "all", "rate_10k")
    hover = fig_map["data"][1]["text"]
    assert len(hover) == 3 and all("нет данных о населении" in h for h in hover)
    assert "Нет данных о населении" in note and "приблизительная оценка" not in note
    fig_map, _, note = heatmap.update("2025-10", "all", "all", "volume")
    assert all("нет данных о населении" in h for h in fig_map["data"][1]["text"])
    assert "приблизительная оценка" not in note


def test_estimated_population_is_noted_only_when_the_data_say_so(small_demo, pages_app, warehouse_at) -> None:
    from pages import heatmap

    warehouse_at(small_demo)  # the demo's population is an estimate (population_is_approx)
    _, _, note = heatmap.update("2025-10", "all", "all", "rate_10k")
    assert "Население — приблизительная оценка." in note


@pytest.mark.parametrize("keep", [False, True])
def test_changing_the_time_zone_converts_or_keeps_stored_times(ny_db, tmp_path: Path, keep: bool) -> None:
    db = tmp_path / "moved.duckdb"
    shutil.copy(ny_db, db)
    refused = cli("data", "region", "--timezone", "Europe/Moscow", "--db", str(db))
    assert refused.returncode == 2 and "--convert-times" in refused.stderr and "--keep-times" in refused.stderr
    done = cli("data", "region", "--timezone", "Europe/Moscow", "--keep-times" if keep else "--convert-times",
               "--db", str(db))
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        last = con.execute("SELECT received_at FROM appeal WHERE source_id = 'LAST'").fetchall()[0][0]
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        months = {r[0] for r in con.execute("SELECT DISTINCT month FROM appeal_monthly").fetchall()}
    finally:
        con.close()
    assert meta["region_timezone"] == "Europe/Moscow"
    if keep:
        assert last == dt.datetime(2025, 10, 31, 18, 30) and months == {dt.date(2025, 10, 1)}
    else:  # the same instant in Moscow (UTC+3): the rollups follow it into November
        assert last == dt.datetime(2025, 11, 1, 1, 30) and meta["data_as_of"] == "2025-11-01 01:30:00"
        assert months == {dt.date(2025, 10, 1), dt.date(2025, 11, 1)}


# --- targets --------------------------------------------------------------------------------------------------

TARGETS_CSV = """Показатель;Блок;Категория;Муниципалитет;Период;Значение;Примечание
on_time_share;;;;2025-01;90 %;Не менее 90 % в срок
Доля в срок;Дороги;;Brooklyn;01.10.2025;0,85;
satisfaction_share;roads;Ямы на дорогах;;2025-10;0.6;
resolve_days_median;;;весь регион;2025-10;8;
volume_per_cat;;;;2025-10;5;
on_time_share;космос;;;2025-10;0,9;
on_time_share;roads;Нет такой категории;;2025-10;0,9;
on_time_share;education;Ямы на дорогах;;2025-10;0,9;
on_time_share;;;Смоленск;2025-10;0,9;
on_time_share;;;;октябрь;0,9;
on_time_share;;;;2025-10;95;
on_time_share;;;;2025-10;много;
resolve_days_median;;;;2025-11;-3;
on_time_share;;;;2025-01;0,8;
satisfaction_share;;;;2025-10;;
"""
# line numbers as a person sees them in the file (the header is line 1)
EXPECTED_REJECTIONS = {
    6: "неизвестный показатель: «volume_per_cat»",
    7: "неизвестный блок: «космос»",
    8: "неизвестная категория: «Нет такой категории»",
    9: "категория «Ямы на дорогах» не из блока «education»",
    10: "неизвестный муниципалитет: «Смоленск»",
    11: "неверный период: «октябрь»",
    12: "доля вне 0…1: «95»",
    13: "значение не число: «много»",
    14: "отрицательное значение: «-3»",
    15: "повтор строки 2",
    16: "не указано значение",
}


def _targets(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            """SELECT t.indicator, s.code, c.name, m.name, t.period_start, round(t.value, 6), t.note
               FROM target t LEFT JOIN sector s ON s.id = t.sector_id LEFT JOIN category c ON c.id = t.category_id
               LEFT JOIN municipality m ON m.id = t.municipality_id ORDER BY ALL"""
        ).fetchall()
    finally:
        con.close()


def test_targets_from_a_file_with_every_kind_of_bad_row(ny_db, tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    shutil.copy(ny_db, db)
    path = tmp_path / "targets.csv"
    path.write_text(TARGETS_CSV, encoding="cp1251")
    result = cli("data", "targets", str(path), "--db", str(db))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["read"], report["accepted"], report["rejected"]) == (15, 4, 11)
    assert report["read"] == report["accepted"] + report["rejected"]
    reasons = {r["row"]: r["reason"] for r in report["rejected_rows"]}
    assert set(reasons) == set(EXPECTED_REJECTIONS)
    for line, expected in EXPECTED_REJECTIONS.items():
        assert expected in reasons[line], (line, reasons[line])
    assert set(_targets(db)) == {
        ("on_time_share", None, None, None, dt.date(2025, 1, 1), 0.9, "Не менее 90 % в срок"),
        ("on_time_share", "roads", None, "Brooklyn", dt.date(2025, 10, 1), 0.85, None),
        ("satisfaction_share", "roads", "Ямы на дорогах", None, dt.date(2025, 10, 1), 0.6, None),
        ("resolve_days_median", None, None, None, dt.date(2025, 10, 1), 8.0, None),
    }
    # the KPI page reads them: the region-wide target in force on the data date
    from metrics.kpi import current_target

    con = duckdb.connect(str(db), read_only=True)
    try:
        assert current_target("on_time_share", con=con) == pytest.approx(0.9)
        assert current_target("resolve_days_median", con=con) == pytest.approx(8.0)
    finally:
        con.close()
    # the same file again replaces its rows instead of doubling them
    again = json.loads(cli("data", "targets", str(path), "--db", str(db)).stdout)
    assert (again["accepted"], again["replaced"], again["inserted"]) == (4, 4, 0)
    assert len(_targets(db)) == 4


def test_targets_from_xlsx_with_english_headers(ny_db, tmp_path: Path) -> None:
    from openpyxl import Workbook

    db = tmp_path / "t.duckdb"
    shutil.copy(ny_db, db)
    book = Workbook()
    sheet = book.active
    sheet.append(["indicator", "sector", "category", "municipality", "period", "value"])
    sheet.append(["on_time_share", "housing", None, "Queens", dt.datetime(2025, 10, 1), 0.75])
    sheet.append(["on_time_share", None, None, None, "2025-13", 0.75])
    book.save(tmp_path / "t.xlsx")
    report = json.loads(cli("data", "targets", str(tmp_path / "t.xlsx"), "--db", str(db)).stdout)
    assert (report["read"], report["accepted"], report["rejected"]) == (2, 1, 1)
    assert "неверный период" in report["rejected_rows"][0]["reason"]
    assert _targets(db) == [("on_time_share", "housing", None, "Queens", dt.date(2025, 10, 1), 0.75, None)]


def test_a_targets_file_that_cannot_be_used_changes_nothing(ny_db, tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    shutil.copy(ny_db, db)
    path = tmp_path / "bad.csv"
    path.write_text("what,when\nx,y\n", encoding="utf-8")
    result = cli("data", "targets", str(path), "--db", str(db))
    assert result.returncode == 2 and result.stderr.startswith("ошибка: в файле нет столбца")
    assert len(result.stderr.strip().splitlines()) == 1
    missing = cli("data", "targets", str(tmp_path / "absent.csv"), "--db", str(db))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert _targets(db) == []


# --- auth add-user ------------------------------------------------------------------------------------------


def test_add_user_checks_the_municipality_against_the_warehouse(ny_db, tmp_path: Path) -> None:
    from auth.users import load_users

    users = tmp_path / "users.toml"
    password = "достаточно-длинный-пароль\n"  # noqa: S105 - a test user

    def add(*extra: str) -> subprocess.CompletedProcess:
        return cli("auth", "--users", str(users), "add-user", "bk", "--role", "municipal", *extra, stdin=password)

    ok = add("--municipality", "brooklyn", "--db", str(ny_db))
    assert ok.returncode == 0, ok.stderr
    assert load_users(users)["bk"].municipality == "Brooklyn"  # the warehouse's own spelling
    smolensk = add("--municipality", "Ярцевский муниципальный округ", "--db", str(ny_db))
    assert smolensk.returncode == 2 and f"нет такого муниципального образования в хранилище ({NY})" in smolensk.stderr
    absent = add("--municipality", "Brooklyn", "--db", str(tmp_path / "absent.duckdb"))
    assert absent.returncode == 2 and "--any-municipality" in absent.stderr and "--db" in absent.stderr
    assert len(absent.stderr.strip().splitlines()) == 1
    anyway = add("--municipality", "Staten Island", "--any-municipality")
    assert anyway.returncode == 0 and load_users(users)["bk"].municipality == "Staten Island"


# --- a real region: Stavropol ---------------------------------------------------------------------------------


@pytest.mark.skipif(not STAVROPOL.exists(), reason=f"нет реальных данных {STAVROPOL} (../shared/realdata или CUR_REALDATA)")
def test_stavropol_warehouse_holds_its_34_units_and_names_itself(tmp_path: Path, pages_app, warehouse_at) -> None:
    from metrics import catalog
    from pages import shell

    db = tmp_path / "st.duckdb"
    assert cli("data", "init", "--region", "Ставропольский край", "--timezone", "Europe/Moscow",
               "--db", str(db)).returncode == 0
    geo = cli("geo", "import", str(STAVROPOL), "--db", str(db))  # no --no-reference needed any more
    assert geo.returncode == 0, geo.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM municipality").fetchall()]
    finally:
        con.close()
    assert len(names) == 34
    assert not any(n.startswith(("Ярцевский", "Вяземский", "Десногорск")) or "Смоленск" in n for n in names)
    export = tmp_path / "st.csv"
    export.write_text("source_id,received_at,municipality,channel\n"
                      f"1,2025-10-30 09:00,{names[0]},pos\n2,2025-10-31 17:45,{names[1]},hotline\n", encoding="utf-8")
    assert cli("data", "import", str(export), "--db", str(db)).returncode == 0
    warehouse_at(db)
    assert shell.navbar_status(None) == "Ставропольский край · данные на 31.10.2025 17:45"
    assert len(catalog.names("municipality")) == 34
