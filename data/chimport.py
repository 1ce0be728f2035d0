"""Import a file straight into a ClickHouse warehouse (chDB or a server), under the rules of the DuckDB
import: the same reading, validation, matching and counting (``data.importer``, run unchanged), the
same quarantine (``rejected_row`` with reasons), ``import_log``, new categories and organisations,
``appeal_replaced``, and an import that is visible all at once or not at all.

How (DESIGN §6):

1. A scratch DuckDB in memory gets the ClickHouse warehouse's reference lists (region settings,
   municipalities and their other spellings, sectors, categories, organisations, channels, the import
   log). ``data.importer.run_import`` runs on it as on a warehouse file; once its accepted rows are
   known it asks (``ImportHooks.before_upsert``) for the warehouse's appeals with the same
   ``(source, source_id)`` keys, which ClickHouse gives from a key table — so updates, unchanged rows
   and the pre-images for revert are decided exactly as on DuckDB, reading only those appeals.
2. Every table the import changes (facts, their pre-images, rejected rows, the log, categories,
   organisations, meta, every rollup) is cloned into a side database ``<db>_importing`` — the parts are
   hard-linked (``ATTACH PARTITION … FROM``), not copied — and changed there: the replaced appeals
   deleted, the new versions inserted, both recorded with their signs (``imp_change``) and fed to the
   change stream of ``data.chrollup``, whose materialized views append to the rollups (no month is
   rebuilt; the open appeals follow the keys, the stored quantiles of the touched months are recomputed).
3. The switch: ``EXCHANGE TABLES`` of each changed table with its clone. On chDB every statement of the
   process passes one engine lock, held for the whole switch: a reader sees the warehouse before or
   after the import, never between. (On a server each exchange is atomic, the set of them is a few
   milliseconds' window.) Any failure before the switch drops the side database: the warehouse is as
   it was.

``revert_on_clickhouse`` undoes an import the same way: ``data.revert.revert_import`` on a scratch
holding the import's rows, its pre-images and the log, the result switched in like an import.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from data import chrollup
from data.clickhouse import (
    ChdbConnection,
    ClickHouseConnection,
    ClickHouseError,
    is_summed,
    latest_receipt,
)
from data.importer import ImportHooks, ImportResult, run_import
from data.mapping import Mapping
from data.regions import DDL as REGION_DDL
from data.revert import RevertResult, revert_import
from data.rollup import create_rollup_tables
from data.schema import APPEAL_COLUMNS, create_schema
from data.swap import writer_lock

# what the pipeline reads of the warehouse besides the appeals of the file's keys
REFERENCE = ("meta", "region", "municipality", "municipality_alias", "sector", "category", "organisation",
             "channel", "import_log")
# what an import changes: cloned, changed on the side, exchanged at the end
# (the rollups' summing tables: the views over them read whatever table has their name)
ROLLUPS = (*chrollup.STORED, "appeal_quantile", "appeal_open")
CHANGED = ("appeal", "appeal_replaced", "rejected_row", "import_log", "category", "organisation", "meta", *ROLLUPS)
_REPLACED_WHOLE = ("category", "organisation")  # small lists the pipeline may extend or edit (kinds, severity)


def import_to_clickhouse(
    ch: ClickHouseConnection,
    path: str | Path,
    mapping: Mapping,
    source: str | None = None,
    now: dt.datetime | None = None,
    region: str | None = None,
) -> ImportResult:
    """Import ``path`` into the ClickHouse warehouse of ``ch``; raises ImportFailed / MappingError as the
    DuckDB import does (nothing written), ClickHouseError when the engine fails (nothing visible).
    ``region`` as for the DuckDB import: the whole file's units within that region."""
    started = time.perf_counter()
    with _writer(ch) as (side, scratch, work, tables):
        _load_reference(ch, scratch, tables)
        # the rollups are not refreshed on the scratch: the change stream keeps ClickHouse's
        hooks = ImportHooks(before_upsert=lambda con: _bring_existing(ch, con, side, work),
                            refresh=lambda _con, _days: None)
        result = run_import(scratch, Path(path), mapping, source=source, now=now, hooks=hooks, region=region)
        result.lap("clickhouse: read")
        changed = [t for t in CHANGED if t in tables]
        _clone(ch, side, changed, _REPLACED_WHOLE)
        result.lap("clickhouse: clone")
        _apply(ch, scratch, side, result.import_id, work)
        result.lap("clickhouse: write")
        _finish(ch, side, changed)
        result.lap("clickhouse: rollups, switch")
    result.seconds = time.perf_counter() - started
    return result


def revert_on_clickhouse(ch: ClickHouseConnection, import_id: int) -> RevertResult:
    """``data.revert.revert_import`` for a ClickHouse warehouse: the same rules (run on a scratch DuckDB
    holding this import's rows, its pre-images and the log), the result switched in at once."""
    with _writer(ch) as (side, scratch, work, tables):
        _load_reference(ch, scratch, tables & {"meta", "region", "import_log"})
        cols = ", ".join(APPEAL_COLUMNS)
        for table, sql in (
            ("appeal", f"SELECT {cols} FROM appeal WHERE import_id = {{id:Int32}}"),  # noqa: S608 - our constants
            ("appeal_replaced", f"SELECT replaced_by, {cols} FROM appeal_replaced "  # noqa: S608
                                "WHERE replaced_by = {id:Int32} OR import_id = {id:Int32}"),
        ):
            rows = ch.native(sql, {"id": str(int(import_id))} if ch.params_as_text else {"id": int(import_id)}).arrow()
            if rows.num_rows:
                scratch.register("ch_rows", rows)
                names = ", ".join(rows.column_names)
                scratch.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM ch_rows")  # noqa: S608
                scratch.unregister("ch_rows")
        result = revert_import(scratch, import_id, refresh=lambda _con, _days: None)
        changed = [t for t in ("appeal", "appeal_replaced", "import_log", "meta", *ROLLUPS) if t in tables]
        _clone(ch, side, changed, ("import_log",))
        # the import's rows out, the pre-images it replaced back (all the scratch's appeals now), each
        # recorded with its sign for the rollups
        with _in(ch, side):
            chrollup.create_pending(ch)
            chrollup.remove(ch, "import_id = {id:Int32}",
                            {"id": str(int(import_id))} if ch.params_as_text else {"id": int(import_id)})
            _push(ch, scratch, f"{side}.{chrollup.PENDING}", f"SELECT {cols}, 1 AS sign FROM appeal",  # noqa: S608
                  [*APPEAL_COLUMNS, "sign"], work)
            chrollup.add_pending(ch)
        ch.command(f"DELETE FROM {side}.appeal_replaced WHERE replaced_by = {{id:Int32}}",  # noqa: S608
                   {"id": str(int(import_id))} if ch.params_as_text else {"id": int(import_id)}, in_database=False)
        _push_whole(ch, scratch, side, "import_log", work)
        _finish(ch, side, changed)
    return result


@contextlib.contextmanager
def _writer(ch: ClickHouseConnection):
    """One writer at a time (chDB: the directory's lock file), a side database for the changes and a
    scratch DuckDB; on leaving, whatever happened, the side database and the scratch are gone."""
    lock = writer_lock(Path(ch.directory)) if isinstance(ch, ChdbConnection) else contextlib.nullcontext()
    with lock:
        tables = ch.tables()
        if "appeal" not in tables:
            raise ClickHouseError(f"в ClickHouse нет хранилища {ch.database}: "
                                  "сначала python -m data copy или demo --engine")
        if not is_summed(ch):
            raise ClickHouseError(
                f"хранилище ClickHouse {ch.database} скопировано прежней версией: его сводные таблицы не умеют "
                "дописываться импортом. Скопируйте хранилище DuckDB заново в новое место "
                "(python -m data copy --db ФАЙЛ.duckdb --to chdb:НОВАЯ_ПАПКА --rebuild-rollups) "
                "или удалите старое и скопируйте на его место; читать старое можно и дальше")
        side = f"{ch.database}_importing"
        ch.command(f"DROP DATABASE IF EXISTS {side}", in_database=False)  # left by a writer that was killed
        ch.command(f"CREATE DATABASE {side}", in_database=False)
        scratch = duckdb.connect()
        work = Path(tempfile.mkdtemp(prefix="cur_chimport_"))
        try:
            yield side, scratch, work, tables
        finally:
            scratch.close()
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(ClickHouseError):  # after the switch it holds the old tables
                ch.command(f"DROP DATABASE IF EXISTS {side}", in_database=False)


@contextlib.contextmanager
def _in(ch: ClickHouseConnection, database: str):
    """Statements without a database name run in ``database`` for a while."""
    db = ch.database
    ch.database = database
    try:
        yield
    finally:
        ch.database = db


def _finish(ch: ClickHouseConnection, side: str, changed: list[str]) -> None:
    """The recorded change appended to the side's rollups through the views (no month is rebuilt), the
    data date and version set, the switch."""
    db = ch.database
    old_latest = latest_receipt(ch, db)  # the warehouse as readers still see it
    with _in(ch, side):
        chrollup.apply_pending(ch, old_latest)
    _set_meta(ch, side)
    _switch(ch, db, side, changed)


def _load_reference(ch: ClickHouseConnection, scratch: duckdb.DuckDBPyConnection, tables: set[str]) -> None:
    """The scratch DuckDB: the warehouse schema, holding ClickHouse's reference lists."""
    create_schema(scratch)
    create_rollup_tables(scratch)
    for statement in REGION_DDL:
        scratch.execute(statement)
    scratch.execute("ALTER TABLE municipality ADD COLUMN IF NOT EXISTS region_id INTEGER DEFAULT 1")
    scratch.execute("DELETE FROM meta")
    for table in REFERENCE:
        if table not in tables:
            continue
        rows = ch.native(f"SELECT * FROM {table}").arrow()  # noqa: S608 - registry names
        if not rows.num_rows:
            continue
        mine = {r[0] for r in scratch.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = $t", {"t": table}).fetchall()}
        cols = ", ".join(f'"{c}"' for c in rows.column_names if c in mine)
        scratch.register("ch_rows", rows)
        verb = "INSERT OR REPLACE" if table == "meta" else "INSERT"  # meta may hold a key twice on ClickHouse
        scratch.execute(f"{verb} INTO {table} ({cols}) SELECT {cols} FROM ch_rows")  # noqa: S608 - catalog names
        scratch.unregister("ch_rows")


def _bring_existing(ch: ClickHouseConnection, scratch: duckdb.DuckDBPyConnection, side: str, work: Path) -> None:
    """The warehouse's appeals with the keys of the accepted rows, into the scratch ``appeal``."""
    keys = "SELECT DISTINCT src AS source, source_id FROM imp_chk WHERE reason IS NULL"
    ch.command(f"CREATE TABLE {side}.imp_keys (source Nullable(String), source_id Nullable(String)) "
               "ENGINE = MergeTree ORDER BY tuple()", in_database=False)
    if not _push(ch, scratch, f"{side}.imp_keys", keys, ["source", "source_id"], work):
        return
    cols = ", ".join(APPEAL_COLUMNS)
    rows = ch.native(f"SELECT {cols} FROM appeal WHERE (source, source_id) IN "  # noqa: S608 - our constants
                     f"(SELECT source, source_id FROM {side}.imp_keys)").arrow()
    if rows.num_rows:
        scratch.register("ch_rows", rows)
        scratch.execute(f"INSERT INTO appeal ({cols}) SELECT {cols} FROM ch_rows")  # noqa: S608
        scratch.unregister("ch_rows")


def _clone(ch: ClickHouseConnection, side: str, tables: list[str], whole: tuple[str, ...]) -> None:
    """``side``.t for each table: the same structure, the same parts (hard links); the small tables of
    ``whole``, which the writer rewrites whole, start empty."""
    db = ch.database
    for table in tables:
        ch.command(f"CREATE TABLE {side}.{table} AS {db}.{table}", in_database=False)
        if table in whole:
            continue
        parts = ch.native("SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} "
                          "AND table = {t:String} AND active", {"db": db, "t": table}).fetchall()
        for (pid,) in parts:
            ch.command(f"ALTER TABLE {side}.{table} ATTACH PARTITION ID {{p:String}} FROM {db}.{table}",
                       {"p": pid}, in_database=False)


def _apply(ch: ClickHouseConnection, scratch: duckdb.DuckDBPyConnection, side: str, import_id: int,
           work: Path) -> None:
    """What the import wrote on the scratch DuckDB, written to the side database."""
    cols = list(APPEAL_COLUMNS)
    # the rows this import replaced: out of the facts, kept as they were (revert's pre-images)
    ch.command(f"CREATE TABLE {side}.imp_changed (source Nullable(String), source_id Nullable(String)) "
               "ENGINE = MergeTree ORDER BY tuple()", in_database=False)
    params = {"id": int(import_id)}
    with _in(ch, side):
        chrollup.create_pending(ch)  # every removed and added version, signed, for the rollups
        if _push(ch, scratch, f"{side}.imp_changed",
                 "SELECT source, source_id FROM appeal_replaced WHERE replaced_by = $id", ["source", "source_id"],
                 work, params):
            chrollup.remove(ch, "(source, source_id) IN (SELECT source, source_id FROM imp_changed)")
            _push(ch, scratch, f"{side}.appeal_replaced", "SELECT * FROM appeal_replaced WHERE replaced_by = $id",
                  ["replaced_by", *cols], work, params)
        # the rows it wrote (new and changed ones; unchanged rows keep the import that wrote them)
        _push(ch, scratch, f"{side}.{chrollup.PENDING}",
              f"SELECT {', '.join(cols)}, 1 AS sign FROM appeal WHERE import_id = $id",  # noqa: S608
              [*cols, "sign"], work, params)
        chrollup.add_pending(ch)
    for table in ("rejected_row", "import_log", *_REPLACED_WHOLE):
        _push_whole(ch, scratch, side, table, work, None if table in _REPLACED_WHOLE else int(import_id))


def _push_whole(ch: ClickHouseConnection, scratch: duckdb.DuckDBPyConnection, side: str, table: str, work: Path,
                import_id: int | None = None) -> None:
    """The scratch's ``table`` (only ``import_id``'s rows, if given) into ``side``, by the columns both have."""
    names = [r[0] for r in scratch.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = $t ORDER BY column_index",
        {"t": table}).fetchall()]
    theirs = {r[0] for r in ch.native("SELECT name FROM system.columns WHERE database = {db:String} "
                                      "AND table = {t:String}", {"db": side, "t": table}).fetchall()}
    names = [n for n in names if n in theirs]
    where = "" if import_id is None else " WHERE import_id = $id"
    _push(ch, scratch, f"{side}.{table}", f"SELECT {', '.join(names)} FROM {table}{where}",  # noqa: S608
          names, work, None if import_id is None else {"id": import_id})


def _set_meta(ch: ClickHouseConnection, side: str) -> None:
    """The data date and a new version stamp (the answer caches key on them: metrics.source)."""
    as_of = ch.native(f"SELECT max(received_at) FROM {side}.appeal").fetchall()[0][0]  # noqa: S608
    ch.command(f"DELETE FROM {side}.meta WHERE key IN ('data_as_of', 'engine_version')",  # noqa: S608
               in_database=False)
    values = {"v": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")}
    rows = "('engine_version', {v:String})"
    if as_of is not None:
        values["d"] = as_of.isoformat(sep=" ")
        rows += ", ('data_as_of', {d:String})"
    ch.command(f"INSERT INTO {side}.meta (key, value) VALUES {rows}", values, in_database=False)  # noqa: S608


def _switch(ch: ClickHouseConnection, db: str, side: str, tables: list[str]) -> None:
    """Each changed table exchanged with its clone, under chDB's engine lock (no statement of this
    process runs in between); a failed exchange puts the exchanged ones back."""
    lock = ChdbConnection._lock if isinstance(ch, ChdbConnection) else contextlib.nullcontext()
    done: list[str] = []
    with lock:
        try:
            for table in tables:
                ch.command(f"EXCHANGE TABLES {db}.{table} AND {side}.{table}", in_database=False)
                done.append(table)
        except BaseException:
            for table in reversed(done):
                ch.command(f"EXCHANGE TABLES {db}.{table} AND {side}.{table}", in_database=False)
            raise


def _push(ch: ClickHouseConnection, scratch: duckdb.DuckDBPyConnection, target: str, select: str,
          columns: list[str], work: Path, params: dict | None = None) -> int:
    """Rows of a scratch query inserted into a ClickHouse table by column name (through Parquet, as
    ``copy`` carries tables: timestamps as microseconds); the number of rows."""
    # an import id is our own integer: written into the text (COPY takes no parameters)
    select = select.replace("$id", str(int((params or {}).get("id", 0))))
    n = scratch.execute(f"SELECT count(*) FROM ({select})").fetchall()[0][0]  # noqa: S608
    if not n:
        return 0
    file = work / f"{target.replace('.', '_')}.parquet"
    names = ", ".join(f'"{c}"' for c in columns)
    scratch.execute(f"COPY (SELECT {names} FROM ({select})) TO '{file}' (FORMAT parquet)")  # noqa: S608
    listed = ", ".join(f"`{c}`" for c in columns)
    if isinstance(ch, ChdbConnection):
        ch.command(f"INSERT INTO {target} ({listed}) SELECT {listed} FROM file({str(file)!r}, Parquet)",  # noqa: S608
                   in_database=False)
    else:
        import pyarrow.parquet as pq

        database, _, table = target.rpartition(".")
        ch._run(lambda: ch._client.insert_arrow(table, pq.read_table(file), database=database))  # noqa: SLF001
    file.unlink()
    return n
