"""The social-tension index (DESIGN §4, «ИСН»): category severity from a file, the severe share, the
surge share and the composite, worked out by hand on a few appeals, recounted by hand-written SQL on
the demo, equal on the rollup and the facts paths, and on the heat map and the wall."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.severity import SeverityConfigError, apply, apply_to_new, load_config
from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics import indicators
from metrics.periods import parse_period
from metrics.query import facts_only, query_on
from tests.conftest import finish_warehouse

T = dt.datetime
CODES = ["severe_share", "repeat_share", "surge_share", "tension_index"]
TEST_LEVELS = """
default = "low"
[high]
housing = ["Отопление"]
energy = ["отключения электроэнергии"]   # case does not matter
[medium]
roads = ["Ямы и разрушение покрытия"]
"""
CHANGED_LEVELS = """
[high]
housing = ["Отопление"]
energy = ["Отключения электроэнергии"]
roads = ["Ямы и разрушение покрытия"]
"""


def _weights() -> tuple[float, float, float]:
    parts = dict(indicators.get("tension_index").parts)
    return parts["severe_share"], parts["repeat_share"], parts["surge_share"]


def _index(severe: float, repeat: float, surge: float) -> float:
    """DESIGN's words as arithmetic: 100 × the weighted mean of the three shares."""
    ws, wr, wg = _weights()
    return 100 * (ws * severe + wr * repeat + wg * surge) / (ws + wr + wg)


def _write(tmp_path: Path, text: str, name: str = "severity.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- a hand-computed warehouse -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    folder = tmp_path_factory.mktemp("tension")
    con = connect(folder / "w.duckdb")
    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
    apply(con, load_config(_write(folder, TEST_LEVELS)))
    ids = {name: (cid, sid) for cid, sid, name in con.execute("SELECT id, sector_id, name FROM category").fetchall()}
    n = iter(range(1000))

    def appeal(municipality: int, category: str, received: dt.datetime, repeat: bool = False) -> dict:
        cid, sid = ids[category]
        return {"source": "t", "source_id": f"a{next(n)}", "kind": "appeal", "channel": "pos",
                "received_at": received, "municipality_id": municipality, "sector_id": sid, "category_id": cid,
                "status": "in_work", "repeat_of": "a0" if repeat else None}

    heat, power, pothole = "Отопление", "Отключения электроэнергии", "Ямы и разрушение покрытия"
    dogs = "Безнадзорные животные"  # high in config/severity.toml, low in this file
    rows = [
        # September: 2 appeals in unit 1, 5 in unit 2, none severe
        *(appeal(1, pothole, T(2025, 9, d, 10)) for d in (3, 20)),
        *(appeal(2, pothole, T(2025, 9, d, 11)) for d in (1, 5, 9, 14, 30)),
        # October, unit 1: two heating (one a repeat), a pothole, stray dogs
        appeal(1, heat, T(2025, 10, 2, 9)), appeal(1, heat, T(2025, 10, 9, 9), repeat=True),
        appeal(1, pothole, T(2025, 10, 12, 15)), appeal(1, dogs, T(2025, 10, 30, 23, 59)),
        # October, unit 2: a power cut and two potholes
        appeal(2, power, T(2025, 10, 1, 0, 0)), appeal(2, pothole, T(2025, 10, 4, 8)),
        appeal(2, pothole, T(2025, 10, 18, 8)),
    ]
    finish_warehouse(con, "2025-11-05 12:00:00", rows)
    yield con
    con.close()


def _ask(con, codes, by, period, path):
    if path == "facts":
        with facts_only():
            return query_on(con, codes, by, period)
    return query_on(con, codes, by, period)


@pytest.mark.parametrize("path", ["rollup", "facts"])
def test_the_index_by_hand(hand, path) -> None:
    october = parse_period("2025-10")
    rows = _ask(hand, CODES, ["municipality"], october, path).set_index("municipality_id")
    one, two = rows.loc[1], rows.loc[2]
    # unit 1: 4 appeals, 2 severe (heating), 1 repeat, 2 more than September's 2 → 2 of 4 above it
    assert (one["volume"], one["severe_share"], one["repeat_share"], one["surge_share"]) == (4, 0.5, 0.25, 0.5)
    assert one["tension_index"] == pytest.approx(_index(0.5, 0.25, 0.5), rel=1e-12)
    # unit 2: 3 appeals, 1 severe (the power cut), no repeat, fewer than September's 5: no surge
    assert (two["volume"], two["severe_share"], two["repeat_share"], two["surge_share"]) == (3, 1 / 3, 0.0, 0.0)
    assert two["tension_index"] == pytest.approx(_index(1 / 3, 0, 0), rel=1e-12)
    # too few appeals for a judgement (min_volume 20), yet the value is there for the curious
    assert bool(one["tension_index_low"]) and one["tension_index_base"] == 4
    # the region: 7 appeals, 3 severe, 1 repeat, as many as September's 7 (the surge is the region's own,
    # not a sum of the units' surges)
    region = _ask(hand, CODES, [], october, path).iloc[0]
    assert (region["severe_share"], region["repeat_share"], region["surge_share"]) == pytest.approx((3 / 7, 1 / 7, 0))
    assert region["tension_index"] == pytest.approx(_index(3 / 7, 1 / 7, 0), rel=1e-12)
    if path == "rollup":  # the shipped weights, as the description states them
        assert _weights() == (2.0, 1.0, 1.0) and "2 × доля сообщений высокой тяжести" in \
            indicators.get("tension_index").description


@pytest.mark.parametrize("path", ["rollup", "facts"])
def test_a_time_dimension_compares_each_bucket_with_the_one_before(hand, path) -> None:
    rows = _ask(hand, CODES, ["municipality", "month"], parse_period("2025-09-01..2025-10-31"), path)
    one = rows[rows["municipality_id"] == 1].set_index("month")
    september, october = one.loc[pd.Timestamp("2025-09-01")], one.loc[pd.Timestamp("2025-10-01")]
    # September's 2 after an empty August: all of them are a surge
    assert (september["surge_share"], september["tension_index"]) == (1.0, pytest.approx(_index(0, 0, 1)))
    assert october["tension_index"] == pytest.approx(_index(0.5, 0.25, 0.5), rel=1e-12)
    # by week (the facts): unit 1 has 2.10 in the week of 29.09, 9.10 and 12.10 in the next, none the week before
    if path == "facts":  # weeks are facts only
        with facts_only():
            weeks = query_on(hand, ["surge_share"], ["week"], parse_period("2025-09-29..2025-10-12"),
                             filters={"municipality": [1]}).sort_values("week")
        assert weeks["volume"].tolist() == [1, 2] and weeks["surge_share"].tolist() == [1.0, 0.5]
        # a range starting on a Friday: its first bucket (5.09–7.09: 5.09) is held to 29.08–31.08 (none), the
        # next whole week (9.09, 14.09) to the whole week before (1.09, 5.09)
        unit2 = query_on(hand, ["surge_share"], ["week"], parse_period("2025-09-05..2025-09-14"),
                         filters={"municipality": [2]}).sort_values("week")
        assert unit2["volume"].tolist() == [1, 2] and unit2["surge_share"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("path", ["rollup", "facts"])
def test_a_changed_severity_is_in_the_next_answer_without_a_rollup_rebuild(hand, path, tmp_path) -> None:
    october = parse_period("2025-10")
    try:
        apply(hand, load_config(_write(tmp_path, CHANGED_LEVELS)))  # potholes become severe
        rows = _ask(hand, ["severe_share", "tension_index"], ["municipality"], october, path).set_index(
            "municipality_id")
        assert rows.loc[1, "severe_share"] == 3 / 4 and rows.loc[2, "severe_share"] == 1.0
        assert rows.loc[1, "tension_index"] == pytest.approx(_index(0.75, 0.25, 0.5), rel=1e-12)
    finally:
        apply(hand, load_config(_write(tmp_path, TEST_LEVELS, "back.toml")))
    assert _ask(hand, ["severe_share"], ["municipality"], october, path).set_index(
        "municipality_id").loc[1, "severe_share"] == 0.5


# --- the demo: hand-written SQL, both paths -----------------------------------------------------------

_RECOUNT = """
SELECT {key} AS grp,
       count(*) FILTER (WHERE a.received_at >= $start AND a.received_at < $end) AS n,
       count(*) FILTER (WHERE a.received_at >= $start AND a.received_at < $end AND c.severity = 'high') AS severe,
       count(*) FILTER (WHERE a.received_at >= $start AND a.received_at < $end AND a.repeat_of IS NOT NULL) AS repeats,
       count(*) FILTER (WHERE a.received_at >= $prev_start AND a.received_at < $start) AS prev
FROM appeal a LEFT JOIN category c ON c.id = a.category_id
WHERE a.received_at >= $prev_start AND a.received_at < $end
GROUP BY 1
"""


@pytest.mark.parametrize("period_code", ["2025-09", "2025-Q3", "2025-10-01..2025-10-30"])
@pytest.mark.parametrize("dim", ["municipality", "sector", "organisation"])
def test_the_demo_equals_a_recount(small_demo: Path, period_code: str, dim: str) -> None:
    con = duckdb.connect(str(small_demo), read_only=True)
    period = parse_period(period_code)
    prev = period.previous()
    expected = con.execute(_RECOUNT.format(key=f"a.{dim}_id"),
                           {"start": period.start, "end": period.end, "prev_start": prev.start}).df()
    expected = expected[expected["n"] > 0].set_index("grp")
    assert len(expected) > 5 and expected["severe"].sum() > 0
    for path in ("rollup", "facts"):
        got = _ask(con, CODES, [dim], period, path).set_index(f"{dim}_id")
        both = expected.join(got, how="left")
        assert both["volume"].tolist() == both["n"].tolist(), (path, dim)
        assert both["severe_share"].tolist() == pytest.approx((both["severe"] / both["n"]).tolist(), rel=1e-12)
        surge = (both["n"] - both["prev"]).clip(lower=0) / both["n"]
        assert both["surge_share"].tolist() == pytest.approx(surge.tolist(), rel=1e-12), (path, dim)
        index = [_index(s / n, r / n, g) for s, r, n, g in zip(both["severe"], both["repeats"], both["n"], surge,
                                                                strict=True)]
        assert both["tension_index"].tolist() == pytest.approx(index, rel=1e-12), (path, dim)
        assert (both["tension_index_low"] == (both["n"] < 20)).all()
    con.close()


def test_compare_and_several_periods_read_the_same_on_both_paths(small_demo: Path) -> None:
    from metrics.query import query_periods

    con = duckdb.connect(str(small_demo), read_only=True)
    fast = query_on(con, CODES, ["municipality"], parse_period("2025-09"), compare=True)
    with facts_only():
        slow = query_on(con, CODES, ["municipality"], parse_period("2025-09"), compare=True)
    for column in ("tension_index", "tension_index_prev", "tension_index_rank", "surge_share_prev"):
        assert fast[column].tolist() == pytest.approx(slow[column].tolist(), rel=1e-12, nan_ok=True), column
    months = [parse_period(m) for m in ("2025-07", "2025-08", "2025-09")]
    stacked = query_periods(con, CODES, ["municipality"], months).sort_values(["period_index", "municipality_id"])
    for i, month in enumerate(months):
        one = query_on(con, CODES, ["municipality"], month).sort_values("municipality_id")
        part = stacked[stacked["period_index"] == i]
        assert part["tension_index"].tolist() == pytest.approx(one["tension_index"].tolist(), rel=1e-12)
    # periods whose previous spans overlap (September's is August, a 31-day range's 31.08–30.09): each is
    # still held to its own
    mixed = [parse_period("2025-09"), parse_period("2025-10-01..2025-10-31")]
    for path in ("rollup", "facts"):
        if path == "facts":
            with facts_only():
                stacked = query_periods(con, CODES, ["sector"], mixed)
        else:
            stacked = query_periods(con, CODES, ["sector"], mixed)
        for i, period in enumerate(mixed):
            one = query_on(con, CODES, ["sector"], period).sort_values("sector_id")
            part = stacked[stacked["period_index"] == i].sort_values("sector_id")
            assert part["surge_share"].tolist() == pytest.approx(one["surge_share"].tolist(), rel=1e-12), (path, i)
            assert part["tension_index"].tolist() == pytest.approx(one["tension_index"].tolist(), rel=1e-12)
    con.close()


# --- the severity file and command ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "words"), [
    ('default = "critical"', "default — один из уровней"),
    ('[high]\nhousing = ["Отопление"]\n[low]\nhousing = ["отопление"]', "названа в двух уровнях"),
    ('[index]\nsevere = -1', "неотрицательное число"),
    ('[index]\nsevere = 0\nrepeat = 0\nsurge = 0', "сумма весов"),
    ('[high]\nhousing = "Отопление"', "список названий"),
    ('levels = 1', "неизвестные настройки levels"),
])
def test_a_bad_file_is_refused_in_words(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(SeverityConfigError, match=words):
        load_config(_write(tmp_path, text))


def test_the_shipped_file_names_only_existing_categories_and_a_severe_one_in_most_sectors(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    ensure_initialised(con)
    result = apply(con, load_config())
    assert result["unmatched"] == [] and result["high"] >= 8
    sectors = con.execute("SELECT count(DISTINCT sector_id) FROM category WHERE severity = 'high'").fetchall()[0][0]
    assert sectors >= 8
    # a category an import adds later gets its level from the file (spelt with «е» for «ё»)
    housing = con.execute("SELECT id FROM sector WHERE code = 'housing'").fetchall()[0][0]
    con.execute("INSERT INTO category (id, sector_id, name, is_other) VALUES (900, ?, 'аварийное жилье', FALSE)",
                [housing])
    con.execute("UPDATE category SET severity = 'medium' WHERE name = 'Отопление'")  # set by hand: kept
    apply_to_new(con)
    levels = dict(con.execute("SELECT name, severity FROM category WHERE id = 900 OR name = 'Отопление'").fetchall())
    assert levels == {"аварийное жилье": "high", "Отопление": "medium"}
    con.close()


def test_the_command_sets_levels_and_reports_what_matched(tmp_path: Path, capsys) -> None:
    from data.__main__ import main

    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_initialised(con)
    con.close()
    file = _write(tmp_path, TEST_LEVELS + '\n[low]\nroads = ["Нет такой категории"]\n')
    assert main(["severity", "--db", str(db), "--file", str(file)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["high"], report["medium"]) == (2, 1) and report["unmatched"] == ["roads: Нет такой категории"]
    assert main(["severity", "--db", str(db), "--file", str(tmp_path / "absent.toml")]) == 2
    assert "файл тяжести категорий не найден" in capsys.readouterr().err


def test_a_warehouse_from_before_severity_says_what_to_do(small_demo: Path, tmp_path: Path) -> None:
    import shutil

    from metrics.query import QueryError

    db = tmp_path / "old.duckdb"
    shutil.copy(small_demo, db)
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE category DROP COLUMN severity")
    con.close()
    con = duckdb.connect(str(db), read_only=True)
    with pytest.raises(QueryError, match="python -m data severity"):
        query_on(con, ["tension_index"], ["municipality"], parse_period("2025-09"))
    assert query_on(con, ["repeat_share"], [], parse_period("2025-09")).iloc[0]["repeat_share"] > 0  # the rest works
    con.close()
    # the next writer adds the column and the levels
    con = connect(db)
    ensure_initialised(con)
    assert con.execute("SELECT count(*) FROM category WHERE severity = 'high'").fetchall()[0][0] >= 8
    con.close()


# --- the pages ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def heatmap(small_demo: Path, tmp_path_factory):
    import app as app_module
    from metrics import source

    app_module.create_app(tmp_path_factory.mktemp("pages") / "absent.duckdb")
    before = source._configured
    source.configure(small_demo)
    from pages import heatmap as module

    yield module
    source.configure(before)


def test_the_heat_map_offers_and_draws_the_index(heatmap, small_demo: Path) -> None:
    from tests.test_app import find

    options = find(heatmap.layout(), "heatmap-indicator").options
    labels = {o["value"]: o["label"] for o in options}
    assert labels["tension_index"] == "Индекс социальной напряжённости"
    assert labels["severe_share"] == "Доля сообщений высокой тяжести"
    assert find(heatmap.layout(indicator="tension_index"), "heatmap-indicator").value == "tension_index"
    fig_map, fig_matrix, note = heatmap.update("2025-09", "all", "all", "tension_index")
    assert fig_map.layout.title.text.startswith("Индекс социальной напряжённости — сентябрь 2025")
    con = duckdb.connect(str(small_demo), read_only=True)
    expected = query_on(con, ["tension_index"], ["municipality"], parse_period("2025-09"))
    con.close()
    layer = fig_map.data[1]
    shown = dict(zip(layer.locations, layer.z, strict=True))
    judged = expected[~expected["tension_index_low"]]
    assert len(judged) > 20 and expected["tension_index_low"].any()  # some units have too few appeals
    for row in judged.itertuples():
        assert shown[row.municipality_id] == pytest.approx(row.tension_index, rel=1e-12)
    assert all(shown[i] is None or pd.isna(shown[i]) for i in expected.loc[expected["tension_index_low"],
                                                                            "municipality_id"])
    assert "мало данных" in note.lower() or "Серым" in note
    # the matrix by sector for a sector's categories, and the severe share as a percentage
    _, matrix, _ = heatmap.update("2025-09", "housing", "all", "severe_share")
    assert "Доля сообщений высокой тяжести по муниципалитетам и категориям" in matrix.layout.title.text


@pytest.mark.browser
def test_the_heat_map_in_a_browser_opens_on_the_index_from_the_address(served_app, browser, small_demo: Path) -> None:
    from tests.conftest import console_errors, wait_js

    browser.get(served_app(small_demo) + "/?period=2025-09&indicator=tension_index")
    title = wait_js(browser, "const t = document.querySelector('#heatmap-map .js-plotly-plot')?.layout?.title?.text;"
                             "return t && t.includes('напряж') ? t : null")
    assert title.startswith("Индекс социальной напряжённости — сентябрь 2025")
    z = json.loads(wait_js(browser, "const g = document.querySelector('#heatmap-map .js-plotly-plot');"
                                    "return g?.calcdata?.[1] ? JSON.stringify(g.calcdata[1].map(p => p.z)) : null"))
    assert len(z) == 27 and sum(v is not None for v in z) > 20 and all(v is None or 0 <= v <= 100 for v in z), z
    assert console_errors(browser) == []
