"""Write the warehouse without disturbing its readers: work on a copy, switch it in atomically.

DuckDB lets one process write a file or many read it, and the dashboard's workers keep the served
file open read-only. So a writer (import, refresh, a roadmap entry) copies the file, writes the copy,
checkpoints it, and replaces the served file with ``os.replace``. Readers see the old file or the
new one, never a half-written state; ``metrics.source`` notices the new file and reopens.

One writer at a time: an exclusive ``flock`` on ``<db>.lock`` (released by the kernel if the writer
dies, so a killed import never blocks the next one). A writer killed midway leaves only its
``<db>.writing`` copy, which the next writer discards.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data.warehouse import connect


def _wal(path: Path) -> Path:
    return Path(str(path) + ".wal")


@contextmanager
def writer_lock(db: Path) -> Iterator[None]:
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(str(db) + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits for another writer; the kernel drops it if that one dies
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def writing(db: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a private copy of ``db``; on success the copy replaces ``db``.

    On any exception the copy is thrown away and ``db`` is exactly as it was (or still absent).
    """
    db = Path(db)
    work = db.with_name(db.name + ".writing")
    with writer_lock(db):
        for stale in (work, _wal(work)):  # left by a writer that was killed
            stale.unlink(missing_ok=True)
        if db.exists():
            shutil.copyfile(db, work)
            if _wal(db).exists():  # written in place by an older version: carry it over
                shutil.copyfile(_wal(db), _wal(work))
        con = connect(work)
        try:
            yield con
            con.execute("CHECKPOINT")  # everything in the main file: the WAL is not switched in
        except BaseException:
            con.close()
            work.unlink(missing_ok=True)
            _wal(work).unlink(missing_ok=True)
            raise
        con.close()
        with open(work, "rb") as fh:
            os.fsync(fh.fileno())  # the new file is on disk before it becomes the served one
        os.replace(work, db)
        _wal(db).unlink(missing_ok=True)
        _wal(work).unlink(missing_ok=True)
