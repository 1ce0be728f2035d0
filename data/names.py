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

A warehouse of several regions may hold two units of one name («Ленинский район» in two
subjects). The index knows each unit's region; a name is then looked up within a region given by
the caller (``--region``, a region column) or by a qualifier in the text itself («МО № 17
(Тверская обл.)», «Ленинский район, Тверская область»). A name unique in the warehouse needs no
region; an ambiguous one without it is refused with the candidate regions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

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
    """A file's text resolved: ``id`` of the unit, or None with the candidates when ambiguous.

    ``regions``: the regions of the candidates when they lie in several (the text needs a region),
    or, with ``outside``, the regions the text's units lie in when none is in region ``outside``."""

    id: int | None
    ambiguous: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    outside: str | None = None

    @property
    def found_elsewhere(self) -> bool:
        """Whether some unit fits the text, only not one alone (or not in the given region)."""
        return bool(self.ambiguous or self.regions)

    def region_reason(self, text: str) -> str | None:
        """The reason when region context decides (Russian); None when it does not."""
        if self.id is not None or not self.regions:
            return None
        where = ", ".join(self.regions)
        if self.outside is not None:
            return f"муниципалитет «{text}» есть в регионах: {where}, но не в регионе «{self.outside}»"
        return f"муниципалитет «{text}» есть в регионах: {where}; укажите регион"

    def reason(self, text: str) -> str | None:
        """Why ``text`` names no unit (Russian, for a rejected row); None when it does."""
        if self.id is not None:
            return None
        if self.regions:
            return self.region_reason(text)
        if self.ambiguous:
            return f"муниципалитет «{text}» подходит к нескольким: {', '.join(self.ambiguous)}"
        return f"неизвестный муниципалитет: «{text}»"


class RegionMatcher(Protocol):
    """What the index needs of the regions (``data.regions.RegionIndex``): a text → one region id."""

    names: dict[int, str]

    def match(self, name: str | None, code: str | None = None) -> int | None: ...


# «Ленинский район (Тверская обл.)», «…, Тверская область», «… Тверской области»: a qualifier.
_PAREN_TAIL = re.compile(r"^(?P<unit>.*\S)\s*[(\[](?P<region>[^()\[\]]+)[)\]]\s*$")
_REGION_TAIL_WORDS = frozenset({"область", "области", "обл", "край", "края", "республика", "республики"})


class MunicipalityIndex:
    """Every way the warehouse's units may be named in a file: codes, names, aliases."""

    def __init__(
        self, units: Iterable[tuple], aliases: Iterable[tuple[int, str]] = (),
        regions: RegionMatcher | None = None,
    ) -> None:
        """``units``: (id, name, oktmo, okato[, region_id]); ``regions`` reads qualifiers in names."""
        self.regions = regions
        self.region_of: dict[int, int] = {}
        # a region every lookup is restricted to unless the caller names another (``--region``)
        self.default_region: int | None = None
        self.names: dict[int, str] = {}
        self._codes: dict[str, set[int]] = {}
        # digit codes without leading zeros: a spreadsheet turns ОКТМО 07701000 into 7701000
        self._digits: dict[str, set[int]] = {}
        self._strict: dict[str, set[int]] = {}
        self._loose: dict[str, set[int]] = {}
        for mid, name, oktmo, okato, *region in units:
            self.names[int(mid)] = str(name).strip()
            if region and region[0] is not None:
                self.region_of[int(mid)] = int(region[0])
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
        spellings = [name]
        qualified = self.qualifier(name)
        if qualified is not None:  # a stored «Ленинский район, Тверская область» is «Ленинский район» too
            spellings.append(qualified[1])
        for text in spellings:
            self._strict.setdefault(strict_municipality_key(text), set()).add(mid)
            self._loose.setdefault(normalise_municipality_name(text), set()).add(mid)

    @classmethod
    def from_warehouse(cls, con) -> MunicipalityIndex:  # noqa: ANN001 - a DuckDB connection
        from data.regions import RegionIndex  # data.regions uses this module's tokeniser

        has = {name for (name,) in con.execute(
            "SELECT table_name || '.' || column_name FROM duckdb_columns() "
            "WHERE table_name IN ('municipality', 'municipality_alias', 'region')").fetchall()}
        region_col = "region_id" if "municipality.region_id" in has else "NULL"
        units = con.execute(f"SELECT id, name, oktmo, okato, {region_col} FROM municipality").fetchall()  # noqa: S608
        has_aliases = "municipality_alias.alias" in has
        aliases = con.execute("SELECT municipality_id, alias FROM municipality_alias").fetchall() if has_aliases else []
        regions = RegionIndex(con) if "region.id" in has else None
        return cls(units, aliases, regions)

    def region_name(self, rid: int | None) -> str:
        if rid is None:
            return ""
        return (self.regions.names.get(rid) if self.regions else None) or f"регион {rid}"

    def qualifier(self, text: str) -> tuple[int, str] | None:
        """(region, the unit's own text) when ``text`` names its region besides the unit:
        «МО № 17 (Тверская обл.)», «Ленинский район, Тверская область», «Тверская область,
        Ленинский район», «Ленинский район Тверской области». None when no part names a region."""
        if self.regions is None:
            return None
        candidates: list[tuple[str, str]] = []
        if m := _PAREN_TAIL.match(text):
            candidates.append((m["region"], m["unit"]))
        if "," in text:
            parts = [p.strip() for p in text.split(",")]
            candidates += [(parts[-1], ", ".join(parts[:-1])), (parts[0], ", ".join(parts[1:]))]
        words = text.split()
        if len(words) >= 3 and words[-1].lower().strip(".") in _REGION_TAIL_WORDS:
            candidates.append((" ".join(words[-2:]), " ".join(words[:-2])))
        for region_text, unit in candidates:
            # by name only: a bare «(28)» in a unit's name is no ОКАТО of a region
            if unit.strip() and (rid := self.regions.match(region_text)) is not None:
                return rid, unit.strip()
        return None

    def match(self, value: str, region: int | None = None) -> Match:
        """The unit ``value`` names: an exact code, else a name or alias with the same designations,
        else a digit code that lost its leading zeros, else a name or alias with the same distinctive
        part — only when a single unit has it.

        ``region`` (else ``default_region``, else a qualifier inside ``value``) restricts the
        candidates to one region; a code names one unit anywhere, but a unit of another region than
        the one given is still refused."""
        text = str(value).strip()
        if not text:
            return Match(None)
        context = region if region is not None else self.default_region
        unit_text = text
        qualified = self.qualifier(text)
        if qualified is not None:
            if context is not None and qualified[0] != context:
                return Match(None, regions=(self.region_name(qualified[0]),), outside=self.region_name(context))
            context, unit_text = qualified
        digits = self._digits.get(text.lstrip("0")) if text.isdigit() else None
        elsewhere: set[int] = set()
        # a lost-zeros code is weaker evidence than a name written out in full, so it comes after
        for ids in (self._codes.get(text), self._strict.get(strict_municipality_key(unit_text)), digits,
                    self._loose.get(normalise_municipality_name(unit_text))):
            if not ids:
                continue
            if context is not None:
                inside = {i for i in ids if self.region_of.get(i, context) == context}
                if not inside:
                    elsewhere |= ids
                    continue
                ids = inside
            if len(ids) == 1:
                return Match(next(iter(ids)))
            regions = sorted({self.region_name(self.region_of[i]) for i in ids if i in self.region_of})
            if len(regions) > 1:
                return Match(None, tuple(sorted(f"{self.names[i]} ({self.region_name(self.region_of.get(i))})"
                                                for i in ids)), tuple(regions))
            return Match(None, tuple(sorted(self.names[i] for i in ids)))
        if elsewhere:
            regions = sorted({self.region_name(self.region_of.get(i)) for i in elsewhere})
            return Match(None, regions=tuple(regions), outside=self.region_name(context))
        return Match(None)
