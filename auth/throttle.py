"""Sign-in throttling and session revocation: the web tier's only state, kept where every server sees it.

Two stores answer the same interface (``AuthState``) with the same rules:
- ``SqliteState`` — a SQLite file in the machine's temp folder, shared by the workers of one machine
  (the default: DuckDB or chDB warehouse, one machine);
- ``ClickHouseState`` — tables in the warehouse's ClickHouse (database ``<db>_auth``, created on first
  use; MergeTree with a TTL, so old attempts and marks expire by themselves), shared by every machine
  that serves one ClickHouse (the default when ``CUR_ENGINE`` is a ClickHouse server).
``CUR_AUTH_STATE`` overrides the choice: ``sqlite:PATH``, ``clickhouse://…`` (its database as given) or
``chdb:DIR`` (ClickHouse in this process: one machine, or tests).

Throttling slows guessing without locking the real owner out: each (login, address) pair gets an
exponentially growing wait after a few failures, so a stranger's failures from elsewhere cost the
owner nothing; a login attacked from many addresses gets a milder wait of its own (capped at a
minute). A key's failures are those since its last success, forgotten after a day. An attempt is
*reserved* before the password is checked: in flight, it counts as a failure until it ends, so
concurrent guesses cannot slip through together, while the owner's concurrent sign-ins only wait for
each other. SQLite reserves inside ``BEGIN IMMEDIATE``; ClickHouse has no transactions, so an attempt
writes its reservation first and then counts every other one it sees (of two racing attempts the later
reader always sees the earlier one) and withdraws when that makes it one too many.

Revocation: logging out records "every session of this login issued before now is void", so a
copied cookie dies with the owner's logout on every device. Reading the ClickHouse marks on every
request would cost a round trip each, so ``RevocationList`` keeps them per process and reloads them
every ``REVOCATION_REFRESH`` seconds: a logout takes effect on the other machines within that time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse, urlunparse

log = logging.getLogger(__name__)

FREE_PAIR_FAILURES = 3  # this many failures of a pair pass without waiting
PAIR_MAX_WAIT = 15 * 60
FREE_LOGIN_FAILURES = 10
LOGIN_MAX_WAIT = 60
FORGET_AFTER = 24 * 3600
IN_FLIGHT_EXPIRY = 30.0  # an attempt whose worker died stops counting as in flight
IN_FLIGHT_WAIT = 10.0
REVOCATION_REFRESH = 5.0  # seconds a process trusts its copy of the ClickHouse logout marks
REVOCATION_STALE_LIMIT = 60.0  # the store unreachable longer than this: signed-in requests are refused
REVOCATION_KEEP_DAYS = 100  # longer than any session lives (a wall display: 90 days)


class StateUnavailable(RuntimeError):
    """The store of sign-in attempts and logout marks cannot be read or written; the message is for a person."""


def default_path(users_file: Path) -> Path:
    digest = hashlib.sha256(str(users_file.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cur-heatmap-signin-{digest}.sqlite"


def wait_after(failures: int, free: int, cap: int) -> float:
    """Seconds to wait after ``failures`` failures: none for the first ``free``, then 1, 2, 4… s."""
    return 0.0 if failures < free else float(min(cap, 2 ** (failures - free)))


def _keys(login: str, address: str) -> list[tuple[str, int, int]]:
    """The counters an attempt touches, hashed: the stores hold no logins or addresses in the clear."""
    login = login.lower()
    raw = [(f"pair:{login}\x1f{address}", FREE_PAIR_FAILURES, PAIR_MAX_WAIT),
           (f"login:{login}", FREE_LOGIN_FAILURES, LOGIN_MAX_WAIT)]
    return [(hashlib.sha256(k.encode()).hexdigest()[:32], free, cap) for k, free, cap in raw]


def _verdict(keys: list[tuple[str, int, int]], seen: dict[str, tuple[int, float, int]],
             now: float) -> tuple[float, bool]:
    """(seconds to wait, crowded) from each key's (failures, last failure, other attempts in flight):
    attempts in flight count as failures, so one is held back when they would use up the free ones."""
    wait, crowded = 0.0, False
    for key, free, cap in keys:
        failures, last, flying = seen.get(key, (0, 0.0, 0))
        wait = max(wait, last + wait_after(failures, free, cap) - now)
        crowded = crowded or (flying > 0 and failures + flying >= free)
    return wait, crowded


class AuthState:
    """Sign-in attempts and logout marks; ``SqliteState`` and ``ClickHouseState`` keep them."""

    description = ""
    revocation_refresh = 0.0  # 0: read the marks on every request (a local file is cheap)

    def reserve(self, login: str, address: str) -> tuple[float, str]:
        """(0, ticket) when an attempt may check its password now, else (seconds to wait, "").

        An attempt held back only by others in flight waits for them (an owner signing in from
        several tabs at once is slowed, never refused)."""
        keys = _keys(login, address)
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while True:
            ticket = secrets.token_hex(8)  # a fresh one per try: a withdrawn ticket stays ended
            wait, crowded = self._try(keys, ticket, time.time())
            if wait > 0:
                return wait, ""
            if not crowded:
                return 0.0, ticket
            if time.monotonic() > deadline:
                return 1.0, ""
            time.sleep(0.03 + random.random() * 0.05)  # noqa: S311 - jitter: two withdrawn attempts rarely retry together

    def finish(self, login: str, address: str, ticket: str, success: bool) -> None:
        """The attempt's outcome: a success clears the pair and the login, a failure counts."""
        self._end(_keys(login, address), ticket, success, time.time())

    def _try(self, keys: list[tuple[str, int, int]], ticket: str, now: float) -> tuple[float, bool]:
        raise NotImplementedError

    def _end(self, keys: list[tuple[str, int, int]], ticket: str, success: bool, now: float) -> None:
        raise NotImplementedError

    def revoke(self, login: str, at: float | None = None) -> None:
        """Sessions of ``login`` issued before ``at`` (now) are void."""
        raise NotImplementedError

    def revocations(self) -> dict[str, float]:
        """Every login's latest mark: its sessions issued before that moment are void."""
        raise NotImplementedError

    def revoked_before(self, login: str) -> float:
        return self.revocations().get(login, 0.0)

    def check(self) -> None:
        """Raise ``StateUnavailable`` unless the store can be read and written (the start-up check)."""
        self.revocations()

    def close(self) -> None:
        pass


# ---- one machine: SQLite --------------------------------------------------------------------


class SqliteState(AuthState):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS failure (key TEXT NOT NULL, at REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS failure_key ON failure (key)")
            db.execute("CREATE TABLE IF NOT EXISTS pending (key TEXT NOT NULL, token TEXT NOT NULL, at REAL NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS revoked (login TEXT PRIMARY KEY, before REAL NOT NULL)")

    def _db(self) -> closing[sqlite3.Connection]:
        try:
            return closing(sqlite3.connect(self.path, timeout=10, isolation_level=None))
        except sqlite3.Error as exc:
            raise StateUnavailable(f"файл отметок входа {self.path} не открывается: {exc}") from exc

    def _run(self, work: Callable[[sqlite3.Connection], object]) -> object:
        try:
            with self._db() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    out = work(db)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return out
        except (sqlite3.Error, OSError) as exc:
            raise StateUnavailable(f"файл отметок входа {self.path} не читается: {exc}") from exc

    def _try(self, keys: list[tuple[str, int, int]], ticket: str, now: float) -> tuple[float, bool]:
        def work(db: sqlite3.Connection) -> tuple[float, bool]:
            seen = {}
            for key, _, _ in keys:
                failures, last = db.execute("SELECT count(*), coalesce(max(at), 0) FROM failure WHERE key = ? AND at > ?",
                                            (key, now - FORGET_AFTER)).fetchone()
                (flying,) = db.execute("SELECT count(*) FROM pending WHERE key = ? AND at > ?",
                                       (key, now - IN_FLIGHT_EXPIRY)).fetchone()
                seen[key] = (failures, last, flying)
            wait, crowded = _verdict(keys, seen, now)
            if wait <= 0 and not crowded:
                db.executemany("INSERT INTO pending VALUES (?, ?, ?)", [(key, ticket, now) for key, _, _ in keys])
            db.execute("DELETE FROM failure WHERE at < ?", (now - FORGET_AFTER,))
            db.execute("DELETE FROM pending WHERE at < ?", (now - IN_FLIGHT_EXPIRY,))
            return wait, crowded

        return self._run(work)  # type: ignore[return-value]

    def _end(self, keys: list[tuple[str, int, int]], ticket: str, success: bool, now: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM pending WHERE token = ?", (ticket,))
            for key, _, _ in keys:
                if success:
                    db.execute("DELETE FROM failure WHERE key = ?", (key,))
                else:
                    db.execute("INSERT INTO failure VALUES (?, ?)", (key, now))

        self._run(work)

    def revoke(self, login: str, at: float | None = None) -> None:
        stamp = time.time() if at is None else at
        self._run(lambda db: db.execute("""INSERT INTO revoked VALUES (?, ?) ON CONFLICT (login)
                                           DO UPDATE SET before = max(before, excluded.before)""", (login, stamp)))

    def revocations(self) -> dict[str, float]:
        return dict(self._run(lambda db: db.execute("SELECT login, before FROM revoked").fetchall()))  # type: ignore[arg-type]

    def revoked_before(self, login: str) -> float:
        row = self._run(lambda db: db.execute("SELECT before FROM revoked WHERE login = ?", (login,)).fetchone())
        return float(row[0]) if row else 0.0  # type: ignore[index]


# ---- several machines: ClickHouse -----------------------------------------------------------

_EVENTS = """CREATE TABLE IF NOT EXISTS signin_event (
    key String, ticket String, kind LowCardinality(String), at Float64
) ENGINE = MergeTree ORDER BY (key, at)
TTL toDateTime(at) + INTERVAL 2 DAY"""
_MARKS = f"""CREATE TABLE IF NOT EXISTS logout_mark (login String, before Float64)
ENGINE = MergeTree ORDER BY login
TTL toDateTime(before) + INTERVAL {REVOCATION_KEEP_DAYS} DAY"""
# per key: failures since its last success (and within a day), the latest of them, the tickets
# reserved lately and those ended (by an outcome or a withdrawal)
_LOOK = """SELECT key, countIf(kind = 'fail' AND at > ok_at), maxIf(at, kind = 'fail' AND at > ok_at),
       groupArrayIf(ticket, kind = 'pending' AND at > {flying:Float64}), groupArrayIf(ticket, kind != 'pending')
FROM (SELECT key, ticket, kind, at, max(if(kind = 'ok', at, 0)) OVER (PARTITION BY key) AS ok_at
      FROM signin_event WHERE key IN ({k0:String}, {k1:String}) AND at > {since:Float64})
GROUP BY key"""


class ClickHouseState(AuthState):
    """Append-only tables in ClickHouse: ``signin_event`` (reservations, outcomes, withdrawals) and
    ``logout_mark``. Rows are never updated, so concurrent writers from several machines cannot lose
    each other's failures. Each thread keeps its own connection (an HTTP client is not shared)."""

    revocation_refresh = REVOCATION_REFRESH

    def __init__(self, connect: Callable[[bool], object], description: str) -> None:
        self._connect = connect
        self.description = description
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def for_target(cls, target: str, database: str | None = None) -> ClickHouseState:
        """``clickhouse://…`` (the URL's database, or ``database``) or ``chdb:DIR`` (database ``cur_auth``)."""
        from data.clickhouse import DATABASE, ChdbConnection, ServerConnection

        if target.startswith("chdb:"):
            directory = target.removeprefix("chdb:")
            name = database or f"{DATABASE}_auth"
            return cls(lambda create: ChdbConnection(directory, database=name, create=create), f"chdb:{directory} ({name})")
        parsed = urlparse(target)
        name = database or (parsed.path or "/").strip("/") or "default"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):  # it is written into CREATE DATABASE
            raise StateUnavailable(f"хранилище отметок входа: недопустимое имя базы «{name[:60]}»")
        url = urlunparse(parsed._replace(path="/" + name))
        return cls(lambda _create: ServerConnection(url), f"{parsed.scheme}://{parsed.hostname}:{parsed.port or 8123}/{name}")

    def _con(self):
        from data.clickhouse import ClickHouseError

        con = getattr(self._local, "con", None)
        if con is None:
            try:
                # the database is created once per process; a store that vanished later is not recreated empty
                con = self._local.con = self._connect(not self._ready)
            except ClickHouseError as exc:
                raise StateUnavailable(f"хранилище отметок входа {self.description} недоступно: {exc}") from exc
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    self._call(lambda: self._create(con))
                    self._ready = True
        return con

    @staticmethod
    def _create(con) -> None:
        """Create what is missing, and only that: a user allowed to write the tables but not to create
        databases works once they exist (ClickHouse checks the right before ``IF NOT EXISTS``)."""
        name, con.database = con.database, "default"  # asked from a database that surely exists
        try:
            databases = {r[0] for r in con.native("SELECT name FROM system.databases").fetchall()}
        finally:
            con.database = name
        if name not in databases:
            con.command(f"CREATE DATABASE IF NOT EXISTS {name}", in_database=False)
        present = con.tables()
        for table, ddl in (("signin_event", _EVENTS), ("logout_mark", _MARKS)):
            if table not in present:
                con.command(ddl)

    def _call(self, work: Callable[[], object]) -> object:
        from data.clickhouse import ClickHouseError

        try:
            return work()
        except ClickHouseError as exc:
            con = getattr(self._local, "con", None)
            self._local.con = None  # a broken client is opened again on the next call
            if con is not None:
                with contextlib.suppress(Exception):  # closing what already failed
                    con.close()
            raise StateUnavailable(f"хранилище отметок входа {self.description} недоступно: {exc}") from exc

    def _params(self, con, values: dict[str, object]) -> dict[str, object]:
        from data.dialect import bind_value

        return {k: bind_value(v)[1] for k, v in values.items()} if con.params_as_text else values

    def _native(self, sql: str, values: dict[str, object]) -> list[tuple]:
        con = self._con()
        return self._call(lambda: con.native(sql, self._params(con, values)).fetchall())  # type: ignore[return-value]

    def _command(self, sql: str, values: dict[str, object]) -> None:
        con = self._con()
        self._call(lambda: con.command(sql, self._params(con, values)))

    def _add(self, rows: list[tuple[str, str, str, float]]) -> None:
        """One INSERT for all rows: an outcome ends its reservation and counts in the same step."""
        selects, values = [], {}
        for i, (key, ticket, kind, at) in enumerate(rows):
            selects.append(f"SELECT {{k{i}:String}}, {{t{i}:String}}, {{kind{i}:String}}, {{at{i}:Float64}}")
            values.update({f"k{i}": key, f"t{i}": ticket, f"kind{i}": kind, f"at{i}": float(at)})
        self._command("INSERT INTO signin_event (key, ticket, kind, at) " + " UNION ALL ".join(selects), values)

    def _look(self, keys: list[tuple[str, int, int]], ticket: str, now: float) -> dict[str, tuple[int, float, int]]:
        rows = self._native(_LOOK, {"k0": keys[0][0], "k1": keys[1][0], "since": now - FORGET_AFTER,
                                    "flying": now - IN_FLIGHT_EXPIRY})
        seen = {}
        for key, failures, last, reserved, ended in rows:
            seen[key] = (int(failures), float(last), len(set(reserved) - set(ended) - {ticket}))
        return seen

    def _try(self, keys: list[tuple[str, int, int]], ticket: str, now: float) -> tuple[float, bool]:
        wait, _ = _verdict(keys, self._look(keys, ticket, now), now)
        if wait > 0:
            return wait, False
        self._add([(key, ticket, "pending", now) for key, _, _ in keys])
        # counted after our own reservation is visible: of two racing attempts the later reader sees the other
        wait, crowded = _verdict(keys, self._look(keys, ticket, time.time()), now)
        if wait > 0 or crowded:
            self._add([(key, ticket, "done", time.time()) for key, _, _ in keys])
        return wait, crowded

    def _end(self, keys: list[tuple[str, int, int]], ticket: str, success: bool, now: float) -> None:
        self._add([(key, ticket, "ok" if success else "fail", now) for key, _, _ in keys])

    def check(self) -> None:
        """Read the marks and write a row that means nothing (a withdrawal of no attempt): a user
        allowed only to read fails here, at start-up, not at the first sign-in."""
        self.revocations()
        self._add([("start-up check", secrets.token_hex(8), "done", time.time())])

    def revoke(self, login: str, at: float | None = None) -> None:
        self._command("INSERT INTO logout_mark (login, before) SELECT {login:String}, {before:Float64}",
                      {"login": login, "before": time.time() if at is None else float(at)})

    def revocations(self) -> dict[str, float]:
        rows = self._native("SELECT login, max(before) FROM logout_mark WHERE before > {since:Float64} GROUP BY login",
                            {"since": time.time() - REVOCATION_KEEP_DAYS * 86400.0})
        return {login: float(before) for login, before in rows}

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        self._local.con = None
        if con is not None:
            con.close()


# ---- choosing and caching ---------------------------------------------------------------------


def state_spec(explicit: str | None, engine: str | None) -> str:
    """Where the state lives: ``CUR_AUTH_STATE`` if set, else the ClickHouse server of ``CUR_ENGINE``
    (database ``<db>_auth``), else "" — the machine's SQLite file."""
    if explicit and explicit.strip():
        return explicit.strip()
    engine = (engine or "").strip()
    if engine.startswith(("clickhouse://", "clickhouses://")):
        parsed = urlparse(engine)
        name = (parsed.path or "/").strip("/") or "default"
        return urlunparse(parsed._replace(path=f"/{name}_auth"))
    return ""


def open_state(spec: str, users_file: Path, sqlite_path: Path | None = None) -> AuthState:
    """The store named by ``spec`` (see ``state_spec``); a spec it cannot read raises ``StateUnavailable``."""
    if spec.startswith(("clickhouse://", "clickhouses://", "chdb:")):
        if spec.startswith("chdb:") and not spec.removeprefix("chdb:").strip():
            raise StateUnavailable("CUR_AUTH_STATE: для chdb укажите папку: chdb:ПАПКА")
        return ClickHouseState.for_target(spec)
    if spec.startswith("sqlite:") or not spec:
        path = spec.removeprefix("sqlite:").strip()
        return SqliteState(Path(path) if path else sqlite_path or default_path(users_file))
    raise StateUnavailable(f"CUR_AUTH_STATE: не понято «{spec[:80]}»: нужно sqlite:ПУТЬ или clickhouse://…")


class RevocationList:
    """The logout marks as this process knows them. A store that is cheap to read (``refresh`` 0) is
    read on every request; otherwise the marks are reloaded at most every ``refresh`` seconds. While
    the store is unreachable the last list serves for ``stale_limit`` seconds, then every signed-in
    request is refused (``StateUnavailable``). A logout that cannot be written is kept here (it holds
    in this process at once) and written by a later reload."""

    def __init__(self, state: AuthState, refresh: float | None = None,
                 stale_limit: float = REVOCATION_STALE_LIMIT) -> None:
        self.state = state
        self.refresh = state.revocation_refresh if refresh is None else refresh
        self.stale_limit = stale_limit
        self._marks: dict[str, float] = {}
        self._unsent: dict[str, float] = {}
        self._loaded = -float("inf")  # monotonic time of the last successful reload
        self._next_try = -float("inf")
        self._lock = threading.Lock()

    def revoked_before(self, login: str) -> float:
        if self.refresh <= 0:
            return max(self.state.revoked_before(login), self._unsent.get(login, 0.0))
        with self._lock:
            now = time.monotonic()
            if now >= self._next_try:
                self._reload(now)
            if now - self._loaded > self.stale_limit:
                raise StateUnavailable(f"хранилище отметок входа {self.state.description} не отвечает дольше "
                                       f"{int(self.stale_limit)} с")
            return self._marks.get(login, 0.0)

    def _reload(self, now: float) -> None:
        try:
            for login, at in list(self._unsent.items()):
                self.state.revoke(login, at)
                del self._unsent[login]
            marks = self.state.revocations()
        except StateUnavailable as exc:
            log.error("logout marks not reloaded: %s", exc)
            self._next_try = now + min(1.0, self.refresh)  # a second apart, not on every request
            return
        for login, at in self._unsent.items():
            marks[login] = max(marks.get(login, 0.0), at)
        self._marks, self._loaded, self._next_try = marks, now, now + self.refresh

    def revoke(self, login: str) -> bool:
        """Void the login's sessions issued until now; False when the store did not take it (it holds
        in this process at once and is written when the store answers again)."""
        at = time.time()
        with self._lock:
            self._marks[login] = max(self._marks.get(login, 0.0), at)
        try:
            self.state.revoke(login, at)
            return True
        except StateUnavailable as exc:
            log.error("logout of %s not recorded in the store: %s", login, exc)
            with self._lock:
                self._unsent[login] = at
            return False
