"""Deadlines joined per (rule, day) in SQL equal the working calendar's answer for every second."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from data import deadlines, workcalendar

RULES = [
    ("working_hours", 8), ("working_hours", 1), ("working_hours", 9), ("working_hours", 16),
    ("working_hours", 40), ("working_days", 8), ("working_days", 1), ("calendar_days", 30),
    ("calendar_days", 1), (None, None),
]


def received_times() -> np.ndarray:
    rng = np.random.default_rng(3)
    # every 7 minutes across the New Year holidays and a moved day off, plus the window edges
    dense = np.arange("2024-12-20T00:00", "2025-01-20T00:00", np.timedelta64(7, "m"), dtype="datetime64[s]")
    days = np.arange("2024-12-20", "2025-01-20", dtype="datetime64[D]").astype("datetime64[s]")
    edges = np.concatenate([days + np.timedelta64(s, "s") for s in (
        0, 1, 8 * 3600 + 59 * 60 + 59, 9 * 3600 - 1, 9 * 3600, 9 * 3600 + 1, 12 * 3600,
        17 * 3600 - 1, 17 * 3600, 17 * 3600 + 1, 86_399)])
    spread = np.datetime64("2019-01-01T00:00:00") + rng.integers(0, 7 * 365 * 86400, 20_000).astype("timedelta64[s]")
    return np.concatenate([dense, edges, spread])


@pytest.mark.parametrize(("kind", "value"), RULES)
def test_sql_deadline_equals_the_calendar(kind: str | None, value: int | None) -> None:
    received = received_times()
    expected = workcalendar.deadline(received, kind, value)
    days = np.unique(received.astype("datetime64[D]"))
    cols = deadlines.day_columns(days, kind, value)
    con = duckdb.connect()
    con.register("day_arrow", pa.table({
        "day": pa.array(days), **{f"due_{name}": pa.array(v) for name, v in cols.items()},
    }))
    # sub-second parts are dropped by the calendar: give half the rows one
    shifted = received.astype("datetime64[us]") + np.where(np.arange(len(received)) % 2, 250_000, 0).astype(
        "timedelta64[us]")
    con.register("t_arrow", pa.table({"i": pa.array(np.arange(len(received))), "received": pa.array(shifted)}))
    got = con.execute(
        f"""SELECT {deadlines.deadline_sql('d', 'due', 't.received')} FROM t_arrow t
            JOIN day_arrow d ON d.day = CAST(t.received AS DATE) ORDER BY t.i"""  # noqa: S608
    ).fetchnumpy()
    values = np.ma.filled(list(got.values())[0], np.datetime64("NaT")).astype("datetime64[s]")
    assert len(values) == len(received)
    mismatch = ~((values == expected) | (np.isnat(values) & np.isnat(expected)))
    assert not mismatch.any(), list(zip(received[mismatch][:5], values[mismatch][:5], expected[mismatch][:5], strict=True))
    if kind is not None:
        assert not np.isnat(values).any()
