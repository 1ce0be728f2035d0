"""The warehouse on ClickHouse (DESIGN §6): in-process through chDB (``chdb:DIR``) or on a server
(``clickhouse://user:password@host:8123/db``), both answering the same statements as DuckDB.

A ``ClickHouseConnection`` looks to the metrics like a DuckDB connection: ``execute(sql, params)``
takes the DuckDB SQL the metrics write (translated once by ``data.dialect``) and gives back a result
with ``df()`` and ``fetchall()``. Frames come out with DuckDB's own pandas types (the Arrow answer is
turned into pandas by DuckDB), so a page cannot tell the engines apart.

Storage: the facts and reference tables are MergeTrees; the facts are ordered by (month of receipt,
municipality, sector, receipt time), the order every page query filters in. The rollups are summing
tables fed by materialized views from a signed change stream (``data.chrollup``), read with FINAL. ``copy_warehouse`` fills a new database and renames it into place at the
end, so a failed copy leaves no half-filled warehouse visible.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data import chrollup, rollup
from data.dialect import to_clickhouse

DATABASE = "cur"  # the database of a chDB directory
# every statement runs with these: naive timestamps stay as written; a missing join partner is NULL
# (as in SQL and DuckDB), not the type's default
SETTINGS: dict[str, object] = {"session_timezone": "UTC", "join_use_nulls": 1, "cast_keep_nullable": 1,
                               "output_format_arrow_string_as_string": 1, "allow_experimental_analyzer": 1,
                               "prefer_column_name_to_alias": 1, "enable_materialized_cte": 1,
                               # the rollups are summing tables fed signed rows (data.chrollup): every read
                               # sees them collapsed (a no-op on the plain MergeTree facts), month by month
                               "final": 1, "do_not_merge_across_partitions_select_final": 1}


class ClickHouseError(RuntimeError):
    """A ClickHouse statement failed or a target cannot be used; the message is for a person."""


class ClickHouseCatalogError(ClickHouseError, duckdb.CatalogException):
    """A table the warehouse lacks: caught wherever DuckDB's would be (a warehouse from before a table)."""


class ClickHouseBinderError(ClickHouseError, duckdb.BinderException):
    """A column the warehouse lacks (a warehouse from before a column), as DuckDB's binder says."""


# ClickHouse's error codes that have a DuckDB counterpart the callers already handle
_ERROR_CLASSES: dict[int, type[ClickHouseError]] = {60: ClickHouseCatalogError, 47: ClickHouseBinderError}


def _failure(exc: Exception) -> ClickHouseError:
    """The error for a failed statement: DuckDB's kind where there is one (UNKNOWN_TABLE, UNKNOWN_IDENTIFIER)."""
    code = re.search(r"Code: (\d+)", str(exc))
    kind = _ERROR_CLASSES.get(int(code[1]), ClickHouseError) if code else ClickHouseError
    return kind(f"ошибка ClickHouse: {str(exc)[:500]}")


class Result:
    """An answer in Arrow, read like DuckDB's: ``df()``, ``fetchall()``, ``arrow()``."""

    def __init__(self, table: pa.Table):
        self._table = _normalised(table)

    def arrow(self) -> pa.Table:
        return self._table

    def df(self):
        # DuckDB's own Arrow → pandas conversion: the same dtypes as a DuckDB answer (nullable ints,
        # booleans, strings, dates), so callers see no difference between the engines
        return _local_duck().from_arrow(self._table).df()

    def fetchall(self) -> list[tuple]:
        columns = [c.to_pylist() for c in self._table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None


_duck = threading.local()


def _local_duck() -> duckdb.DuckDBPyConnection:
    if getattr(_duck, "con", None) is None:
        _duck.con = duckdb.connect()
    return _duck.con


def _normalised(table: pa.Table) -> pa.Table:
    """Arrow types as DuckDB would give them: signed integers (ClickHouse counts are unsigned) and
    naive timestamps (the columns are UTC only so that nothing shifts)."""
    fields, arrays = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        t = field.type
        if pa.types.is_unsigned_integer(t):
            t = pa.int64()
        elif pa.types.is_timestamp(t) and t.tz is not None:
            t = pa.timestamp(t.unit)
        elif pa.types.is_large_string(t):
            t = pa.string()
        if t != field.type:
            column = pc.cast(column, t) if not pa.types.is_timestamp(t) else column.cast(t)
        fields.append(pa.field(field.name, t))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class ClickHouseConnection:
    """Common to chDB and a server: DuckDB SQL in (translated), Arrow out."""

    dialect = "clickhouse"
    params_as_text = True  # chDB reads parameters as text; clickhouse-connect formats Python values itself

    def __init__(self, database: str):
        self.database = database

    def execute(self, sql: str, params: Mapping[str, object] | list | None = None) -> Result:
        if isinstance(params, list | tuple):  # DuckDB's positional ``?``: named here
            names = [f"p{i}" for i in range(len(params))]
            counter = iter(names)
            sql = re.sub(r"\?", lambda _m: "$" + next(counter), sql)
            params = dict(zip(names, params, strict=True))
        text, values = to_clickhouse(sql, params, as_text=self.params_as_text)
        return self.native(text, values)

    def native(self, sql: str, params: Mapping[str, str] | None = None) -> Result:
        raise NotImplementedError

    def command(self, sql: str, params: Mapping[str, str] | None = None, in_database: bool = True) -> None:
        """A ClickHouse statement with no answer (DDL, INSERT); ``in_database=False`` for statements
        about databases themselves (the connection's own may not exist yet)."""
        raise NotImplementedError

    def tables(self) -> set[str]:
        rows = self.native("SELECT name FROM system.tables WHERE database = {db:String}", {"db": self.database})
        return {r[0] for r in rows.fetchall()}

    def close(self) -> None:
        pass


class ChdbConnection(ClickHouseConnection):
    """chDB: the ClickHouse engine inside this process, its data in a directory. chDB keeps one
    engine per process: every connection to a directory shares it, one statement at a time."""

    _lock = threading.RLock()
    _sessions: dict[str, object] = {}
    _current: dict[str, str] = {}  # directory → the database its engine was last told to use

    def __init__(self, directory: str | Path, database: str = DATABASE, create: bool = False):
        super().__init__(database)
        self.directory = str(Path(directory).resolve())
        if not create and not Path(self.directory).is_dir():
            raise ClickHouseError(f"хранилище ClickHouse не найдено: {self.directory}")
        with self._lock:
            session = self._sessions.get(self.directory)
            if session is None:
                import chdb

                if self._sessions:  # chDB serves one directory per process
                    for old in self._sessions.values():
                        old.close()
                    self._sessions.clear()
                    self._current.clear()
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                try:
                    session = chdb.connect(self.directory)
                except RuntimeError as exc:  # most often: another process holds the directory
                    raise ClickHouseError(
                        f"не удалось открыть хранилище chDB {self.directory}: его, вероятно, держит другой процесс "
                        "(chDB открывает папку одним процессом — например, запущенная на ней панель); остановите его "
                        f"или работайте через сервер ClickHouse ({str(exc)[:200]})") from exc
                self._sessions[self.directory] = session
                self._current.pop(self.directory, None)  # a new engine starts in ``default``
            self._session = session
        for name, value in SETTINGS.items():
            self._raw(f"SET {name} = {value!r}" if isinstance(value, str) else f"SET {name} = {value}")
        if create:
            self._raw(f"CREATE DATABASE IF NOT EXISTS {database}")
        elif not self._raw("SELECT count() FROM system.databases WHERE name = {db:String}", {"db": database}
                           ).column(0)[0].as_py():
            raise ClickHouseError(f"хранилище ClickHouse не найдено: {self.directory} (база {database}); "
                                  f"скопируйте его: python -m data copy --to chdb:{self.directory}")

    def _raw(self, sql: str, params: Mapping[str, str] | None = None, fmt: str = "ArrowTable"):
        with self._lock:
            try:
                return self._session.query(sql, fmt, params=dict(params or {}))
            except Exception as exc:  # chDB raises its own RuntimeError text
                raise _failure(exc) from exc

    def _use(self, database: str) -> None:
        """Make ``database`` the engine's current one (the lock held). Several warehouses may share the
        engine, so each statement runs in its own; the ``USE`` is sent only when the database differs
        from the one the engine was last told (a round trip less on nearly every statement)."""
        if self._current.get(self.directory) != database:
            self._current.pop(self.directory, None)  # unknown until the USE succeeds
            self._raw(f"USE {database}")
            self._current[self.directory] = database

    def native(self, sql: str, params: Mapping[str, str] | None = None) -> Result:
        with self._lock:
            self._use(self.database)
            table = self._raw(sql, params)
        return Result(table if isinstance(table, pa.Table) else pa.table({}))

    def command(self, sql: str, params: Mapping[str, str] | None = None, in_database: bool = True) -> None:
        with self._lock:
            self._use(self.database if in_database else "default")
            if re.match(r"\s*(USE|DROP\s+DATABASE|RENAME\s+DATABASE)\b", sql, re.IGNORECASE):
                self._current.pop(self.directory, None)  # the engine's current database may change or go
            self._raw(sql, params, fmt="CSV")

    @classmethod
    def release(cls, directory: str | Path) -> None:
        """Close the engine of ``directory`` (a process about to fork must not hold one)."""
        with cls._lock:
            session = cls._sessions.pop(str(Path(directory).resolve()), None)
            cls._current.pop(str(Path(directory).resolve()), None)
            if session is not None:
                session.close()

    def insert_parquet(self, table: str, path: Path) -> None:
        self.command(f"INSERT INTO {table} SELECT * FROM file({str(path)!r}, Parquet)")  # noqa: S608 - catalog name, own temp file


class ServerConnection(ClickHouseConnection):
    """A ClickHouse server or cluster through clickhouse-connect (HTTP). The same statements as chDB.
    The client opens on ``default`` (the warehouse's database may not exist yet: ``copy`` creates it)
    and names the database with each request."""

    params_as_text = False

    def __init__(self, url: str):
        parsed = urlparse(url)
        database = (parsed.path or "/").strip("/") or "default"
        super().__init__(database)
        import clickhouse_connect

        try:
            self._client = clickhouse_connect.get_client(
                host=parsed.hostname or "localhost", port=parsed.port or 8123,
                username=unquote(parsed.username or "default"), password=unquote(parsed.password or ""),
                database="default", secure=parsed.scheme == "clickhouses", settings=dict(SETTINGS),
            )
        except Exception as exc:
            raise ClickHouseError(f"сервер ClickHouse недоступен: {str(exc)[:300]}") from exc

    def _run(self, call, in_database: bool = True):
        self._client.database = self.database if in_database else "default"
        try:
            return call()
        except Exception as exc:
            raise _failure(exc) from exc

    def native(self, sql: str, params: Mapping[str, object] | None = None) -> Result:
        return Result(self._run(lambda: self._client.query_arrow(sql, parameters=dict(params or {}))))

    def command(self, sql: str, params: Mapping[str, object] | None = None, in_database: bool = True) -> None:
        self._run(lambda: self._client.command(sql, parameters=dict(params or {})), in_database)

    def insert_parquet(self, table: str, path: Path) -> None:
        self._run(lambda: self._client.insert_arrow(table, pq.read_table(path)))

    def close(self) -> None:
        self._client.close()


# --- the tables -------------------------------------------------------------------------------

_TYPES = {"INTEGER": "Int32", "SMALLINT": "Int16", "TINYINT": "Int8", "BIGINT": "Int64", "DOUBLE": "Float64",
          "FLOAT": "Float32", "BOOLEAN": "Bool", "VARCHAR": "String", "BLOB": "String", "DATE": "Date32",
          "TIMESTAMP": "DateTime64(6)", "HUGEINT": "Int128", "UBIGINT": "UInt64", "UINTEGER": "UInt32"}
_FACTS = ("appeal", "appeal_open", "appeal_replaced")
# sort keys: what the page queries filter on first (a column missing from a table is skipped)
_FACT_KEY = ("toStartOfMonth(received_at)", "municipality_id", "sector_id", "received_at")
_ROLLUP_KEY = ("month", "week", "day", "start", "kind", "grain", "duration", "municipality_id", "sector_id")


def clickhouse_type(duck_type: str, nullable: bool) -> str:
    if duck_type.endswith("[]"):
        return f"Array({clickhouse_type(duck_type[:-2], False)})"  # ClickHouse arrays are never NULL
    base = _TYPES.get(duck_type.upper())
    if base is None:
        raise ClickHouseError(f"тип столбца {duck_type} не переносится в ClickHouse")
    return f"Nullable({base})" if nullable else base


def create_table_sql(table: str, columns: list[tuple[str, str, bool]]) -> str:
    """CREATE TABLE for one warehouse table: (column, DuckDB type, nullable) → a MergeTree."""
    names = {c for c, _, _ in columns}
    cols = ", ".join(f"`{c}` {clickhouse_type(t, n)}" for c, t, n in columns)
    if table in _FACTS and "received_at" in names:
        key = [k for k in _FACT_KEY if re.sub(r".*\((\w+)\)", r"\1", k) in names]
    elif "id" in names:
        key = ["id"]
    else:
        key = [k for k in _ROLLUP_KEY if k in names]
    return (f"CREATE TABLE {table} ({cols}) ENGINE = MergeTree ORDER BY ({', '.join(key)}) "  # noqa: S608
            "SETTINGS allow_nullable_key = 1")


def _duck_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    return [(r[0], r[1], bool(r[2])) for r in con.execute(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE table_name = $t "
        "AND schema_name = 'main' ORDER BY column_index", {"t": table}).fetchall()]


# --- rollups built on ClickHouse from the facts, with the formulas of data.rollup ----------------------

# every rollup of ``data.rollup``: the summed ones kept by views (``data.chrollup``), the open appeals and
# the stored quantiles
REBUILT: tuple[str, ...] = (*chrollup.SUMMED, "appeal_quantile", "appeal_open")


def is_summed(con: ClickHouseConnection) -> bool:
    """Whether the warehouse's rollups are the view-fed summing tables (False: a copy made before them)."""
    rows = con.native("SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'SummingMergeTree'",
                      {"db": con.database}).fetchall()
    return set(chrollup.STORED) <= {r[0] for r in rows}  # every one (a copy may predate a rollup)


def latest_receipt(con: ClickHouseConnection, database: str | None = None) -> dt.datetime | None:
    """The latest receipt of the facts (None: no facts; ClickHouse's max of no rows would be 1970)."""
    table = f"{database}.appeal" if database else "appeal"
    return con.native(f"SELECT maxOrNull(received_at) FROM {table}").fetchall()[0][0]  # noqa: S608 - our names


def build_rollups(con: ClickHouseConnection) -> dict[str, int]:
    """Fill the (empty) rollup tables from the facts: every appeal fed with ``+1`` into the change
    stream of ``data.chrollup``, whose views — the measure, duration and stock definitions of
    ``data.rollup`` written once in DuckDB's SQL and translated — write the summed rollups; then the
    open appeals and the stored quantiles. The same views keep the rollups on every import. Row counts."""
    chrollup.create_stream(con)
    try:
        chrollup.feed(con, "SELECT *, CAST(1 AS Int8) FROM appeal", None, latest_receipt(con))  # noqa: S608
    finally:
        chrollup.drop_stream(con)
    for table in chrollup.STORED:  # one block's partial sums each: merged once, before the first reader
        con.command(f"OPTIMIZE TABLE {table} FINAL")
    con.command(f"INSERT INTO appeal_open SELECT * FROM appeal WHERE {rollup.OPEN_SQL}")  # noqa: S608 - registry constants
    refresh_quantiles(con, None)
    return {t: con.native(f"SELECT count() FROM {t}").fetchall()[0][0] for t in REBUILT}  # noqa: S608


def refresh_quantiles(con: ClickHouseConnection, months: list[dt.date] | None) -> None:
    """``appeal_quantile`` for the months in ``months`` and the quarters holding them (None: all, the table
    empty), from the live durations: exact quantiles merge from no partial state, so the stored ones of
    a touched month or quarter are computed again (a cache refresh, a few hundred rows)."""
    params: dict[str, object] = {}
    if months is not None:
        quarters = rollup.period_starts("quarter", months)
        params.update(months=months, quarters=quarters)

    def run(sql: str, wrap: str = "{}") -> None:
        text, values = to_clickhouse(sql, {k: v for k, v in params.items() if f"${k}" in sql},
                                     as_text=con.params_as_text)
        con.command(wrap.format(text), values)

    # the live durations of the touched quarters, read (with FINAL) once for the ten statements below
    durations = "quantile_durations"
    kept = ", ".join(["month", "duration", *rollup._QUANTILE_DIMS, "micros"])
    con.command(f"DROP TABLE IF EXISTS {durations}")
    try:
        run(f"SELECT {kept} FROM appeal_duration" + (  # noqa: S608 - registry constants
            "" if months is None else " WHERE list_contains($quarters, CAST(date_trunc('quarter', month) AS DATE))"),
            f"CREATE TABLE {durations} ENGINE = MergeTree ORDER BY (month, duration) AS {{}}")
        if months is not None:
            run("DELETE FROM appeal_quantile WHERE (kind = 'month' AND list_contains($months, start)) "
                "OR (kind = 'quarter' AND list_contains($quarters, start))")
        levels = repr([float(x) for x in rollup.STORED_QUANTILES])
        for kind in rollup.QUANTILE_KINDS:
            start = f"CAST(date_trunc('{kind}', month) AS DATE)"
            which = "" if months is None else f" WHERE list_contains(${'months' if kind == 'month' else 'quarters'}, {start})"
            for grain in rollup.QUANTILE_GRAINS:
                cols = [d if d in grain else f"CAST(NULL AS {rollup._DIM_TYPES[d]}) AS {d}" for d in rollup._QUANTILE_DIMS]
                run(f"INSERT INTO appeal_quantile SELECT '{kind}' AS kind, {start} AS start, "  # noqa: S608 - registry constants
                    f"'{rollup.grain_code(grain)}' AS grain, {', '.join(cols)}, duration, "
                    f"quantile_cont(micros, {levels}) AS micros FROM {durations}{which} GROUP BY ALL")
    finally:
        con.command(f"DROP TABLE IF EXISTS {durations}")


def copy_warehouse(source: Path, target: ClickHouseConnection, progress=None, rebuild: bool = False) -> dict:
    """Copy every table of the DuckDB warehouse ``source`` (reference lists, facts, targets,
    boundaries, region settings) into ``target``; a dict of row counts and seconds. The rollups of
    ``REBUILT`` are computed on ClickHouse from the copied facts (``build_rollups``: the change stream's
    views, the ones every import then appends through); ``rebuild`` is kept for callers and has no
    effect any more (DuckDB's rollups have another layout: no signs, hour sums as floats).

    The tables are filled in a new database, checked (the row counts must match) and renamed into
    place at the end: a failure leaves the target as it was. A target that already holds a warehouse
    is refused (a copy never overwrites data)."""
    started = time.perf_counter()
    final = target.database
    present = target.native("SELECT name FROM system.databases").fetchall()
    if (final,) in present and target.native(
            "SELECT count() FROM system.tables WHERE database = {db:String}", {"db": final}).fetchall()[0][0]:
        raise ClickHouseError(f"в ClickHouse уже есть хранилище {final}: копия его не перезаписывает "
                              "(выберите другое место или удалите старое)")
    building = f"{final}_building"
    target.command(f"DROP DATABASE IF EXISTS {building}", in_database=False)
    target.command(f"CREATE DATABASE {building}", in_database=False)
    counts: dict[str, int] = {}
    scratch = Path(tempfile.mkdtemp(prefix="cur_copy_"))
    duck = duckdb.connect(str(source), read_only=True)
    previous = target.database
    try:
        tables = [r[0] for r in duck.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name").fetchall()]
        target.database = building
        tables = [t for t in tables if t not in chrollup.NOT_KEPT]
        for table in tables:
            columns = _duck_columns(duck, table)
            if table in chrollup.SUMMED:
                target.command(chrollup.create_table_sql(table))
                target.command(chrollup.create_view_sql(table, building))
            else:
                target.command(create_table_sql(table, columns))
            n = duck.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # noqa: S608 - catalog names
            if table in REBUILT:
                continue
            if n:
                path = scratch / f"{table}.parquet"
                # BLOBs travel as bytes, timestamps as microseconds: what the ClickHouse columns hold
                duck.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")  # noqa: S608 - catalog names
                target.insert_parquet(table, path)
                path.unlink()
            got = target.native(f"SELECT count() FROM {table}").fetchall()[0][0]  # noqa: S608
            if got != n:
                raise ClickHouseError(f"таблица {table}: скопировано {got} строк из {n}")
            counts[table] = n
            if progress:
                progress(table, n)
        if "appeal" in tables:  # every rollup built here, even one the DuckDB file predates
            for table in chrollup.SUMMED:
                if table not in tables:
                    target.command(chrollup.create_table_sql(table))
                    target.command(chrollup.create_view_sql(table, building))
            if "appeal_open" not in tables:
                target.command("CREATE TABLE appeal_open AS appeal")
            if "appeal_quantile" not in tables:
                dims = [(d, rollup._DIM_TYPES[d], True) for d in rollup._QUANTILE_DIMS]
                target.command(create_table_sql("appeal_quantile", [
                    ("kind", "VARCHAR", False), ("start", "DATE", False), ("grain", "VARCHAR", False), *dims,
                    ("duration", "TINYINT", False), ("micros", "DOUBLE[]", False)]))
            counts.update(build_rollups(target))
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        target.command("INSERT INTO meta VALUES ('engine_version', {v:String})", {"v": stamp})
        target.database = previous
        target.command(f"DROP DATABASE IF EXISTS {final}", in_database=False)  # only an empty one gets here
        target.command(f"RENAME DATABASE {building} TO {final}", in_database=False)
        # the views name their tables with the database: made again under its final name
        present = target.tables()
        for table in chrollup.SUMMED:
            if table in present:
                target.command(f"DROP VIEW {final}.{table}", in_database=False)
                target.command(chrollup.create_view_sql(table, final), in_database=False)
    except BaseException:
        target.database = previous
        target.command(f"DROP DATABASE IF EXISTS {building}", in_database=False)
        raise
    finally:
        target.database = previous
        duck.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"tables": counts, "appeals": counts.get("appeal", 0), "seconds": round(time.perf_counter() - started, 2)}
