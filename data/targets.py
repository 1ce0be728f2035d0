"""Targets (целевые показатели) from a CSV/XLSX file into the ``target`` table.

Columns (Russian or English names; case and «ё» do not matter): ``indicator`` «Показатель» (code
such as ``on_time_share`` or the indicator's name «Доля в срок»), ``sector`` «Блок» (code
or name; empty = every block), ``category`` «Категория» (a name; implies its block),
``municipality`` «Муниципалитет» (name, alias or ОКТМО/ОКАТО; empty or «весь регион» = the whole
region), ``channel`` «Канал» (optional; a channel's own target such as 8 working hours in social
media), ``period`` «Период» (the month the target applies from: ГГГГ-ММ, ММ.ГГГГ, or a day
ДД.ММ.ГГГГ / ГГГГ-ММ-ДД — a target stays in force until a later row replaces it), ``value``
«Значение» (a share as 0,9 or «90 %»; hours and days as numbers), ``note`` «Примечание» (optional).

Every row is accepted or rejected with a reason in Russian and ``read = accepted + rejected``.
A row with the same indicator, block, category, municipality, channel and period as a stored
target replaces it (``replaced``); the same key twice in one file rejects the second row. The
accepted rows are written in one transaction; a file that cannot be used changes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from data.names import MunicipalityIndex, match_key
from data.readers import STAGE_TABLE, SourceFileError, drop_stage, header_fields, stage_file
from data.warehouse import ensure_initialised

FIELDS: tuple[str, ...] = ("indicator", "sector", "category", "municipality", "channel", "period", "value", "note")
REQUIRED: tuple[str, ...] = ("indicator", "period", "value")
HEADER_SYNONYMS: dict[str, str] = {
    "показатель": "indicator", "индикатор": "indicator", "код показателя": "indicator",
    "блок": "sector", "отраслевой блок": "sector", "направление": "sector", "отрасль": "sector",
    "категория": "category", "проблема": "category", "тема": "category",
    "муниципалитет": "municipality", "муниципальное образование": "municipality", "территория": "municipality",
    "мо": "municipality",
    "канал": "channel", "источник": "channel",
    "период": "period", "месяц": "period", "с": "period", "действует с": "period", "дата": "period",
    "начало": "period",
    "значение": "value", "цель": "value", "целевое значение": "value", "целевой показатель": "value",
    "примечание": "note", "комментарий": "note", "описание": "note",
}
REGION_WORDS = {"весь регион", "регион", "вся область", "область", "все", "всего", "итого", "край", "весь край"}
SHARE_KINDS = ("ratio",)


class TargetFileError(ValueError):
    """The file cannot be used at all; the message is one line for a person."""


@dataclass
class TargetImportResult:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    inserted: int = 0
    replaced: int = 0
    rejected_rows: list[dict[str, object]] = field(default_factory=list)  # {"row", "reason"}

    def summary(self) -> dict[str, object]:
        return {"read": self.read, "accepted": self.accepted, "rejected": self.rejected, "inserted": self.inserted,
                "replaced": self.replaced, "rejected_rows": self.rejected_rows}


class _Lookups:
    """Names → codes and ids of the warehouse's reference lists and the indicator registry."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        from metrics import indicators as ind  # the registry: data and metrics agree on the codes

        self.indicators: dict[str, ind.Indicator] = {}
        for spec in ind.registry().values():
            self.indicators[match_key(spec.code)] = spec
            self.indicators.setdefault(match_key(spec.label), spec)
        self.sectors: dict[str, int] = {}
        for sid, code, name in con.execute("SELECT id, code, name FROM sector").fetchall():
            self.sectors[match_key(code)] = int(sid)
            self.sectors[match_key(name)] = int(sid)
        self.categories: dict[str, list[tuple[int, int]]] = {}  # name key → [(category id, sector id)]
        for cid, sid, name in con.execute("SELECT id, sector_id, name FROM category ORDER BY id").fetchall():
            self.categories.setdefault(match_key(name), []).append((int(cid), int(sid)))
        self.channels: dict[str, str] = {}
        for code, name in con.execute("SELECT code, name FROM channel").fetchall():
            self.channels[match_key(code)] = str(code)
            self.channels[match_key(name)] = str(code)
        self.municipalities = MunicipalityIndex.from_warehouse(con)


@dataclass(frozen=True)
class TargetRow:
    indicator: str
    sector_id: int | None
    category_id: int | None
    municipality_id: int | None
    channel: str | None
    period_start: dt.date
    value: float
    note: str | None

    @property
    def key(self) -> tuple:
        return (self.indicator, self.sector_id, self.category_id, self.municipality_id, self.channel,
                self.period_start)


_PERIOD_FORMATS: tuple[tuple[str, bool], ...] = (
    ("%Y-%m", True), ("%m.%Y", True), ("%Y.%m", True), ("%m/%Y", True),
    ("%Y-%m-%d", False), ("%d.%m.%Y", False), ("%Y-%m-%d %H:%M:%S", False), ("%d.%m.%y", False),
)


def parse_period(text: str) -> dt.date:
    """The first day a target applies from; a month alone means its first day. ValueError otherwise."""
    value = text.strip()
    for fmt, _month_only in _PERIOD_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    if re.fullmatch(r"\d{4}", value):  # a year: from its January
        return dt.date(int(value), 1, 1)
    raise ValueError(value)


def parse_value(text: str, is_share: bool) -> float:
    """A number («0,9», «90 %», «1 234,5»); a percentage only for a share. ValueError otherwise."""
    value = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    percent = value.endswith("%")
    if percent:
        value = value[:-1]
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(text)
    if percent:
        if not is_share:
            raise ValueError(text)
        number /= 100
    return number


def validate(raw: dict[str, str], lookups: _Lookups) -> tuple[TargetRow | None, list[str]]:
    """One target from the field texts; on failure None and every reason, in Russian."""
    get = {f: raw.get(f, "").strip() for f in FIELDS}
    reasons: list[str] = []
    missing = {"indicator": "не указан показатель", "period": "не указан период", "value": "не указано значение"}
    reasons += [missing[name] for name in REQUIRED if not get[name]]

    spec = lookups.indicators.get(match_key(get["indicator"])) if get["indicator"] else None
    if get["indicator"] and spec is None:
        reasons.append(f"неизвестный показатель: «{get['indicator']}»")

    sector_id = None
    if get["sector"] and match_key(get["sector"]) not in REGION_WORDS:
        sector_id = lookups.sectors.get(match_key(get["sector"]))
        if sector_id is None:
            reasons.append(f"неизвестный блок: «{get['sector']}»")

    category_id = None
    if get["category"]:
        found = lookups.categories.get(match_key(get["category"]), [])
        candidates = [c for c in found if c[1] == sector_id] if sector_id is not None else found
        if not found:
            reasons.append(f"неизвестная категория: «{get['category']}»")
        elif not candidates:
            reasons.append(f"категория «{get['category']}» не из блока «{get['sector']}»")
        elif len({c[1] for c in candidates}) > 1:
            reasons.append(f"категория «{get['category']}» есть в нескольких блоках: укажите блок")
        else:
            category_id, sector_id = candidates[0]  # a category implies its block

    municipality_id = None
    if get["municipality"] and match_key(get["municipality"]) not in REGION_WORDS:
        match = lookups.municipalities.match(get["municipality"])
        if reason := match.reason(get["municipality"]):
            reasons.append(reason)
        municipality_id = match.id

    channel = None
    if get["channel"] and match_key(get["channel"]) not in REGION_WORDS:
        channel = lookups.channels.get(match_key(get["channel"]))
        if channel is None:
            reasons.append(f"неизвестный канал: «{get['channel']}»")

    period = None
    if get["period"]:
        try:
            period = parse_period(get["period"])
        except ValueError:
            reasons.append(f"неверный период: «{get['period']}» (нужно ГГГГ-ММ, ММ.ГГГГ или ДД.ММ.ГГГГ)")

    value = None
    if get["value"] and spec is not None:
        is_share = spec.kind in SHARE_KINDS
        try:
            value = parse_value(get["value"], is_share or spec.kind == "growth")
        except ValueError:
            reasons.append(f"значение не число: «{get['value']}»")
        else:
            if is_share and not 0 <= value <= 1:
                reasons.append(f"доля вне 0…1: «{get['value']}» (пишите 0,9 или 90 %)")
            elif spec.kind not in ("growth",) and value < 0:
                reasons.append(f"отрицательное значение: «{get['value']}»")

    if reasons:
        return None, reasons
    assert spec is not None and period is not None and value is not None  # noqa: S101 - checked above
    return TargetRow(spec.code, sector_id, category_id, municipality_id, channel, period, value,
                     get["note"] or None), []


def _columns(header: list[str]) -> dict[str, str]:
    """Staged column → field; unknown columns are ignored, a field named twice is an error."""
    try:
        out = header_fields(header, FIELDS, HEADER_SYNONYMS)
    except ValueError as twice:
        raise TargetFileError(f"поле «{twice}» указано в двух столбцах") from twice
    absent = [f for f in REQUIRED if f not in out.values()]
    if absent:
        names = {"indicator": "indicator или «Показатель»", "period": "period или «Период»",
                 "value": "value или «Значение»"}
        raise TargetFileError(
            f"в файле нет столбца: {', '.join(names[f] for f in absent)}; в файле: {', '.join(header)}"
        )
    return out


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, dt.datetime | dt.date):  # a spreadsheet's date cell
        return f"{value:%Y-%m-%d}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def import_targets(con: duckdb.DuckDBPyConnection, path: str | Path, region: str | None = None) -> TargetImportResult:
    """Read a CSV or XLSX file of targets into ``target`` (read-write connection); ``region`` (name,
    ISO code, ОКАТО) is where the file's municipality names are looked up."""
    from data.regions import UnknownRegion, region_by_text

    path = Path(path)
    ensure_initialised(con)
    try:
        region_id = region_by_text(con, region)
    except UnknownRegion as exc:
        raise TargetFileError(str(exc)) from exc
    try:
        staged = stage_file(con, path)
    except SourceFileError as exc:
        raise TargetFileError(str(exc)) from exc
    try:
        columns = _columns(staged.header)
        frame = con.execute(f"SELECT {staged.row_expr} AS _line, * FROM {STAGE_TABLE} ORDER BY 1").df()  # noqa: S608
    finally:
        drop_stage(con)
    result = TargetImportResult(read=staged.read)
    for line, reason in staged.rejects:
        result.rejected_rows.append({"row": int(line), "reason": reason})
    lookups = _Lookups(con)
    lookups.municipalities.default_region = region_id
    accepted: dict[tuple, TargetRow] = {}
    first_line: dict[tuple, int] = {}
    for record in frame.to_dict("records"):
        raw = {name: _text(record.get(col)) for col, name in columns.items()}
        row, reasons = validate(raw, lookups)
        line = int(record["_line"])
        if row is not None and row.key in accepted:
            row, reasons = None, [f"повтор строки {first_line[row.key]}: тот же показатель, разрез и период"]
        if row is None:
            result.rejected_rows.append({"row": line, "reason": "; ".join(reasons)})
            continue
        accepted[row.key] = row
        first_line[row.key] = line
    rows = list(accepted.values())
    con.execute("BEGIN TRANSACTION")
    try:
        if rows:
            con.execute("CREATE TEMP TABLE imp_target AS SELECT * FROM target LIMIT 0")
            con.executemany(
                "INSERT INTO imp_target VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [[r.indicator, r.sector_id, r.category_id, r.municipality_id, r.channel, r.period_start, r.value,
                  r.note] for r in rows],
            )
            same = """t.indicator = n.indicator AND t.sector_id IS NOT DISTINCT FROM n.sector_id
                      AND t.category_id IS NOT DISTINCT FROM n.category_id
                      AND t.municipality_id IS NOT DISTINCT FROM n.municipality_id
                      AND t.channel IS NOT DISTINCT FROM n.channel AND t.period_start = n.period_start"""
            result.replaced = int(con.execute(
                f"SELECT count(*) FROM target t WHERE EXISTS (SELECT 1 FROM imp_target n WHERE {same})"  # noqa: S608
            ).fetchall()[0][0])
            con.execute(f"DELETE FROM target t WHERE EXISTS (SELECT 1 FROM imp_target n WHERE {same})")  # noqa: S608
            con.execute("INSERT INTO target SELECT * FROM imp_target")
            con.execute("DROP TABLE imp_target")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    result.accepted = len(rows)
    result.inserted = len(rows) - result.replaced
    result.rejected = len(result.rejected_rows)
    result.rejected_rows.sort(key=lambda r: int(r["row"]))
    return result
