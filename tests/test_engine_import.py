"""An import straight into ClickHouse (``data.chimport``, chDB here) keeps the import rules of DuckDB
(DESIGN §6): the same file imported into a DuckDB warehouse and into its chDB copy leaves equal
appeals, rejected rows with the same reasons, the same log counts (``read = accepted + rejected``), the
same new categories and organisations, pre-images and rollups, and the same indicator answers — after
a first load, after a re-import that updates appeals, and after one that answers the warehouse's own
appeals. A failing import leaves the ClickHouse warehouse as it was; a reader during an import sees
the warehouse before or after it, never between. The DuckDB warehouse is the reference.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from data import chimport
from data.chimport import import_to_clickhouse
from data.clickhouse import REBUILT, ChdbConnection, ClickHouseError, copy_warehouse
from data.demo import build_demo
from data.importer import ImportFailed, run_import
from data.mapping import load_mapping
from data.warehouse import connect
from metrics import query as q
from tests.test_engine_parity import CODES, CURRENT, LAST, QUARTER, TODAY, same, same_table

PROJECT = Path(__file__).resolve().parents[1]
NOW = dt.datetime.combine(TODAY, dt.time(12, 0))
HEADER = "source_id,received_at,municipality,channel,category,organisation,answered_at,satisfaction,topic"


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    """(DuckDB file, chDB connection holding its copy, a folder for files)."""
    tmp = tmp_path_factory.mktemp("chimport")
    db = tmp / "w.duckdb"
    build_demo(db, appeals=6000, months=4, seed=5, end_month=f"{TODAY:%Y-%m}")
    ch = ChdbConnection(tmp / "chdb", create=True)
    copy_warehouse(db, ch, rebuild=True)
    yield db, ch, tmp
    ch.close()


def _names(db: Path) -> tuple[list[str], list[str]]:
    con = connect(db, read_only=True)
    try:
        munis = [r[0] for r in con.execute("SELECT name FROM municipality ORDER BY id LIMIT 8").fetchall()]
        cats = [r[0] for r in con.execute("SELECT name FROM category ORDER BY id LIMIT 6").fetchall()]
    finally:
        con.close()
    return munis, cats


def _when(i: int) -> dt.datetime:
    # spread over the last complete month and the current one, never after NOW
    return NOW - dt.timedelta(days=(i * 7) % 45, hours=1 + i % 11, minutes=i % 53)


def _first_file(tmp: Path, db: Path) -> Path:
    munis, cats = _names(db)
    lines = [HEADER]
    for i in range(300):
        received = _when(i)
        answered_at = min(received + dt.timedelta(days=1 + i % 9, hours=3), NOW - dt.timedelta(minutes=5))
        answered = f"{answered_at:%d.%m.%Y %H:%M}" if i % 3 == 0 else ""
        category = cats[i % 6] if i % 5 else f"Новая тема {i % 2}"
        organisation = f"МУП «Сервис {i % 4}»" if i % 2 else ""
        lines.append(f"E{i},{received:%d.%m.%Y %H:%M},{munis[i % 8]},{['pos', 'letter', 'im'][i % 3]},"
                     f"{category},{organisation},{answered},{(i % 5) + 1 if answered else ''},Вопрос {i} тел. 8 900 123 45 67")
    lines += [  # one of each kind of bad row
        f"E900,{NOW:%d.%m.%Y %H:%M},Атлантида,pos,,,,,",
        f"E901,не дата,{munis[0]},pos,,,,,",
        f"E902,{NOW + dt.timedelta(days=3):%d.%m.%Y %H:%M},{munis[1]},pos,,,,,",
        f"E5,{NOW:%d.%m.%Y %H:%M},{munis[2]},pos,,,,,",  # the number again
        f"E903,{NOW:%d.%m.%Y %H:%M},{munis[3]},pos,,,{NOW:%d.%m.%Y %H:%M},9,",
        f"E904,{NOW:%d.%m.%Y %H:%M},{munis[3]},голубиная почта,,,,,",
        f",{NOW:%d.%m.%Y %H:%M},{munis[3]},pos,,,,,",
        f"E905,{NOW:%d.%m.%Y %H:%M},{munis[4]},pos,,,{NOW - dt.timedelta(days=2):%d.%m.%Y %H:%M},,",
    ]
    path = tmp / "first.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _second_file(tmp: Path, first: Path) -> Path:
    """The same appeals later: a third answered now, the rest as they were, 40 new ones, two bad rows."""
    lines = first.read_text(encoding="utf-8").splitlines()[:301]
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        if i % 3 == 1:
            received = dt.datetime.strptime(cells[1], "%d.%m.%Y %H:%M")
            cells[6] = f"{min(received + dt.timedelta(days=2), NOW - dt.timedelta(minutes=5)):%d.%m.%Y %H:%M}"
            cells[7] = "4"
        out.append(",".join(cells))
    munis = [line.split(",")[2] for line in lines[1:9]]
    for i in range(40):
        out.append(f"N{i},{_when(i + 7):%d.%m.%Y %H:%M},{munis[i % 8]},hotline,Совсем новая тема,,,,")
    out += [f"N900,{NOW:%d.%m.%Y %H:%M},Нигдеград,pos,,,,,", f"N901,31.02.2025,{munis[0]},pos,,,,,"]
    path = tmp / "second.csv"
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def _answers_file(tmp: Path, db: Path) -> Path:
    """Answers to the warehouse's own open appeals (source «demo»), copied from DuckDB by ``copy``."""
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            """SELECT a.source_id, a.received_at, m.name, a.channel, c.name
               FROM appeal a JOIN municipality m ON m.id = a.municipality_id LEFT JOIN category c ON c.id = a.category_id
               WHERE a.answered_at IS NULL AND a.source = 'demo' AND a.received_at < $now - INTERVAL 3 DAY
               ORDER BY a.source_id LIMIT 60""", {"now": NOW}).fetchall()
    finally:
        con.close()
    assert len(rows) == 60
    lines = ["source_id,received_at,municipality,channel,category,answered_at,closure_reason"]
    for sid, received, muni, channel, category in rows:
        lines.append(f"{sid},{received:%Y-%m-%d %H:%M:%S.%f},{muni},{channel},{category or ''},"
                     f"{received + dt.timedelta(days=2):%Y-%m-%d %H:%M:%S},решено")
    path = tmp / "answers.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _both(db: Path, ch: ChdbConnection, path: Path, source: str):
    mapping = load_mapping(None)
    con = connect(db)
    try:
        duck = run_import(con, path, mapping, source=source, now=NOW)
    finally:
        con.close()
    return duck, import_to_clickhouse(ch, path, mapping, source=source, now=NOW)


def _rows(con, sql: str) -> pd.DataFrame:
    return con.execute(sql).df().reset_index(drop=True)


def _equal_frames(duck: pd.DataFrame, ch: pd.DataFrame) -> None:
    assert list(ch.columns) == list(duck.columns)
    assert len(ch) == len(duck)
    pd.testing.assert_frame_equal(duck, ch, check_dtype=False, rtol=1e-12)


TABLES = {  # every row an import writes, in one order on both engines
    "appeal": "SELECT * FROM appeal ORDER BY source, source_id",
    "appeal_replaced": "SELECT * FROM appeal_replaced ORDER BY replaced_by, source, source_id",
    "rejected_row": "SELECT import_id, row_number, reason, raw FROM rejected_row ORDER BY import_id, row_number",
    "import_log": "SELECT import_id, file, source, read, accepted, inserted, updated, unchanged, rejected, "
                  "new_categories, new_organisations FROM import_log ORDER BY import_id",
    "category": "SELECT * FROM category ORDER BY id",
    "organisation": "SELECT * FROM organisation ORDER BY id",
    "data_as_of": "SELECT value FROM meta WHERE key = 'data_as_of'",
}


def _same_warehouse(db: Path, ch: ChdbConnection) -> None:
    duck = connect(db, read_only=True)
    try:
        for sql in TABLES.values():
            _equal_frames(_rows(duck, sql), _rows(ch, sql))
        for table in REBUILT:
            same_table(duck, ch, table)
        for by, period in ((["municipality"], QUARTER), (["category", "week"], CURRENT),
                           (["organisation", "channel"], LAST)):
            same(q.query_on(duck, CODES, by, period), q.query_on(ch, CODES, by, period))
    finally:
        duck.close()


def _summary(result) -> dict:
    out = result.summary()
    out.pop("seconds")
    return out


def test_the_same_imports_leave_the_same_warehouse(warehouses):
    db, ch, tmp = warehouses
    first = _first_file(tmp, db)
    duck, click = _both(db, ch, first, "ext")
    assert _summary(click) == _summary(duck)
    assert (click.read, click.accepted, click.inserted, click.rejected) == (308, 300, 300, 8)
    assert click.new_categories and click.new_organisations
    _same_warehouse(db, ch)
    reasons = dict(ch.execute("SELECT row_number, reason FROM rejected_row WHERE import_id = $i",
                              {"i": click.import_id}).fetchall())
    assert len(reasons) == 8 and any("Атлантида" in r for r in reasons.values())
    assert any("повтор номера" in r for r in reasons.values())
    assert ch.execute("SELECT count(*) FROM appeal WHERE topic LIKE '%900%'").fetchall()[0][0] == 0  # no phone

    # the same appeals again: answers arrived for a third, some new, the rest unchanged
    duck, click = _both(db, ch, _second_file(tmp, first), "ext")
    assert _summary(click) == _summary(duck)
    assert (click.inserted, click.updated, click.unchanged, click.rejected) == (40, 100, 200, 2)
    assert click.read == click.accepted + click.rejected
    _same_warehouse(db, ch)

    # answers to appeals that came to ClickHouse by ``copy``
    duck, click = _both(db, ch, _answers_file(tmp, db), "demo")
    assert _summary(click) == _summary(duck)
    assert (click.updated, click.rejected) == (60, 0)
    _same_warehouse(db, ch)
    assert ch.execute("SELECT count(*) FROM appeal_replaced WHERE replaced_by = $i",
                      {"i": click.import_id}).fetchall()[0][0] == 60


def test_a_revert_leaves_the_same_warehouse(warehouses):
    """Reverting the answers (their pre-images back), then the re-import (after which the first file's
    rows are as that file wrote them), on both engines: the same counts and the same warehouse."""
    from data.chimport import revert_on_clickhouse
    from data.revert import RevertFailed, revert_import

    db, ch, _ = warehouses
    last = ch.execute("SELECT max(import_id) FROM import_log").fetchall()[0][0]
    for import_id in (last, last - 1):
        con = connect(db)
        try:
            duck = revert_import(con, import_id)
        finally:
            con.close()
        click = revert_on_clickhouse(ch, import_id)
        assert repr(click) == repr(duck)
        assert click.restored > 0
    _same_warehouse(db, ch)
    with pytest.raises(RevertFailed, match="уже отменена"):
        revert_on_clickhouse(ch, last)
    assert ch.execute("SELECT count(*) FROM import_log WHERE reverted_at IS NOT NULL").fetchall()[0][0] == 2


def _state(ch: ChdbConnection) -> tuple:
    """Everything a reader could see, in one statement (so one moment)."""
    return tuple(ch.native(
        "SELECT (SELECT count() FROM appeal), (SELECT sum(n) FROM appeal_monthly), (SELECT sum(n) FROM appeal_weekly), "
        "(SELECT count() FROM rejected_row), (SELECT count() FROM import_log), (SELECT count() FROM category), "
        "(SELECT count() FROM appeal_open), (SELECT value FROM meta WHERE key = 'engine_version')").fetchall()[0])


def _new_file(tmp: Path, db: Path, name: str, prefix: str) -> Path:
    munis, _ = _names(db)
    lines = [HEADER] + [f"{prefix}{i},{_when(i):%d.%m.%Y %H:%M},{munis[i % 8]},pos,Тема {prefix},,,," for i in range(50)]
    lines.append(f"{prefix}X,{NOW:%d.%m.%Y %H:%M},Атлантида,pos,,,,,")
    path = tmp / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_failing_import_leaves_the_warehouse_as_it_was(warehouses, monkeypatch):
    db, ch, tmp = warehouses
    before = _state(ch)
    answer = q.query_on(ch, CODES, ["municipality"], CURRENT)

    def broken(*_args):
        raise ClickHouseError("обрыв связи")

    monkeypatch.setattr(chimport.chrollup, "feed", broken)  # after the facts were written on the side
    with pytest.raises(ClickHouseError, match="обрыв"):
        import_to_clickhouse(ch, _new_file(tmp, db, "failing.csv", "F"), load_mapping(None), source="f", now=NOW)
    assert _state(ch) == before
    same(answer, q.query_on(ch, CODES, ["municipality"], CURRENT))
    databases = {r[0] for r in ch.native("SELECT name FROM system.databases").fetchall()}
    assert f"{ch.database}_importing" not in databases
    # a file that cannot be used: refused in Russian, nothing written
    bad = tmp / "bad.csv"
    bad.write_text("номер;дата\n1;2", encoding="utf-8")
    with pytest.raises(ImportFailed, match="столбц"):
        import_to_clickhouse(ch, bad, load_mapping(None), now=NOW)
    assert _state(ch) == before


def test_a_reader_sees_before_or_after_never_between(warehouses):
    db, ch, tmp = warehouses
    before = _state(ch)
    seen: set[tuple] = set()
    done = threading.Event()
    reader = ChdbConnection(ch.directory)  # another connection of the process, as the dashboard's

    def watch():
        while not done.is_set():
            seen.add(_state(reader))

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        result = import_to_clickhouse(ch, _new_file(tmp, db, "watched.csv", "W"), load_mapping(None),
                                      source="w", now=NOW)
    finally:
        done.set()
        thread.join()
    after = _state(ch)
    assert (result.inserted, result.rejected) == (50, 1)
    assert after[0] == before[0] + 50 and after[3] == before[3] + 1 and after[4] == before[4] + 1
    assert seen <= {before, after}
    assert before in seen


def test_the_commands_on_clickhouse(warehouses):
    db, ch, tmp = warehouses
    path = _new_file(tmp, db, "cli.csv", "C")
    env = {**os.environ, "CUR_IMPORT_NICE": "0"}
    env.pop("CUR_ENGINE", None)
    count = ch.execute("SELECT count(*) FROM appeal").fetchall()[0][0]
    command = [sys.executable, "-m", "data", "import", str(path), "--source", "cli", "--engine", f"chdb:{ch.directory}"]
    # chDB opens a directory in one process: while this one holds it, the command says so in Russian
    busy = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120, env=env)
    assert busy.returncode == 2 and "держит другой процесс" in busy.stderr and "Traceback" not in busy.stderr
    ChdbConnection.release(ch.directory)
    try:
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        assert '"inserted": 50' in done.stdout and '"rejected": 1' in done.stdout
        refused = subprocess.run([sys.executable, "-m", "data", "revert", "99", "--engine", f"chdb:{ch.directory}"],
                                 cwd=PROJECT, capture_output=True, text=True, timeout=60, env=env)
        assert refused.returncode == 2
        assert "нет загрузки с номером 99" in refused.stderr and "Traceback" not in refused.stderr
        listed = subprocess.run([sys.executable, "-m", "data", "imports", "--engine", f"chdb:{ch.directory}"],
                                cwd=PROJECT, capture_output=True, text=True, timeout=60, env=env)
        assert listed.returncode == 0 and "cli.csv\t51\t50\t50\t0\t0\t1\tдействует" in listed.stdout, listed.stderr
        quarantined = subprocess.run([sys.executable, "-m", "data", "rejected", "--engine", f"chdb:{ch.directory}"],
                                     cwd=PROJECT, capture_output=True, text=True, timeout=60, env=env)
        assert quarantined.returncode == 0 and "CX" in quarantined.stdout and "Атлантида" in quarantined.stdout
    finally:
        fresh = ChdbConnection(ch.directory)
    assert fresh.execute("SELECT count(*) FROM appeal").fetchall()[0][0] == count + 50


# --- the rollups kept by views: moves, reopenings, the stock horizon, no rebuild ------------------------

@pytest.fixture(scope="module")
def moving(warehouses):
    """A warehouse ending with last month (so that an import of this month's appeals moves every stock
    horizon, and its revert moves them back): its DuckDB file and chDB copy (another database of the same
    chDB directory)."""
    _db, ch, tmp = warehouses
    folder = tmp / "moving"
    folder.mkdir()
    db = folder / "w.duckdb"
    build_demo(db, appeals=4000, months=3, seed=8, end_month=f"{LAST.start:%Y-%m}")
    target = ChdbConnection(ch.directory, database="cur_moving", create=True)
    copy_warehouse(db, target)
    return db, target, folder


def _moving_files(folder: Path, db: Path) -> tuple[Path, Path]:
    """A first file (120 appeals of last month and this one, a third answered) and its re-import: appeals
    moved to another municipality or category (so another sector), answered ones reopened, answers
    arriving, the rest unchanged."""
    munis, cats = _names(db)
    header = "source_id,received_at,municipality,channel,category,answered_at,satisfaction"
    first, second = [header], [header]
    for i in range(120):
        received = NOW - dt.timedelta(days=(i * 5) % 40, hours=2 + i % 7)
        answer = min(received + dt.timedelta(days=1 + i % 4), NOW - dt.timedelta(minutes=5))
        answered = f"{answer:%d.%m.%Y %H:%M}" if i % 3 == 0 else ""
        row = [f"M{i}", f"{received:%d.%m.%Y %H:%M}", munis[i % 8], "pos", cats[i % 6], answered,
               "4" if answered else ""]
        first.append(",".join(row))
        if i % 6 == 1:
            row[2] = munis[(i + 3) % 8]  # moved to another municipality
        elif i % 6 == 2:
            row[4] = cats[(i + 2) % 6]  # another category (and with it, maybe, another sector)
        elif i % 6 == 3:
            row[5], row[6] = "", ""  # reopened (answered in the first file)
        elif i % 6 == 4:
            row[5] = f"{min(received + dt.timedelta(hours=20), NOW - dt.timedelta(minutes=5)):%d.%m.%Y %H:%M}"
        second.append(",".join(row))
    paths = folder / "moving_first.csv", folder / "moving_second.csv"
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_text("\n".join(lines), encoding="utf-8")
    return paths


def _parts(ch: ChdbConnection, table: str) -> dict[str, set[str]]:
    """Partition → the checksums of its active parts."""
    out: dict[str, set[str]] = {}
    for partition, digest in ch.native(
            "SELECT partition, hash_of_all_files FROM system.parts WHERE database = {db:String} AND table = {t:String} "
            "AND active", {"db": ch.database, "t": table}).fetchall():
        out.setdefault(partition, set()).add(digest)
    return out


def test_moves_and_reopenings_then_reverts_keep_every_rollup_equal(moving):
    """Import → re-import moving appeals between municipalities, categories and sectors, reopening some and
    answering others → revert the re-import → revert the first: after each step every rollup on chDB (its
    view: live rows, FINAL) equals the DuckDB warehouse's after the same step, table by table."""
    from data.chimport import revert_on_clickhouse
    from data.revert import revert_import

    db, ch, folder = moving
    first, second = _moving_files(folder, db)
    before = ch.native("SELECT max(received_at) FROM appeal").fetchall()[0][0]
    duck, click = _both(db, ch, first, "mv")
    assert (click.inserted, click.rejected) == (duck.inserted, duck.rejected) == (120, 0)
    assert ch.native("SELECT max(received_at) FROM appeal").fetchall()[0][0] > before  # the horizons moved
    _same_warehouse(db, ch)
    duck, click = _both(db, ch, second, "mv")
    assert (click.updated, click.unchanged) == (duck.updated, duck.unchanged)
    assert click.updated == 80
    _same_warehouse(db, ch)
    moved = ch.execute("SELECT count(*) FROM appeal_replaced a JOIN appeal b USING (source, source_id) "
                       "WHERE a.municipality_id <> b.municipality_id OR a.sector_id <> b.sector_id").fetchall()[0][0]
    assert moved >= 20
    for import_id in (click.import_id, click.import_id - 1):
        con = connect(db)
        try:
            revert_import(con, import_id)
        finally:
            con.close()
        revert_on_clickhouse(ch, import_id)
        _same_warehouse(db, ch)
    assert ch.native("SELECT max(received_at) FROM appeal").fetchall()[0][0] == before  # and back


def test_an_import_appends_to_the_rollups_and_rebuilds_none(moving):
    """The honest observables of "no rollup rebuilt": the parts of the months an import did not touch are
    the very same files (same checksums) in every summing table, and no rollup table but the open appeals
    and the stored quantiles (a subset of the facts; a cache of exact quantiles) had a row deleted."""
    from data import chrollup

    db, ch, folder = moving
    path = folder / "late.csv"
    munis, cats = _names(db)
    path.write_text("\n".join(["source_id,received_at,municipality,channel,category,answered_at"] + [
        f"L{i},{NOW - dt.timedelta(hours=3 + i):%d.%m.%Y %H:%M},{munis[i % 8]},pos,{cats[i % 6]},"
        f"{NOW - dt.timedelta(hours=2 + i):%d.%m.%Y %H:%M}" for i in range(30)]), encoding="utf-8")
    summing = ("appeal_monthly", "appeal_monthly_ms", "appeal_duration", "appeal_weekly")
    parts = {t: _parts(ch, chrollup.stored(t)) for t in summing}
    duck, click = _both(db, ch, path, "late")
    assert (click.inserted, duck.inserted) == (30, 30), click.summary()
    received = [NOW - dt.timedelta(hours=3 + i) for i in range(30)]
    for table in summing:
        # the partitions (months; a week's is its Monday's) the new rows fall in
        touched = {f"{d - dt.timedelta(days=d.weekday() if table == 'appeal_weekly' else 0):%Y%m}" for d in received}
        after = _parts(ch, chrollup.stored(table))
        untouched = set(parts[table]) - touched
        assert untouched and all(after[p] == parts[table][p] for p in untouched), table
        assert all(after[p] != parts[table].get(p) for p in touched), table  # appended there
    deleted = {r[0] for r in ch.native(
        "SELECT DISTINCT table FROM system.mutations WHERE database = {db:String}", {"db": ch.database}).fetchall()}
    assert not deleted & {*chrollup.STORED, *chrollup.SUMMED}, deleted
    assert "appeal_quantile" in deleted  # the observable sees deletes where there are some
    _same_warehouse(db, ch)


def test_an_old_copy_is_refused_for_imports_in_russian(warehouses):
    """A warehouse copied before the view-fed rollups (plain MergeTree ``appeal_monthly``): an import says
    what to do, and nothing is written; reading it still works."""
    db, ch, tmp = warehouses
    old = ChdbConnection(ch.directory, database="cur_old", create=True)
    old.command(f"CREATE TABLE appeal AS {ch.database}.appeal")
    old.command("CREATE TABLE appeal_monthly (month Date32, n Int32) ENGINE = MergeTree ORDER BY month")
    with pytest.raises(ClickHouseError, match="прежней версией.*python -m data copy"):
        import_to_clickhouse(old, _new_file(tmp, db, "old.csv", "O"), load_mapping(None), source="o", now=NOW)
    assert old.execute("SELECT count(*) FROM appeal").fetchall()[0][0] == 0
    old.command("DROP DATABASE cur_old", in_database=False)
