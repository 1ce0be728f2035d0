"""Where the metrics read from: one read-only warehouse path for the process.

A DuckDB connection is not shared between threads, so each server thread keeps its own
read-only connection and reuses it (opening one costs more than a whole rollup query). When the
file is replaced (a demo rebuild or an import writing a new file and switching it in), the next
call sees another inode or mtime and reopens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data.warehouse import connect, default_db_path

_configured: Path | None = None
_local = threading.local()


class WarehouseMissing(RuntimeError):
    """The warehouse file does not exist yet."""


def configure(path: str | Path | None) -> None:
    global _configured
    _configured = Path(path) if path else None
    close_thread_connection()


def warehouse_path() -> Path:
    return _configured or default_db_path()


def close_thread_connection() -> None:
    cached = getattr(_local, "cached", None)
    if cached is not None:
        cached[1].close()
        _local.cached = None


@contextmanager
def reader() -> Iterator[duckdb.DuckDBPyConnection]:
    path = warehouse_path()
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        close_thread_connection()
        raise WarehouseMissing(str(path)) from exc
    identity = (str(path), st.st_ino, st.st_mtime_ns)
    cached = getattr(_local, "cached", None)
    if cached is None or cached[0] != identity:
        close_thread_connection()
        cached = (identity, connect(path, read_only=True))
        _local.cached = cached
    yield cached[1]
