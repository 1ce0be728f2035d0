"""The root-cause roadmap: measures (``roadmap_item``) from a CSV/XLSX file or from the page's form.

Every row of a file is either accepted or rejected with a reason in Russian, and the counts add
up: ``read = accepted + rejected``. Accepted rows are written in one transaction; a file that cannot
be used at all (no such file, no title column…) changes nothing.

Columns (Russian or English names; case and «ё» do not matter): ``title`` «Мероприятие»,
``municipality`` «Муниципалитет» (empty or «весь регион» = the whole region), ``sector`` «Блок»
(code or name), ``categories`` «Категории» (names separated by «;»; empty = the whole block),
``organisation`` «Ответственный», ``start_date`` «Начало», ``planned_end_date`` «Окончание»,
``status`` «Статус» (запланирована, выполняется, выполнена, отменена; empty = выполняется).

The form writes to a running dashboard, whose process holds the warehouse open read-only: the item
is written into a copy that then replaces the file (readers reopen on the next request), under a
lock so that two writers do not lose each other's item.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from data.names import MunicipalityIndex, match_key
from data.readers import STAGE_TABLE, SourceFileError, drop_stage, header_fields, stage_file
from data.schema import ROADMAP_STATUSES, create_schema
from data.swap import writing
from data.warehouse import ensure_initialised, region_now

FIELDS: tuple[str, ...] = ("title", "municipality", "sector", "categories", "organisation", "start_date",
                           "planned_end_date", "status")
REQUIRED: tuple[str, ...] = ("title", "sector", "organisation", "start_date")
HEADER_SYNONYMS: dict[str, str] = {
    "мероприятие": "title", "мера": "title", "название": "title", "наименование": "title",
    "муниципалитет": "municipality", "муниципальное образование": "municipality", "территория": "municipality",
    "блок": "sector", "отраслевой блок": "sector", "направление": "sector", "отрасль": "sector",
    "категории": "categories", "категория": "categories", "проблемы": "categories",
    "ответственный": "organisation", "ответственная организация": "organisation", "исполнитель": "organisation",
    "организация": "organisation",
    "начало": "start_date", "дата начала": "start_date", "старт": "start_date",
    "окончание": "planned_end_date", "плановая дата окончания": "planned_end_date", "срок": "planned_end_date",
    "дата окончания": "planned_end_date",
    "статус": "status",
}
REGION_WORDS = {"весь регион", "регион", "вся область", "область", "все"}
STATUS_SYNONYMS: dict[str, str] = {
    **{code: code for code in ROADMAP_STATUSES},
    **{label: code for code, label in ROADMAP_STATUSES.items()},
    "план": "planned", "планируется": "planned", "запланировано": "planned",
    "в работе": "in_progress", "выполняется": "in_progress", "в процессе": "in_progress", "идёт": "in_progress",
    "выполнено": "done", "завершена": "done", "завершено": "done",
    "отменено": "cancelled",
}
DEFAULT_STATUS = "in_progress"
MAX_TITLE = 300
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%d.%m.%y")


class RoadmapFileError(ValueError):
    """The file cannot be used at all; the message is for a person."""


@dataclass(frozen=True)
class RoadmapItem:
    title: str
    municipality_id: int | None
    sector_id: int
    category_ids: tuple[int, ...]
    organisation_id: int | None
    organisation_name: str
    start_date: dt.date
    planned_end_date: dt.date | None
    status: str


@dataclass
class RoadmapImportResult:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    ids: list[int] = field(default_factory=list)
    rejected_rows: list[dict[str, object]] = field(default_factory=list)  # {"row", "reason"}

    def summary(self) -> dict[str, object]:
        return {"read": self.read, "accepted": self.accepted, "rejected": self.rejected, "ids": self.ids,
                "rejected_rows": self.rejected_rows}


class Lookups:
    """Names → ids of the warehouse's reference lists, read once per import."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.municipalities = MunicipalityIndex.from_warehouse(con)  # codes, names and aliases, as imports
        self.sectors: dict[str, int] = {}
        for sid, code, name in con.execute("SELECT id, code, name FROM sector").fetchall():
            self.sectors[match_key(code)] = int(sid)
            self.sectors[match_key(name)] = int(sid)
        # (sector id, name key) → category id
        self.categories: dict[tuple[int, str], int] = {
            (int(sid), match_key(name)): int(cid)
            for cid, sid, name in con.execute("SELECT id, sector_id, name FROM category").fetchall()
        }
        self.organisations: dict[str, int] = {
            match_key(name): int(oid) for oid, name in con.execute("SELECT id, name FROM organisation").fetchall()
        }
        self.existing: set[tuple[str, int | None, dt.date]] = _existing_keys(con)


def _existing_keys(con: duckdb.DuckDBPyConnection) -> set[tuple[str, int | None, dt.date]]:
    rows = con.execute("SELECT title, municipality_id, start_date FROM roadmap_item").fetchall()
    return {(match_key(t), m, s) for t, m, s in rows}


def parse_date(text: str) -> dt.date:
    value = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(value)


def validate(raw: Mapping[str, object], lookups: Lookups) -> tuple[RoadmapItem | None, list[str]]:
    """One item from field texts (``FIELDS``); on failure None and every reason, in Russian."""
    get = {f: ("" if raw.get(f) is None else str(raw.get(f)).strip()) for f in FIELDS}
    reasons: list[str] = []
    missing = {"title": "не указано название меры", "sector": "не указан отраслевой блок",
               "organisation": "не указана ответственная организация", "start_date": "не указана дата начала"}
    reasons += [missing[name] for name in REQUIRED if not get[name]]
    if len(get["title"]) > MAX_TITLE:
        reasons.append(f"название длиннее {MAX_TITLE} знаков")

    municipality_id: int | None = None
    if get["municipality"] and match_key(get["municipality"]) not in REGION_WORDS:
        match = lookups.municipalities.match(get["municipality"])
        if reason := match.reason(get["municipality"]):
            reasons.append(reason)
        municipality_id = match.id

    sector_id = lookups.sectors.get(match_key(get["sector"])) if get["sector"] else None
    if get["sector"] and sector_id is None:
        reasons.append(f"неизвестный отраслевой блок: «{get['sector']}»")

    category_ids: list[int] = []
    if get["categories"] and sector_id is not None:
        for name in [p.strip() for p in re.split(r"[;\n]", get["categories"]) if p.strip()]:
            cid = lookups.categories.get((sector_id, match_key(name)))
            if cid is None:
                other = [s for (s, k) in lookups.categories if k == match_key(name)]
                reasons.append(f"категория «{name}» не из блока «{get['sector']}»" if other
                               else f"неизвестная категория: «{name}»")
            elif cid not in category_ids:
                category_ids.append(cid)

    start = end = None
    if get["start_date"]:
        try:
            start = parse_date(get["start_date"])
        except ValueError:
            reasons.append(f"неверная дата начала: «{get['start_date']}» (нужно ДД.ММ.ГГГГ или ГГГГ-ММ-ДД)")
    if get["planned_end_date"]:
        try:
            end = parse_date(get["planned_end_date"])
        except ValueError:
            reasons.append(f"неверная дата окончания: «{get['planned_end_date']}» (нужно ДД.ММ.ГГГГ или ГГГГ-ММ-ДД)")
    if start and end and end < start:
        reasons.append("дата окончания раньше даты начала")

    status = STATUS_SYNONYMS.get(match_key(get["status"])) if get["status"] else DEFAULT_STATUS
    if status is None:
        reasons.append(f"неизвестный статус: «{get['status']}» (допустимы: {', '.join(ROADMAP_STATUSES.values())})")

    if reasons:
        return None, reasons
    assert sector_id is not None and start is not None and status is not None  # noqa: S101 - checked above
    if (match_key(get["title"]), municipality_id, start) in lookups.existing:
        return None, ["такая мера уже есть: то же название, территория и дата начала"]
    return RoadmapItem(get["title"], municipality_id, sector_id, tuple(category_ids),
                       lookups.organisations.get(match_key(get["organisation"])), get["organisation"], start, end,
                       status), []


def insert_items(con: duckdb.DuckDBPyConnection, items: list[RoadmapItem], source: str,
                 created_at: dt.datetime | None = None) -> list[int]:
    """Append items (the caller holds the transaction); their new ids."""
    next_id = int(con.execute("SELECT coalesce(max(id), 0) + 1 FROM roadmap_item").fetchall()[0][0])
    created = created_at or region_now(con)  # the warehouse keeps the region's wall-clock time
    ids = []
    for i, item in enumerate(items):
        con.execute(
            "INSERT INTO roadmap_item VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [next_id + i, item.title, item.municipality_id, item.sector_id, list(item.category_ids),
             item.organisation_id, item.organisation_name, item.start_date, item.planned_end_date, item.status,
             source, created],
        )
        ids.append(next_id + i)
    return ids


def _columns(header: list[str]) -> dict[str, str]:
    """Staged column → field; unknown columns are ignored, a field named twice is an error."""
    try:
        out = header_fields(header, FIELDS, HEADER_SYNONYMS)
    except ValueError as twice:
        raise RoadmapFileError(f"поле «{twice}» указано в двух столбцах") from twice
    if "title" not in out.values():
        raise RoadmapFileError("в файле нет столбца с названием меры (title или «Мероприятие»)")
    return out


def import_roadmap(con: duckdb.DuckDBPyConnection, path: Path, source: str | None = None,
                   region: str | None = None) -> RoadmapImportResult:
    """Read a CSV or XLSX file of measures into ``roadmap_item`` (read-write connection); ``region``
    (name, ISO code, ОКАТО) is where the file's municipality names are looked up."""
    from data.regions import UnknownRegion, region_by_text

    ensure_initialised(con)
    create_schema(con)
    try:
        region_id = region_by_text(con, region)
    except UnknownRegion as exc:
        raise RoadmapFileError(str(exc)) from exc
    try:
        staged = stage_file(con, Path(path))
    except SourceFileError as exc:
        raise RoadmapFileError(str(exc)) from exc
    try:
        columns = _columns(staged.header)
        frame = con.execute(f"SELECT {staged.row_expr} AS _line, * FROM {STAGE_TABLE} ORDER BY 1").df()  # noqa: S608
    finally:
        drop_stage(con)
    result = RoadmapImportResult(read=staged.read)
    for line, reason in staged.rejects:
        result.rejected_rows.append({"row": line, "reason": reason})
    lookups = Lookups(con)
    lookups.municipalities.default_region = region_id
    accepted: list[RoadmapItem] = []
    for record in frame.to_dict("records"):
        raw = {field_name: record.get(col) for col, field_name in columns.items()}
        raw = {k: (None if v is None or v != v else v) for k, v in raw.items()}  # NaN → None
        item, reasons = validate(raw, lookups)
        if item is None:
            result.rejected_rows.append({"row": int(record["_line"]), "reason": "; ".join(reasons)})
            continue
        lookups.existing.add((match_key(item.title), item.municipality_id, item.start_date))  # a repeat in the file
        accepted.append(item)
    con.execute("BEGIN TRANSACTION")
    try:
        result.ids = insert_items(con, accepted, source or Path(path).name)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    result.accepted = len(accepted)
    result.rejected = len(result.rejected_rows)
    result.rejected_rows.sort(key=lambda r: int(r["row"]))
    return result


class _Refused(Exception):
    """The form's values did not pass: abandon the copy, keep the reasons."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _has_schema(con: duckdb.DuckDBPyConnection) -> bool:
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return {"municipality", "sector", "category", "organisation", "roadmap_item"} <= present


def add_item(db_path: str | Path, raw: Mapping[str, object], source: str = "форма") -> tuple[int | None, list[str]]:
    """Validate and add one measure to the warehouse at ``db_path`` while it is being served.

    Returns (new id, []) or (None, reasons). Written like every other change: on a copy that is
    switched in (``data.swap``), so the dashboard never sees a half-written file.
    """
    db = Path(db_path)
    if not db.exists():
        return None, [f"хранилище не найдено: {db}"]
    # checked on the served file first: a refused form never copies the warehouse or waits for the
    # writer's lock (an import may hold it for minutes)
    with duckdb.connect(str(db), read_only=True) as con:
        if _has_schema(con):
            item, reasons = validate(raw, Lookups(con))
            if item is None:
                return None, reasons
    try:
        with writing(db) as con:
            create_schema(con)
            item, reasons = validate(raw, Lookups(con))
            if item is None:
                raise _Refused(reasons)
            con.execute("BEGIN TRANSACTION")
            new_id = insert_items(con, [item], source)[0]
            con.execute("COMMIT")
    except _Refused as refused:
        return None, refused.reasons
    return new_id, []
