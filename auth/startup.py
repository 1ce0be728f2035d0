"""Settings checked before the production server opens its port.

``gunicorn.conf.py`` runs ``problems()`` in the master process before any worker starts, and
``wsgi.py`` again in each worker: a wrong setting ends the server with one Russian line and a
non-zero exit instead of workers that fail and restart forever behind an open port.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from auth.users import UsersError, load_users

MIN_SECRET = 32
EXIT_BAD_SETTINGS = 2


def parse_networks(text: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``CUR_TRUSTED_PROXIES``: addresses or networks separated by commas or spaces."""
    out = []
    for part in (text or "").replace(",", " ").split():
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise UsersError(f"CUR_TRUSTED_PROXIES: не адрес и не сеть: {part[:40]!r}") from exc
    return tuple(out)


def _engine_problem(text: str) -> str | None:
    """A ClickHouse engine (``CUR_ENGINE``) that cannot be opened or holds no warehouse."""
    from data.clickhouse import ClickHouseError
    from data.engine import EngineError, open_clickhouse, parse_engine

    try:
        spec = parse_engine(text)
        con = open_clickhouse(spec)
        try:
            if "appeal" not in con.tables():
                return f"в {spec} нет хранилища (скопируйте его: python -m data copy --to {spec})"
        finally:
            con.close()
            if spec.kind == "chdb":  # gunicorn's master checks, then forks: the workers open their own
                from data.clickhouse import ChdbConnection

                ChdbConnection.release(spec.target)
    except (EngineError, ClickHouseError) as exc:
        return f"CUR_ENGINE: {exc}"
    return None


def _warehouse_problem(path: Path) -> str | None:
    # the reader opens the file read-only, as the workers will; a truncated or foreign file fails here
    import duckdb

    if not path.exists():
        return f"файл хранилища {path} не найден (python -m data demo или python -m data import)"
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            block_size, blocks = con.execute("SELECT block_size, total_blocks FROM pragma_database_size()").fetchone()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0][:160]
        return f"файл хранилища {path} не открывается: {first}"
    if path.stat().st_size < block_size * blocks:  # DuckDB opens a cut file and fails on first reading its end
        return f"файл хранилища {path} обрезан (меньше, чем записано в его заголовке): восстановите его из копии"
    missing = {"appeal", "municipality", "sector", "category", "organisation", "meta"} - tables
    if missing:
        return f"в файле {path} нет таблиц хранилища ({', '.join(sorted(missing))}): это не хранилище ЦУР Heatmap"
    return None


def problems(env: dict[str, str] | None = None) -> list[str]:
    """Every reason the production server must not start (empty when all is well)."""
    from data.warehouse import DEFAULT_DB

    env = dict(os.environ) if env is None else env
    out = []
    users = env.get("CUR_USERS")
    if not users:
        out.append("не задан файл пользователей (CUR_USERS); создайте его командой python -m auth add-user")
    else:
        try:
            if not load_users(Path(users)):
                out.append(f"в файле {users} нет ни одного пользователя")
        except UsersError as exc:
            out.append(str(exc))
    secret = env.get("CUR_SECRET_KEY") or ""
    if len(secret) < MIN_SECRET:
        out.append(f"не задан секретный ключ CUR_SECRET_KEY (не короче {MIN_SECRET} символов; например: "
                   "python -c 'import secrets; print(secrets.token_urlsafe(48))')")
    header = env.get("CUR_TRUSTED_HEADER")
    try:
        proxies = parse_networks(env.get("CUR_TRUSTED_PROXIES"))
    except UsersError as exc:
        out.append(str(exc))
        proxies = (ipaddress.ip_network("0.0.0.0/32"),)  # reported above; do not report twice
    if header and not proxies:
        out.append("вход по заголовку CUR_TRUSTED_HEADER требует CUR_TRUSTED_PROXIES: адреса прокси, "
                   "которым разрешено его ставить")
    engine = env.get("CUR_ENGINE") or ""
    if engine and not engine.startswith("duckdb:"):
        problem = _engine_problem(engine)
    else:
        problem = _warehouse_problem(Path(engine.removeprefix("duckdb:") or env.get("CUR_DB") or DEFAULT_DB))
    if problem:
        out.append(problem)
    if users:
        problem = _auth_state_problem(env, Path(users))
        if problem:
            out.append(problem)
    return out


def _auth_state_problem(env: dict[str, str], users: Path) -> str | None:
    """The store of sign-in attempts and logout marks (``auth.throttle``) cannot be read and written:
    without it nobody could sign in, and guessing could not be slowed."""
    from auth.throttle import ClickHouseState, StateUnavailable, open_state, state_spec

    spec = state_spec(env.get("CUR_AUTH_STATE"), env.get("CUR_ENGINE"))
    engine = (env.get("CUR_ENGINE") or "").strip()
    if spec.startswith("chdb:") and engine.startswith("chdb:") and \
            Path(spec[5:].strip()).resolve() != Path(engine[5:].strip()).resolve():
        return ("CUR_AUTH_STATE: chDB открывает в процессе одну папку — отметки входа можно держать только в папке "
                "хранилища CUR_ENGINE")
    try:
        state = open_state(spec, users)
        try:
            state.check()
        finally:
            state.close()
            if isinstance(state, ClickHouseState) and spec.startswith("chdb:"):
                from data.clickhouse import ChdbConnection

                ChdbConnection.release(spec.removeprefix("chdb:"))  # the workers open their own after the fork
    except StateUnavailable as exc:
        return str(exc)
    return None
