"""Opening the warehouse file and loading the reference lists that ship with the project."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data.rollup import create_rollup_tables
from data.schema import create_schema

PROJECT_DIR = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
DEFAULT_DB = PROJECT_DIR / "var" / "warehouse.duckdb"
DEFAULT_MUNICIPALITIES = REFERENCE_DIR / "smolensk_municipalities.csv"
DEFAULT_REGION = "Смоленская область"
DEFAULT_TIMEZONE = "Europe/Moscow"
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
def open_warehouse(path: str | Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-write connection with the schema and the reference lists in place."""
    con = connect(path)
    try:
        ensure_initialised(con)
        yield con
    finally:
        con.close()


def read_reference(name: str) -> list[dict[str, str]]:
    with open(REFERENCE_DIR / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def ensure_initialised(
    con: duckdb.DuckDBPyConnection,
    municipalities_csv: Path | None = DEFAULT_MUNICIPALITIES,
    region_name: str = DEFAULT_REGION,
) -> None:
    """Create the schema and load the reference lists the first time only.

    Reference tables that already hold rows are kept: a deployment may have
    extended them, and re-running must not renumber ids the facts point to.
    """
    create_schema(con)
    create_rollup_tables(con)
    _set_meta_default(con, "region_name", region_name)
    _set_meta_default(con, "region_timezone", DEFAULT_TIMEZONE)
    if _is_empty(con, "sector"):
        load_sectors_and_categories(con)
    if _is_empty(con, "channel"):
        load_channels(con)
    if municipalities_csv is not None and _is_empty(con, "municipality"):
        load_municipalities(con, municipalities_csv)


def _is_empty(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    # table comes from the fixed list above, never from input
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0  # noqa: S608


def _set_meta_default(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [key, value])


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
            "INSERT INTO municipality VALUES (?, ?, ?, ?, ?, ?, ?, TRUE, ?, ?, ?)",
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
