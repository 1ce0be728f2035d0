"""Undo an import: remove the rows it inserted and put back the rows it replaced.

Every appeal row carries the import that last wrote it (``appeal.import_id``), and every import
keeps the rows it replaced as they were (``appeal_replaced``, ``replaced_by`` = that import). So
reverting import N, even after later imports:

- a row N inserted and nobody changed since is deleted;
- a row N replaced and nobody changed since gets its previous version back;
- a row a later import changed after N wrote it is left as the later import made it, and reported.

Runs inside the writer's transaction (``data.swap.writing``): the dashboard switches from the old
file to the reverted one at once. The rollups follow for the days the touched rows belong to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from data.rollup import refresh_rollups
from data.schema import APPEAL_COLUMNS, create_schema
from data.warehouse import region_now, set_meta


class RevertFailed(ValueError):
    """The import cannot be reverted; the message is for a person."""


@dataclass
class RevertResult:
    import_id: int
    file: str
    deleted: int = 0  # rows the import inserted, removed
    restored: int = 0  # rows the import replaced, back as they were
    kept_changed_later: int = 0  # rows later imports changed after this one: left as they are

    def summary(self) -> str:
        text = (f"загрузка {self.import_id} ({self.file}) отменена: удалено строк — {self.deleted}, "
                f"восстановлено прежних версий — {self.restored}")
        if self.kept_changed_later:
            text += (f"; {self.kept_changed_later} строк позже изменены другими загрузками и оставлены как есть "
                     "(python -m data imports покажет, какими)")
        return text


def list_imports(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every import, newest first: file, time, counts and whether it was reverted."""
    columns = [c[0] for c in con.execute("DESCRIBE import_log").fetchall()]
    reverted = "reverted_at" if "reverted_at" in columns else "CAST(NULL AS TIMESTAMP) AS reverted_at"
    rows = con.execute(
        f"""SELECT import_id, file, source, started_at, finished_at, read, accepted, inserted, updated,
                   unchanged, rejected, {reverted}
            FROM import_log ORDER BY import_id DESC"""  # noqa: S608 - a constant column choice
    ).fetchall()
    names = ("import_id", "file", "source", "started_at", "finished_at", "read", "accepted", "inserted",
             "updated", "unchanged", "rejected", "reverted_at")
    return [dict(zip(names, r, strict=True)) for r in rows]


def revert_import(con: duckdb.DuckDBPyConnection, import_id: int,
                  refresh: Callable[[duckdb.DuckDBPyConnection, list], None] | None = None) -> RevertResult:
    """Revert ``import_id`` on a writable connection (the caller switches the file in). ``refresh``
    replaces the rollup refresh (data/chimport.py runs this on a scratch DuckDB)."""
    create_schema(con)
    row = con.execute("SELECT file, finished_at, reverted_at FROM import_log WHERE import_id = ?",
                      [import_id]).fetchall()
    if not row:
        raise RevertFailed(f"нет загрузки с номером {import_id} (список: python -m data imports)")
    file, finished, reverted = row[0]
    if reverted is not None:
        raise RevertFailed(f"загрузка {import_id} уже отменена {reverted:%d.%m.%Y %H:%M}")
    if finished is None:
        raise RevertFailed(f"загрузка {import_id} не была завершена: отменять нечего")
    result = RevertResult(import_id, file)
    cols = ", ".join(APPEAL_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        # rows this import wrote that a later import replaced (their pre-image names this import)
        result.kept_changed_later = con.execute(
            """SELECT count(DISTINCT (source, source_id)) FROM appeal_replaced
               WHERE import_id = $id AND replaced_by > $id""", {"id": import_id}).fetchall()[0][0]
        days = {d for (d,) in con.execute(
            """SELECT DISTINCT CAST(received_at AS DATE) FROM appeal WHERE import_id = $id
               UNION SELECT DISTINCT CAST(received_at AS DATE) FROM appeal_replaced WHERE replaced_by = $id""",
            {"id": import_id}).fetchall()}
        # still as this import left them: replaced ones go back to their pre-image, new ones go away
        con.execute(
            """CREATE TEMP TABLE rev_restore AS
               SELECT p.* EXCLUDE (replaced_by) FROM appeal_replaced p JOIN appeal a
               ON a.source = p.source AND a.source_id = p.source_id AND a.import_id = $id
               WHERE p.replaced_by = $id""", {"id": import_id})
        result.restored = con.execute("SELECT count(*) FROM rev_restore").fetchall()[0][0]
        result.deleted = con.execute("SELECT count(*) FROM appeal WHERE import_id = $id",
                                     {"id": import_id}).fetchall()[0][0] - result.restored
        con.execute("DELETE FROM appeal WHERE import_id = $id", {"id": import_id})
        con.execute(f"INSERT INTO appeal ({cols}) SELECT {cols} FROM rev_restore ORDER BY received_at")  # noqa: S608
        con.execute("DROP TABLE rev_restore")
        con.execute("DELETE FROM appeal_replaced WHERE replaced_by = $id", {"id": import_id})
        con.execute("UPDATE import_log SET reverted_at = $now WHERE import_id = $id",
                    {"now": region_now(con), "id": import_id})
        if days:
            (refresh or refresh_rollups)(con, sorted(days))
        as_of = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
        if as_of is not None:
            set_meta(con, "data_as_of", as_of.isoformat(sep=" "))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result
