"""Periods: a half-open date range [start, end) with a name a person reads and a URL can carry.

Accepted texts: ``2025-10`` (month), ``2025-Q3`` (quarter), ``2025`` (year), ``2025-W42`` (ISO week),
``2025-10-01..2025-10-15`` (inclusive dates), ``last30`` / «последние 30 дней» (up to the data date).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MONTHS_RU = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь",
             "ноябрь", "декабрь")
_LAST_DAYS = re.compile(r"^(?:last|последние\s*)(\d{1,3})(?:\s*(?:дней|дня|день|d))?$")


class PeriodError(ValueError):
    """The text names no period; the message is for a person."""


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # exclusive
    kind: str  # month | quarter | year | week | days | range
    code: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def month_aligned(self) -> bool:
        """Whole calendar months: the monthly rollup answers it."""
        return self.start.day == 1 and self.end.day == 1

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{MONTHS_RU[self.start.month - 1]} {self.start.year}"
        if self.kind == "quarter":
            return f"{(self.start.month - 1) // 3 + 1} квартал {self.start.year}"
        if self.kind == "year":
            return f"{self.start.year} год"
        last = self.end - dt.timedelta(days=1)
        return f"{self.start:%d.%m.%Y} — {last:%d.%m.%Y}"

    def previous(self) -> Period:
        """The comparable period just before: previous month, quarter, year, week or as many days."""
        if self.kind == "month":
            return month(_add_months(self.start, -1))
        if self.kind == "quarter":
            return quarter_of(_add_months(self.start, -3))
        if self.kind == "year":
            return year(self.start.year - 1)
        length = self.end - self.start
        return Period(self.start - length, self.start, "range" if self.kind != "week" else "week",
                      _range_code(self.start - length, self.start))

    def year_ago(self) -> Period:
        if self.kind == "month":
            return month(_add_months(self.start, -12))
        if self.kind == "quarter":
            return quarter_of(_add_months(self.start, -12))
        if self.kind == "year":
            return year(self.start.year - 1)
        start, end = _add_months(self.start, -12), _add_months(self.end, -12)
        return Period(start, end, "range", _range_code(start, end))


def _add_months(d: dt.date, n: int) -> dt.date:
    m = d.year * 12 + d.month - 1 + n
    return dt.date(m // 12, m % 12 + 1, 1)


def _range_code(start: dt.date, end: dt.date) -> str:
    return f"{start:%Y-%m-%d}..{end - dt.timedelta(days=1):%Y-%m-%d}"


def month(first: dt.date) -> Period:
    first = first.replace(day=1)
    return Period(first, _add_months(first, 1), "month", f"{first:%Y-%m}")


def quarter_of(d: dt.date) -> Period:
    first = dt.date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
    return Period(first, _add_months(first, 3), "quarter", f"{first.year}-Q{(first.month - 1) // 3 + 1}")


def year(y: int) -> Period:
    return Period(dt.date(y, 1, 1), dt.date(y + 1, 1, 1), "year", str(y))


def parse_period(text: str, as_of: dt.date | None = None) -> Period:
    """Parse a period name; relative ones (last N days) end with ``as_of`` (the data date)."""
    t = (text or "").strip().lower()
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{2})", t):
            return month(dt.date(int(m[1]), int(m[2]), 1))
        if m := re.fullmatch(r"(\d{4})-q([1-4])", t):
            return quarter_of(dt.date(int(m[1]), (int(m[2]) - 1) * 3 + 1, 1))
        if m := re.fullmatch(r"(\d{4})", t):
            return year(int(m[1]))
        if m := re.fullmatch(r"(\d{4})-w(\d{1,2})", t):
            start = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return Period(start, start + dt.timedelta(days=7), "week", f"{m[1]}-W{int(m[2]):02d}")
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", t):
            start, last = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if last < start:
                raise PeriodError(f"конец периода раньше начала: {text}")
            return Period(start, last + dt.timedelta(days=1), "range", _range_code(start, last + dt.timedelta(days=1)))
        if m := _LAST_DAYS.fullmatch(t):
            n = int(m[1])
            if not 1 <= n <= 731:
                raise PeriodError(f"слишком длинный период: {text}")
            end = (as_of or dt.date.today()) + dt.timedelta(days=1)
            return Period(end - dt.timedelta(days=n), end, "days", f"last{n}")
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"неверная дата в периоде: {text}") from exc
    raise PeriodError(f"не понят период: «{text}» (примеры: 2025-10, 2025-Q3, 2025, последние 30 дней)")


def months_between(first: dt.date, last: dt.date) -> list[Period]:
    """Every month from the one holding ``first`` to the one holding ``last``, inclusive."""
    out, cur = [], first.replace(day=1)
    while cur <= last:
        out.append(month(cur))
        cur = _add_months(cur, 1)
    return out
