"""Failed sign-in attempts, counted per login and per client address across all server workers.

The counts live in a small SQLite file (every gunicorn worker sees the same numbers); a key that
failed too often within the window is refused until the window has passed.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

WINDOW_SECONDS = 15 * 60
MAX_PER_LOGIN = 5
MAX_PER_ADDRESS = 20


def default_path(users_file: Path) -> Path:
    digest = hashlib.sha256(str(users_file.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cur-heatmap-signin-{digest}.sqlite"


class Throttle:
    def __init__(self, path: Path, window: int = WINDOW_SECONDS, per_login: int = MAX_PER_LOGIN,
                 per_address: int = MAX_PER_ADDRESS) -> None:
        self.path, self.window, self.per_login, self.per_address = path, window, per_login, per_address
        with closing(self._db()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS failure (key TEXT NOT NULL, at REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS failure_key ON failure (key, at)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5, isolation_level=None)

    def _keys(self, login: str, address: str) -> list[tuple[str, int]]:
        return [(f"login:{login.lower()}", self.per_login), (f"addr:{address}", self.per_address)]

    def blocked(self, login: str, address: str) -> bool:
        since = time.time() - self.window
        with closing(self._db()) as db:
            for key, limit in self._keys(login, address):
                (n,) = db.execute("SELECT count(*) FROM failure WHERE key = ? AND at > ?", (key, since)).fetchone()
                if n >= limit:
                    return True
        return False

    def failed(self, login: str, address: str) -> None:
        now = time.time()
        with closing(self._db()) as db:
            db.executemany("INSERT INTO failure VALUES (?, ?)", [(k, now) for k, _ in self._keys(login, address)])
            db.execute("DELETE FROM failure WHERE at < ?", (now - self.window,))

    def succeeded(self, login: str) -> None:
        with closing(self._db()) as db:
            db.execute("DELETE FROM failure WHERE key = ?", (f"login:{login.lower()}",))
