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

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


class WriteFailed(RuntimeError):
    """The copy could not be written (no room on the disk); the served file is untouched. Russian text."""


# room a writer needs beyond a copy of the file: what an import adds, DuckDB's WAL and checkpoint
HEADROOM_SHARE, HEADROOM_MIN = 0.25, 64 << 20


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} МБ".replace(",", "\u00a0")


def _check_space(db: Path) -> None:
    size = (db.stat().st_size if db.exists() else 0) + (_wal(db).stat().st_size if _wal(db).exists() else 0)
    needed = size + max(HEADROOM_MIN, int(size * HEADROOM_SHARE))
    free = shutil.disk_usage(db.parent).free
    if free < needed:
        raise WriteFailed(f"недостаточно места на диске для записи хранилища: нужно не меньше {_mib(needed)}, "
                          f"свободно {_mib(free)} (в {db.parent}); хранилище не изменено")


def _no_space(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "no space left" in text


@contextmanager
def writing(db: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a private copy of ``db``; on success the copy replaces ``db``.

    On any exception the copy is thrown away and ``db`` is exactly as it was (or still absent).
    Free space is checked first (``WriteFailed``); a disk that fills up midway also ends in
    ``WriteFailed``, with the partial copy removed.
    """
    db = Path(db)
    work = db.with_name(db.name + ".writing")
    with writer_lock(db):
        for stale in (work, _wal(work)):  # left by a writer that was killed
            stale.unlink(missing_ok=True)
        _check_space(db)
        con = None
        try:
            if db.exists():
                shutil.copyfile(db, work)
                if _wal(db).exists():  # written in place by an older version: carry it over
                    shutil.copyfile(_wal(db), _wal(work))
            con = connect(work)
            yield con
            con.execute("CHECKPOINT")  # everything in the main file: the WAL is not switched in
            con.close()
            with open(work, "rb") as fh:
                os.fsync(fh.fileno())  # the new file is on disk before it becomes the served one
        except BaseException as exc:
            if con is not None:
                with suppress(Exception):
                    con.close()
            work.unlink(missing_ok=True)
            _wal(work).unlink(missing_ok=True)
            if _no_space(exc):
                raise WriteFailed("диск заполнился во время записи хранилища: неполная копия удалена, "
                                  "хранилище не изменено; освободите место и повторите") from exc
            raise
        os.replace(work, db)
        _wal(db).unlink(missing_ok=True)
        _wal(work).unlink(missing_ok=True)
