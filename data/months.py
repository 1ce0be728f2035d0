"""Calendar-month arithmetic, the one primitive every layer uses (``metrics.periods`` builds on it).

It lives in ``data`` because the warehouse code (rollup refresh, demo) needs it too and ``data`` knows
nothing of ``metrics``.
"""

from __future__ import annotations

import datetime as dt


def month_start(d: dt.date) -> dt.date:
    """The first day of the month holding ``d`` (a datetime gives its date's month)."""
    return dt.date(d.year, d.month, 1)


def add_months(d: dt.date, n: int) -> dt.date:
    """The first day of the month ``n`` months after the month holding ``d`` (``n`` may be negative)."""
    k = d.year * 12 + d.month - 1 + n
    return dt.date(k // 12, k % 12 + 1, 1)
