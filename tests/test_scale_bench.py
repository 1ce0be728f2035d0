"""bench/scale_bench.py: the resampled warehouse is a valid one, checked against hand-written queries."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from bench import scale_bench as sb
from data.demo import build_demo


def test_sizes_and_month_split():
    assert [sb.parse_size(s) for s in ("200k", "1M", "2.5M", "100M", "5000")] == [
        200_000, 1_000_000, 2_500_000, 100_000_000, 5_000]
    # 4 appeals over months holding 1 and 2 template appeals: 1.33 and 2.67 → 1 and 3 (largest remainder)
    m1, m2 = dt.date(2025, 1, 1), dt.date(2025, 2, 1)
    assert sb.month_counts([(m1, 1), (m2, 2)], 4) == [(m1, 1, 1), (m2, 2, 3)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    template = folder / "template.duckdb"
    build_demo(template, appeals=20_000, months=6, seed=5, end_month="2025-10", regions=2)
    db = folder / "w.duckdb"
    sb.build_warehouse(db, template, 30_000, seed=3, memory_limit="1GB", scratch=folder)
    return template, db


def test_same_catalog_and_reference(pair):
    template, db = pair
    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"ATTACH '{template}' AS t (READ_ONLY)")
    cols = ("SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE database_name = ? ORDER BY ALL")
    assert con.execute(cols, ["w"]).fetchall() == con.execute(cols, ["t"]).fetchall()
    for table in ("municipality", "region", "organisation", "category", "channel", "target", "meta"):
        if table == "meta":  # the data date is the template's; the bench adds its own note
            mine = {k: v for k, v in con.execute("SELECT key, value FROM w.meta").fetchall() if k != "scale_bench"}
            assert mine == dict(con.execute("SELECT key, value FROM t.meta").fetchall())
            continue
        assert con.execute(f"SELECT * FROM w.{table} ORDER BY ALL").fetchall() == \
            con.execute(f"SELECT * FROM t.{table} ORDER BY ALL").fetchall()


def test_facts_follow_the_template(pair):
    template, db = pair
    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"ATTACH '{template}' AS t (READ_ONLY)")
    n, ids, as_of = con.execute(
        "SELECT count(*), count(DISTINCT source_id), (SELECT CAST(value AS TIMESTAMP) FROM meta "
        "WHERE key = 'data_as_of') FROM appeal").fetchall()[0]
    assert n == ids == 30_000
    # every month gets its template share of the 30 000 (within the rounding)
    shares = con.execute(
        """SELECT t.m, t.k * 30000.0 / sum(t.k) OVER (), coalesce(w.k, 0)
           FROM (SELECT date_trunc('month', received_at) AS m, count(*) AS k FROM t.appeal GROUP BY 1) t
           LEFT JOIN (SELECT date_trunc('month', received_at) AS m, count(*) AS k FROM w.appeal GROUP BY 1) w
           USING (m)""").fetchall()
    assert all(abs(want - got) < 1 for _, want, got in shares)
    # the data date has not reached an answer or a first response after it; open ones carry no outcome
    bad = con.execute(
        """SELECT count(*) FILTER (WHERE received_at > $a OR answered_at > $a OR first_response_at > $a),
                  count(*) FILTER (WHERE first_response_at > answered_at OR answered_at < received_at),
                  count(*) FILTER (WHERE answered_at IS NULL AND (status NOT IN ('new', 'in_work')
                                   OR closure_reason IS NOT NULL OR satisfaction IS NOT NULL)),
                  count(*) FILTER (WHERE answered_at IS NOT NULL AND (closure_reason IS NULL
                                   OR status IN ('new', 'in_work'))),
                  count(*) FILTER (WHERE due_at < received_at)
           FROM appeal""", {"a": as_of}).fetchall()[0]
    assert bad == (0, 0, 0, 0, 0)
    # repeats and duplicates name an earlier appeal of the warehouse
    for column in ("repeat_of", "duplicate_of"):
        dangling = con.execute(
            f"""SELECT count(*) FROM appeal a LEFT JOIN appeal b ON b.source_id = a.{column}
                WHERE a.{column} IS NOT NULL AND (b.source_id IS NULL OR b.source_id >= a.source_id)"""
        ).fetchall()[0][0]
        assert dangling == 0
    # written in time order (DuckDB's zone maps on received_at stay tight)
    assert con.execute("SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER (ORDER BY rowid) AS back "
                       "FROM appeal) WHERE back").fetchall()[0][0] == 0
    # closure mix and open share close to the template's (same joint distribution, resampled)
    mix = ("SELECT coalesce(closure_reason, 'open'), count(*) / sum(count(*)) OVER () FROM {}.appeal "
           "GROUP BY 1 ORDER BY 1")
    for (a, x), (b, y) in zip(con.execute(mix.format("w")).fetchall(), con.execute(mix.format("t")).fetchall(),
                              strict=True):
        assert a == b and abs(x - y) < 0.02


def test_metrics_read_it(pair):
    """The warehouse answers the metrics like a hand-written count of the facts (rollups built)."""
    _, db = pair
    from metrics.periods import month
    from metrics.query import query_on

    con = duckdb.connect(str(db), read_only=True)
    last = month(dt.date(2025, 10, 1))
    got = query_on(con, ["volume"], ["municipality"], last).set_index("municipality_id")["volume"]
    want = dict(con.execute("SELECT municipality_id, count(*) FROM appeal WHERE received_at >= '2025-10-01' "
                            "AND received_at < '2025-11-01' GROUP BY 1").fetchall())
    assert {int(k): int(v) for k, v in got.items() if v} == want
