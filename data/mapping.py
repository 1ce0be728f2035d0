"""Import mappings: which source column feeds which warehouse field, and how values translate.

A mapping is a TOML file::

    [source]
    name = "pos"                              # value of appeal.source (else --source, else file name)
    date_format = "%m/%d/%Y %I:%M:%S %p"      # tried before the built-in formats
    timezone = "America/Los_Angeles"          # naive times are the region's own otherwise
    encoding = "cp1251"                       # optional; detected otherwise
    delimiter = ";"                           # optional; detected otherwise

    [columns]                                 # field = "source column"
    source_id = "Номер"
    received_at = "Дата поступления"
    municipality = "Муниципалитет"
    region = "Регион"                         # optional: name, ISO code or ОКАТО of the unit's region

    [defaults]                                # a constant for a field the source lacks
    channel = "pos"

    [values.status]                           # source value = our code
    "Решено" = "resolved"
    "Черновик" = ""                           # "" = empty (NULL): as if the cell were blank

    [values.municipality]                     # source value = a unit's name, alias or code
    "Кисловодск (курорт)" = "Кисловодск"

    [values.lat]                              # any field: placeholders to empty, spellings to others
    "39" = ""

    [organisation_kind]                       # organisation name = its kind (peer group of the rating)
    "МУП Водоканал" = "ресурсоснабжающая организация"

    [sector_by_category]                      # category name = sector code
    "Ямы на дорогах" = "roads"

    [sector_by_organisation]
    "МУП Водоканал" = "housing"

    [sector]
    default = "other"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# Fields a source column may feed: the appeal's own columns plus the four looked up by name or code.
FIELDS: tuple[str, ...] = (
    "source",
    "source_id",
    "kind",
    "channel",
    "received_at",
    "municipality",
    "sector",
    "category",
    "organisation",
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
    "organisation_kind",  # not an appeal column: the kind of the row's organisation
    "region",  # not an appeal column: the region the row's municipality is named within
)
TIMESTAMP_FIELDS: tuple[str, ...] = (
    "received_at",
    "first_response_at",
    "answered_at",
    "due_at",
    "first_response_due_at",
)
BOOLEAN_FIELDS: tuple[str, ...] = ("answer_on_merits", "returned_for_rework")
# Fields whose values become one of our codes; [values.<field>] may recode any field, though.
CODED_FIELDS: tuple[str, ...] = ("channel", "status", "closure_reason", "kind", "sector")
REQUIRED_FIELDS: tuple[str, ...] = ("source_id", "received_at", "municipality", "channel")
# Other spellings of field names. Never ``municipality_id`` and the like: a warehouse's internal
# ids mean nothing in another warehouse (DESIGN §3), so a column of them is not taken for names.
ALIASES: dict[str, str] = {
    "organization": "organisation",
    "organization_kind": "organisation_kind",
}


class MappingError(ValueError):
    """The mapping cannot be used; the message is for a person."""


@dataclass
class Mapping:
    columns: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    sector_by_category: dict[str, str] = field(default_factory=dict)
    sector_by_organisation: dict[str, str] = field(default_factory=dict)
    organisation_kind: dict[str, str] = field(default_factory=dict)
    default_sector: str = "other"
    source_name: str | None = None
    date_format: str | None = None
    timezone: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    from_file: bool = False

    def resolve_columns(self, header: list[str]) -> dict[str, str]:
        """field → source column: columns named as the fields, overridden by the mapping's [columns]."""
        resolved: dict[str, str] = {}
        for name in header:
            key = name.strip().lower()
            key = ALIASES.get(key, key)
            if key in FIELDS and key not in resolved:
                resolved[key] = name
        taken = set(self.columns.values())
        resolved = {f: c for f, c in resolved.items() if c not in taken}
        resolved.update(self.columns)
        return resolved


def _str_table(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"раздел [{where}] должен быть таблицей «ключ = значение»")
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(v, str | int | float | bool):
            raise MappingError(f"[{where}] {k}: значение должно быть строкой")
        out[str(k)] = str(v)
    return out


def load_mapping(path: str | Path | None) -> Mapping:
    """Read and check a mapping file; None gives the identity mapping (columns named as the fields)."""
    if path is None:
        return Mapping()
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise MappingError(f"файл соответствия не найден: {p}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"файл соответствия {p.name} не читается как TOML: {exc}") from exc

    known = {"source", "columns", "defaults", "values", "sector_by_category", "sector_by_organisation", "sector",
             "organisation_kind"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise MappingError(f"неизвестные разделы в {p.name}: {', '.join(unknown)}")

    columns = {ALIASES.get(k, k): v for k, v in _str_table(doc.get("columns"), "columns").items()}
    defaults = {ALIASES.get(k, k): v for k, v in _str_table(doc.get("defaults"), "defaults").items()}
    for section, table in (("columns", columns), ("defaults", defaults)):
        bad = sorted(set(table) - set(FIELDS))
        if bad:
            raise MappingError(
                f"[{section}]: неизвестные поля {', '.join(bad)}; допустимы: {', '.join(FIELDS)}"
            )
    raw_values = doc.get("values") or {}
    if not isinstance(raw_values, dict):
        raise MappingError("раздел [values] должен содержать таблицы [values.<поле>]")
    values: dict[str, dict[str, str]] = {}
    for fld, table in raw_values.items():
        fld = ALIASES.get(fld, fld)
        if fld not in FIELDS:
            raise MappingError(f"[values.{fld}]: нет такого поля; допустимы: {', '.join(FIELDS)}")
        # a value maps to its target text with spaces at the edges dropped; "" means empty (NULL)
        values[fld] = {k.strip(): v.strip() for k, v in _str_table(table, f"values.{fld}").items()}
    kinds = {k.strip(): v.strip() for k, v in _str_table(doc.get("organisation_kind"), "organisation_kind").items()}
    empty_kinds = sorted(k for k, v in kinds.items() if not v)
    if empty_kinds:
        raise MappingError(f"[organisation_kind]: не указан вид для {', '.join(empty_kinds)}")

    source = doc.get("source") or {}
    if not isinstance(source, dict):
        raise MappingError("раздел [source] должен быть таблицей")
    sector = doc.get("sector") or {}
    return Mapping(
        columns=columns,
        defaults=defaults,
        values=values,
        sector_by_category=_str_table(doc.get("sector_by_category"), "sector_by_category"),
        sector_by_organisation=_str_table(doc.get("sector_by_organisation"), "sector_by_organisation"),
        organisation_kind=kinds,
        default_sector=str(sector.get("default", "other")),
        source_name=source.get("name"),
        date_format=source.get("date_format"),
        timezone=source.get("timezone"),
        encoding=source.get("encoding"),
        delimiter=source.get("delimiter"),
        from_file=True,
    )
