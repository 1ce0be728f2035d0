"""Fixes of issue 14 (item 5) and 18: «Прочие» previous-period volume, the brief's small-base flag and
plain-text names, «—» for a KPI series outside the scope. Expected numbers are worked out by hand.

Hand-built warehouse (ЖКХ of город Смоленск; October 2025 against September 2025, no ratings):

- Отопление 12 / 12, МКД 10 / 10, Вода 9 / 9;
- «Прочие по направлению» through its children: Начисления 5 / 5, УК 5 / 5, Канализация 0 / 10.

October's list holds 41 appeals. «Прочие» as a whole: 10 now, 20 before (Канализация had appeals
only in September), so growth_damped = (10 − 20) / (20 + 10) = −1/3 and its score is
100 · 10/41 · (1 − 1/6) = 20.33 — below Вода's 100 · 9/41 = 21.95. Counting only the children with
appeals in October (the old error) gives 10 / 10, score 24.39, and «Прочие» would push Вода out.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import duckdb
import pytest

from data.warehouse import connect, ensure_initialised
from metrics.periods import parse_period
from metrics.priority import municipality_problems, priority_problems
from tests.conftest import finish_warehouse

SMOLENSK = 1
OCT, SEP = dt.datetime(2025, 10, 10, 12), dt.datetime(2025, 9, 10, 12)
OCTOBER = parse_period("2025-10")
OTHER = "Прочие по направлению"
_ids = itertools.count(1)


def _rows(n: int, when: dt.datetime, category: int, muni: int = SMOLENSK, sector: int | None = None) -> list[dict]:
    return [
        {"source": "t", "source_id": f"f{next(_ids)}", "kind": "message", "channel": "pos", "received_at": when,
         "municipality_id": muni, "sector_id": sector, "category_id": category, "status": "answered",
         "answered_at": when + dt.timedelta(days=1)}
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("fixes") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c)
    cat = dict(c.execute("SELECT c.name, c.id FROM category c JOIN sector s ON s.id = c.sector_id "
                         "WHERE s.code = 'housing'").fetchall())
    housing = c.execute("SELECT id FROM sector WHERE code = 'housing'").fetchall()[0][0]
    rows = []
    for name, now, before in (("Отопление", 12, 12), ("Содержание и ремонт многоквартирных домов", 10, 10),
                              ("Холодное и горячее водоснабжение", 9, 9), ("Начисления и квитанции", 5, 5),
                              ("Работа управляющих компаний", 5, 5), ("Канализация", 0, 10)):
        rows += _rows(now, OCT, cat[name], sector=housing) + _rows(before, SEP, cat[name], sector=housing)
    finish_warehouse(c, "2025-10-31 18:00:00", rows)
    yield c
    c.close()


def test_other_counts_last_period_of_children_without_appeals_now(con) -> None:
    top = priority_problems(OCTOBER, per_sector=3, con=con)
    assert top["category_name"].tolist() == [
        "Отопление", "Содержание и ремонт многоквартирных домов", "Холодное и горячее водоснабжение"]
    assert top["score"].tolist() == pytest.approx([100 * 12 / 41, 100 * 10 / 41, 100 * 9 / 41])
    # with a fourth place «Прочие» (20.33) makes it, decomposed into its children with October appeals
    four = priority_problems(OCTOBER, per_sector=4, con=con)
    children = four[four["decomposed_from"] == OTHER]
    assert sorted(children["category_name"]) == ["Начисления и квитанции", "Работа управляющих компаний"]
    assert children["volume_prev"].tolist() == [5, 5]
    assert "Канализация" not in four["category_name"].tolist()  # no appeals in October: not a row
    # the municipal list across sectors uses the same rule
    municipal = municipality_problems(OCTOBER, SMOLENSK, top=3, con=con)
    assert municipal["category_name"].tolist() == top["category_name"].tolist()
