"""DuckDB warehouse schema (DESIGN §3): reference tables, facts, import bookkeeping.

All timestamps are naive local time of the region (``meta.region_timezone``,
Europe/Moscow for the demo): the centre reads and reports in local time, and
naive TIMESTAMP columns keep DuckDB's zone maps and arithmetic simple.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = "1"

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta (
        key   VARCHAR PRIMARY KEY,
        value VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS municipality (
        id                   INTEGER PRIMARY KEY,
        oktmo                VARCHAR,
        okato                VARCHAR,
        name                 VARCHAR NOT NULL,
        kind                 VARCHAR,
        admin_centre         VARCHAR,
        population           INTEGER,
        population_is_approx BOOLEAN DEFAULT TRUE,
        area_km2             DOUBLE,
        lat                  DOUBLE,
        lon                  DOUBLE
    )""",
    # Other spellings of a unit a file may use («город-курорт Кисловодск», an old name, a code of
    # another register). Matched like names (data/names.py MunicipalityIndex); written by
    # ``python -m data aliases FILE`` and by boundary imports. One alias may name one unit only.
    """CREATE TABLE IF NOT EXISTS municipality_alias (
        municipality_id INTEGER NOT NULL,
        alias           VARCHAR NOT NULL,
        PRIMARY KEY (municipality_id, alias)
    )""",
    """CREATE TABLE IF NOT EXISTS municipality_shape (
        municipality_id    INTEGER PRIMARY KEY,
        geometry_wkb       BLOB NOT NULL,
        simplified_geojson VARCHAR NOT NULL,
        is_schematic       BOOLEAN NOT NULL,
        source             VARCHAR,
        updated_at         TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS sector (
        id   SMALLINT PRIMARY KEY,
        code VARCHAR NOT NULL UNIQUE,
        name VARCHAR NOT NULL
    )""",
    # A tree: «Прочие по направлению» (is_other) has concrete sub-problems as children.
    """CREATE TABLE IF NOT EXISTS category (
        id        INTEGER PRIMARY KEY,
        sector_id SMALLINT NOT NULL,
        name      VARCHAR NOT NULL,
        parent_id INTEGER,
        is_other  BOOLEAN NOT NULL DEFAULT FALSE,
        created_by_import INTEGER,
        severity  VARCHAR  -- high | medium | low, from config/severity.toml (data/severity.py)
    )""",
    """CREATE TABLE IF NOT EXISTS organisation (
        id              INTEGER PRIMARY KEY,
        name            VARCHAR NOT NULL,
        kind            VARCHAR,
        municipality_id INTEGER,
        sector_id       SMALLINT,
        created_by_import INTEGER
    )""",
    # Deadlines are configuration: kind ∈ calendar_days | working_days | working_hours.
    """CREATE TABLE IF NOT EXISTS channel (
        code                 VARCHAR PRIMARY KEY,
        name                 VARCHAR NOT NULL,
        kind                 VARCHAR NOT NULL,
        deadline_kind        VARCHAR NOT NULL,
        deadline_value       INTEGER NOT NULL,
        first_response_kind  VARCHAR,
        first_response_value INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS target (
        indicator       VARCHAR NOT NULL,
        sector_id       SMALLINT,
        category_id     INTEGER,
        municipality_id INTEGER,
        channel         VARCHAR,
        period_start    DATE NOT NULL,
        value           DOUBLE NOT NULL,
        note            VARCHAR
    )""",
    # Key (source, source_id) is enforced by the importer (anti-join upsert), not by an
    # index: an ART index over 10 M string keys costs more memory than the table itself.
    """CREATE TABLE IF NOT EXISTS appeal (
        source               VARCHAR NOT NULL,
        source_id            VARCHAR NOT NULL,
        kind                 VARCHAR NOT NULL,
        channel              VARCHAR NOT NULL,
        received_at          TIMESTAMP NOT NULL,
        municipality_id      INTEGER NOT NULL,
        sector_id            SMALLINT NOT NULL,
        category_id          INTEGER,
        organisation_id      INTEGER,
        status               VARCHAR NOT NULL,
        first_response_at    TIMESTAMP,
        answered_at          TIMESTAMP,
        due_at               TIMESTAMP,
        first_response_due_at TIMESTAMP,
        closure_reason       VARCHAR,
        answer_on_merits     BOOLEAN,
        returned_for_rework  BOOLEAN,
        redirect_count       SMALLINT,
        satisfaction         SMALLINT,
        repeat_of            VARCHAR,
        duplicate_of         VARCHAR,
        topic                VARCHAR,
        lat                  DOUBLE,
        lon                  DOUBLE,
        import_id            INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS rejected_row (
        import_id  INTEGER NOT NULL,
        row_number BIGINT,
        raw        VARCHAR,
        reason     VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS import_log (
        import_id         INTEGER PRIMARY KEY,
        file              VARCHAR NOT NULL,
        source            VARCHAR NOT NULL,
        started_at        TIMESTAMP NOT NULL,
        finished_at       TIMESTAMP,
        read              BIGINT,
        accepted          BIGINT,
        inserted          BIGINT,
        updated           BIGINT,
        unchanged         BIGINT,
        rejected          BIGINT,
        new_categories    INTEGER,
        new_organisations INTEGER
    )""",
    # Root-cause roadmap (DESIGN: «дорожная карта по устранению причин обращений»): one row per
    # measure. municipality_id NULL = the whole region; empty category_ids = every category of the
    # sector. The responsible body is kept as written; organisation_id only when it is a known one.
    """CREATE TABLE IF NOT EXISTS roadmap_item (
        id                INTEGER PRIMARY KEY,
        title             VARCHAR NOT NULL,
        municipality_id   INTEGER,
        sector_id         SMALLINT NOT NULL,
        category_ids      INTEGER[] NOT NULL,
        organisation_id   INTEGER,
        organisation_name VARCHAR NOT NULL,
        start_date        DATE NOT NULL,
        planned_end_date  DATE,
        status            VARCHAR NOT NULL,
        source            VARCHAR,
        created_at        TIMESTAMP
    )""",
)

STATUSES: tuple[str, ...] = ("new", "in_work", "answered", "resolved", "rejected", "redirected")
OPEN_STATUSES: tuple[str, ...] = ("new", "in_work")
CLOSURE_REASONS: tuple[str, ...] = (
    "resolved",
    "explained",
    "refused",
    "not_competent",
    "redirected",
    "duplicate",
)
KINDS: tuple[str, ...] = ("appeal", "message")
# status code -> label of a roadmap measure
ROADMAP_STATUSES: dict[str, str] = {
    "planned": "запланирована",
    "in_progress": "выполняется",
    "done": "выполнена",
    "cancelled": "отменена",
}

APPEAL_COLUMNS: tuple[str, ...] = (
    "source",
    "source_id",
    "kind",
    "channel",
    "received_at",
    "municipality_id",
    "sector_id",
    "category_id",
    "organisation_id",
    "status",
    "first_response_at",
    "answered_at",
    "due_at",
    "first_response_due_at",
    "closure_reason",
    "answer_on_merits",
    "returned_for_rework",
    "redirect_count",
    "satisfaction",
    "repeat_of",
    "duplicate_of",
    "topic",
    "lat",
    "lon",
    "import_id",
)


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table that is missing; existing data is left as it is."""
    for statement in DDL:
        con.execute(statement)
    # what an import replaced, as it was before (``replaced_by`` = that import): ``data revert`` puts it back
    con.execute("CREATE TABLE IF NOT EXISTS appeal_replaced AS "
                "SELECT CAST(NULL AS INTEGER) AS replaced_by, * FROM appeal LIMIT 0")
    con.execute("ALTER TABLE import_log ADD COLUMN IF NOT EXISTS reverted_at TIMESTAMP")
    con.execute("ALTER TABLE category ADD COLUMN IF NOT EXISTS severity VARCHAR")  # a warehouse from before it
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION],
    )
