"""Sign-in throttling and session revocation, shared by all server workers through one SQLite file.

Throttling slows guessing without locking the real owner out: each (login, address) pair gets an
exponentially growing wait after a few failures, so a stranger's failures from elsewhere cost the
owner nothing; a login attacked from many addresses gets a milder wait of its own (capped at a
minute). An attempt is *reserved* before the password is checked (in flight, it counts as a failure until
it ends; reservations are taken inside ``BEGIN IMMEDIATE`` transactions), so concurrent guesses
cannot slip through together, while the owner's concurrent sign-ins only wait for each other.

Revocation: logging out records "every session of this login issued before now is void", so a
copied cookie dies with the owner's logout on every device.
"""

from __future__ import annotations

import hashlib
import secrets
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
IN_FLIGHT_EXPIRY = 30.0  # an attempt whose worker died stops counting as in flight
IN_FLIGHT_WAIT = 10.0


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
            db.execute("CREATE TABLE IF NOT EXISTS pending (key TEXT NOT NULL, token TEXT NOT NULL, at REAL NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS revoked (login TEXT PRIMARY KEY, before REAL NOT NULL)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)


class Throttle(_Store):
    def _keys(self, login: str, address: str) -> list[tuple[str, int, int]]:
        login = login.lower()
        return [(f"pair:{login}\x1f{address}", FREE_PAIR_FAILURES, PAIR_MAX_WAIT),
                (f"login:{login}", FREE_LOGIN_FAILURES, LOGIN_MAX_WAIT)]

    def reserve(self, login: str, address: str) -> tuple[float, str]:
        """(0, ticket) when an attempt may check its password now, else (seconds to wait, "").

        Attempts in flight count as failures until they end (``finish``), so concurrent guesses
        cannot pass the free ones together; an attempt held back only by others in flight waits
        for them (an owner signing in from several tabs at once is slowed, never refused)."""
        ticket = secrets.token_hex(8)
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while True:
            now = time.time()
            with closing(self._db()) as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    wait, crowded = 0.0, False
                    for key, free, cap in self._keys(login, address):
                        row = db.execute("SELECT failures, last FROM attempt WHERE key = ?", (key,)).fetchone()
                        failures, last = row if row else (0, 0.0)
                        (flying,) = db.execute("SELECT count(*) FROM pending WHERE key = ? AND at > ?",
                                               (key, now - IN_FLIGHT_EXPIRY)).fetchone()
                        wait = max(wait, last + wait_after(failures, free, cap) - now)
                        crowded = crowded or (flying > 0 and failures + flying >= free)
                    if wait <= 0 and not crowded:
                        db.executemany("INSERT INTO pending VALUES (?, ?, ?)",
                                       [(key, ticket, now) for key, _, _ in self._keys(login, address)])
                    db.execute("DELETE FROM attempt WHERE last < ?", (now - FORGET_AFTER,))
                    db.execute("DELETE FROM pending WHERE at < ?", (now - IN_FLIGHT_EXPIRY,))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            if wait > 0:
                return wait, ""
            if not crowded:
                return 0.0, ticket
            if time.monotonic() > deadline:
                return 1.0, ""
            time.sleep(0.05)

    def finish(self, login: str, address: str, ticket: str, success: bool) -> None:
        """The attempt's outcome: a success clears the pair and the login, a failure counts."""
        now = time.time()
        with closing(self._db()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM pending WHERE token = ?", (ticket,))
            for key, _, _ in self._keys(login, address):
                if success:
                    db.execute("DELETE FROM attempt WHERE key = ?", (key,))
                else:
                    db.execute("""INSERT INTO attempt VALUES (?, 1, ?) ON CONFLICT (key)
                                  DO UPDATE SET failures = failures + 1, last = excluded.last""", (key, now))
            db.execute("COMMIT")


class Revocations(_Store):
    def revoke(self, login: str, at: float | None = None) -> None:
        with closing(self._db()) as db:
            db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (login, time.time() if at is None else at))

    def revoked_before(self, login: str) -> float:
        """Sessions of ``login`` issued before this moment are void (0: none revoked)."""
        with closing(self._db()) as db:
            row = db.execute("SELECT before FROM revoked WHERE login = ?", (login,)).fetchone()
        return float(row[0]) if row else 0.0
