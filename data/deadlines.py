"""Channel-rule deadlines for a whole import: the working calendar is asked once per (rule, day).

``workcalendar.deadline`` stays the reference; this module only reorganises its answers so the
importer can join them in SQL instead of running the calendar for each of a million appeals.

For ``calendar_days`` and ``working_days`` rules the deadline depends on the received *day*
only. For ``working_hours`` the time of day matters in just three ways: before the working
window (or on a day off) the count starts at the window, so it is the deadline of midnight;
after the window it is the deadline of 23:59:59; inside the window, arriving ``u`` seconds later
moves the deadline ``u`` working seconds on from the deadline of an arrival at the window's
start — on the same working day while it fits, else onto the next working day's window.
``tests/test_import_deadlines.py`` checks the SQL against ``workcalendar.deadline`` second by second.
"""

from __future__ import annotations

import numpy as np

from data import workcalendar

WINDOW_START_S = workcalendar.WORK_DAY_START_HOUR * 3600
WINDOW_S = workcalendar.WORK_DAY_HOURS * 3600
_NAT = np.datetime64("NaT", "s")

# column suffix -> meaning, for one deadline kind (prefix "due" or "first")
DAY_COLUMNS: tuple[str, ...] = ("by_hour", "fixed", "late", "base", "base_end", "next")


def day_columns(
    days: np.ndarray, kind: str | None, value: int | None, calendar: str = workcalendar.DEFAULT_CALENDAR
) -> dict[str, np.ndarray]:
    """What ``deadline_sql`` needs for each day (datetime64[D]) under one rule and the region's calendar."""
    d = np.asarray(days, dtype="datetime64[D]").astype("datetime64[s]")
    n = len(d)
    fixed = workcalendar.deadline(d, kind, value, calendar)
    nat = np.full(n, _NAT)
    if kind != "working_hours" or value is None:
        return {"by_hour": np.zeros(n, dtype=bool), "fixed": fixed, "late": nat, "base": nat,
                "base_end": nat, "next": nat}
    start = np.timedelta64(WINDOW_START_S, "s")
    base = workcalendar.deadline(d + start, kind, value, calendar)
    base_day = base.astype("datetime64[D]").astype("datetime64[s]")
    # add_working_days(x, 1) ends the first working day after x's day: its window opens at `start`
    next_day = workcalendar.add_working_days(base_day, 1, calendar).astype("datetime64[D]").astype("datetime64[s]")
    return {
        "by_hour": workcalendar.is_working_day(d, calendar),
        "fixed": fixed,
        "late": workcalendar.deadline(d + np.timedelta64(86_399, "s"), kind, value, calendar),
        "base": base,
        "base_end": base_day + start + np.timedelta64(WINDOW_S, "s"),
        "next": next_day + start,
    }


def deadline_sql(table: str, prefix: str, received: str) -> str:
    """SQL for the deadline of ``received`` from the row of ``table`` (alias) for its rule and day.

    ``received`` is truncated to the second, as the calendar counts whole seconds.
    """
    c = {name: f"{table}.{prefix}_{name}" for name in DAY_COLUMNS}
    t = f"date_trunc('second', {received})"
    opens = f"(CAST(CAST({received} AS DATE) AS TIMESTAMP) + INTERVAL {WINDOW_START_S} SECOND)"
    moved = f"({c['base']} + ({t} - {opens}))"
    return (
        f"CASE WHEN NOT {c['by_hour']} OR {t} < {opens} THEN {c['fixed']} "
        f"WHEN {t} >= {opens} + INTERVAL {WINDOW_S} SECOND THEN {c['late']} "
        f"WHEN {moved} <= {c['base_end']} THEN {moved} "
        f"ELSE {c['next']} + ({moved} - {c['base_end']}) END"
    )
