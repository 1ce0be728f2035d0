"""Normalising municipality names so that files from different sources can be matched.

The same unit appears as «г. Смоленск», «город Смоленск» or «Смоленск», and a district
as «Вяземский район», «Вяземский муниципальный округ» or just «Вяземский» (the 2024
reform renamed districts into okrugs within the same borders). The normal form keeps
only the distinctive part: «смоленск», «вяземский». «Смоленский район» stays
«смоленский», different from the city.
"""

from __future__ import annotations

import re

# Multi-word designations first: dropping «округ» alone would leave «городской» behind.
_PHRASES: tuple[tuple[str, ...], ...] = (
    ("муниципальное", "образование"),
    ("городской", "округ"),
    ("муниципальный", "округ"),
    ("муниципальный", "район"),
    ("городское", "поселение"),
    ("сельское", "поселение"),
    ("м", "о"),
    ("г", "о"),
    ("м", "р"),
    ("р", "н"),
)
_WORDS: frozenset[str] = frozenset(
    {"г", "гор", "город", "район", "р-н", "рн", "мо", "го", "мр", "округ", "зато", "мун"}
)
# «… Смоленской области», «… края»: the region tail is not part of the unit's name.
_REGION_WORDS: frozenset[str] = frozenset({"области", "обл", "края", "республики"})

_QUOTES_AND_PUNCT = re.compile(r"[«»\"'„“”‘’`.,;:()\[\]{}/\\!?№*_+=|<>]")
_DASHES = re.compile(r"[‐‑‒–—―−]")
_SPACED_HYPHEN = re.compile(r"\s*-\s*")


def normalise_municipality_name(name: str) -> str:
    """Lower-case distinctive part of a municipality name, for matching only.

    «г. Смоленск» → «смоленск»; «Вяземский муниципальный округ» → «вяземский»;
    «Сычёвский район» → «сычевский». Returns the cleaned full text when nothing
    distinctive would be left (a unit literally called «Город» keeps its name).
    """
    text = str(name).lower().replace("ё", "е").replace("\u00a0", " ")
    text = _DASHES.sub("-", text)
    text = _QUOTES_AND_PUNCT.sub(" ", text)
    # «Холм - Жирковский» and «Холм-Жирковский» are one name; «р-н» survives as one token.
    text = _SPACED_HYPHEN.sub("-", text.strip())
    tokens = [t.strip("-") for t in text.split()]
    tokens = [t for t in tokens if t]
    cleaned = " ".join(tokens)

    kept = _drop_designations(tokens)
    return " ".join(kept) if kept else cleaned


def _drop_designations(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        phrase = next((p for p in _PHRASES if tuple(tokens[i : i + len(p)]) == p), None)
        if phrase is not None:
            i += len(phrase)
            continue
        token = tokens[i]
        if token in _REGION_WORDS:
            # Drop «смоленской» before «области» as well.
            if out:
                out.pop()
            i += 1
            continue
        if token not in _WORDS:
            out.append(token)
        i += 1
    return out
