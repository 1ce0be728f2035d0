"""Where the metrics read from: one read-only warehouse path for the process.

A DuckDB connection is not shared between threads, so each server thread keeps its own
read-only connection and reuses it (opening one costs more than a whole rollup query).

Imports never write the served file: they write a copy and switch it in with ``os.replace``
(``data.swap``). DuckDB keeps one database instance per path in a process, so a thread opening the
path while any other thread still holds a connection to the old file would get the *old* data. When
the file changes, the first thread to notice waits for queries in flight to finish (they take
milliseconds), closes every thread's connection, and only then lets anyone open the new file.

The warehouse may also live on ClickHouse (``CUR_ENGINE=chdb:DIR`` or ``clickhouse://…``, see
``data.engine``): ``reader`` then gives a connection of ``data.clickhouse`` that takes the same SQL.
"""

from __future__ import annotations

import os
import threading
import weakref
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from data.engine import EngineSpec, open_clickhouse, parse_engine
from data.warehouse import connect

_configured: Path | None = None
_configured_engine: EngineSpec | None = None
_served: weakref.WeakSet = weakref.WeakSet()  # connections opened here: read-only, one file for life
_local = threading.local()
_switch = threading.Condition()
_state: dict = {"identity": None, "active": 0, "connections": {}}  # guarded by _switch


class WarehouseMissing(RuntimeError):
    """The warehouse file does not exist yet."""


def configure(path: str | Path | None) -> None:
    """Serve the DuckDB file ``path``, or an engine written as ``chdb:DIR`` / ``clickhouse://…``
    (None: ``CUR_ENGINE``, else ``CUR_DB``, else var/warehouse.duckdb)."""
    global _configured, _configured_engine
    text = str(path) if path else ""
    if text.startswith(("duckdb:", "chdb:", "clickhouse://", "clickhouses://")):
        _configured_engine = parse_engine(text)
        _configured = _configured_engine.path if _configured_engine.kind == "duckdb" else None
    else:
        _configured_engine = None
        _configured = Path(path) if path else None
    with _switch:
        _switch.wait_for(lambda: _state["active"] == 0, timeout=30)  # let queries in flight finish
        _close_all()


def engine() -> EngineSpec:
    """The engine served: configured, else ``CUR_ENGINE``, else the DuckDB file."""
    if _configured_engine is not None:
        return _configured_engine
    if _configured is not None:
        return EngineSpec("duckdb", str(_configured))
    return parse_engine(None)


def warehouse_path() -> Path:
    """The DuckDB file (or the chDB directory) served."""
    return _configured or engine().path


def warehouse_identity() -> tuple[int, int]:
    """Changes whenever a writer switches in new data: (inode, mtime) of the DuckDB file; on ClickHouse
    (a checksum of the engine, a checksum of the copy's version and data date). Caches of answers
    and versioned URLs key on it; raises ``WarehouseMissing`` when there is none."""
    spec = engine()
    if spec.kind != "duckdb":
        with reader() as con:
            rows = con.execute("SELECT key, value FROM meta WHERE key IN ('engine_version', 'data_as_of') "
                               "ORDER BY key").fetchall()
        return zlib.crc32(str(spec).encode()), zlib.crc32("|".join(str(v) for _, v in rows).encode())
    path = warehouse_path()
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise WarehouseMissing(str(path)) from exc
    return st.st_ino, st.st_mtime_ns


def is_served(con: duckdb.DuckDBPyConnection) -> bool:
    """True for a read-only connection of ``reader``: what it sees never changes while it is open."""
    return con in _served


def close_thread_connection() -> None:
    with _switch:
        con = _state["connections"].pop(threading.get_ident(), None)
    if con is not None:
        con.close()


def _close_all() -> None:
    for con in _state["connections"].values():
        with suppress(duckdb.Error):  # still busy after the wait's timeout: it is dropped all the same
            con.close()
    _state["connections"].clear()
    _state["identity"] = None


_clickhouse: dict[tuple, object] = {}  # (engine, thread or 0) -> connection


def _clickhouse_connection(spec: EngineSpec):
    """chDB: one engine per process, shared (it runs one statement at a time); a server: one HTTP
    client per thread."""
    from data.clickhouse import ClickHouseError

    key = (str(spec), 0 if spec.kind == "chdb" else threading.get_ident())
    with _switch:
        con = _clickhouse.get(key)
        if con is None:
            try:
                con = open_clickhouse(spec)
            except ClickHouseError as exc:
                raise WarehouseMissing(str(exc)) from exc
            _clickhouse[key] = con
    return con


@contextmanager
def reader() -> Iterator[duckdb.DuckDBPyConnection]:
    depth = getattr(_local, "depth", 0)
    if depth:  # nested use inside one thread: the connection already in hand
        _local.depth = depth + 1
        try:
            yield _local.con
        finally:
            _local.depth = depth
        return
    spec = engine()
    if spec.kind != "duckdb":
        con = _clickhouse_connection(spec)
        _local.depth, _local.con = 1, con
        try:
            yield con
        finally:
            _local.depth, _local.con = 0, None
        return
    path = warehouse_path()
    try:
        identity = (str(path), *warehouse_identity())
    except WarehouseMissing:
        close_thread_connection()
        raise
    me = threading.get_ident()
    with _switch:
        if _state["identity"] != identity:
            _switch.wait_for(lambda: _state["active"] == 0, timeout=30)
            _close_all()
            _state["identity"] = identity
        con = _state["connections"].get(me)
        if con is None:
            con = connect(path, read_only=True)
            _state["connections"][me] = con
            _served.add(con)
        _state["active"] += 1
    _local.depth, _local.con = 1, con
    try:
        yield con
    finally:
        _local.depth, _local.con = 0, None
        with _switch:
            _state["active"] -= 1
            _switch.notify_all()
