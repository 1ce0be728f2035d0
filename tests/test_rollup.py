"""Rollups always equal a rebuild from the facts, after the demo and after incremental imports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from data.importer import run_import
from data.mapping import load_mapping
from data.rollup import KNOWN_TABLES, MEASURES, MONTHLY_TABLES, create_rollup_tables, refresh_rollups
from data.warehouse import connect

TABLES = ("appeal_weekly", "appeal_open", "appeal_duration", "appeal_stock", "appeal_stock_weekly",
          "appeal_stock_daily", "appeal_quantile", *MONTHLY_TABLES, *KNOWN_TABLES, "appeal_known_head",
          "appeal_known_head_day", "appeal_quantile_region", "appeal_quantile_region_map", "appeal_daily")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    out = {}
    for table in TABLES:
        rows = con.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
        # sums of hours are floats: their last bits depend on the order DuckDB adds them in
        rows = [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]
        out[table] = sorted(rows, key=repr)
    return out


def test_rollups_add_up_to_the_facts(small_demo: Path) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    facts = con.execute(
        """SELECT count(*), count(answered_at),
                  count(*) FILTER (WHERE answered_at IS NOT NULL AND closure_reason IS DISTINCT FROM 'redirected'),
                  count(first_response_at) FROM appeal""").fetchall()[0]
    assert con.execute("SELECT sum(n), sum(n_closed), sum(n_answered), sum(n_responded) FROM appeal_monthly"
                       ).fetchall()[0] == facts
    assert con.execute("SELECT sum(n) FROM appeal_weekly").fetchall()[0][0] == facts[0]
    durations = dict(con.execute("SELECT duration, count(*) FROM appeal_duration GROUP BY 1").fetchall())
    assert (durations[1], durations[0]) == (facts[2], facts[3])
    assert con.execute("SELECT count(*) FROM appeal_open").fetchall()[0][0] == con.execute(
        "SELECT count(*) FROM appeal WHERE answered_at IS NULL").fetchall()[0][0]
    # the stock at the end of August, counted by hand from the facts
    t = "TIMESTAMP '2025-09-01'"
    assert con.execute("SELECT sum(backlog_le3 + backlog_4_10 + backlog_11_30 + backlog_gt30), sum(overdue) "
                       "FROM appeal_stock WHERE month = DATE '2025-08-01'").fetchall()[0] == con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE due_at < {t}) FROM appeal
            WHERE received_at <= {t} AND (answered_at IS NULL OR answered_at > {t})""").fetchall()[0]
    # the stock at the end of Wednesday 17 September by municipality, age in calendar days at 18.09 00:00
    t = "TIMESTAMP '2025-09-18'"
    daily = con.execute(
        """SELECT municipality_id, sum(backlog_le3), sum(backlog_4_10), sum(backlog_11_30), sum(backlog_gt30),
                  sum(overdue) FROM appeal_stock_daily WHERE day = DATE '2025-09-17' GROUP BY 1 ORDER BY 1""").fetchall()
    by_hand = con.execute(
        f"""SELECT municipality_id,
                   count(*) FILTER (WHERE CAST({t} AS DATE) - CAST(received_at AS DATE) <= 3),
                   count(*) FILTER (WHERE CAST({t} AS DATE) - CAST(received_at AS DATE) BETWEEN 4 AND 10),
                   count(*) FILTER (WHERE CAST({t} AS DATE) - CAST(received_at AS DATE) BETWEEN 11 AND 30),
                   count(*) FILTER (WHERE CAST({t} AS DATE) - CAST(received_at AS DATE) > 30),
                   count(*) FILTER (WHERE due_at < {t})
            FROM appeal WHERE received_at <= {t} AND (answered_at IS NULL OR answered_at > {t})
            GROUP BY 1 ORDER BY 1""").fetchall()
    assert len(daily) > 5 and daily == by_hand
    sums = ", ".join(f"sum({m})" for m in MEASURES if not m.startswith("sum_"))
    assert all(v is not None for v in con.execute(f"SELECT {sums} FROM appeal_monthly").fetchall()[0])  # noqa: S608


def test_incremental_refresh_after_import_equals_full_rebuild(small_demo: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = connect(db)
    existing = con.execute("SELECT source_id FROM appeal ORDER BY received_at LIMIT 1").fetchall()[0][0]
    f = tmp_path / "a.csv"
    f.write_text(
        "source,source_id,received_at,municipality,channel,category,answered_at\n"
        f"demo,{existing},2025-05-03 10:00,Вяземский,pos,Отопление,2025-05-04 10:00\n"  # moved to another month
        "extra,1,2025-10-31 23:00,Ярцевский,im,Газификация,\n"
        "extra,2,2025-08-15 12:00,Ярцевский,im,Газификация,2025-08-15 13:30\n",
        encoding="utf-8",
    )
    result = run_import(con, f, load_mapping(None), now=dt.datetime(2025, 11, 5))
    assert (result.inserted, result.updated) == (2, 1)
    incremental = snapshot(con)
    con.execute("BEGIN")
    refresh_rollups(con)
    con.execute("COMMIT")
    assert snapshot(con) == incremental
    con.close()


def _regrouped(con: duckdb.DuckDBPyConnection, source: str, table: str, dims: tuple[str, ...], cols: list[str]) -> tuple:
    keys = ", ".join(("month", *dims))
    sums = ", ".join(f"sum({c}) AS {c}" for c in cols)
    out = []
    for name in (source, table):
        rows = con.execute(f"SELECT {keys}, {sums} FROM {name} GROUP BY ALL").fetchall()  # noqa: S608
        out.append(sorted((tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows), key=repr))
    return out[0], out[1]


def test_smaller_tables_are_the_full_grain_regrouped(small_demo: Path) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    for table, dims in MONTHLY_TABLES.items():
        a, b = _regrouped(con, "appeal_monthly", table, dims, list(MEASURES))
        assert a == b and len(b) > 0, table
    # each is much smaller than the full grain: that is what they are for
    full = con.execute("SELECT count(*) FROM appeal_monthly").fetchall()[0][0]
    assert con.execute("SELECT count(*) FROM appeal_monthly_ms").fetchall()[0][0] * 5 < full


def test_a_warehouse_from_before_the_smaller_tables_gets_them_filled(small_demo: Path, tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = connect(db)
    expected = snapshot(con)
    for table in ("appeal_monthly_o", "appeal_monthly_ms", "appeal_monthly_mk", "appeal_stock"):
        con.execute(f"DROP TABLE {table}")  # noqa: S608 - constant names
    create_rollup_tables(con)
    assert snapshot(con) == expected
    con.close()


def test_a_warehouse_from_before_the_known_changes_gets_them_built(small_demo: Path, tmp_path: Path) -> None:
    """``appeal_known*`` and the stored quantiles by region, missing from an older warehouse, are built
    on open, equal to what the demo build made."""
    db = tmp_path / "old.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = connect(db)
    expected = snapshot(con)
    assert expected["appeal_known"] and expected["appeal_known_head"] and expected["appeal_quantile_region"]
    for table in (*KNOWN_TABLES, "appeal_known_head", "appeal_known_head_day", "appeal_quantile_region",
                  "appeal_quantile_region_map", "appeal_daily"):
        con.execute(f"DROP TABLE {table}")  # noqa: S608 - constant names
    create_rollup_tables(con)
    assert snapshot(con) == expected
    con.close()


def test_known_changes_add_up_to_the_facts_at_the_data_date(small_demo: Path) -> None:
    """Summed over every day, the changes of ``appeal_known`` give each answer-based count as the data
    date knows it (hand-written over the facts), per receipt month."""
    con = duckdb.connect(str(small_demo), read_only=True)
    known = con.execute(
        """SELECT month, sum(n_closed), sum(n_answered), sum(n_responded), sum(n_rated), sum(n_first_due)
           FROM appeal_known GROUP BY month ORDER BY month""").fetchall()
    facts = con.execute(
        """SELECT CAST(date_trunc('month', received_at) AS DATE) AS month, count(answered_at),
                  count(*) FILTER (WHERE answered_at IS NOT NULL AND closure_reason IS DISTINCT FROM 'redirected'),
                  count(first_response_at), count(*) FILTER (WHERE satisfaction IS NOT NULL AND answered_at IS NOT NULL),
                  count(*) FILTER (WHERE first_response_due_at IS NOT NULL
                                   AND (first_response_at IS NOT NULL OR answered_at IS NOT NULL))
           FROM appeal GROUP BY 1 ORDER BY 1""").fetchall()
    assert known == facts and len(known) >= 6
    # the smaller tables are the full grain regrouped
    for table, dims in KNOWN_TABLES.items():
        a, b = (con.execute(f"SELECT month, day, {', '.join(dims)}, sum(n_closed), sum(n_overdue), "  # noqa: S608
                            f"sum(eligible_30d) FROM {t} GROUP BY ALL ORDER BY ALL").fetchall()
                for t in ("appeal_known", table))
        assert a == b, table
    con.close()


def test_a_warehouse_from_before_the_definitions_of_issue_14_is_rebuilt(small_demo: Path, tmp_path: Path) -> None:
    """Old measures (no n_redirected) and old tables (duration histograms) give way to today's."""
    db = tmp_path / "old.duckdb"
    db.write_bytes(small_demo.read_bytes())
    con = connect(db)
    expected = snapshot(con)
    con.execute("ALTER TABLE appeal_monthly DROP COLUMN n_redirected")
    con.execute("CREATE TABLE appeal_monthly_hist (month DATE, n INTEGER)")
    create_rollup_tables(con)
    assert snapshot(con) == expected
    assert "appeal_monthly_hist" not in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()


def test_every_rollup_route_answers_as_the_facts(small_demo: Path) -> None:
    """Each question reads a different rollup table; every count and share equals the facts'."""
    from metrics.periods import parse_period
    from metrics.query import data_as_of, facts_only, query_on
    from metrics.scope import Scope

    con = duckdb.connect(str(small_demo), read_only=True)
    as_of = data_as_of(con)
    month = parse_period(f"{as_of:%Y-%m}", as_of.date()).previous()
    codes = ["volume", "on_time_share", "satisfaction_share", "response_share", "repeat_share", "within_30d_share",
             "rate_10k", "growth", "backlog_open", "response_hours_median", "resolve_days_p90"]
    questions = [
        ([], {}, Scope.region()),
        (["municipality"], {"sector": ["housing"]}, Scope.region()),
        (["municipality", "category"], {"sector": ["housing"]}, Scope.region()),
        (["organisation"], {}, Scope.region()),
        (["organisation"], {}, Scope.municipalities([1])),
        (["channel", "kind"], {}, Scope.sectors([4])),
        (["month"], {"channel": ["pos"]}, Scope.region()),
        (["organisation"], {"sector": ["housing", "roads"]}, Scope.region()),
        (["month"], {}, Scope.municipalities([1])),
    ]
    for by, filters, scope in questions:
        fast = query_on(con, codes, by, month, filters, scope, as_of=as_of)
        with facts_only():
            slow = query_on(con, codes, by, month, filters, scope, as_of=as_of)
        keys = [c for c in fast.columns if c.endswith("_id") or c in ("channel", "kind", "month")][: len(by)]
        fast, slow = (f.sort_values(keys).reset_index(drop=True) if keys else f for f in (fast, slow))
        assert len(fast) == len(slow) > 0, by
        for column in fast.columns:
            if fast[column].dtype.kind in "fiub":
                a, b = (f[column].astype("float64").tolist() for f in (fast, slow))
                assert a == pytest.approx(b, nan_ok=True), (by, column)
    con.close()


def test_stored_quantiles_answer_only_the_questions_they_hold() -> None:
    from metrics.periods import parse_period
    from metrics.query import _stored_quantile_route
    from metrics.scope import Scope

    month, quarter, year = parse_period("2025-10"), parse_period("2025-Q3"), parse_period("2025")
    median = ["response_hours_median"]
    route = _stored_quantile_route
    assert route([], [month, month.previous()], {}, Scope.region(), median) == ("", "month")
    assert route(["organisation"], [quarter, quarter.previous()], {}, Scope.region(), median) == (
        "organisation_id", "quarter")
    assert route(["municipality"], [month], {"sector": [4]}, Scope.region(), median) == (
        "municipality_id,sector_id", "month")
    assert route(["month"], [year], {}, Scope.municipalities([1]), median) == ("municipality_id", "month")
    # two sectors merged, a category, a year, an arbitrary quantile: computed from the durations
    assert route(["municipality"], [month], {"sector": [4, 7]}, Scope.region(), median) is None
    assert route(["category"], [month], {}, Scope.region(), median) is None
    assert route([], [year], {}, Scope.region(), median) is None
    assert route([], [parse_period("2025-10-01..2025-10-15")], {}, Scope.region(), median) is None
