"""Normalising municipality names so that files from different sources can be matched.

The same unit appears as «г. Смоленск», «город Смоленск» or «Смоленск», a resort city as
«город-курорт Кисловодск», and a district as «Вяземский район», «Вяземский муниципальный
округ», «Вяземский р-н» or just «Вяземский» (the 2024 reform renamed districts into okrugs
within the same borders). The normal form keeps only the distinctive part: «смоленск»,
«кисловодск», «вяземский». «Смоленский район» stays «смоленский», different from the city.

:class:`MunicipalityIndex` is the one place a text from a file becomes a unit: by code
(ОКТМО, ОКАТО — where ``geo import --code-field`` stores a boundary file's code), then by
name or alias with designations kept, then by the distinctive part only when exactly one
unit of the warehouse has it. Never by the warehouse's internal id: a file's «1» is the unit
named or coded «1», not unit number 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Multi-word designations first: dropping «округ» alone would leave «городской» behind.
# Each maps to its canonical form, used by the strict key (designations kept, spelling unified).
_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("муниципальное", "образование"), "мо"),
    (("городской", "округ"), "городской округ"),
    (("муниципальный", "округ"), "муниципальный округ"),
    (("муниципальный", "район"), "район"),
    (("городское", "поселение"), "городское поселение"),
    (("сельское", "поселение"), "сельское поселение"),
    (("м", "о"), "муниципальный округ"),
    (("г", "о"), "городской округ"),
    (("м", "р"), "район"),
    (("р", "н"), "район"),
)
_WORDS: dict[str, str] = {
    "г": "город", "гор": "город", "город": "город",
    "город-курорт": "город", "город-герой": "город", "курорт": "город",
    "район": "район", "р-н": "район", "рн": "район", "мр": "район",
    "мо": "мо", "мун": "мо", "го": "городской округ", "округ": "округ", "зато": "зато",
}
# «… Смоленской области», «… края»: the region tail is not part of the unit's name.
_REGION_WORDS: frozenset[str] = frozenset({"области", "обл", "края", "республики"})

_QUOTES_AND_PUNCT = re.compile(r"[«»\"'„“”‘’`.,;:()\[\]{}/\\!?№*_+=|<>]")
_DASHES = re.compile(r"[‐‑‒–—―−]")
_SPACED_HYPHEN = re.compile(r"\s*-\s*")


def _tokens(name: str) -> list[str]:
    text = str(name).lower().replace("ё", "е").replace("\u00a0", " ")
    text = _DASHES.sub("-", text)
    text = _QUOTES_AND_PUNCT.sub(" ", text)
    # «Холм - Жирковский» and «Холм-Жирковский» are one name; «р-н» survives as one token.
    text = _SPACED_HYPHEN.sub("-", text.strip())
    return [t for t in (t.strip("-") for t in text.split()) if t]


def _split(tokens: list[str]) -> tuple[list[str], list[str]]:
    """The distinctive tokens and the canonical designations found among ``tokens``."""
    kept: list[str] = []
    designations: list[str] = []
    i = 0
    while i < len(tokens):
        phrase = next((p for p in _PHRASES if tuple(tokens[i : i + len(p[0])]) == p[0]), None)
        if phrase is not None:
            designations.append(phrase[1])
            i += len(phrase[0])
            continue
        token = tokens[i]
        if token in _REGION_WORDS:
            # Drop «смоленской» before «области» as well.
            if kept:
                kept.pop()
            i += 1
            continue
        if token in _WORDS:
            designations.append(_WORDS[token])
        else:
            kept.append(token)
        i += 1
    return kept, designations


def normalise_municipality_name(name: str) -> str:
    """Lower-case distinctive part of a municipality name, for matching only.

    «г. Смоленск» → «смоленск»; «город-курорт Кисловодск» → «кисловодск»; «Вяземский
    муниципальный округ» → «вяземский»; «Сычёвский р-н» → «сычевский». Returns the cleaned
    full text when nothing distinctive would be left (a unit literally called «Город» keeps its name).
    """
    tokens = _tokens(name)
    kept, _ = _split(tokens)
    return " ".join(kept) if kept else " ".join(tokens)


def strict_municipality_key(name: str) -> str:
    """The distinctive part plus the designations, spelled one way: «г. Кисловодск» and «город
    Кисловодск» agree, «Кировский район» and «Кировский муниципальный округ» do not. Used only to
    tell apart units whose distinctive parts coincide."""
    tokens = _tokens(name)
    kept, designations = _split(tokens)
    if not kept:
        return " ".join(tokens)
    return " ".join(kept) + "|" + ",".join(sorted(set(designations)))


def match_key(text: object) -> str:
    """Key for matching a name from a file to a reference list: case, «ё», quotes and spacing do not matter."""
    v = str(text).lower().replace("ё", "е").replace("\u00a0", " ")
    v = re.sub(r"[«»\"'“”„]", "", v)
    return re.sub(r"\s+", " ", v).strip()


@dataclass(frozen=True)
class Match:
    """A file's text resolved: ``id`` of the unit, or None with the candidates when ambiguous."""

    id: int | None
    ambiguous: tuple[str, ...] = ()

    def reason(self, text: str) -> str | None:
        """Why ``text`` names no unit (Russian, for a rejected row); None when it does."""
        if self.id is not None:
            return None
        if self.ambiguous:
            return f"муниципалитет «{text}» подходит к нескольким: {', '.join(self.ambiguous)}"
        return f"неизвестный муниципалитет: «{text}»"


class MunicipalityIndex:
    """Every way the warehouse's units may be named in a file: codes, names, aliases."""

    def __init__(
        self, units: Iterable[tuple[int, str, str | None, str | None]], aliases: Iterable[tuple[int, str]] = ()
    ) -> None:
        self.names: dict[int, str] = {}
        self._codes: dict[str, set[int]] = {}
        # digit codes without leading zeros: a spreadsheet turns ОКТМО 07701000 into 7701000
        self._digits: dict[str, set[int]] = {}
        self._strict: dict[str, set[int]] = {}
        self._loose: dict[str, set[int]] = {}
        for mid, name, oktmo, okato in units:
            self.names[int(mid)] = str(name).strip()
            for code in (oktmo, okato):
                if code is not None and str(code).strip():
                    self._codes.setdefault(str(code).strip(), set()).add(int(mid))
                    if str(code).strip().isdigit():
                        self._digits.setdefault(str(code).strip().lstrip("0"), set()).add(int(mid))
            self._add_name(int(mid), name)
        for mid, alias in aliases:
            if int(mid) in self.names and alias and str(alias).strip():
                self._add_name(int(mid), alias)

    def add_alias(self, mid: int, alias: str) -> None:
        """Make ``alias`` name unit ``mid`` from now on (as a stored alias would)."""
        self._add_name(int(mid), alias)

    def _add_name(self, mid: int, name: str) -> None:
        self._strict.setdefault(strict_municipality_key(name), set()).add(mid)
        self._loose.setdefault(normalise_municipality_name(name), set()).add(mid)

    @classmethod
    def from_warehouse(cls, con) -> MunicipalityIndex:  # noqa: ANN001 - a DuckDB connection
        units = con.execute("SELECT id, name, oktmo, okato FROM municipality").fetchall()
        has_aliases = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'municipality_alias'").fetchall()[0][0]
        aliases = con.execute("SELECT municipality_id, alias FROM municipality_alias").fetchall() if has_aliases else []
        return cls(units, aliases)

    def match(self, value: str) -> Match:
        """The unit ``value`` names: an exact code, else a name or alias with the same designations,
        else a digit code that lost its leading zeros, else a name or alias with the same distinctive
        part — only when a single unit has it."""
        text = str(value).strip()
        if not text:
            return Match(None)
        digits = self._digits.get(text.lstrip("0")) if text.isdigit() else None
        # a lost-zeros code is weaker evidence than a name written out in full, so it comes after
        for ids in (self._codes.get(text), self._strict.get(strict_municipality_key(text)), digits,
                    self._loose.get(normalise_municipality_name(text))):
            if not ids:
                continue
            if len(ids) == 1:
                return Match(next(iter(ids)))
            return Match(None, tuple(sorted(self.names[i] for i in ids)))
        return Match(None)
