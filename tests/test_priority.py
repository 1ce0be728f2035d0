"""Priority problems on a hand-built warehouse: every expected score is worked out below.

October 2025 against September 2025 (whole months: read from the rollups).

- roads (region): Ямы 10 (6 in Smolensk, all rated 5; 4 in Velizh) / Sep 10; Уборка снега 7 / 0;
  Ремонт дорог 8 / 12, four ratings of 1; Светофоры 1 / 0. Volume 26, ratings 10 of which 6
  satisfied: the list's dissatisfaction is 0.4.
- housing (Smolensk, no ratings): Отопление 10 / 10, Вода 3 / 3, МКД 2 / 2, «Прочие» through
  its children Начисления 5 / 5, УК 4 / 4, Канализация 2 / 2, and one appeal without a category.
- energy: Отключения 6 / 6 and Газификация 2 / 2 (Velizh); «Прочие» without children, topics
  «Опасная опора» 5 (Velizh) + 1 (Smolensk) / Sep 1, «Замена счётчика» 3, «Иное» 1, one without topic.
- transport (Velizh): Расписание 3, Маршруты 1.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics.periods import parse_period
from metrics.priority import COLUMNS, municipality_problems, priority_problems, priority_score
from metrics.query import QueryError
from metrics.scope import REGION, Scope
from tests.conftest import finish_warehouse

SMOLENSK, VELIZH = 1, 3
OCT, SEP = dt.datetime(2025, 10, 10, 12), dt.datetime(2025, 9, 10, 12)
OCTOBER = parse_period("2025-10")
OTHER = "Прочие по направлению"
_ids = itertools.count(1)


def _rows(n: int, when: dt.datetime, muni: int, sector: int, category: int | None, satisfaction: int | None = None,
          topic: str | None = None) -> list[dict]:
    return [
        {"source": "t", "source_id": f"p{next(_ids)}", "kind": "message", "channel": "pos", "received_at": when,
         "municipality_id": muni, "sector_id": sector, "category_id": category, "status": "answered",
         "answered_at": when + dt.timedelta(days=1), "satisfaction": satisfaction, "topic": topic}
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("priority") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    sector = dict(c.execute("SELECT code, id FROM sector").fetchall())
    cat = {(s, n): i for i, s, n in c.execute(
        "SELECT c.id, s.code, c.name FROM category c JOIN sector s ON s.id = c.sector_id").fetchall()}
    roads, housing, energy, transport = (sector[k] for k in ("roads", "housing", "energy", "transport"))
    pothole, snow, repair, lights = (cat["roads", n] for n in (
        "Ямы и разрушение покрытия", "Уборка снега на дорогах", "Ремонт дорог и тротуаров", "Светофоры и дорожные знаки"))
    heat, water, block = (cat["housing", n] for n in (
        "Отопление", "Холодное и горячее водоснабжение", "Содержание и ремонт многоквартирных домов"))
    bills, company, sewer = (cat["housing", n] for n in ("Начисления и квитанции", "Работа управляющих компаний",
                                                          "Канализация"))
    outage, gas, energy_other = cat["energy", "Отключения электроэнергии"], cat["energy", "Газификация"], cat[
        "energy", OTHER]
    schedule, routes = cat["transport", "Расписание и интервалы движения"], cat["transport", "Маршруты и их отмена"]
    rows = [
        *_rows(6, OCT, SMOLENSK, roads, pothole, satisfaction=5), *_rows(4, OCT, VELIZH, roads, pothole),
        *_rows(10, SEP, VELIZH, roads, pothole),
        *_rows(7, OCT, VELIZH, roads, snow),
        *_rows(4, OCT, VELIZH, roads, repair, satisfaction=1), *_rows(4, OCT, VELIZH, roads, repair),
        *_rows(12, SEP, VELIZH, roads, repair),
        *_rows(1, OCT, VELIZH, roads, lights),
    ]
    for category, n in ((heat, 10), (water, 3), (block, 2), (bills, 5), (company, 4), (sewer, 2)):
        rows += _rows(n, OCT, SMOLENSK, housing, category) + _rows(n, SEP, SMOLENSK, housing, category)
    rows += _rows(1, OCT, SMOLENSK, housing, None)
    rows += [*_rows(6, OCT, VELIZH, energy, outage), *_rows(6, SEP, VELIZH, energy, outage),
             *_rows(2, OCT, VELIZH, energy, gas), *_rows(2, SEP, VELIZH, energy, gas),
             *_rows(5, OCT, VELIZH, energy, energy_other, topic="Опасная опора"),
             *_rows(1, OCT, SMOLENSK, energy, energy_other, topic="Опасная опора"),
             *_rows(1, SEP, VELIZH, energy, energy_other, topic="Опасная опора"),
             *_rows(3, OCT, VELIZH, energy, energy_other, topic="Замена счётчика"),
             *_rows(1, OCT, VELIZH, energy, energy_other, topic="Иное"),
             *_rows(1, OCT, VELIZH, energy, energy_other)]
    rows += [*_rows(3, OCT, VELIZH, transport, schedule), *_rows(1, OCT, VELIZH, transport, routes)]
    finish_warehouse(c, "2025-10-31 18:00:00", rows)
    yield c
    c.close()


def _score(share: float, growth: float = 0.0, dissatisfaction: float = 0.0) -> float:
    """The declared score written out: 100 · share · (1 + 0.5 · growth) · (1 + 0.5 · dissatisfaction)."""
    return 100 * share * (1 + 0.5 * growth) * (1 + 0.5 * dissatisfaction)


def _sector(df: pd.DataFrame, code: str) -> pd.DataFrame:
    return df[df["sector_code"] == code].reset_index(drop=True)


def test_ranking_follows_the_declared_score(con) -> None:
    roads = _sector(priority_problems(OCTOBER, con=con), "roads")
    assert list(roads.columns) == COLUMNS
    # Ямы: no growth; 6 of 6 satisfied, shrunk by 20 ratings of the list's 0.4: (0 + 8) / 26
    # Снег: 7 / 0 → growth 7 / 10; no ratings → the list's 0.4
    # Ремонт: 8 / 12 → (8 − 12) / 22; 4 of 4 unsatisfied → (4 + 8) / 24 = 0.5
    expected = [
        ("Ямы и разрушение покрытия", 10, 10, _score(10 / 26, 0, 8 / 26)),
        ("Уборка снега на дорогах", 7, 0, _score(7 / 26, 0.7, 0.4)),
        ("Ремонт дорог и тротуаров", 8, 12, _score(8 / 26, -4 / 22, 0.5)),
    ]
    assert [(r.category_name, r.volume, r.volume_prev) for r in roads.itertuples()] == [e[:3] for e in expected]
    assert roads["score"].tolist() == pytest.approx([e[3] for e in expected])
    assert roads["rank"].tolist() == [1, 2, 3]
    # the snow category outranks a bigger but falling and better-rated one
    assert roads.loc[1, "volume"] < roads.loc[2, "volume"]
    assert roads.loc[2, "satisfaction_share"] == 0.0
    assert roads.loc[1, "growth"] != roads.loc[1, "growth"]  # NaN: nothing the month before
    assert roads.loc[2, "growth"] == pytest.approx(-4 / 12)
    assert not roads["is_topic"].any() and roads["decomposed_from"].isna().all()


def test_score_function_damps_small_counts() -> None:
    terms = priority_score(pd.Series([3, 150]), pd.Series([1, 100]), 1000, pd.Series([0, 0]), pd.Series([0, 0]),
                           float("nan"))
    assert terms["growth_damped"].tolist() == pytest.approx([2 / 11, 50 / 110])
    assert terms["dissatisfaction"].tolist() == [0.0, 0.0]


def test_every_sector_with_data_has_at_least_three_rows(con) -> None:
    df = priority_problems(OCTOBER, con=con)
    counts = df.groupby("sector_code").size().to_dict()
    assert counts == {"roads": 3, "housing": 5, "energy": 5, "transport": 2}  # transport has only two
    assert priority_problems(OCTOBER, per_sector=4, con=con).groupby("sector_code").size()["roads"] == 4


def test_other_in_the_top_is_decomposed_into_its_children(con) -> None:
    housing = _sector(priority_problems(OCTOBER, con=con), "housing")
    # «Прочие» (11 of 27) leads as a whole, then is shown as its children, everything by its own score
    assert housing["category_name"].tolist() == [
        "Отопление", "Начисления и квитанции", "Работа управляющих компаний",
        "Холодное и горячее водоснабжение", "Канализация"]
    assert housing["volume"].tolist() == [10, 5, 4, 3, 2]
    assert housing["score"].tolist() == pytest.approx([_score(v / 27) for v in (10, 5, 4, 3, 2)])
    assert housing["decomposed_from"].tolist() == [None, OTHER, OTHER, None, OTHER]
    assert housing["rank"].tolist() == [1, 2, 3, 4, 5]
    assert not housing["is_topic"].any()
    assert OTHER not in housing["category_name"].tolist()


def test_other_without_children_is_decomposed_into_topics(con) -> None:
    energy = _sector(priority_problems(OCTOBER, con=con), "energy")
    assert energy["category_name"].tolist() == [
        "Опасная опора", "Отключения электроэнергии", "Замена счётчика", "Газификация", "Иное"]
    assert energy["volume"].tolist() == [6, 6, 3, 2, 1]
    assert energy["volume_prev"].tolist() == [1, 6, 0, 2, 0]
    assert energy["score"].tolist() == pytest.approx(
        [_score(6 / 19, 5 / 11), _score(6 / 19), _score(3 / 19, 0.3), _score(2 / 19), _score(1 / 19, 0.1)])
    assert energy["is_topic"].tolist() == [True, False, True, False, True]
    assert energy.loc[energy["is_topic"], "decomposed_from"].eq(OTHER).all()
    other_id = con.execute("SELECT c.id FROM category c JOIN sector s ON s.id = c.sector_id "
                           "WHERE s.code = 'energy' AND c.is_other").fetchall()[0][0]
    assert energy.loc[energy["is_topic"], "category_id"].eq(other_id).all()


def test_municipality_list_across_sectors(con) -> None:
    df = municipality_problems(OCTOBER, SMOLENSK, top=3, con=con)
    # Smolensk: 34 appeals; the ratings (6 of 6 satisfied) make the list's dissatisfaction 0.
    # Top three as wholes: «Прочие» ЖКХ 11, Отопление 10, Ямы 6 / 0 (growth 0.6); «Прочие» decomposed.
    assert df["category_name"].tolist() == [
        "Отопление", "Ямы и разрушение покрытия", "Начисления и квитанции", "Работа управляющих компаний",
        "Канализация"]
    assert df["sector_code"].tolist() == ["housing", "roads", "housing", "housing", "housing"]
    assert df["score"].tolist() == pytest.approx(
        [_score(10 / 34), _score(6 / 34, 0.6), _score(5 / 34), _score(4 / 34), _score(2 / 34)])
    assert df["rank"].tolist() == [1, 2, 3, 4, 5]


def test_municipality_outside_the_scope_is_refused(con) -> None:
    smolensk = Scope.municipalities({SMOLENSK})
    with pytest.raises(QueryError, match="вне доступной области"):
        municipality_problems(OCTOBER, VELIZH, scope=smolensk, con=con)
    with pytest.raises(QueryError, match="вне доступной области"):
        priority_problems(OCTOBER, scope=smolensk, municipality=VELIZH, con=con)
    with pytest.raises(QueryError, match="нет муниципального образования"):
        municipality_problems(OCTOBER, 9999, con=con)


def test_municipal_scope_never_returns_rows_of_another_municipality(con) -> None:
    scoped = priority_problems(OCTOBER, scope=Scope.municipalities({SMOLENSK}), con=con)
    by_filter = priority_problems(OCTOBER, municipality=SMOLENSK, con=con)
    pd.testing.assert_frame_equal(scoped, by_filter)
    # only Smolensk's appeals: 6 potholes; one pole topic; no transport, no Velizh categories
    assert set(scoped["sector_code"]) == {"roads", "housing", "energy"}
    roads = _sector(scoped, "roads")
    assert roads[["category_name", "volume", "volume_prev"]].values.tolist() == [
        ["Ямы и разрушение покрытия", 6, 0]]
    energy = _sector(scoped, "energy")
    assert energy[["category_name", "volume", "volume_prev", "is_topic"]].values.tolist() == [
        ["Опасная опора", 1, 0, True]]
    # every row's volume is the count of Smolensk's own appeals, checked by an independent query
    for row in scoped.itertuples():
        sql = ("SELECT count(*) FROM appeal WHERE municipality_id = ? AND category_id = ? "
               "AND received_at >= '2025-10-01' AND received_at < '2025-11-01'")
        params = [SMOLENSK, row.category_id]
        if row.is_topic:
            sql += " AND topic = ?"
            params.append(row.category_name)
        assert con.execute(sql, params).fetchall()[0][0] == row.volume, row.category_name
    region = priority_problems(OCTOBER, scope=REGION, con=con)
    assert _sector(region, "roads").loc[0, "volume"] == 10  # Velizh adds 4 outside the scope


def test_sector_scope_and_text_period(con) -> None:
    df = priority_problems("2025-10", scope=Scope.sectors({7}), con=con)
    assert set(df["sector_code"]) == {"roads"}
    assert priority_problems("2025-08", con=con).empty
