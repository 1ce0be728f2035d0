"""Where the metrics read from: one read-only warehouse path for the process.

A DuckDB connection is not shared between threads, so each server thread keeps its own
read-only connection and reuses it (opening one costs more than a whole rollup query).

Imports never write the served file: they write a copy and switch it in with ``os.replace``
(``data.swap``). DuckDB keeps one database instance per path in a process, so a thread opening the
path while any other thread still holds a connection to the old file would get the *old* data. When
the file changes, the first thread to notice waits for queries in flight to finish (they take
milliseconds), closes every thread's connection, and only then lets anyone open the new file.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from data.warehouse import connect, default_db_path

_configured: Path | None = None
_served: weakref.WeakSet = weakref.WeakSet()  # connections opened here: read-only, one file for life
_local = threading.local()
_switch = threading.Condition()
_state: dict = {"identity": None, "active": 0, "connections": {}}  # guarded by _switch


class WarehouseMissing(RuntimeError):
    """The warehouse file does not exist yet."""


def configure(path: str | Path | None) -> None:
    global _configured
    _configured = Path(path) if path else None
    with _switch:
        _switch.wait_for(lambda: _state["active"] == 0, timeout=30)  # let queries in flight finish
        _close_all()


def warehouse_path() -> Path:
    return _configured or default_db_path()


def warehouse_identity() -> tuple[int, int]:
    """(inode, mtime) of the warehouse file: changes whenever a writer switches in a new file.
    Caches of answers key on it; raises ``WarehouseMissing`` when there is no file."""
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
