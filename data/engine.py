"""Which engine holds the warehouse (DESIGN §6), chosen by ``CUR_ENGINE`` or ``--engine``:

- ``duckdb:PATH`` — a DuckDB file (the default: ``CUR_DB`` or ``var/warehouse.duckdb``);
- ``chdb:DIR`` — ClickHouse inside this process (chDB), its data in a directory;
- ``clickhouse://user:password@host:8123/db`` — a ClickHouse server or cluster.

The same metrics answer on each; ``python -m data copy`` carries a DuckDB warehouse to ClickHouse,
and imports (and their revert) write to either (``data.chimport`` for ClickHouse).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from data.warehouse import default_db_path

Kind = Literal["duckdb", "chdb", "clickhouse"]


class EngineError(ValueError):
    """An engine setting that cannot be used; the message is for a person."""


@dataclass(frozen=True)
class EngineSpec:
    kind: Kind
    target: str  # a path (DuckDB file, chDB directory) or the server's URL

    @property
    def path(self) -> Path:
        return Path(self.target)

    def __str__(self) -> str:
        if self.kind == "clickhouse":  # never show a password
            from urllib.parse import urlparse

            u = urlparse(self.target)
            return f"{u.scheme}://{u.hostname}:{u.port or 8123}{u.path}"
        return f"{self.kind}:{self.target}"


def parse_engine(text: str | None) -> EngineSpec:
    """An engine setting (None or empty: ``CUR_ENGINE``, else the DuckDB default)."""
    text = (text if text is not None else os.environ.get("CUR_ENGINE", "")).strip()
    if not text:
        return EngineSpec("duckdb", str(default_db_path()))
    if text.startswith(("clickhouse://", "clickhouses://")):
        return EngineSpec("clickhouse", text)
    kind, sep, target = text.partition(":")
    if not sep or kind not in ("duckdb", "chdb"):
        raise EngineError(f"не понят движок «{text}»: нужно duckdb:ПУТЬ, chdb:ПАПКА "
                          "или clickhouse://пользователь:пароль@сервер:8123/база")
    if not target.strip():
        if kind == "duckdb":
            return EngineSpec("duckdb", str(default_db_path()))
        raise EngineError("для chdb укажите папку хранилища: chdb:ПАПКА")
    return EngineSpec(kind, target.strip())  # type: ignore[arg-type]


def open_clickhouse(spec: EngineSpec, create: bool = False):
    """A connection to a ClickHouse engine (chDB or a server)."""
    from data.clickhouse import ChdbConnection, ServerConnection

    if spec.kind == "chdb":
        return ChdbConnection(spec.target, create=create)
    if spec.kind == "clickhouse":
        return ServerConnection(spec.target)
    raise EngineError(f"{spec} — не ClickHouse")


def is_clickhouse(con: object) -> bool:
    """True for a connection of ``data.clickhouse`` (it speaks DuckDB's SQL through the dialect)."""
    return getattr(con, "dialect", "duckdb") == "clickhouse"


def table_names(con) -> set[str]:
    """The warehouse's tables on either engine."""
    if is_clickhouse(con):
        return con.tables()
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
