"""Import of appeals: map columns → validate → accept (upsert) | reject (with a reason), in one transaction.

The heavy lifting runs inside DuckDB over the whole file at once; Python only
handles the small sets of *distinct* values: names (municipalities, categories,
organisations, coded values) and the received days the deadline rules are applied to.
Counts always add up: ``read = accepted + rejected`` and ``accepted = inserted + updated + unchanged``.

Passes over the data, in order (``ImportResult.phases`` times them): stage the file; one scan for
the distinct looked-up values; one pass that parses, looks up and validates every row into the
temp table ``imp_chk``; small queries over it (repeats in the file, new names, deadline days); the
insert into ``appeal`` from ``imp_chk``; the rollups of the months touched.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import numpy as np

from data import deadlines
from data.mapping import (
    BOOLEAN_FIELDS,
    CODED_FIELDS,
    FIELDS,
    REQUIRED_FIELDS,
    TIMESTAMP_FIELDS,
    Mapping,
    MappingError,
)
from data.names import MunicipalityIndex, match_key
from data.readers import STAGE_TABLE, SourceFileError, Staged, clean_text_sql, drop_stage, stage_file
from data.rollup import refresh_rollups
from data.schema import APPEAL_COLUMNS, CLOSURE_REASONS, KINDS, STATUSES
from data.severity import apply_to_new as apply_severity_to_new
from data.warehouse import ensure_initialised, read_region, set_meta

FUTURE_TOLERANCE = dt.timedelta(minutes=10)  # clocks of source systems drift a little
DAY_FIRST_FORMATS = ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M", "%d.%m.%y"]
EXCEL_SERIAL_MIN, EXCEL_SERIAL_MAX = 20000, 80000  # 1954..2119: a plain number outside is not a date

FIELD_LABELS = {
    "received_at": "дату поступления",
    "first_response_at": "дату первой реакции",
    "answered_at": "дату ответа",
    "due_at": "срок ответа",
    "first_response_due_at": "срок первой реакции",
}

_STATUS_SYNONYMS = {
    "новое": "new", "новый": "new", "новая": "new", "зарегистрировано": "new",
    "в работе": "in_work", "на рассмотрении": "in_work", "в процессе": "in_work", "рассматривается": "in_work",
    "отвечено": "answered", "дан ответ": "answered", "ответ дан": "answered", "закрыто": "answered",
    "closed": "answered", "рассмотрено": "answered",
    "решено": "resolved", "выполнено": "resolved",
    "отклонено": "rejected", "отказано": "rejected",
    "перенаправлено": "redirected", "передано по компетенции": "redirected",
}
_CLOSURE_SYNONYMS = {
    "решено": "resolved", "проблема решена": "resolved",
    "разъяснено": "explained", "дано разъяснение": "explained", "разъяснение": "explained",
    "отказано": "refused", "отказ": "refused",
    "не в компетенции": "not_competent", "вне компетенции": "not_competent",
    "перенаправлено": "redirected", "передано по компетенции": "redirected",
    "дубликат": "duplicate", "повтор": "duplicate",
}
_CHANNEL_SYNONYMS = {
    "пос": "pos", "платформа обратной связи": "pos", "госуслуги решаем вместе": "pos",
    "соцсети": "im", "социальные сети": "im", "инцидент-менеджмент": "im", "им": "im",
    "госпаблики": "gospublic", "госпаблик": "gospublic",
    "письмо": "letter", "письменное обращение": "letter", "почта": "letter",
    "электронная приемная": "e_reception", "интернет-приемная": "e_reception",
    "горячая линия": "hotline", "телефон": "hotline",
    "личный прием": "reception",
}
_KIND_SYNONYMS = {"обращение": "appeal", "сообщение": "message"}
_TRUE = ("1", "true", "t", "yes", "y", "да", "д", "истина", "+")
_FALSE = ("0", "false", "f", "no", "n", "нет", "н", "ложь", "-")

# Personal data must not reach the warehouse: the formalised topic is scrubbed of contacts.
_PII_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[e-mail]"),
    (r"(\+7|8)?[\s(\-]*\d{3}[\s)\-]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}", "[телефон]"),
    (
        r"(ул\.|улица|пр-т\.?|проспект|пер\.|переулок|пл\.|площадь|б-р|бульвар|шоссе|наб\.|мкр\.?)\s*[^,;]*"
        r"(,\s*(д\.|дом|кв\.|квартира|корп\.|к\.|стр\.)\s*\d+[а-яa-z]?)*",
        "[адрес]",
    ),
    (r"(д\.|дом|кв\.|квартира)\s*\d+[а-яa-z]?", "[адрес]"),
)


class ImportFailed(RuntimeError):
    """A fatal problem: the file or the mapping cannot be used. Nothing was written."""


@dataclass
class ImportResult:
    import_id: int
    read: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    new_categories: list[str] = field(default_factory=list)
    new_organisations: list[str] = field(default_factory=list)
    organisation_kinds: int = 0  # organisations whose kind this import set or changed
    main_reason: str | None = None  # the commonest reason of rejection (its text before the value)
    seconds: float = 0.0
    # seconds spent in each phase, in order (bench/import_bench.py --profile prints them)
    phases: dict[str, float] = field(default_factory=dict)

    def lap(self, phase: str) -> None:
        """Close the running phase under ``phase`` and start the next one."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._lap_start
        self._lap_start = now

    def __post_init__(self) -> None:
        self._lap_start = time.perf_counter()

    def summary(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("phases")
        out["new_categories"] = len(self.new_categories)
        out["new_organisations"] = len(self.new_organisations)
        out["new_category_names"] = self.new_categories
        out["new_organisation_names"] = self.new_organisations
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class ImportHooks:
    """Where an import into another engine (data/chimport.py) steps into the pipeline run on a scratch
    DuckDB: ``before_upsert(con)`` once the accepted rows are known (``imp_chk``), to bring the
    warehouse's appeals with the same keys; ``refresh(con, days)`` instead of the rollup refresh."""

    before_upsert: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    refresh: Callable[[duckdb.DuckDBPyConnection, list[dt.date]], None] | None = None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_import(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    mapping: Mapping,
    source: str | None = None,
    now: dt.datetime | None = None,
    hooks: ImportHooks | None = None,
    region: str | None = None,
) -> ImportResult:
    """Import one file into the warehouse open on ``con``; raises ImportFailed when it cannot be used.

    ``hooks`` lets another engine reuse the whole pipeline on a scratch DuckDB (data/chimport.py);
    ``region`` (a region's name, ISO code or ОКАТО) restricts the whole file's units to that region."""
    clock = time.perf_counter()
    path = Path(path)
    if mapping.timezone:
        try:
            ZoneInfo(mapping.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ImportFailed(f"неизвестный часовой пояс в соответствии: {mapping.timezone}") from exc
    _check_date_format(mapping.date_format)
    # Staging writes only temporary objects, so it runs before the transaction: a parser error
    # there must not abort it. Everything that touches the warehouse is one transaction, so a
    # file that cannot be used leaves even a new warehouse without the schema it would have created.
    stage_started = time.perf_counter()
    try:
        # only mapped columns are staged: the others are never kept, and parsing them costs
        staged = stage_file(con, path, mapping.encoding, mapping.delimiter,
                            keep=lambda header: mapping.resolve_columns(header).values(), clean_text=True)
    except SourceFileError as exc:
        drop_stage(con)
        raise ImportFailed(str(exc)) from exc
    except BaseException:
        drop_stage(con)
        raise
    stage_seconds = time.perf_counter() - stage_started
    # Past staging (whose row ids are line numbers) nothing relies on the order rows are written
    # in but what says ORDER BY; without the guarantee DuckDB inserts in parallel (-0.25 s per 1M rows).
    keep_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("SET preserve_insertion_order = false")
    con.execute("BEGIN TRANSACTION")
    try:
        result = _run_in_transaction(con, path, staged, mapping, source, now, clock, hooks or ImportHooks(),
                                     region)
        result.phases = {"stage": stage_seconds, **result.phases}
        con.execute("COMMIT")
        result.lap("commit")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if keep_order else 'false'}")
        for name in ("imp_acc", "imp_raw", STAGE_TABLE, "imp_chk", "imp_state", "imp_params", "imp_rule_days"):
            drop_stage(con, name)
    return result


def _run_in_transaction(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    staged: Staged,
    mapping: Mapping,
    source: str | None,
    now: dt.datetime | None,
    clock: float,
    hooks: ImportHooks,
    region_text: str | None = None,
) -> ImportResult:
    ensure_initialised(con)
    file_region = resolve_region(con, region_text)
    region = read_region(con)  # every time is stored as the region's wall-clock time
    region_tz = region.timezone
    if now is None:
        now = dt.datetime.now(ZoneInfo(region_tz)).replace(tzinfo=None)
    started = region.now()

    columns = mapping.resolve_columns(staged.header)
    missing_cols = sorted(f"{f} → «{c}»" for f, c in columns.items() if c not in staged.header)
    if missing_cols:
        raise ImportFailed(
            f"в файле нет столбцов из соответствия: {', '.join(missing_cols)}; "
            f"в файле: {', '.join(staged.header)}"
        )
    missing = [f for f in REQUIRED_FIELDS if f not in columns and f not in mapping.defaults]
    if missing:
        raise ImportFailed(
            f"нет обязательного столбца: {', '.join(missing)}; в файле: {', '.join(staged.header)}"
        )
    source_name = source or mapping.source_name or path.stem
    _check_value_maps(con, mapping, file_region)

    import_id = con.execute("SELECT coalesce(max(import_id), 0) + 1 FROM import_log").fetchall()[0][0]
    con.execute(
        "INSERT INTO import_log (import_id, file, source, started_at) VALUES (?, ?, ?, ?)",
        [import_id, str(path), source_name, started],
    )
    result = ImportResult(import_id=import_id)
    result.lap("prepare")
    _import_staged(con, staged, columns, mapping, source_name, region_tz, now, result, hooks,
                   file_region=file_region)
    result.seconds = time.perf_counter() - clock
    con.execute(
        """UPDATE import_log SET finished_at = ?, read = ?, accepted = ?, inserted = ?, updated = ?,
               unchanged = ?, rejected = ?, new_categories = ?, new_organisations = ?
           WHERE import_id = ?""",
        [region.now(), result.read, result.accepted, result.inserted, result.updated,
         result.unchanged, result.rejected, len(result.new_categories), len(result.new_organisations),
         import_id],
    )
    return result


_SAFE_DATE_FORMAT = re.compile(r"[%A-Za-z0-9 .,:/\\-]+")


def _check_date_format(fmt: str | None) -> None:
    if fmt is None:
        return
    if "%" not in fmt or not _SAFE_DATE_FORMAT.fullmatch(fmt):
        raise MappingError(f"[source] date_format = {fmt!r}: ожидается формат вида %d.%m.%Y %H:%M")
    try:
        dt.datetime.now().strftime(fmt)
    except ValueError as exc:
        raise MappingError(f"[source] date_format = {fmt!r}: {exc}") from exc


def resolve_region(con: duckdb.DuckDBPyConnection, text: str | None) -> int | None:
    """The region id ``--region`` names (name, ISO code, ОКАТО); ImportFailed when none is."""
    from data.regions import UnknownRegion, region_by_text

    try:
        return region_by_text(con, text)
    except UnknownRegion as exc:
        raise ImportFailed(str(exc)) from exc


def _check_value_maps(con: duckdb.DuckDBPyConnection, mapping: Mapping, file_region: int | None = None) -> None:
    allowed = {
        "status": set(STATUSES),
        "closure_reason": set(CLOSURE_REASONS),
        "kind": set(KINDS),
        "channel": {r[0] for r in con.execute("SELECT code FROM channel").fetchall()},
        "sector": {r[0] for r in con.execute("SELECT code FROM sector").fetchall()},
    }
    problems = []
    for fld, table in mapping.values.items():
        if fld not in allowed:
            continue
        # "" is always allowed: the value becomes empty
        bad = sorted({v for v in table.values() if v and v not in allowed[fld]})
        if bad:
            problems.append(f"[values.{fld}]: {', '.join(bad)} (допустимы: {', '.join(sorted(allowed[fld]))})")
    if mapping.values.get("municipality"):
        index = MunicipalityIndex.from_warehouse(con)
        for raw, target in sorted(mapping.values["municipality"].items()):
            if not target:
                continue
            found = index.match(target, file_region)
            if found.regions and found.id is None:
                problems.append(f"[values.municipality] «{raw}» = «{target}»: {found.region_reason(target)}")
            elif found.ambiguous and found.id is None:
                problems.append(f"[values.municipality] «{raw}» = «{target}»: подходит несколько муниципалитетов "
                                f"({', '.join(found.ambiguous)})")
            elif found.id is None:
                problems.append(f"[values.municipality] «{raw}» = «{target}»: такого муниципалитета нет")
    for fld in ("status", "closure_reason", "kind", "channel", "sector"):
        if fld in mapping.defaults and mapping.defaults[fld] not in allowed[fld]:
            problems.append(f"[defaults] {fld} = {mapping.defaults[fld]}: нет такого кода")
    for name, table in (("sector_by_category", mapping.sector_by_category),
                        ("sector_by_organisation", mapping.sector_by_organisation)):
        bad = sorted({v for v in table.values() if v not in allowed["sector"]})
        if bad:
            problems.append(f"[{name}]: неизвестные отраслевые блоки {', '.join(bad)}")
    if mapping.default_sector not in allowed["sector"]:
        problems.append(f"[sector] default = {mapping.default_sector}: нет такого отраслевого блока")
    if problems:
        raise MappingError("соответствие содержит неизвестные коды: " + "; ".join(problems))


def _naive_candidates(x: str, mapping: Mapping) -> list[str]:
    """Every way a naive date text is understood, as SQL expressions over ``x``."""
    candidates = []
    if mapping.date_format:
        # strptime wants a constant format; the mapping's format was checked by _check_date_format
        candidates.append(f"try_strptime({x}, {_literal(mapping.date_format)})")
    candidates.append(f"TRY_CAST({x} AS TIMESTAMP)")
    candidates += [f"try_strptime({x}, {_literal(f)})" for f in DAY_FIRST_FORMATS]
    candidates.append(
        f"""CASE WHEN regexp_full_match({x}, '[0-9]{{5}}([.,][0-9]+)?')
                 AND TRY_CAST(replace({x}, ',', '.') AS DOUBLE) BETWEEN {EXCEL_SERIAL_MIN} AND {EXCEL_SERIAL_MAX}
            THEN TIMESTAMP '1899-12-30' + to_seconds(CAST(round(CAST(replace({x}, ',', '.') AS DOUBLE) * 86400)
                 AS BIGINT)) END"""
    )
    return candidates


def _timestamp_expr(con: duckdb.DuckDBPyConnection, col: str, col_type: str, mapping: Mapping, value: str) -> str:
    """SQL giving a local (region) TIMESTAMP from ``value``, NULL when unparseable.

    ``value`` is the source column ``col`` as the outer layer of imp_raw sees it: the typed value,
    or for text the trimmed text. The format that reads most of a sample of the column is tried
    first: a failed attempt costs as much as a successful one, and a column nearly always has one
    format throughout. Parameters come from the one-row table ``imp_params`` (alias p), so the
    expression can live in a view.
    """
    if col_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone(p.region_tz, {value})"
    if col_type.startswith(("TIMESTAMP", "DATE")):
        base = f"CAST({value} AS TIMESTAMP)"
        return f"timezone(p.region_tz, timezone(p.src_tz, {base}))" if mapping.timezone else base
    if col_type != "VARCHAR":  # a number (an Excel serial day) is read as its text
        value = clean_text_sql(f"CAST({value} AS VARCHAR)")
    sample = clean_text_sql(_ident(col) if col_type == "VARCHAR" else f"CAST({_ident(col)} AS VARCHAR)")
    counts = con.execute(
        f"SELECT {', '.join('count(' + e + ')' for e in _naive_candidates('x', mapping))} "  # noqa: S608
        f"FROM (SELECT {sample} AS x FROM {STAGE_TABLE} WHERE {sample} IS NOT NULL LIMIT 2000)"
    ).fetchall()[0]
    candidates = _naive_candidates(value, mapping)
    best = max(range(len(candidates)), key=lambda i: (counts[i], -i))
    ordered = [candidates[best]] + [e for i, e in enumerate(candidates) if i != best]
    naive = f"coalesce({', '.join(ordered)})"
    if mapping.timezone:
        naive = f"timezone(p.region_tz, timezone(p.src_tz, {naive}))"
    tz_suffix = "'(Z|[+-][0-9]{2}:?[0-9]{2})$'"
    return (
        f"CASE WHEN regexp_matches({value}, {tz_suffix}) "
        f"THEN timezone(p.region_tz, TRY_CAST({value} AS TIMESTAMPTZ)) ELSE {naive} END"
    )


def _raw_text_expr(col: str, col_type: str, clean: bool = False) -> str:
    if col_type == "VARCHAR":
        return _ident(col) if clean else clean_text_sql(_ident(col))
    return f"CAST({_ident(col)} AS VARCHAR)"


def _import_staged(
    con: duckdb.DuckDBPyConnection,
    staged: Staged,
    columns: dict[str, str],
    mapping: Mapping,
    source_name: str,
    region_tz: str,
    now: dt.datetime,
    result: ImportResult,
    hooks: ImportHooks | None = None,
    file_region: int | None = None,
) -> None:
    hooks = hooks or ImportHooks()
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {STAGE_TABLE})").fetchall())  # noqa: S608 - constant name
    default_sector_id = con.execute("SELECT id FROM sector WHERE code = ?", [mapping.default_sector]).fetchall()[0][0]
    defaults = {f: mapping.defaults.get(f) for f in FIELDS}
    # [values.<field>] of the fields not looked up in Python: recoded in SQL, row by row, as text
    recoded = {f: t for f, t in mapping.values.items() if f not in PYTHON_MAPPED and t and f in columns}
    # Every value that comes from outside (mapping, clock) sits in one row of a table, never in SQL text.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE imp_params AS SELECT
               CAST($region_tz AS VARCHAR) AS region_tz, CAST($src_tz AS VARCHAR) AS src_tz,
               CAST($date_format AS VARCHAR) AS date_format, CAST($day_first AS VARCHAR[]) AS day_first,
               CAST($now AS TIMESTAMP) AS now_limit, CAST($source_name AS VARCHAR) AS source_name,
               CAST($default_sector_id AS SMALLINT) AS default_sector_id, CAST($import_id AS INTEGER) AS import_id
               """ + "".join(f", CAST(${f}_default AS VARCHAR) AS default_{f}" for f in FIELDS)
        + "".join(f", CAST(${f}_from AS VARCHAR[]) AS from_{f}, CAST(${f}_to AS VARCHAR[]) AS to_{f}"
                  for f in recoded),
        {
            "region_tz": region_tz, "src_tz": mapping.timezone, "date_format": mapping.date_format,
            "day_first": DAY_FIRST_FORMATS, "now": now + FUTURE_TOLERANCE, "source_name": source_name,
            "default_sector_id": default_sector_id, "import_id": result.import_id,
            **{f"{f}_default": v for f, v in defaults.items()},
            **{f"{f}_from": list(t) for f, t in recoded.items()},
            **{f"{f}_to": [v or None for v in t.values()] for f, t in recoded.items()},
        },
    )

    # 1. A view of every mapped field as text (what a rejected row keeps) plus parsed timestamps.
    # Two layers: the inner one trims each text once, the outer one parses and scrubs that text
    # (a date is tried against several formats, and each try would trim again).
    inner = [f"{staged.row_expr} AS _row"]
    outer = ["t._row"]
    with_raw: set[str] = set()
    for fld in FIELDS:
        if fld in columns:
            col = columns[fld]
            is_typed_ts = fld in TIMESTAMP_FIELDS and types[col] != "VARCHAR"
            # typed timestamps keep no text copy: they cannot fail to parse, and casting costs a pass
            expr = "CAST(NULL AS VARCHAR)" if is_typed_ts else _raw_text_expr(col, types[col], col in staged.clean)
            if is_typed_ts:
                inner.append(f"{_ident(col)} AS {fld}__src")
            elif fld in recoded:
                # the file's own text stays for the rejected row; the checks see the recoded one
                with_raw.add(fld)
                inner.append(f"{expr} AS {fld}__raw")
                outer.append(f"t.{fld}__raw")
                expr = (f"CASE WHEN list_contains(p.from_{fld}, {expr}) "
                        f"THEN p.to_{fld}[list_position(p.from_{fld}, {expr})] ELSE {expr} END")
        elif defaults[fld] is not None:
            expr = f"p.default_{fld}"
        else:
            expr = "CAST(NULL AS VARCHAR)"
        inner.append(f"{expr} AS {fld}")
        text = f"t.{fld}"
        if fld == "topic":
            # Personal data must not reach the warehouse; most topics have no digit or @ at all.
            scrubbed = text
            for pattern, repl in _PII_PATTERNS:
                scrubbed = f"regexp_replace({scrubbed}, {_literal(pattern)}, {_literal(repl)}, 'gi')"
            # (eleven contains() cost less than one regexp_matches(x, '[0-9@]'))
            has_digit_or_at = " OR ".join(f"contains({text}, '{ch}')" for ch in "0123456789@")
            text = f"CASE WHEN {has_digit_or_at} THEN {scrubbed} ELSE {text} END"
        outer.append(f"{text} AS {fld}")
        if fld in TIMESTAMP_FIELDS:
            if fld in columns:
                col = columns[fld]
                source = f"t.{fld}__src" if types[col] != "VARCHAR" else f"t.{fld}"
                ts = _timestamp_expr(con, col, types[col], mapping, source)
            elif defaults[fld] is not None:
                ts = f"TRY_CAST(p.default_{fld} AS TIMESTAMP)"
            else:
                ts = "CAST(NULL AS TIMESTAMP)"
            outer.append(f"{ts} AS {fld}_ts")

    def raw_sql(where: str = "TRUE") -> str:
        """The source rows matching ``where`` (SQL over the staged table): rejected rows are
        re-read through a filter below the parsing, so only they are parsed a second time."""
        return (
            f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} "  # noqa: S608
            f"FROM {STAGE_TABLE} CROSS JOIN imp_params p WHERE {where}) t CROSS JOIN imp_params p"
        )

    con.execute(f"CREATE OR REPLACE TEMP VIEW imp_raw AS {raw_sql()}")

    result.lap("raw view")
    # 2. Coded values and names: resolved once per distinct value, in Python.
    # a region column (or default) names each row's region: units are looked up per (name, region)
    by_region = "region" in columns or defaults["region"] is not None
    _load_lookups(con, mapping, {f: defaults[f] for f in LOOKUP_FIELDS if f not in columns},
                  file_region=file_region, by_region=by_region)
    result.lap("lookups")

    # 3. Validation: every problem of a row, joined into one reason.
    reasons = [
        "CASE WHEN r.source_id IS NULL THEN 'не указан номер обращения (source_id)' END",
        "CASE WHEN r.received_at_ts IS NULL AND r.received_at IS NULL THEN 'не указана дата поступления' END",
        "CASE WHEN r.municipality IS NULL THEN 'не указан муниципалитет' END",
        "CASE WHEN r.municipality IS NOT NULL AND mu.id IS NULL "
        "THEN coalesce(mu.problem, 'неизвестный муниципалитет: \"' || r.municipality || '\"') END",
        # a lookup table holds the values it knows; a known value may stand for empty (code NULL)
        "CASE WHEN r.channel IS NULL OR ch.raw IS NOT NULL AND ch.code IS NULL THEN 'не указан канал поступления' END",
        "CASE WHEN r.channel IS NOT NULL AND ch.raw IS NULL THEN 'неизвестный канал: \"' || r.channel || '\"' END",
        "CASE WHEN r.status IS NOT NULL AND st.raw IS NULL THEN 'неизвестный статус: \"' || r.status || '\"' END",
        "CASE WHEN r.closure_reason IS NOT NULL AND cl.raw IS NULL "
        "THEN 'неизвестная причина закрытия: \"' || r.closure_reason || '\"' END",
        "CASE WHEN r.kind IS NOT NULL AND kd.raw IS NULL THEN 'неизвестный вид: \"' || r.kind || '\"' END",
        "CASE WHEN r.sector IS NOT NULL AND se.raw IS NULL "
        "THEN 'неизвестный отраслевой блок: \"' || r.sector || '\"' END",
        "CASE WHEN r.satisfaction IS NOT NULL AND coalesce(TRY_CAST(r.satisfaction AS DOUBLE) NOT IN (1,2,3,4,5), TRUE) "
        "THEN 'оценка должна быть целым числом от 1 до 5: \"' || r.satisfaction || '\"' END",
        "CASE WHEN r.redirect_count IS NOT NULL AND coalesce(TRY_CAST(r.redirect_count AS DOUBLE) < 0 "
        "OR TRY_CAST(r.redirect_count AS DOUBLE) > 1000 "
        "OR TRY_CAST(r.redirect_count AS DOUBLE) <> floor(TRY_CAST(r.redirect_count AS DOUBLE)), TRUE) "
        "THEN 'число переадресаций должно быть целым неотрицательным: \"' || r.redirect_count || '\"' END",
        "CASE WHEN r.lat IS NOT NULL AND coalesce(abs(TRY_CAST(replace(r.lat, ',', '.') AS DOUBLE)) > 90, TRUE) "
        "THEN 'неверная широта: \"' || r.lat || '\"' END",
        "CASE WHEN r.lon IS NOT NULL AND coalesce(abs(TRY_CAST(replace(r.lon, ',', '.') AS DOUBLE)) > 180, TRUE) "
        "THEN 'неверная долгота: \"' || r.lon || '\"' END",
        "CASE WHEN r.received_at_ts > p.now_limit THEN 'дата поступления в будущем: ' || strftime(r.received_at_ts, "
        "'%d.%m.%Y %H:%M') END",
        "CASE WHEN r.answered_at_ts < r.received_at_ts THEN 'дата ответа раньше даты поступления' END",
        "CASE WHEN r.first_response_at_ts < r.received_at_ts THEN 'дата первой реакции раньше даты поступления' END",
        "CASE WHEN r.answered_at_ts > p.now_limit THEN 'дата ответа в будущем' END",
    ]
    for fld in TIMESTAMP_FIELDS:
        reasons.append(
            f"CASE WHEN r.{fld} IS NOT NULL AND r.{fld}_ts IS NULL "
            f"THEN 'не удалось разобрать {FIELD_LABELS[fld]}: \"' || r.{fld} || '\"' END"
        )
    for fld in BOOLEAN_FIELDS:
        reasons.append(
            f"CASE WHEN r.{fld} IS NOT NULL AND lower(r.{fld}) NOT IN {_sql_list(_TRUE + _FALSE)} "
            f"THEN 'ожидалось да/нет в поле {fld}: \"' || r.{fld} || '\"' END"
        )
    # One pass over the source: every row in the warehouse's shape (typed, looked up) with its
    # reason. The source view re-parses dates and scrubs topics on each read, so it is read once
    # here and the insert reads this table. Casts that could fail on a bad value are TRY_CASTs:
    # such a row has a reason and is never inserted.
    present = {f for f in FIELDS if f in columns or defaults[f] is not None}
    optional = {  # warehouse column -> expression, kept only when the source has the field
        "first_response_at": "r.first_response_at_ts", "answered_at": "r.answered_at_ts",
        "due_at": "r.due_at_ts", "first_response_due_at": "r.first_response_due_at_ts",
        "closure_reason": "cl.code",
        "answer_on_merits": _bool_expr("r.answer_on_merits"),
        "returned_for_rework": _bool_expr("r.returned_for_rework"),
        "redirect_count": "TRY_CAST(TRY_CAST(r.redirect_count AS DOUBLE) AS SMALLINT)",
        "satisfaction": "TRY_CAST(TRY_CAST(r.satisfaction AS DOUBLE) AS SMALLINT)",
        "repeat_of": "r.repeat_of", "duplicate_of": "r.duplicate_of", "topic": "r.topic",
        "lat": "TRY_CAST(replace(r.lat, ',', '.') AS DOUBLE)",
        "lon": "TRY_CAST(replace(r.lon, ',', '.') AS DOUBLE)",
    }
    if "lat" in present and "lon" in present:
        # a point is both coordinates: half of one (the other empty or mapped to empty) is no place
        optional["lat"] = f"CASE WHEN r.lon IS NOT NULL THEN {optional['lat']} END"
        optional["lon"] = f"CASE WHEN r.lat IS NOT NULL THEN {optional['lon']} END"
    # an absent field would be a column of NULLs: storing it costs nearly as much as a real one
    kept = [c for c in optional if c in present]
    con.execute(
        f"""CREATE TEMP TABLE imp_chk AS
            SELECT r._row, coalesce(r.source, p.source_name) AS src, r.source_id,
                   coalesce(kd.code, ch.kind) AS kind, ch.code AS channel, ch.rule_id,
                   r.received_at_ts AS received_at, mu.id AS municipality_id,
                   CAST(coalesce(se.id, hc.sector_id, ho.sector_id, p.default_sector_id) AS SMALLINT) AS sector_id,
                   r.category, r.organisation,{' r.organisation_kind,' if 'organisation_kind' in present else ''}
                   coalesce(st.code,
                            CASE WHEN cl.code = 'resolved' THEN 'resolved'
                                 WHEN cl.code = 'redirected' THEN 'redirected'
                                 WHEN r.answered_at_ts IS NOT NULL THEN 'answered'
                                 WHEN r.first_response_at_ts IS NOT NULL THEN 'in_work'
                                 ELSE 'new' END) AS status,
                   {''.join(f'{optional[c]} AS {c}, ' for c in kept)}
                   NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS reason
            FROM imp_raw r CROSS JOIN imp_params p
            LEFT JOIN imp_muni mu ON mu.raw = r.municipality{
                " AND mu.region_raw IS NOT DISTINCT FROM r.region" if by_region else ""}
            LEFT JOIN imp_channel ch ON ch.raw = r.channel
            LEFT JOIN imp_status st ON st.raw = r.status
            LEFT JOIN imp_closure cl ON cl.raw = r.closure_reason
            LEFT JOIN imp_kind kd ON kd.raw = r.kind
            LEFT JOIN imp_sector se ON se.raw = r.sector
            LEFT JOIN imp_sector_by_cat hc ON hc.raw = r.category
            LEFT JOIN imp_sector_by_org ho ON ho.raw = r.organisation"""  # noqa: S608
    )
    result.lap("check")
    # Duplicates inside the file: the first valid occurrence wins, later ones are kept as rejected.
    # Only keys seen twice go through the window (a GROUP BY finds them), not the whole file.
    con.execute(
        """UPDATE imp_chk SET reason = 'повтор номера обращения в файле (первое вхождение — строка '
                                       || d.first_row || ')'
           FROM (SELECT _row, min(_row) OVER (PARTITION BY src, source_id) AS first_row FROM imp_chk
                 WHERE reason IS NULL AND (src, source_id) IN (
                     SELECT (src, source_id) FROM imp_chk WHERE reason IS NULL
                     GROUP BY src, source_id HAVING count(*) > 1)) d
           WHERE imp_chk._row = d._row AND d._row <> d.first_row"""
    )

    result.lap("duplicates")
    # 4. Categories and organisations named by accepted rows: matched, or created and reported.
    result.new_categories = _resolve_categories(con, result.import_id)
    result.new_organisations = _resolve_organisations(con, result.import_id)
    result.organisation_kinds = _set_organisation_kinds(con, mapping, "organisation_kind" in present)
    result.lap("categories, organisations")

    # 5. Rejected rows keep only the mapped fields (never the source's other columns).
    mapped = [f for f in FIELDS if f in columns or defaults[f] is not None]

    def text(f: str) -> str:
        return f"r.{f}__raw" if f in with_raw else f"r.{f}"

    pack = ", ".join(
        f"{f} := coalesce({text(f)}, strftime(r.{f}_ts, '%Y-%m-%d %H:%M:%S'))" if f in TIMESTAMP_FIELDS
        else f"{f} := {text(f)}"
        for f in mapped
    ) or "note := NULL"
    if con.execute("SELECT count(*) FROM imp_chk WHERE reason IS NOT NULL").fetchall()[0][0]:
        con.execute(
            f"""INSERT INTO rejected_row
                SELECT $import_id, r._row, CAST(to_json(struct_pack({pack})) AS VARCHAR), c.reason
                FROM (SELECT _row, reason FROM imp_chk WHERE reason IS NOT NULL) c
                JOIN ({raw_sql(f"{staged.row_expr} IN (SELECT _row FROM imp_chk WHERE reason IS NOT NULL)")}) r
                ON r._row = c._row ORDER BY r._row""",  # noqa: S608
            {"import_id": result.import_id},
        )
    if staged.rejects:
        con.executemany(
            "INSERT INTO rejected_row VALUES (?, ?, NULL, ?)",
            [(result.import_id, line, reason) for line, reason in staged.rejects],
        )

    result.lap("rejected rows")
    # 6. Accepted rows; deadlines the source lacks come from the channel rules, asked of the
    # calendar once per (rule, day) and joined back (data/deadlines.py).
    _register_deadlines(con)
    result.lap("deadlines")
    appeal_types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE appeal)").fetchall())
    acc_columns = {
        **{c: f"CAST(NULL AS {appeal_types[c]})" for c in optional if c not in kept},
        "source": "c.src",
        "due_at": f"coalesce({'c.due_at' if 'due_at' in kept else 'CAST(NULL AS TIMESTAMP)'}, "
                  f"{deadlines.deadline_sql('dr', 'due', 'c.received_at')})",
        "first_response_due_at":
            f"coalesce({'c.first_response_due_at' if 'first_response_due_at' in kept else 'CAST(NULL AS TIMESTAMP)'}, "
            f"{deadlines.deadline_sql('dr', 'first', 'c.received_at')})",
        "category_id": "cm.category_id", "organisation_id": "om.organisation_id", "import_id": "p.import_id",
    }
    # the category map holds non-empty names only, so a plain equality also leaves NULL unmatched
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW imp_acc AS
        SELECT {', '.join(acc_columns.get(col, 'c.' + col) + ' AS ' + col for col in APPEAL_COLUMNS)}
        FROM imp_chk c CROSS JOIN imp_params p
        LEFT JOIN imp_rule_days dr ON dr.rule_id = c.rule_id AND dr.day = CAST(c.received_at AS DATE)
        LEFT JOIN imp_category_map cm ON cm.sector_id = c.sector_id AND cm.raw = c.category
        LEFT JOIN imp_org_map om ON om.raw = c.organisation
        WHERE c.reason IS NULL"""  # noqa: S608 - column names are our constants
    )

    # 7. Upsert by (source, source_id): identical rows are left alone and counted as unchanged.
    if hooks.before_upsert is not None:  # another engine brings the appeals the accepted keys name
        hooks.before_upsert(con)
    same = " AND ".join(
        f"a.{c} IS NOT DISTINCT FROM e.{c}" for c in APPEAL_COLUMNS if c not in ("source", "source_id", "import_id")
    )
    sources = [r[0] for r in con.execute("SELECT DISTINCT src FROM imp_chk WHERE reason IS NULL").fetchall()]
    existing = con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM appeal WHERE list_contains($s, source) LIMIT 1)", {"s": sources}
    ).fetchall()[0][0]
    old_days: list[tuple] = []
    order = "ORDER BY received_at" if _needs_sorting(con) else ""
    if existing == 0:  # a first load of this source: one pass straight into the warehouse
        counts = {"new": con.execute("SELECT count(*) FROM imp_chk WHERE reason IS NULL").fetchall()[0][0]}
        con.execute(f"INSERT INTO appeal ({', '.join(APPEAL_COLUMNS)}) SELECT * FROM imp_acc {order}")  # noqa: S608
    else:
        con.execute(
            f"""CREATE TEMP TABLE imp_state AS
                SELECT a.source, a.source_id,
                       CASE WHEN e.source IS NULL THEN 'new' WHEN {same} THEN 'same' ELSE 'changed' END AS state
                FROM imp_acc a LEFT JOIN appeal e ON e.source = a.source AND e.source_id = a.source_id"""  # noqa: S608
        )
        counts = dict(con.execute("SELECT state, count(*) FROM imp_state GROUP BY state").fetchall())
    if existing and counts.get("changed"):
        old_days = con.execute(
            """SELECT DISTINCT CAST(e.received_at AS DATE) FROM appeal e JOIN imp_state s
               ON s.source = e.source AND s.source_id = e.source_id WHERE s.state = 'changed'"""
        ).fetchall()
        # the rows as they were, so that ``data revert`` can put them back
        con.execute(
            """INSERT INTO appeal_replaced BY NAME
               SELECT e.*, CAST($import_id AS INTEGER) AS replaced_by FROM appeal e JOIN imp_state s
               ON s.source = e.source AND s.source_id = e.source_id WHERE s.state = 'changed'""",
            {"import_id": result.import_id},
        )
        con.execute(
            """DELETE FROM appeal USING imp_state s
               WHERE s.state = 'changed' AND appeal.source = s.source AND appeal.source_id = s.source_id"""
        )
    if existing and (counts.get("changed") or counts.get("new")):  # a re-import of the same file writes nothing
        cols = ", ".join(APPEAL_COLUMNS)
        con.execute(
            f"""INSERT INTO appeal ({cols})
                SELECT {', '.join('a.' + c for c in APPEAL_COLUMNS)} FROM imp_acc a
                JOIN imp_state s ON s.source = a.source AND s.source_id = a.source_id
                WHERE s.state <> 'same' {order}"""  # noqa: S608
        )
    result.lap("upsert")
    con.execute("DROP VIEW imp_acc")
    # The rollups follow the facts in the same transaction: only the days this file touched.
    if existing == 0:
        new_days = con.execute(
            "SELECT DISTINCT CAST(received_at AS DATE) FROM imp_chk WHERE reason IS NULL"
        ).fetchall()
    elif not (counts.get("changed") or counts.get("new")):
        new_days = []
    else:  # unchanged rows leave the rollups as they are
        new_days = con.execute(
            """SELECT DISTINCT CAST(c.received_at AS DATE) FROM imp_chk c
               JOIN imp_state s ON s.source = c.src AND s.source_id = c.source_id
               WHERE c.reason IS NULL AND s.state <> 'same'"""
        ).fetchall()
    if new_days or old_days:
        (hooks.refresh or refresh_rollups)(con, [d for (d,) in new_days] + [d for (d,) in old_days])
    result.lap("rollups")
    as_of = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
    if as_of is not None:
        set_meta(con, "data_as_of", as_of.isoformat(sep=" "))
    result.inserted = int(counts.get("new", 0))
    result.updated = int(counts.get("changed", 0))
    result.unchanged = int(counts.get("same", 0))
    result.accepted = result.inserted + result.updated + result.unchanged
    file_rejects = con.execute("SELECT count(*) FROM imp_chk WHERE reason IS NOT NULL").fetchall()[0][0]
    result.rejected = int(file_rejects) + len(staged.rejects)
    if file_rejects:
        reason, n = con.execute(
            # the kind of reason: its first part up to the value («: "…"») or the details («(…»)
            """SELECT trim(regexp_extract(split_part(reason, '; ', 1), '^[^:(]*')), count(*) FROM imp_chk
               WHERE reason IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"""
        ).fetchall()[0]
        result.main_reason = f"{reason} ({n})"
    elif staged.rejects:
        result.main_reason = f"{staged.rejects[0][1]} ({len(staged.rejects)})"
    result.read = staged.read
    if result.read != result.accepted + result.rejected:  # a bug, never a data problem: refuse to commit
        raise RuntimeError(f"counts do not add up: read {result.read} != {result.accepted} + {result.rejected}")
    result.lap("finish")


ROW_GROUP_ROWS = 122_880  # DuckDB's row group: the unit its zone maps skip


def _needs_sorting(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the accepted rows, in file order, would fill row groups each spanning much of the
    file's time range. Facts must land roughly in received_at order: DuckDB's zone maps then let the
    metrics and the rollup refresh skip other months' row groups. Exports usually come in date or
    number order and need no sort; a shuffled file costs a sort (~0.15 s per 1M rows)."""
    spans, total = con.execute(
        f"""SELECT sum(hi - lo), max(hi) - min(lo) FROM (
                SELECT epoch(max(received_at)) AS hi, epoch(min(received_at)) AS lo FROM imp_chk
                WHERE reason IS NULL GROUP BY _row // {ROW_GROUP_ROWS})"""  # noqa: S608 - a constant
    ).fetchall()[0]
    return spans is not None and spans > 2 * total


def _literal(value: str) -> str:
    """A SQL string literal for this module's own constants (field names, patterns), never for input."""
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: tuple[str, ...]) -> str:
    # constants of this module only, never input
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _bool_expr(col: str) -> str:
    return f"CASE WHEN lower({col}) IN {_sql_list(_TRUE)} THEN TRUE WHEN lower({col}) IN {_sql_list(_FALSE)} THEN FALSE END"


LOOKUP_FIELDS: tuple[str, ...] = (
    "municipality", "channel", "status", "closure_reason", "kind", "sector", "category", "organisation",
)
# Fields whose [values.<field>] is applied once per distinct value, in Python (the others: in SQL)
PYTHON_MAPPED: tuple[str, ...] = (*CODED_FIELDS, "municipality")


class _RowRegions:
    """A region column's text → (region id, None) or (None, the reason the row is refused)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, file_region: int | None) -> None:
        from data.regions import RegionIndex

        self.index = RegionIndex(con)
        self.file_region = file_region
        self.cache: dict[str, tuple[int | None, str | None]] = {}

    def get(self, text: str) -> tuple[int | None, str | None]:
        if text not in self.cache:
            rid = self.index.match(text, code=text)
            if rid is None:
                self.cache[text] = (None, f'неизвестный регион: "{text}"')
            elif self.file_region is not None and rid != self.file_region:
                self.cache[text] = (None, f'регион "{text}" не тот, что указан для файла '
                                          f'(«{self.index.names[self.file_region]}»)')
            else:
                self.cache[text] = (rid, None)
        return self.cache[text]


class _Explicit:
    """A [values.<field>] table: the file's value as written, else case, «ё» and quotes aside."""

    def __init__(self, table: dict[str, str]) -> None:
        self.exact = table
        self.loose = {match_key(k): v for k, v in table.items()}

    def get(self, raw: str) -> tuple[bool, str | None]:
        """Whether the table names ``raw``, and its target (None: empty)."""
        for table, key in ((self.exact, raw), (self.exact, raw.strip()), (self.loose, match_key(raw))):
            if key in table:
                return True, table[key] or None
        return False, None


def _distinct_values(con: duckdb.DuckDBPyConnection, constant: dict[str, str | None]) -> dict[str, list[str]]:
    """Distinct non-empty values of every looked-up field, in one scan of the source.

    ``constant`` holds the fields the file lacks, with their default (or None): a column that is
    one value throughout is not worth a hash table over every row.
    """
    scanned = [f for f in LOOKUP_FIELDS if f not in constant]
    out: dict[str, list[str]] = {f: [] if constant.get(f) is None else [constant[f]] for f in LOOKUP_FIELDS}
    if not scanned:
        return out
    sets = ", ".join(f"({f})" for f in scanned)
    cols = ", ".join(scanned)
    ids = ", ".join(f"GROUPING({f})" for f in scanned)
    rows = con.execute(
        f"SELECT {cols}, [{ids}] FROM imp_raw GROUP BY GROUPING SETS ({sets})"  # noqa: S608 - field names only
    ).fetchall()
    for row in rows:
        grouping = row[-1]
        for i, fld in enumerate(scanned):
            if grouping[i] == 0 and row[i] is not None:
                out[fld].append(row[i])
    return out


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[str, list]]) -> None:
    """A small temp table from Python lists ({column: (SQL type, values)}), passed as parameters.

    (Registering an Arrow table would import pandas, which costs a first import 0.3 s.)
    """
    select = ", ".join(f"unnest(CAST(${col} AS {sql_type}[])) AS {col}" for col, (sql_type, _) in columns.items())
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select}",  # noqa: S608 - our constant names and types
        {col: values for col, (_, values) in columns.items()},
    )


def _register_map(con: duckdb.DuckDBPyConnection, name: str, pairs: dict[str, object], value_type: str) -> None:
    _temp_table(con, name, {"raw": ("VARCHAR", list(pairs.keys())), "v": (value_type, list(pairs.values()))})


def _load_lookups(con: duckdb.DuckDBPyConnection, mapping: Mapping, constant: dict[str, str | None],
                  file_region: int | None = None, by_region: bool = False) -> None:
    distinct = _distinct_values(con, constant)
    # Municipalities: by code, name or alias (data/names.py) — never by the internal id. A value
    # the mapping recodes is looked up as its target; one it maps to empty has no municipality.
    # With a region column, per distinct (name, region) pair, the name looked up within the region.
    index = MunicipalityIndex.from_warehouse(con)
    explicit_muni = _Explicit(mapping.values.get("municipality", {}))
    muni_ids: list[int | None] = []
    muni_raw: list[str] = []
    muni_region: list[str | None] = []
    problems: list[str | None] = []
    pairs_in_file: list[tuple[str, str | None]] = (
        con.execute("SELECT DISTINCT municipality, region FROM imp_raw WHERE municipality IS NOT NULL").fetchall()
        if by_region else [(raw, None) for raw in distinct["municipality"]])
    row_region = _RowRegions(con, file_region) if by_region else None
    for raw, region_raw in pairs_in_file:
        named, target = explicit_muni.get(raw)
        problem: str | None = None
        rid = file_region
        if named and target is None:
            problem = f'не указан муниципалитет (значение "{raw}" в соответствии сопоставлено пустому)'
        elif row_region is not None and region_raw is not None:
            rid, problem = row_region.get(region_raw)
        found = index.match(target if named else raw, rid) if problem is None else None
        if found is not None and found.id is None and not found.found_elsewhere:
            continue  # unknown: the check says so with the value
        muni_raw.append(raw)
        muni_region.append(region_raw)
        muni_ids.append(found.id if found is not None else None)
        if found is not None and found.id is None:
            problem = found.region_reason(raw) or (
                f'неоднозначный муниципалитет: "{raw}" (подходят: {"; ".join(found.ambiguous)})')
        problems.append(problem)
    _temp_table(con, "imp_muni", {"raw": ("VARCHAR", muni_raw), "region_raw": ("VARCHAR", muni_region),
                                  "id": ("INTEGER", muni_ids), "problem": ("VARCHAR", problems)})

    channels = con.execute("SELECT code, name, kind FROM channel").fetchall()
    channel_syn = (
        _CHANNEL_SYNONYMS | {match_key(c): c for c, _, _ in channels} | {match_key(n): c for c, n, _ in channels}
    )
    for tbl, fld, synonyms in (
        ("imp_channel", "channel", channel_syn),
        ("imp_status", "status", {s: s for s in STATUSES} | _STATUS_SYNONYMS),
        ("imp_closure", "closure_reason", {s: s for s in CLOSURE_REASONS} | _CLOSURE_SYNONYMS),
        ("imp_kind", "kind", {s: s for s in KINDS} | _KIND_SYNONYMS),
    ):
        explicit = _Explicit(mapping.values.get(fld, {}))
        pairs: dict[str, object] = {}
        for raw in distinct[fld]:
            named, code = explicit.get(raw)  # code None with named: empty, as if the cell were blank
            if named or (code := synonyms.get(match_key(raw))) is not None:
                pairs[raw] = code
        _register_map(con, tbl, pairs, "VARCHAR")
        extra = ", v AS kind" if fld == "channel" else ""
        con.execute(f"CREATE OR REPLACE TEMP TABLE {tbl} AS SELECT raw, v AS code{extra} FROM {tbl}")  # noqa: S608 - constant name
    con.execute(
        """CREATE OR REPLACE TEMP TABLE imp_rules AS
           SELECT CAST(row_number() OVER (ORDER BY code) AS INTEGER) AS rule_id, * FROM channel"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE imp_channel AS "
        "SELECT m.raw, m.code, c.kind, c.rule_id FROM imp_channel m LEFT JOIN imp_rules c ON c.code = m.code"
    )

    sectors = con.execute("SELECT id, code, name FROM sector").fetchall()
    sector_by_code = {code: sid for sid, code, _ in sectors}
    sector_syn = {match_key(code): sid for sid, code, _ in sectors} | {match_key(n): sid for sid, _, n in sectors}
    explicit_sector = _Explicit(mapping.values.get("sector", {}))
    pairs = {}
    for raw in distinct["sector"]:
        named, code = explicit_sector.get(raw)
        if named:  # a sector code, or None: the row's sector then comes from the hints
            pairs[raw] = sector_by_code[code] if code is not None else None
        elif (sid := sector_syn.get(match_key(raw))) is not None:
            pairs[raw] = sid
    _register_map(con, "imp_sector", pairs, "SMALLINT")
    con.execute("CREATE OR REPLACE TEMP TABLE imp_sector AS SELECT raw, v AS id FROM imp_sector")

    # Sector hints when a row names none: mapping first, then what the warehouse already knows.
    cat_rows = con.execute("SELECT id, sector_id, name FROM category").fetchall()
    cat_sectors: dict[str, set[int]] = {}
    for _cid, sid, name in cat_rows:
        cat_sectors.setdefault(match_key(name), set()).add(sid)
    by_cat_map = {match_key(k): sector_by_code[v] for k, v in mapping.sector_by_category.items()}
    pairs = {}
    for raw in distinct["category"]:
        key = match_key(raw)
        if key in by_cat_map:
            pairs[raw] = by_cat_map[key]
        elif len(cat_sectors.get(key, ())) == 1:
            pairs[raw] = next(iter(cat_sectors[key]))
    _register_map(con, "imp_sector_by_cat", pairs, "SMALLINT")
    con.execute("CREATE OR REPLACE TEMP TABLE imp_sector_by_cat AS SELECT raw, v AS sector_id FROM imp_sector_by_cat")

    org_sector = {match_key(n): s for n, s in con.execute(
        "SELECT name, sector_id FROM organisation WHERE sector_id IS NOT NULL").fetchall()}
    by_org_map = {match_key(k): sector_by_code[v] for k, v in mapping.sector_by_organisation.items()}
    pairs = {}
    for raw in distinct["organisation"]:
        key = match_key(raw)
        sid = by_org_map.get(key) or org_sector.get(key)
        if sid is not None:
            pairs[raw] = sid
    _register_map(con, "imp_sector_by_org", pairs, "SMALLINT")
    con.execute("CREATE OR REPLACE TEMP TABLE imp_sector_by_org AS SELECT raw, v AS sector_id FROM imp_sector_by_org")


def _resolve_categories(con: duckdb.DuckDBPyConnection, import_id: int) -> list[str]:
    # in order of first appearance: of two spellings of one new name, the file's first one is kept
    wanted = con.execute(
        """SELECT sector_id, category FROM imp_chk WHERE reason IS NULL AND category IS NOT NULL
           GROUP BY ALL ORDER BY min(_row)"""
    ).fetchall()
    existing = con.execute("SELECT id, sector_id, name FROM category").fetchall()
    by_name = {(sid, match_key(name)): cid for cid, sid, name in existing}
    next_id = max((cid for cid, _, _ in existing), default=0) + 1
    sector_names = dict(con.execute("SELECT id, name FROM sector").fetchall())
    mapping: dict[tuple[int, str], int] = {}
    created: list[str] = []
    new_rows: list[tuple[int, int, str]] = []
    for sid, raw in wanted:
        key = (sid, match_key(raw))
        if key in by_name:
            mapping[(sid, raw)] = by_name[key]
        else:
            new_rows.append((next_id, sid, raw.strip()))
            by_name[key] = next_id
            mapping[(sid, raw)] = next_id
            created.append(f"{sector_names.get(sid, sid)}: {raw.strip()}")
            next_id += 1
    if new_rows:
        con.execute(
            """INSERT INTO category (id, sector_id, name, parent_id, is_other, created_by_import)
               SELECT unnest($ids), unnest($sectors), unnest($names), NULL, FALSE, $import_id""",
            {"ids": [r[0] for r in new_rows], "sectors": [r[1] for r in new_rows],
             "names": [r[2] for r in new_rows], "import_id": import_id},
        )
        apply_severity_to_new(con)  # a new category's severity from config/severity.toml
    _temp_table(con, "imp_category_map", {
        "sector_id": ("SMALLINT", [k[0] for k in mapping]),
        "raw": ("VARCHAR", [k[1] for k in mapping]),
        "category_id": ("INTEGER", list(mapping.values())),
    })
    return sorted(created)


def _resolve_organisations(con: duckdb.DuckDBPyConnection, import_id: int) -> list[str]:
    wanted = con.execute(
        """SELECT organisation, list(DISTINCT sector_id), list(DISTINCT municipality_id)
           FROM imp_chk WHERE reason IS NULL AND organisation IS NOT NULL GROUP BY organisation
           ORDER BY min(_row)"""
    ).fetchall()
    existing = con.execute("SELECT id, name FROM organisation").fetchall()
    by_name = {match_key(name): oid for oid, name in existing}
    next_id = max((oid for oid, _ in existing), default=0) + 1
    pairs: dict[str, object] = {}
    created: list[str] = []
    new_rows: list[tuple[int, str, int | None, int | None]] = []
    for raw, sectors, munis in wanted:
        key = match_key(raw)
        if key in by_name:
            pairs[raw] = by_name[key]
            continue
        sector_id = sectors[0] if len(sectors) == 1 else None
        municipality_id = munis[0] if len(munis) == 1 else None
        new_rows.append((next_id, raw.strip(), municipality_id, sector_id))
        by_name[key] = next_id
        pairs[raw] = next_id
        created.append(raw.strip())
        next_id += 1
    if new_rows:
        con.execute(
            """INSERT INTO organisation (id, name, kind, municipality_id, sector_id, created_by_import)
               SELECT unnest($ids), unnest($names), NULL, unnest(CAST($munis AS INTEGER[])),
                      unnest(CAST($sectors AS SMALLINT[])), $import_id""",
            {"ids": [r[0] for r in new_rows], "names": [r[1] for r in new_rows],
             "munis": [r[2] for r in new_rows], "sectors": [r[3] for r in new_rows], "import_id": import_id},
        )
    _register_map(con, "imp_org_map", pairs, "INTEGER")
    con.execute("CREATE OR REPLACE TEMP TABLE imp_org_map AS SELECT raw, v AS organisation_id FROM imp_org_map")
    return sorted(created)


def _set_organisation_kinds(con: duckdb.DuckDBPyConnection, mapping: Mapping, from_rows: bool) -> int:
    """``organisation.kind`` from the file's column (an organisation's most frequent kind among the
    accepted rows) and the mapping's [organisation_kind] (which wins: it is the person's decision).
    Applies to every organisation of the warehouse so named; returns how many kinds changed."""
    kinds: dict[str, str] = {}
    if from_rows:
        rows = con.execute(
            """SELECT organisation, organisation_kind FROM imp_chk
               WHERE reason IS NULL AND organisation IS NOT NULL AND organisation_kind IS NOT NULL
               GROUP BY ALL ORDER BY count(*), min(_row) DESC"""
        ).fetchall()
        for name, kind in rows:  # least frequent first, so the most frequent kind is written last
            kinds[match_key(name)] = kind.strip()
    kinds |= {match_key(name): kind for name, kind in mapping.organisation_kind.items()}
    if not kinds:
        return 0
    changes = [(oid, kinds[match_key(name)]) for oid, name, kind in
               con.execute("SELECT id, name, kind FROM organisation").fetchall()
               if match_key(name) in kinds and kinds[match_key(name)] != kind]
    if changes:
        con.execute(
            """UPDATE organisation SET kind = k.kind
               FROM (SELECT unnest(CAST($ids AS INTEGER[])) AS id, unnest(CAST($kinds AS VARCHAR[])) AS kind) k
               WHERE organisation.id = k.id""",
            {"ids": [c[0] for c in changes], "kinds": [c[1] for c in changes]},
        )
    return len(changes)


def _register_deadlines(con: duckdb.DuckDBPyConnection) -> None:
    """``imp_rule_days``: what deadlines.deadline_sql needs, per (channel rule, received day) of accepted rows,
    under the region's working-day calendar."""
    calendar = read_region(con).calendar
    rules = con.execute(
        "SELECT rule_id, deadline_kind, deadline_value, first_response_kind, first_response_value FROM imp_rules"
    ).fetchall()
    pairs = con.execute(
        """SELECT rule_id, list(DISTINCT CAST(received_at AS DATE)) FROM imp_chk
           WHERE reason IS NULL GROUP BY rule_id"""
    ).fetchall()
    days_by_rule = {rule_id: days for rule_id, days in pairs}
    columns: dict[str, tuple[str, list]] = {"rule_id": ("INTEGER", []), "day": ("DATE", [])}
    for prefix in ("due", "first"):
        for name in deadlines.DAY_COLUMNS:
            columns[f"{prefix}_{name}"] = ("BOOLEAN" if name == "by_hour" else "TIMESTAMP", [])
    for rule_id, kind, value, fr_kind, fr_value in rules:
        if rule_id not in days_by_rule:
            continue
        days = np.array(sorted(days_by_rule[rule_id]), dtype="datetime64[D]")
        columns["rule_id"][1].extend([rule_id] * len(days))
        columns["day"][1].extend(days.tolist())
        for prefix, (k, v) in (("due", (kind, value)), ("first", (fr_kind, fr_value))):
            for name, values in deadlines.day_columns(days, k, v, calendar).items():
                columns[f"{prefix}_{name}"][1].extend(values.tolist())
    _temp_table(con, "imp_rule_days", columns)


def rejected_rows_csv(con: duckdb.DuckDBPyConnection, import_id: int | None, out) -> int:  # noqa: ANN001
    """Write rejected rows (import, line, reason, raw fields) as CSV; returns the number written."""
    import csv

    if import_id is None:
        rows = con.execute(
            "SELECT import_id, row_number, reason, raw FROM rejected_row ORDER BY import_id, row_number"
        ).fetchall()
    else:
        rows = con.execute(
            "SELECT import_id, row_number, reason, raw FROM rejected_row WHERE import_id = ? ORDER BY row_number",
            [import_id],
        ).fetchall()
    writer = csv.writer(out)
    writer.writerow(["import_id", "row_number", "reason", "raw"])
    for import_, row, reason, raw in rows:
        writer.writerow([import_, row, reason, raw if raw is not None else ""])
    return len(rows)


def low_acceptance_warning(result: ImportResult) -> str | None:
    """One Russian line when less than half of the rows were accepted — usually a mapping that does
    not fit the file (wrong column, unknown spellings), not a file that is half bad."""
    if result.read == 0 or 2 * result.accepted >= result.read:
        return None
    commonest = f"; чаще всего: {result.main_reason}" if result.main_reason else ""
    return (f"внимание: принято меньше половины строк — {result.accepted} из {result.read}{commonest}; "
            f"все причины: python -m data rejected --import-id {result.import_id}")


def summary_json(result: ImportResult) -> str:
    return json.dumps(result.summary(), ensure_ascii=False)
