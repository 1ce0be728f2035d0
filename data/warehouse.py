"""Opening the warehouse file, the region's settings, and the reference lists that ship with the project.

One warehouse is one region. Its name, time zone and working-day calendar live in ``meta``
(``region_name``, ``region_timezone``, ``region_calendar``), set by ``python -m data init --region``
and changeable with ``python -m data region``; :func:`read_region` gives them to everyone.

Every timestamp in the warehouse — facts, deadlines, the data date, the import log — is a naive
wall-clock time of the region's time zone: the importer converts a source's times into it, so a
New York warehouse holds New York times and shows them as they are. Changing the time zone later
either keeps the stored times (they were already local to the new zone) or converts them
(:func:`set_region` ``convert_times``).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from data.regions import ensure_regions, sync_home_region
from data.rollup import create_rollup_tables
from data.schema import create_schema
from data.severity import apply_to_new as apply_severity_to_new

PROJECT_DIR = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
DEFAULT_DB = PROJECT_DIR / "var" / "warehouse.duckdb"
# The demo's units. A new warehouse starts with none: its units come from its own boundary file
# (python -m geo import) so that no other region's unit can ever receive its rows.
DEMO_MUNICIPALITIES = REFERENCE_DIR / "smolensk_municipalities.csv"
DEMO_REGION = "Смоленская область"
DEFAULT_MUNICIPALITIES = DEMO_MUNICIPALITIES  # the older name (geo import loads it only for the demo's own file)
DEFAULT_TIMEZONE = "Europe/Moscow"
DEFAULT_CALENDAR = "RU"
NO_CALENDAR = "none"  # weekends only
OTHER_CATEGORY = "Прочие по направлению"


def default_db_path() -> Path:
    """The warehouse path: env ``CUR_DB`` or ``var/warehouse.duckdb`` in the project."""
    return Path(os.environ.get("CUR_DB") or DEFAULT_DB)


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a read-write open creates the file and its folder if missing."""
    db = Path(path) if path else default_db_path()
    if read_only:
        if not db.exists():
            raise FileNotFoundError(f"хранилище не найдено: {db}")
        return duckdb.connect(str(db), read_only=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(db))


@contextmanager
def open_warehouse(
    path: str | Path | None = None, municipalities_csv: Path | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-write connection with the schema and the reference lists in place."""
    con = connect(path)
    try:
        ensure_initialised(con, municipalities_csv)
        yield con
    finally:
        con.close()


def read_reference(name: str) -> list[dict[str, str]]:
    with open(REFERENCE_DIR / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def ensure_initialised(
    con: duckdb.DuckDBPyConnection,
    municipalities_csv: Path | None = None,
) -> None:
    """Create the schema and load the reference lists (sectors, categories, channels) the first time only.

    Municipalities are loaded only from an explicit ``municipalities_csv`` (the demo's list): a new
    warehouse holds no unit of any region until its own boundaries or list are imported. Reference
    tables that already hold rows are kept: a deployment may have extended them, and re-running
    must not renumber ids the facts point to.
    """
    create_schema(con)
    create_rollup_tables(con)
    if _is_empty(con, "sector"):
        load_sectors_and_categories(con)
    apply_severity_to_new(con)  # the categories' severity (config/severity.toml), once per category
    if _is_empty(con, "channel"):
        load_channels(con)
    if municipalities_csv is not None and _is_empty(con, "municipality"):
        load_municipalities(con, municipalities_csv)
    ensure_regions(con)  # the region level (and the migration of a one-region warehouse to it)


def _is_empty(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    # table comes from the fixed list above, never from input
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0  # noqa: S608


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def load_sectors_and_categories(con: duckdb.DuckDBPyConnection) -> None:
    sectors = read_reference("sectors.csv")
    sector_ids: dict[str, int] = {}
    for i, row in enumerate(sectors, start=1):
        sector_ids[row["code"]] = i
        con.execute("INSERT INTO sector VALUES (?, ?, ?)", [i, row["code"], row["name"]])
    next_id = 1
    other_parent: dict[str, int] = {}
    for row in read_reference("categories.csv"):
        sector_id = sector_ids[row["sector"]]
        sub = (row.get("subcategory") or "").strip()
        if not sub:
            is_other = row["category"] == OTHER_CATEGORY
            con.execute(
                "INSERT INTO category (id, sector_id, name, parent_id, is_other) VALUES (?, ?, ?, NULL, ?)",
                [next_id, sector_id, row["category"], is_other],
            )
            if is_other:
                other_parent[row["sector"]] = next_id
            next_id += 1
            continue
        if row["sector"] not in other_parent:
            con.execute(
                "INSERT INTO category (id, sector_id, name, parent_id, is_other) VALUES (?, ?, ?, NULL, TRUE)",
                [next_id, sector_id, row["category"]],
            )
            other_parent[row["sector"]] = next_id
            next_id += 1
        con.execute(
            "INSERT INTO category (id, sector_id, name, parent_id, is_other) VALUES (?, ?, ?, ?, FALSE)",
            [next_id, sector_id, sub, other_parent[row["sector"]]],
        )
        next_id += 1


def load_channels(con: duckdb.DuckDBPyConnection) -> None:
    for row in read_reference("channels.csv"):
        con.execute(
            "INSERT INTO channel VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                row["code"],
                row["name"],
                row["kind"],
                row["deadline_kind"],
                int(row["deadline_value"]),
                row["first_response_kind"] or None,
                int(row["first_response_value"]) if row["first_response_value"] else None,
            ],
        )


def load_municipalities(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows, start=1):
        con.execute(
            "INSERT INTO municipality (id, oktmo, okato, name, kind, admin_centre, population, "
            "population_is_approx, area_km2, lat, lon) VALUES (?, ?, ?, ?, ?, ?, ?, TRUE, ?, ?, ?)",
            [
                i,
                row.get("oktmo_until_2024") or row.get("oktmo") or None,
                row.get("okato") or None,
                row["name"],
                row.get("kind") or None,
                row.get("admin_centre") or None,
                int(row["population_approx"]) if row.get("population_approx") else None,
                float(row["area_km2"]) if row.get("area_km2") else None,
                float(row["lat"]) if row.get("lat") else None,
                float(row["lon"]) if row.get("lon") else None,
            ],
        )


# --- the region's settings --------------------------------------------------------------------


class RegionError(ValueError):
    """A region setting that cannot be used (unknown time zone or calendar, empty name)."""


@dataclass(frozen=True)
class Region:
    """The region a warehouse serves: its name, time zone (IANA) and working-day calendar.

    ``calendar`` is a country code of the ``holidays`` library («RU», «US», …) or «none»
    (weekends only). ``name`` is empty until set.
    """

    name: str
    timezone: str = DEFAULT_TIMEZONE
    calendar: str = DEFAULT_CALENDAR

    def now(self) -> dt.datetime:
        """The region's wall-clock time now, naive like every time in the warehouse."""
        return local_now(self.timezone)

    @property
    def label(self) -> str:
        """The name to print: «Регион» while none is set."""
        return self.name or "Регион"


def local_now(timezone: str) -> dt.datetime:
    """Naive wall-clock time now in ``timezone`` (to the second)."""
    try:
        return dt.datetime.now(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
    except (ZoneInfoNotFoundError, ValueError):  # no tz database: Moscow has been UTC+3 since 2014
        return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).replace(tzinfo=None, microsecond=0)


def local_time(moment: dt.datetime, warehouse_tz: str, region_tz: str) -> dt.datetime:
    """A naive time kept in the warehouse's clock (``warehouse_tz``) on another region's clock: the
    data date a multi-region warehouse shows one region (its wall, its pack, its brief). Unchanged when
    the zones agree or one is unknown."""
    if warehouse_tz == region_tz:
        return moment
    try:
        return moment.replace(tzinfo=ZoneInfo(warehouse_tz)).astimezone(ZoneInfo(region_tz)).replace(tzinfo=None)
    except (ZoneInfoNotFoundError, ValueError):
        return moment


def zone_label(timezone: str, at: dt.datetime) -> str:
    """«МСК+2 (UTC+5)»: how a Russian centre names a time zone; «МСК (UTC+3)» for Moscow time."""
    try:
        offset = at.replace(tzinfo=ZoneInfo(timezone)).utcoffset() or dt.timedelta(0)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone
    hours = offset.total_seconds() / 3600
    msk = hours - 3

    def signed(value: float) -> str:
        return "" if value == 0 else f"{value:+.0f}" if value == int(value) else f"{value:+.1f}".replace(".", ",")
    return f"МСК{signed(msk)} (UTC{signed(hours) or '+0'})"


def read_region(con: duckdb.DuckDBPyConnection) -> Region:
    """The warehouse's region settings; defaults (no name, Moscow time, Russian calendar) where unset."""
    try:
        meta = dict(con.execute(
            "SELECT key, value FROM meta WHERE key IN ('region_name', 'region_timezone', 'region_calendar')"
        ).fetchall())
    except duckdb.CatalogException:  # a file without the schema yet
        meta = {}
    return Region(
        name=meta.get("region_name") or "",
        timezone=meta.get("region_timezone") or DEFAULT_TIMEZONE,
        calendar=meta.get("region_calendar") or DEFAULT_CALENDAR,
    )


def region_now(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The region's wall-clock time now (how every timestamp of the warehouse is written)."""
    return read_region(con).now()


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RegionError(
            f"неизвестный часовой пояс «{timezone}»: нужно имя из базы IANA, например Europe/Moscow, "
            "Asia/Yekaterinburg, America/New_York"
        ) from exc
    return timezone


def check_calendar(calendar: str) -> str:
    """Normalise a calendar code: «none» or a country the ``holidays`` library knows."""
    import holidays

    code = calendar.strip()
    if code.lower() in (NO_CALENDAR, "нет", ""):
        return NO_CALENDAR
    if code.upper() not in holidays.list_supported_countries():
        raise RegionError(
            f"неизвестный календарь «{calendar}»: нужен код страны (RU, BY, KZ, US, …) или none — только выходные"
        )
    return code.upper()


def set_region(
    con: duckdb.DuckDBPyConnection,
    name: str | None = None,
    timezone: str | None = None,
    calendar: str | None = None,
    convert_times: bool | None = None,
) -> Region:
    """Set any of the region's settings; the others stay. Returns the new settings.

    A new time zone for a warehouse that already holds appeals needs a decision:
    ``convert_times=True`` re-expresses every stored time in the new zone (the same instants;
    rollups recounted), ``False`` keeps the stored times (they already were local times of the new
    zone and only the setting was wrong); ``None`` refuses with a RegionError. A new calendar
    applies to deadlines derived by later imports.
    """
    old = read_region(con)
    if name is not None:
        if not name.strip():
            raise RegionError("название региона пустое")
        set_meta(con, "region_name", name.strip())
    if calendar is not None:
        set_meta(con, "region_calendar", check_calendar(calendar))
    if timezone is not None and check_timezone(timezone) == old.timezone:
        set_meta(con, "region_timezone", timezone)  # stored explicitly, even when it is the default
    elif timezone is not None:
        has_facts = con.execute("SELECT count(*) FROM (SELECT 1 FROM appeal LIMIT 1)").fetchall()[0][0] > 0
        if has_facts and convert_times is None:
            raise RegionError(
                "в хранилище уже есть обращения: укажите --convert-times (пересчитать хранимое время "
                f"из {old.timezone} в {timezone}) или --keep-times (время уже местное для {timezone})"
            )
        if has_facts and convert_times:
            _convert_times(con, old.timezone, timezone)
        set_meta(con, "region_timezone", timezone)
    new = read_region(con)
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'region'").fetchall()[0][0]:
        sync_home_region(con, new.name if name is not None else None, new.timezone if timezone is not None else None)
    return new


def _convert_times(con: duckdb.DuckDBPyConnection, old: str, new: str) -> None:
    """Every TIMESTAMP of the warehouse from ``old`` local time to ``new`` local time, one transaction."""
    from data.rollup import refresh_rollups

    columns = con.execute(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'main' AND data_type = 'TIMESTAMP'
             AND table_name IN (SELECT table_name FROM information_schema.tables
                                WHERE table_schema = 'main' AND table_type = 'BASE TABLE')
           ORDER BY table_name, column_name"""
    ).fetchall()
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(column)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, cols in by_table.items():
            # identifiers come from the catalogue, never from input
            sets = ", ".join(f'"{c}" = timezone($new, timezone($old, "{c}"))' for c in cols)
            con.execute(f'UPDATE "{table}" SET {sets}', {"old": old, "new": new})  # noqa: S608
        as_of = get_meta(con, "data_as_of")
        if as_of:
            moved = con.execute("SELECT timezone($new, timezone($old, CAST($t AS TIMESTAMP)))",
                                {"old": old, "new": new, "t": as_of}).fetchall()[0][0]
            set_meta(con, "data_as_of", moved.isoformat(sep=" "))
        set_meta(con, "region_timezone", new)
        refresh_rollups(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
