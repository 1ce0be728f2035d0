"""Russian wording for generated texts: plural forms, month names in the genitive, numbers.

Templates, not a language model: «1 обращение, 2 обращения, 5 обращений, 21 обращение, 11 обращений».
"""

from __future__ import annotations

import datetime as dt

MONTHS_GENITIVE = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
                   "октября", "ноября", "декабря")
MONTHS_PREPOSITIONAL = ("январе", "феврале", "марте", "апреле", "мае", "июне", "июле", "августе", "сентябре",
                        "октябре", "ноябре", "декабре")
MONTHS_NOMINATIVE = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь",
                     "октябрь", "ноябрь", "декабрь")

APPEALS = ("обращение", "обращения", "обращений")
SPECIALISTS = ("специалист", "специалиста", "специалистов")
SPECIALISTS_DATIVE = ("специалиста", "специалистов", "специалистов")  # «на 1 специалиста, на 2 специалистов»
WORKING_DAYS = ("рабочий день", "рабочих дня", "рабочих дней")
WEEKS = ("неделя", "недели", "недель")
MUNICIPALITIES = ("муниципалитет", "муниципалитета", "муниципалитетов")
MUNICIPALITIES_PREPOSITIONAL = ("муниципалитете", "муниципалитетах", "муниципалитетах")  # «в 21 муниципалитете»
SIGNALS = ("сигнал", "сигнала", "сигналов")
MEASURES = ("мера", "меры", "мер")


def plural(n: int, forms: tuple[str, str, str]) -> str:
    """The form for ``n``: forms = (one, few, many), e.g. («обращение», «обращения», «обращений»)."""
    n = abs(int(n))
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


def number(n: float, decimals: int = 0) -> str:
    """«12 345», «3,5»: a narrow no-break space between thousands, a comma for decimals."""
    text = f"{n:,.{decimals}f}".replace(",", "\u00a0").replace(".", ",")
    return text


def count(n: int, forms: tuple[str, str, str]) -> str:
    """«1 обращение», «12 345 обращений»."""
    return f"{number(n)}\u00a0{plural(n, forms)}"


def percent(share: float, decimals: int = 1, signed: bool = False) -> str:
    """0.034 → «3,4 %»; with ``signed`` «+3,4 %» / «−3,4 %»."""
    value = share * 100
    text = number(abs(value), decimals)
    if signed:
        sign = "+" if value > 0 else "−" if value < 0 else ""
        return f"{sign}{text}\u00a0%"
    return f"{'−' if value < 0 else ''}{text}\u00a0%"


def month_genitive(d: dt.date) -> str:
    """«декабря 2026» (as in «с декабря 2026»)."""
    return f"{MONTHS_GENITIVE[d.month - 1]} {d.year}"


def month_prepositional(d: dt.date) -> str:
    """«декабре 2026» (as in «в декабре 2026»)."""
    return f"{MONTHS_PREPOSITIONAL[d.month - 1]} {d.year}"


def month_nominative(d: dt.date) -> str:
    """«Декабрь 2026»."""
    return f"{MONTHS_NOMINATIVE[d.month - 1].capitalize()} {d.year}"
