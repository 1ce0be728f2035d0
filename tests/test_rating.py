"""Ratings on a hand-built warehouse whose every score is worked out by hand below."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.demo import build_demo
from data.demo_stories import ORGANISATION_QUALITY
from data.warehouse import connect, ensure_initialised
from metrics import indicators
from metrics.periods import parse_period
from metrics.rating import (
    ALONE_PEER_GROUP,
    COLUMN_LABELS,
    COMPONENT_INDICATORS,
    COMPONENT_LABELS,
    STATUS_RANKED,
    STATUS_TOO_FEW,
    RatingConfigError,
    indicator_score,
    load_config,
    load_weights,
    rate_municipalities,
    rate_organisations,
)
from metrics.scope import Scope
from tests.conftest import finish_warehouse

T = dt.datetime
AS_OF = T(2025, 10, 31, 12, 0)
SMOLENSK, VELIZH = 1, 3  # ids of the reference list
HOUSING = 4
UK, OMSU, UTILITY = "управляющая организация", "ОМСУ", "ресурсоснабжающая организация"
# id, name, kind, home municipality
ORGS = (
    (1, "УК А", UK, SMOLENSK), (2, "УК Б", UK, SMOLENSK), (3, "УК В", UK, SMOLENSK), (4, "УК Г", UK, SMOLENSK),
    (5, "Администрация Д", OMSU, SMOLENSK), (6, "УК Е (мало обращений)", UK, SMOLENSK),
    (7, "Администрация Ж", OMSU, VELIZH), (8, "Водоканал З", UTILITY, None),
)
# October is read from the facts (not month-aligned: exact medians); its previous period is
# September 1–30, a whole month, read from the rollups.
OCTOBER = parse_period("2025-10-01..2025-10-30")
_seq = iter(range(1, 10_000))


def _appeal(con, org: int, day: dt.date, answered: bool = True, on_time: bool = True, hours: float | None = 2,
            rating: int | None = None, rework: bool = False, merits: bool = True, repeat: bool = False,
            muni: int = SMOLENSK) -> None:
    """One appeal due 10 days after receipt: answered in 2 days (on time) or 15 (late), or still open."""
    received = T(day.year, day.month, day.day, 10)
    answered_at = received + dt.timedelta(days=2 if on_time else 15) if answered else None
    con.execute(
        """INSERT INTO appeal (source, source_id, kind, channel, received_at, municipality_id, sector_id,
               category_id, organisation_id, status, first_response_at, answered_at, due_at, closure_reason,
               answer_on_merits, returned_for_rework, satisfaction, repeat_of)
           VALUES ('t', ?, 'message', 'pos', ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [str(next(_seq)), received, muni, HOUSING, org, "answered" if answered else "in_work",
         None if hours is None else received + dt.timedelta(hours=hours), answered_at,
         received + dt.timedelta(days=10), "explained" if answered else None,
         merits if answered else None, rework if answered else None, rating if answered else None,
         "earlier" if repeat else None],
    )


def _many(con, org: int, specs: list[dict], muni: int = SMOLENSK, month: int = 10) -> None:
    for i, spec in enumerate(specs):
        _appeal(con, org, dt.date(2025, month, 1 + i), muni=muni, **spec)


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("rating") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c)
    c.executemany("INSERT INTO organisation (id, name, kind, municipality_id) VALUES (?, ?, ?, ?)", ORGS)
    # A: everything answered on time in 2 h, rated 5, on the merits, no repeats
    _many(c, 1, [dict(hours=2, rating=5)] * 5)
    # Б: 4 of 5 answered (3 on time), one open past its due date; 4 h; ratings 5 5 2 2; one rework,
    # one answer not on the merits, one repeat
    _many(c, 2, [dict(hours=4, rating=5), dict(hours=4, rating=5, repeat=True), dict(hours=4, rating=2, rework=True),
                 dict(hours=4, rating=2, on_time=False, merits=False), dict(hours=4, answered=False)])
    # В: 3 of 5 answered (1 on time), 2 open and overdue; 10 h; ratings 1 2 5; 2 reworks; 1 on the merits;
    # 2 repeats
    _many(c, 3, [dict(hours=10, rating=1, rework=True, merits=False, repeat=True),
                 dict(hours=10, rating=2, rework=True, merits=False, on_time=False),
                 dict(hours=10, rating=5, on_time=False), dict(hours=10, answered=False, repeat=True),
                 dict(hours=10, answered=False)])
    # Г: all 5 answered on time in 3 h, but ratings 1 1 2 4 (one unrated) and 3 reworks
    _many(c, 4, [dict(hours=3, rating=1, rework=True), dict(hours=3, rating=1, rework=True),
                 dict(hours=3, rating=2, rework=True), dict(hours=3, rating=4), dict(hours=3)])
    # Д (ОМСУ): 4 answered on time in 1 h, ratings 5 5
    _many(c, 5, [dict(hours=1, rating=5), dict(hours=1, rating=5), dict(hours=1), dict(hours=1)])
    # Е: two open appeals only; below the minimum, it must not stretch anybody's scale
    _many(c, 6, [dict(answered=False, hours=None)] * 2)
    # Ж (ОМСУ, Велиж): 4 answered, 2 on time, 6 h, ratings 5 1, one rework, 2 not on the merits, one repeat
    _many(c, 7, [dict(hours=6, rating=5), dict(hours=6, rating=1, rework=True, on_time=False),
                 dict(hours=6, merits=False, on_time=False), dict(hours=6, merits=False, repeat=True)], muni=VELIZH)
    # З (regional utility): 3 open overdue in Smolensk, 2 answered on time in Velizh
    _many(c, 8, [dict(answered=False)] * 3)
    _many(c, 8, [dict()] * 2, muni=VELIZH)
    # September: Б was the best management company, А answered late and got poor ratings
    _many(c, 1, [dict(hours=5, rating=1, on_time=False)] * 4, month=9)
    _many(c, 2, [dict(hours=1, rating=5)] * 4, month=9)
    finish_warehouse(c, AS_OF.isoformat(sep=" "))
    yield c
    c.close()


EQUAL = dict.fromkeys(COMPONENT_LABELS, 1.0)


@pytest.fixture
def rated(con) -> pd.DataFrame:
    return rate_organisations(OCTOBER, weights=EQUAL, min_volume=4, con=con).set_index("organisation_name")


def test_component_scores_and_composite_by_hand(rated) -> None:
    # response_share А 1, Б .8, В .6, Г 1 → 100, 50, 0, 100
    assert rated.loc[["УК А", "УК Б", "УК В", "УК Г"], "quantity"].tolist() == pytest.approx([100, 50, 0, 100])
    # on time 1, .75, 1/3, 1 → 100, 62.5, 0, 100; median hours 2, 4, 10, 3 (lower better) → 100, 75, 0, 87.5
    assert rated.loc[["УК А", "УК Б", "УК В", "УК Г"], "speed"].tolist() == pytest.approx([100, 68.75, 0, 93.75])
    # satisfaction 1, .5, 1/3, .25 → 100, 33.3, 11.1, 0; rework 0, .25, 2/3, .6 → 100, 62.5, 0, 10
    assert rated.loc[["УК А", "УК Б", "УК В", "УК Г"], "quality"].tolist() == pytest.approx(
        [100, (100 / 3 + 62.5) / 2, 100 / 9 / 2, 5])
    # merits 1, .75, 1/3, 1 → 100, 62.5, 0, 100; repeats 0, .2, .4, 0 → 100, 50, 0, 100
    assert rated.loc[["УК А", "УК Б", "УК В", "УК Г"], "completeness"].tolist() == pytest.approx(
        [100, 56.25, 0, 100])
    b_quality = (100 / 3 + 62.5) / 2
    assert rated.loc["УК Б", "composite"] == pytest.approx((50 + 68.75 + b_quality + 56.25) / 4)
    assert rated.loc["УК В", "composite"] == pytest.approx(100 / 9 / 2 / 4)
    assert rated.loc["УК Г", "composite"] == pytest.approx((100 + 93.75 + 5 + 100) / 4)
    assert rated.loc["УК А", "composite"] == 100
    assert rated.loc["УК Б", "on_time_share"] == pytest.approx(0.75)  # the indicator values ride along
    assert rated.loc["УК Б", "response_hours_median"] == pytest.approx(4)


def test_ranks_peer_groups_and_weak_component(rated) -> None:
    uk = rated[rated["peer_group"] == UK]
    assert uk["peer_rank"].dropna().sort_values().index.tolist() == ["УК А", "УК Г", "УК Б", "УК В"]
    assert (uk.loc[["УК А", "УК Г", "УК Б", "УК В"], "peer_count"] == 4).all()
    # ОМСУ is its own group: Д's 1 h would otherwise push А's speed below 100
    assert rated.loc["Администрация Д", "composite"] == 100 and rated.loc["Администрация Д", "peer_rank"] == 1
    assert rated.loc["Администрация Ж", "composite"] == pytest.approx(25)  # only quantity ties at 100
    # alone in its kind, З is scored against every ranked organisation, not handed 100 for being alone
    assert rated.loc["Водоканал З", "peer_group"] == ALONE_PEER_GROUP
    assert rated.loc["Водоканал З", "peer_count"] == 7
    assert rated.loc["Водоканал З", "peer_rank"] == rated.loc["Водоканал З", "rank"]
    ranks = rated["rank"].dropna().astype(int)
    assert ranks.loc[["УК А", "Администрация Д"]].tolist() == [1, 1]
    assert ranks.loc["УК Г"] < ranks.loc["УК Б"] < ranks.loc["Администрация Ж"] < ranks.loc["УК В"]
    assert pd.isna(rated.loc["УК Е (мало обращений)", "rank"])
    assert rated.loc["УК Б", "weak_component"] == "качество"
    assert rated.loc["УК Г", "weak_component"] == "качество"
    assert rated.loc["Администрация Ж", "weak_component"] == "скорость"  # ties at 0: the first listed
    assert pd.isna(rated.loc["УК А", "weak_component"])  # 100 everywhere: nothing stands out
    assert rated.loc["УК Б", "weak_component_code"] == "quality"


def test_below_minimum_volume_is_listed_unranked(rated) -> None:
    row = rated.loc["УК Е (мало обращений)"]
    assert row["status"] == STATUS_TOO_FEW == "недостаточно данных"
    assert row["volume"] == 2 and pd.isna(row["rank"]) and pd.isna(row["peer_rank"]) and pd.isna(row["composite"])
    assert (rated.drop(index="УК Е (мало обращений)")["status"] == STATUS_RANKED).all()
    assert rated.index[-1] == "УК Е (мало обращений)"  # unranked at the end of the list


def test_rank_change_against_previous_period(rated) -> None:
    # September: Б 100 (place 1), А 62.5 (place 2); the others had no appeals
    assert rated.loc["УК А", "rank_prev"] == 2 and rated.loc["УК А", "rank_change"] == 1
    assert rated.loc["УК Б", "rank_prev"] == 1 and rated.loc["УК Б", "rank_change"] == 1 - 5
    assert rated.loc["УК Б", "peer_rank_change"] == 1 - 3
    assert rated.loc["УК А", "composite_prev"] == pytest.approx((100 + 0 + 50 + 100) / 4)
    assert rated.loc["УК А", "volume_prev"] == 4
    assert pd.isna(rated.loc["УК Г", "rank_prev"]) and pd.isna(rated.loc["УК Г", "rank_change"])


def test_month_period_from_rollups_gives_the_same_order(con, rated) -> None:
    month = rate_organisations(parse_period("2025-10"), weights=EQUAL, min_volume=4, con=con)
    month = month.set_index("organisation_name")
    assert month["peer_rank"].to_dict() == rated["peer_rank"].to_dict()
    # only the medians are histogram estimates: the other components are exact
    for column in ("quantity", "quality", "completeness"):
        assert month[column].fillna(-1).tolist() == pytest.approx(rated.loc[month.index, column].fillna(-1).tolist())


def test_weights_from_a_toml_file_change_the_composite(con, tmp_path, monkeypatch) -> None:
    config = tmp_path / "rating.toml"
    config.write_text("min_volume = 4\n[weights]\nquantity = 0\nspeed = 0\nquality = 1\ncompleteness = 0\n",
                      encoding="utf-8")
    assert load_weights(config) == {"quantity": 0.0, "speed": 0.0, "quality": 1.0, "completeness": 0.0}
    monkeypatch.setenv("CUR_RATING_CONFIG", str(config))
    df = rate_organisations(OCTOBER, con=con).set_index("organisation_name")
    assert df.loc["УК Г", "composite"] == pytest.approx(5)  # only quality counts now
    assert df.loc["УК В", "composite"] == pytest.approx(100 / 18)
    assert df.loc["УК В", "peer_rank"] < df.loc["УК Г", "peer_rank"]  # В overtakes Г on quality alone
    assert df.loc["УК Е (мало обращений)", "status"] == STATUS_TOO_FEW  # min_volume from the same file


@pytest.mark.parametrize(("text", "message"), [
    ("[weights]\nquantity = 1\nspeed = 1\nquality = 1\nfullness = 1\n", "неизвестный компонент"),
    ("[weights]\nquantity = 1\nspeed = 1\nquality = 1\n", "не задан вес"),
    ("[weights]\nquantity = -1\nspeed = 1\nquality = 1\ncompleteness = 1\n", "отрицательным"),
    ("[weights]\nquantity = 0\nspeed = 0\nquality = 0\ncompleteness = 0\n", "больше нуля"),
    ("[weights]\nquantity = 'много'\nspeed = 1\nquality = 1\ncompleteness = 1\n", "числом"),
    ("min_volume = -3\n", "min_volume"),
    ("weight = 1\n", "неизвестные настройки"),
    ("[weights\n", "не читается"),
])
def test_invalid_settings_have_a_clear_message(tmp_path, text, message) -> None:
    config = tmp_path / "rating.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(RatingConfigError, match=message):
        load_config(config)


def test_shipped_settings_and_missing_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CUR_RATING_CONFIG", raising=False)
    shipped = load_config()
    assert shipped.weights == EQUAL and shipped.min_volume == 20
    with pytest.raises(RatingConfigError, match="не найден"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(RatingConfigError, match="отрицательным"):
        rate_organisations(OCTOBER, weights={**EQUAL, "speed": -1}, con=None)


def test_municipal_scope_never_returns_other_municipalities(con) -> None:
    df = rate_organisations(OCTOBER, scope=Scope.municipalities({VELIZH}), weights=EQUAL, min_volume=2, con=con)
    volumes = dict(zip(df["organisation_name"], df["volume"], strict=True))
    # Ж works in Velizh only; З has 2 of its 5 appeals there (both answered: the Smolensk ones are not seen)
    assert volumes == {"Администрация Ж": 4, "Водоканал З": 2}
    assert df.set_index("organisation_name").loc["Водоканал З", "response_share"] == pytest.approx(1.0)
    region = rate_organisations(OCTOBER, weights=EQUAL, min_volume=2, con=con).set_index("organisation_name")
    assert region.loc["Водоканал З", "response_share"] == pytest.approx(2 / 5)


def test_municipalities_rated_together(con) -> None:
    df = rate_municipalities(OCTOBER, weights=EQUAL, min_volume=4, con=con).set_index("municipality_name")
    assert df.loc["город Смоленск", "volume"] == 5 * 4 + 4 + 2 + 3 and df.loc["Велижский", "volume"] == 6
    # Smolensk answered 21, 8 are overdue (21 / 29); Velizh answered all 6 → quantity 0 and 100
    assert df.loc["город Смоленск", "quantity"] == 0 and df.loc["Велижский", "quantity"] == 100
    assert set(df["rank"].dropna()) == {1, 2} and (df["peer_group"] == "все муниципалитеты").all()


def test_labels_and_directions_are_declared() -> None:
    for codes in COMPONENT_INDICATORS.values():
        for code in codes:
            assert indicators.get(code).higher_is_better is not None
    assert COMPONENT_LABELS == {"quantity": "количество", "speed": "скорость", "quality": "качество",
                                "completeness": "полнота"}
    assert {"rank", "peer_rank", "rank_change", "weak_component", "composite"} <= set(COLUMN_LABELS)
    s = pd.Series([1.0, 2.0, None, 2.0])
    assert indicator_score(s, False).tolist()[:2] == [100, 0] and pd.isna(indicator_score(s, True)[2])
    assert indicator_score(pd.Series([0.5, 0.5]), True).tolist() == [100, 100]


def test_planted_bad_organisations_rank_in_the_bottom_half(tmp_path) -> None:
    db = tmp_path / "demo.duckdb"
    build_demo(db, appeals=20_000, months=6, seed=3, end_month="2025-10")
    demo = duckdb.connect(str(db), read_only=True)
    try:
        df = rate_organisations(parse_period("2025-Q3"), weights=EQUAL, min_volume=20, con=demo)
    finally:
        demo.close()
    df = df.set_index("organisation_name")
    checked = 0
    for planted in ORGANISATION_QUALITY:
        row = df.loc[planted.organisation]
        assert row["status"] == STATUS_RANKED, planted.organisation
        if planted.quality < 0:
            assert row["peer_rank"] > row["peer_count"] / 2, planted.organisation
        else:
            assert row["peer_rank"] <= row["peer_count"] / 2, planted.organisation
        checked += planted.quality < 0
    assert checked >= 1
