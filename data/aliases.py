"""Other spellings of municipalities: ``python -m data aliases FILE``.

The file is a small CSV (UTF-8 or cp1251; ``,``, ``;`` or tab) with two columns:

- ``municipality`` (or «муниципалитет»): the unit as the warehouse knows it — its name, a
  spelling that already matches, an alias or its code (ОКТМО/ОКАТО);
- ``alias`` (or «псевдоним»): another spelling a source file uses for it.

Aliases live in ``municipality_alias(municipality_id, alias)`` and are matched like names
(data/names.py). Every row is either accepted or rejected with a reason, ``read = accepted +
rejected``: an alias that already means another unit, or that would make two units
indistinguishable, is refused, so that an alias can never move a row into the wrong unit.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from data.names import MunicipalityIndex
from data.readers import SourceFileError, _decode, _sniff_delimiter

UNIT_HEADERS = ("municipality", "муниципалитет", "municipality_name", "unit")
ALIAS_HEADERS = ("alias", "псевдоним", "написание")


class AliasFileError(ValueError):
    """The file cannot be used at all; the message is for a person. Nothing was written."""


@dataclass
class AliasResult:
    read: int = 0
    accepted: int = 0
    inserted: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def summary(self) -> dict[str, object]:
        return {"read": self.read, "accepted": self.accepted, "inserted": self.inserted,
                "unchanged": self.unchanged, "rejected": self.rejected,
                "rejected_rows": [{"line": line, "reason": reason} for line, reason in self.rejects]}


def _read_rows(path: Path) -> list[tuple[int, str, str]]:
    """(line, municipality, alias) of every record below the header."""
    if not path.is_file():
        raise AliasFileError(f"файл не найден: {path}")
    try:
        text, _encoding, bad_lines = _decode(path.read_bytes(), None)
    except SourceFileError as exc:
        raise AliasFileError(str(exc)) from exc
    if bad_lines:
        raise AliasFileError("в файле смешаны кодировки: сохраните его целиком в UTF-8 или cp1251")
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise AliasFileError("в первой строке файла нет заголовков столбцов")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first))
    header = [h.strip().lower() for h in next(reader)]
    unit_col = next((header.index(h) for h in UNIT_HEADERS if h in header), None)
    alias_col = next((header.index(h) for h in ALIAS_HEADERS if h in header), None)
    if unit_col is None or alias_col is None:
        raise AliasFileError(
            f"нужны столбцы municipality (муниципалитет) и alias (псевдоним); в файле: {', '.join(header)}")
    rows = []
    for record in reader:
        line = reader.line_num
        if not any(c.strip() for c in record):
            continue
        def cell(i: int, record: list[str] = record) -> str:
            return record[i].strip() if i < len(record) else ""
        rows.append((line, cell(unit_col), cell(alias_col)))
    return rows


def import_aliases(con: duckdb.DuckDBPyConnection, path: str | Path) -> AliasResult:
    """Add the file's aliases in one transaction; raises AliasFileError when it cannot be used."""
    rows = _read_rows(Path(path))
    index = MunicipalityIndex.from_warehouse(con)
    existing = set(con.execute("SELECT municipality_id, alias FROM municipality_alias").fetchall())
    result = AliasResult(read=len(rows))
    new: list[tuple[int, str]] = []
    for line, unit, alias in rows:
        reason = None
        if not unit:
            reason = "не указан муниципалитет"
        elif not alias:
            reason = "не указан псевдоним"
        else:
            target = index.match(unit)
            means = index.match(alias)
            if target.ambiguous:
                reason = f'неоднозначный муниципалитет: "{unit}" (подходят: {"; ".join(target.ambiguous)})'
            elif target.id is None:
                reason = f'неизвестный муниципалитет: "{unit}"'
            elif means.ambiguous:
                reason = f'псевдоним "{alias}" уже подходит нескольким муниципалитетам: {"; ".join(means.ambiguous)}'
            elif means.id is not None and means.id != target.id:
                reason = f'псевдоним "{alias}" уже означает другой муниципалитет: {index.names[means.id]}'
        if reason is not None:
            result.rejects.append((line, reason))
            continue
        key = (target.id, alias)
        if key in existing:
            result.unchanged += 1
            continue
        existing.add(key)
        new.append(key)
        index.add_alias(target.id, alias)  # a later row of the file sees it
        result.inserted += 1
    result.accepted = result.inserted + result.unchanged
    result.rejected = len(result.rejects)
    if result.read != result.accepted + result.rejected:  # a bug, never a data problem
        raise RuntimeError(f"counts do not add up: read {result.read} != {result.accepted} + {result.rejected}")
    if new:
        con.execute("BEGIN TRANSACTION")
        try:
            con.executemany("INSERT INTO municipality_alias VALUES (?, ?)", new)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return result
