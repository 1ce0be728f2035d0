"""Periods: a half-open date range [start, end) with a name a person reads and a URL can carry; and the
one place that says where a period stands against the data date (DESIGN §4).

Accepted texts: ``2025-10`` (month), ``2025-Q3`` (quarter), ``2025`` (year), ``2025-W42`` (ISO week),
``2025-10-01..2025-10-15`` (inclusive dates), ``last30`` / «последние 30 дней» (up to the data date).

The data date is the warehouse's "now" (``metrics.query.data_as_of``, a datetime). A period's end is
its first day *not* included, read as 00:00 of that day. Then:

- **complete**: end ≤ data date (no appeal of the period is still to arrive);
- **settled**: end + 30 days ≤ data date (every appeal's 30-day window has closed: an appeal received
  on the last day has its window until end + 30 days, see ``within_30d_share``);
- **age**: data date − end for a complete period; for an unfinished one the elapsed part,
  data date − start (zero before the start);
- **same age as of** (``same_age_as_of``): the moment at which a previous period was as old as the
  current one is now — previous end + (data date − current end) for a complete current period,
  previous start + (data date − current start) for an unfinished one. Answer-based indicators of an
  unsettled period are compared with the previous period queried ``as_of`` that moment
  (``metrics.compare``), never with its settled value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from data.months import add_months, month_start
from metrics.words import MONTHS_NOMINATIVE as MONTHS_RU

__all__ = ["MONTHS_RU", "INCOMPLETE", "UNSETTLED", "SETTLE_DAYS", "Period", "PeriodError", "add_months", "age",
           "default_month", "is_complete", "is_settled", "last_complete_days", "last_complete_month", "month",
           "month_start", "months_between", "parse_period", "quarter_of", "same_age_as_of", "status_notes", "year"]

SETTLE_DAYS = 30  # the 30-day window of DESIGN §4: after it every answer-based indicator is final enough
INCOMPLETE = "неполный период"  # shown wherever a period's numbers are shown while it is not complete
UNSETTLED = "ответы ещё поступают"  # shown next to answer-based indicators of a period not settled
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
            return month(add_months(self.start, -1))
        if self.kind == "quarter":
            return quarter_of(add_months(self.start, -3))
        if self.kind == "year":
            return year(self.start.year - 1)
        length = self.end - self.start
        return Period(self.start - length, self.start, "range" if self.kind != "week" else "week",
                      _range_code(self.start - length, self.start))

    def year_ago(self) -> Period:
        if self.kind == "month":
            return month(add_months(self.start, -12))
        if self.kind == "quarter":
            return quarter_of(add_months(self.start, -12))
        if self.kind == "year":
            return year(self.start.year - 1)
        start, end = add_months(self.start, -12), add_months(self.end, -12)
        return Period(start, end, "range", _range_code(start, end))


def _range_code(start: dt.date, end: dt.date) -> str:
    return f"{start:%Y-%m-%d}..{end - dt.timedelta(days=1):%Y-%m-%d}"


def month(first: dt.date) -> Period:
    """The calendar month holding ``first`` (any day of it)."""
    first = month_start(first)
    return Period(first, add_months(first, 1), "month", f"{first:%Y-%m}")


def quarter_of(d: dt.date) -> Period:
    first = dt.date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
    return Period(first, add_months(first, 3), "quarter", f"{first.year}-Q{(first.month - 1) // 3 + 1}")


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
    out, cur = [], month_start(first)
    while cur <= last:
        out.append(month(cur))
        cur = add_months(cur, 1)
    return out


# --- where a period stands against the data date ------------------------------------------------


def _moment(data_date: dt.datetime | dt.date) -> dt.datetime:
    """A data date as a moment: a bare date is 00:00 of that day (nothing of the day is in the data)."""
    if isinstance(data_date, dt.datetime):
        return data_date.replace(tzinfo=None)
    return dt.datetime.combine(data_date, dt.time())


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def is_complete(period: Period, data_date: dt.datetime | dt.date) -> bool:
    """The period's end ≤ the data date: no appeal of it is still to arrive."""
    return _at(period.end) <= _moment(data_date)


def is_settled(period: Period, data_date: dt.datetime | dt.date) -> bool:
    """The period's end + 30 days ≤ the data date: every appeal's 30-day window has closed."""
    return _at(period.end) + dt.timedelta(days=SETTLE_DAYS) <= _moment(data_date)


def age(period: Period, data_date: dt.datetime | dt.date) -> dt.timedelta:
    """How long the period has been watched: data date − end when complete; for an unfinished period
    the elapsed part, data date − start (zero for a period that has not started)."""
    now = _moment(data_date)
    if is_complete(period, now):
        return now - _at(period.end)
    return max(now - _at(period.start), dt.timedelta(0))


def same_age_as_of(previous: Period, current: Period, data_date: dt.datetime | dt.date) -> dt.datetime:
    """The moment the ``previous`` period was as old as ``current`` is at the data date.

    Complete current period: previous end + (data date − current end) — the same days since its end.
    Unfinished current period: previous start + (data date − current start) — the same elapsed part,
    so the previous period is seen with only the appeals received that far into it. Never later than
    the data date for a previous period that ends before the current one starts.
    """
    now = _moment(data_date)
    if is_complete(current, now):
        return _at(previous.end) + (now - _at(current.end))
    return _at(previous.start) + max(now - _at(current.start), dt.timedelta(0))


def last_complete_month(data_date: dt.datetime | dt.date) -> Period:
    """The latest calendar month whose end ≤ the data date.

    The month holding the data date never is (its end is after it), so this is always the month
    before: 30.11 23:40 → October; 01.12 00:00 → November (its end 01.12 00:00 has been reached).
    """
    return month(_moment(data_date).date()).previous()


def last_complete_days(n: int, data_date: dt.datetime | dt.date) -> Period:
    """The ``n`` whole days before the data date's day: a complete rolling window (the day of the data
    date is only partly in the data and would bias a comparison with the ``n`` days before)."""
    end = _moment(data_date).date()
    start = end - dt.timedelta(days=n)
    return Period(start, end, "range", _range_code(start, end))


def default_month(months_with_data: Iterable[dt.date], data_date: dt.datetime | dt.date) -> Period | None:
    """The month a view opens on: the last complete month when the data have it, else the newest month
    with data (a warehouse holding only the current month); None without data."""
    months = sorted({month_start(m) for m in months_with_data})
    if not months:
        return None
    last = last_complete_month(data_date)
    candidates = [m for m in months if m <= last.start]
    return month(candidates[-1] if candidates else months[-1])


def status_notes(period: Period, data_date: dt.datetime | dt.date, answer_based: bool = True) -> list[str]:
    """The warnings a period's numbers carry: «неполный период» until it is complete and, for
    answer-based indicators, «ответы ещё поступают» until it is settled."""
    notes = [] if is_complete(period, data_date) else [INCOMPLETE]
    if answer_based and not is_settled(period, data_date):
        notes.append(UNSETTLED)
    return notes
