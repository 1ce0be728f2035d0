"""Sign-in throttling and session revocation, shared by all server workers through one SQLite file.

Throttling slows guessing without locking the real owner out: each (login, address) pair gets an
exponentially growing wait after a few failures, so a stranger's failures from elsewhere cost the
owner nothing; a login attacked from many addresses gets a milder wait of its own (capped at a
minute). An attempt is *reserved* before the password is checked (counted as a failure until it
succeeds, inside one ``BEGIN IMMEDIATE`` transaction), so concurrent attempts cannot slip through
together.

Revocation: logging out records "every session of this login issued before now is void", so a
copied cookie dies with the owner's logout on every device.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

FREE_PAIR_FAILURES = 3  # this many failures of a pair pass without waiting
PAIR_MAX_WAIT = 15 * 60
FREE_LOGIN_FAILURES = 10
LOGIN_MAX_WAIT = 60
FORGET_AFTER = 24 * 3600


def default_path(users_file: Path) -> Path:
    digest = hashlib.sha256(str(users_file.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cur-heatmap-signin-{digest}.sqlite"


def wait_after(failures: int, free: int, cap: int) -> float:
    """Seconds to wait after ``failures`` failures: none for the first ``free``, then 1, 2, 4… s."""
    return 0.0 if failures < free else float(min(cap, 2 ** (failures - free)))


class _Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(self._db()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS attempt (key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
                       " last REAL NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS revoked (login TEXT PRIMARY KEY, before REAL NOT NULL)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)


class Throttle(_Store):
    def _keys(self, login: str, address: str) -> list[tuple[str, int, int]]:
        login = login.lower()
        return [(f"pair:{login}\x1f{address}", FREE_PAIR_FAILURES, PAIR_MAX_WAIT),
                (f"login:{login}", FREE_LOGIN_FAILURES, LOGIN_MAX_WAIT)]

    def reserve(self, login: str, address: str) -> float:
        """0 when an attempt may check its password now (and is counted until ``succeeded``),
        else the seconds left to wait; atomic across threads and workers."""
        now = time.time()
        with closing(self._db()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                wait = 0.0
                rows = []
                for key, free, cap in self._keys(login, address):
                    row = db.execute("SELECT failures, last FROM attempt WHERE key = ?", (key,)).fetchone()
                    failures, last = row if row else (0, 0.0)
                    rows.append((key, failures))
                    wait = max(wait, last + wait_after(failures, free, cap) - now)
                if wait <= 0:
                    for key, failures in rows:
                        db.execute("INSERT OR REPLACE INTO attempt VALUES (?, ?, ?)", (key, failures + 1, now))
                db.execute("DELETE FROM attempt WHERE last < ?", (now - FORGET_AFTER,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return max(0.0, wait)

    def succeeded(self, login: str, address: str) -> None:
        """The right password: this pair and the login start afresh."""
        with closing(self._db()) as db:
            db.executemany("DELETE FROM attempt WHERE key = ?", [(k,) for k, _, _ in self._keys(login, address)])


class Revocations(_Store):
    def revoke(self, login: str, at: float | None = None) -> None:
        with closing(self._db()) as db:
            db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (login, time.time() if at is None else at))

    def revoked_before(self, login: str) -> float:
        """Sessions of ``login`` issued before this moment are void (0: none revoked)."""
        with closing(self._db()) as db:
            row = db.execute("SELECT before FROM revoked WHERE login = ?", (login,)).fetchone()
        return float(row[0]) if row else 0.0
