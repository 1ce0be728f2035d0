"""Working-day calendar and answer deadlines, vectorised over numpy arrays.

The calendar is the region's (``meta.region_calendar``, ``data.warehouse.Region.calendar``):
«RU» by default, any country code the `holidays` package knows («US», «BY», …), or «none» —
weekends only. Working days skip weekends and public holidays *including* the government's
transfers of days off (the `holidays` package lists a moved day off as
"Day off (substituted from MM/DD/YYYY)", and that source date, usually a
Saturday, becomes a working day).  Deadlines are configuration (the `channel`
table): ``calendar_days``, ``working_days`` or ``working_hours``.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

import holidays
import numpy as np

WORK_DAY_START_HOUR = 9
WORK_DAY_HOURS = 8  # 09:00–17:00 counted as the 8 working hours of a day
FIRST_YEAR, LAST_YEAR = 2010, 2035
_SUBSTITUTED = re.compile(r"substituted from (\d{2})/(\d{2})/(\d{4})")
_DAY = np.timedelta64(1, "D")
_END_OF_DAY = np.timedelta64(86_399, "s")


DEFAULT_CALENDAR = "RU"


@lru_cache(maxsize=8)
def working_days(calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """Sorted array (datetime64[D]) of every working day in FIRST_YEAR..LAST_YEAR under ``calendar``."""
    if calendar.lower() == "none":
        days = holidays.HolidayBase()  # no public holidays: weekends only
    else:
        days = holidays.country_holidays(calendar.upper(), years=range(FIRST_YEAR, LAST_YEAR + 1))
    days_off = set(days.keys())
    extra_working: set[date] = set()
    for name in days.values():
        for m, d, y in _SUBSTITUTED.findall(name):
            source = date(int(y), int(m), int(d))
            # a holiday that fell on a weekend is moved too; its date stays a day off
            if source not in days_off:
                extra_working.add(source)
    all_days = np.arange(f"{FIRST_YEAR}-01-01", f"{LAST_YEAR + 1}-01-01", dtype="datetime64[D]")
    weekday = (all_days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday (3)
    is_work = weekday < 5
    off = np.array(sorted(days_off), dtype="datetime64[D]")
    is_work &= ~np.isin(all_days, off)
    if extra_working:
        is_work |= np.isin(all_days, np.array(sorted(extra_working), dtype="datetime64[D]"))
    return all_days[is_work]


def is_working_day(days: np.ndarray, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    wd = working_days(calendar)
    d = np.asarray(days, dtype="datetime64[D]")
    pos = np.searchsorted(wd, d)
    pos = np.clip(pos, 0, len(wd) - 1)
    return wd[pos] == d


def add_working_days(ts: np.ndarray, n: int, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """End (23:59:59) of the n-th working day after the day of ``ts``."""
    wd = working_days(calendar)
    day = np.asarray(ts, dtype="datetime64[s]").astype("datetime64[D]")
    idx = np.searchsorted(wd, day, side="right") + (n - 1)
    return wd[np.minimum(idx, len(wd) - 1)].astype("datetime64[s]") + _END_OF_DAY


def add_calendar_days(ts: np.ndarray, n: int, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """End of the day n calendar days later, moved to the next working day if that one is a day off
    (the usual rule for a deadline falling on a holiday)."""
    wd = working_days(calendar)
    day = np.asarray(ts, dtype="datetime64[s]").astype("datetime64[D]") + n * _DAY
    idx = np.minimum(np.searchsorted(wd, day, side="left"), len(wd) - 1)
    return wd[idx].astype("datetime64[s]") + _END_OF_DAY


def add_working_hours(ts: np.ndarray, hours: int, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """``hours`` of working time (09:00–17:00 on working days) after ``ts``.

    A message arriving at night or on a day off starts counting at 09:00 of the
    next working day.
    """
    wd = working_days(calendar)
    t = np.asarray(ts, dtype="datetime64[s]")
    day = t.astype("datetime64[D]")
    secs_into_day = (t - day.astype("datetime64[s]")).astype("int64")
    start_s, end_s = WORK_DAY_START_HOUR * 3600, (WORK_DAY_START_HOUR + WORK_DAY_HOURS) * 3600
    pos = np.searchsorted(wd, day, side="left")
    pos_c = np.minimum(pos, len(wd) - 1)
    today_working = wd[pos_c] == day
    within = today_working & (secs_into_day >= start_s) & (secs_into_day < end_s)
    before = today_working & (secs_into_day < start_s)
    # index of the working day the count starts on, and seconds of working time used on it
    start_idx = np.where(within | before, pos_c, np.where(today_working, pos_c + 1, pos_c))
    used = np.where(within, secs_into_day - start_s, 0)
    total = used + hours * 3600
    day_len = WORK_DAY_HOURS * 3600
    # a deadline landing exactly on 17:00 stays on that day rather than 09:00 next day
    days_add = (total - 1) // day_len
    rem = total - days_add * day_len
    idx = np.minimum(start_idx + days_add, len(wd) - 1)
    return wd[idx].astype("datetime64[s]") + (start_s + rem).astype("timedelta64[s]")


def deadline(ts: np.ndarray, kind: str | None, value: int | None, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """Deadline for every timestamp under one rule; NaT where there is no rule."""
    t = np.asarray(ts, dtype="datetime64[s]")
    if kind is None or value is None:
        return np.full(t.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    if kind == "calendar_days":
        out = add_calendar_days(t, value, calendar)
    elif kind == "working_days":
        out = add_working_days(t, value, calendar)
    elif kind == "working_hours":
        out = add_working_hours(t, value, calendar)
    else:
        raise ValueError(f"неизвестный вид срока: {kind!r}")
    return np.where(np.isnat(t), np.datetime64("NaT"), out)
