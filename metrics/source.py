"""Where the metrics read from: one read-only warehouse path for the process.

Each call opens its own read-only connection: a DuckDB connection is not
shared between the server's threads, and a fresh open picks up a warehouse
file that an import or a demo rebuild has replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data.warehouse import connect, default_db_path

_configured: Path | None = None


class WarehouseMissing(RuntimeError):
    """The warehouse file does not exist yet."""


def configure(path: str | Path | None) -> None:
    global _configured
    _configured = Path(path) if path else None


def warehouse_path() -> Path:
    return _configured or default_db_path()


@contextmanager
def reader() -> Iterator[duckdb.DuckDBPyConnection]:
    path = warehouse_path()
    if not path.exists():
        raise WarehouseMissing(str(path))
    con = connect(path, read_only=True)
    try:
        yield con
    finally:
        con.close()
