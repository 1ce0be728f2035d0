"""What a callback accepts from the browser: every value checked against the declared lists.

A Dash callback receives whatever JSON the browser (or anyone posting to ``/_dash-update-component``)
sends. Each function here takes such a raw value and returns the checked, typed value or raises
``InvalidInput`` with a short Russian message; the raw value is never passed on to the metrics.
The lists are the user's own: a sector lead's sector list holds only their sectors.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from metrics import catalog
from metrics.appeals import categories, organisation_card
from metrics.periods import Period, PeriodError, parse_period
from pages.common import period_options

T = TypeVar("T")

ALL = "all"
_SHOWN = 40  # characters of a refused value echoed back: enough to recognise, never a flood


class InvalidInput(ValueError):
    """A value outside the declared lists; the message is shown to the user."""


def or_default(check: Callable[..., T], value: object, default: T, **options: object) -> T:
    """``check(value)``, or ``default`` when the value fails it: for filters carried along in an
    address, where a bad one is dropped rather than refused (the page still opens)."""
    try:
        return check(value, **options)
    except InvalidInput:
        return default


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"недопустимое значение поля «{what}»: {_shown(value)}")
    return value


def choice(value: object, allowed: Collection[str] | Mapping[str, object], what: str) -> str:
    """One of a fixed list (indicator codes of a page, grains, tabs)."""
    text = _text(value, what)
    if text not in allowed:
        raise InvalidInput(f"недопустимое значение поля «{what}»: {_shown(text)}")
    return text


def period(value: object, last30: bool = False) -> Period:
    """A period offered by the page: a month or quarter with data (or «последние 30 дней»)."""
    text = _text(value, "период")
    allowed = {o["value"] for o in period_options(catalog.months_with_data(), last30=last30)}
    if text not in allowed:
        raise InvalidInput(f"нет данных за период {_shown(text)}")
    try:
        return parse_period(text, as_of=catalog.as_of().date())
    except PeriodError as exc:
        raise InvalidInput(str(exc)) from exc


def _code_or_all(value: object, allowed: Collection[str], what: str, unknown: str) -> str | None:
    """A code from ``allowed``, or None for «все» (ALL) or nothing chosen."""
    if value is None:
        return None
    text = _text(value, what)
    if text == ALL:
        return None
    if text not in allowed:
        raise InvalidInput(f"{unknown}: {_shown(text)}")
    return text


def sector(value: object) -> str | None:
    """A sector code the user may see, or None for «все блоки» (or nothing chosen)."""
    return _code_or_all(value, set(catalog.sectors()["sector_code"]), "отраслевой блок", "неизвестный отраслевой блок")


def channel(value: object) -> str | None:
    return _code_or_all(value, set(catalog.channels()["channel"]), "канал", "неизвестный канал")


def municipality(value: object, allow_all: bool = True) -> int | None:
    """A municipality id the user may see (sent as text or number), or None for the whole region."""
    if allow_all and value in (None, ALL):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"недопустимое значение поля «муниципалитет»: {_shown(value)}")
    text = str(value)
    if not text.isdigit() or int(text) not in set(catalog.municipalities()["municipality_id"]):
        raise InvalidInput(f"нет доступного муниципального образования с кодом {_shown(text)}")
    return int(text)


def region(value: object) -> int:
    """A region of the warehouse holding at least one municipality the user may see."""
    rid = _id_text(value, "регион")
    visible = set(catalog.municipalities()["municipality_id"])
    if rid not in set(catalog.regions()["region_id"]) or not catalog.region_municipalities(rid) & visible:
        raise InvalidInput(f"нет доступного региона с кодом {_shown(str(value))}")
    return rid


def _id_text(value: object, what: str) -> int:
    """A positive integer id sent as text or number (never a bool, a float or a list)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"недопустимое значение поля «{what}»: {_shown(value)}")
    text = str(value)
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput(f"недопустимое значение поля «{what}»: {_shown(text)}")
    return int(text)


def _categories():
    return categories()


def category(value: object) -> int | None:
    """A category id of a sector the user may see, or None for «все категории» (or nothing chosen)."""
    if value in (None, ALL, ""):
        return None
    cid = _id_text(value, "категория")
    if cid not in set(_categories()["category_id"]):
        raise InvalidInput(f"нет доступной категории с кодом {_shown(str(value))}")
    return cid


def category_sector(category_id: int) -> str:
    """The sector code of a checked category."""
    ref = _categories()
    return str(ref.loc[ref["category_id"] == category_id, "sector_code"].iloc[0])


def category_name(category_id: int) -> str:
    ref = _categories()
    return str(ref.loc[ref["category_id"] == category_id, "category_name"].iloc[0])


def organisation(value: object) -> int | None:
    """An organisation that answered appeals the user may see, or None for «все организации»."""
    if value in (None, ALL, ""):
        return None
    oid = _id_text(value, "организация")
    if organisation_card(oid) is None:
        raise InvalidInput(f"нет доступной организации с кодом {_shown(str(value))}")
    return oid
