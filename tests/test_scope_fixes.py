"""Fixes of issue 14 (item 5) and 18: «Прочие» previous-period volume, the brief's small-base flag and
plain-text names, «—» for a KPI series outside the scope. Expected numbers are worked out by hand.

Hand-built warehouse, October 2025 against September 2025, no ratings:

- ЖКХ of город Смоленск: Отопление 12 / 12, МКД 10 / 10, Вода 9 / 9; «Прочие по направлению» through
  its children: Начисления 5 / 5, УК 5 / 5, Канализация 0 / 10. October's list holds 41 appeals.
  «Прочие» as a whole: 10 now, 20 before (Канализация had appeals only in September), so
  growth_damped = (10 − 20) / (20 + 10) = −1/3 and its score is 100 · 10/41 · (1 − 1/6) = 20.33 — below
  Вода's 100 · 9/41 = 21.95. Counting only the children with appeals in October (the old error) gives
  10 / 10, score 24.39, and «Прочие» would push Вода out of the top three.
- Энергетика of Велижский: October 8 appeals on «Прочие» (no children) with imported topics
  ``[нажмите](http://evil.example)`` (5) and ``**x**`` (3); September 3 power cuts — a base below 10.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import string
from pathlib import Path

import duckdb
import pytest

from data.warehouse import DEMO_MUNICIPALITIES, connect, ensure_initialised
from metrics.kpi import kpi_series, kpi_small_multiples
from metrics.periods import parse_period
from metrics.priority import municipality_problems, priority_problems
from metrics.scope import Scope, install_provider
from report.brief import SMALL_BASE, build_brief, plain_markdown
from tests.conftest import finish_warehouse

SMOLENSK, VELIZH = 1, 3
OCT, SEP = dt.datetime(2025, 10, 10, 12), dt.datetime(2025, 9, 10, 12)
OCTOBER = parse_period("2025-10")
OTHER = "Прочие по направлению"
PHISHING, BOLD = "[нажмите](http://evil.example)", "**x**"
_ids = itertools.count(1)


def _rows(n: int, when: dt.datetime, category: int, muni: int, sector: int, topic: str | None = None) -> list[dict]:
    return [
        {"source": "t", "source_id": f"f{next(_ids)}", "kind": "message", "channel": "pos", "received_at": when,
         "municipality_id": muni, "sector_id": sector, "category_id": category, "status": "answered",
         "answered_at": when + dt.timedelta(days=1), "topic": topic}
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path: Path = tmp_path_factory.mktemp("fixes") / "w.duckdb"
    c = connect(path)
    ensure_initialised(c, municipalities_csv=DEMO_MUNICIPALITIES)
    sector = dict(c.execute("SELECT code, id FROM sector").fetchall())
    housing, energy = sector["housing"], sector["energy"]
    cat = {(s, n): i for i, s, n in c.execute("SELECT id, sector_id, name FROM category").fetchall()}
    rows = []
    for name, now, before in (("Отопление", 12, 12), ("Содержание и ремонт многоквартирных домов", 10, 10),
                              ("Холодное и горячее водоснабжение", 9, 9), ("Начисления и квитанции", 5, 5),
                              ("Работа управляющих компаний", 5, 5), ("Канализация", 0, 10)):
        rows += _rows(now, OCT, cat[housing, name], SMOLENSK, housing)
        rows += _rows(before, SEP, cat[housing, name], SMOLENSK, housing)
    rows += _rows(5, OCT, cat[energy, OTHER], VELIZH, energy, PHISHING)
    rows += _rows(3, OCT, cat[energy, OTHER], VELIZH, energy, BOLD)
    rows += _rows(3, SEP, cat[energy, "Отключения электроэнергии"], VELIZH, energy)
    finish_warehouse(c, "2025-10-31 18:00:00", rows)
    yield c
    c.close()


# --- «Прочие» previous-period volume ---------------------------------------------------------------


def test_other_counts_last_period_of_children_without_appeals_now(con) -> None:
    top = priority_problems(OCTOBER, per_sector=3, con=con)
    top = top[top["sector_code"] == "housing"]
    assert top["category_name"].tolist() == [
        "Отопление", "Содержание и ремонт многоквартирных домов", "Холодное и горячее водоснабжение"]
    assert top["score"].tolist() == pytest.approx([100 * 12 / 41, 100 * 10 / 41, 100 * 9 / 41])
    # with a fourth place «Прочие» (20.33) makes it, decomposed into its children with October appeals
    four = priority_problems(OCTOBER, per_sector=4, con=con)
    four = four[four["sector_code"] == "housing"]
    children = four[four["decomposed_from"] == OTHER]
    assert sorted(children["category_name"]) == ["Начисления и квитанции", "Работа управляющих компаний"]
    assert children["volume_prev"].tolist() == [5, 5]
    assert "Канализация" not in four["category_name"].tolist()  # no appeals in October: not a row
    # the municipal list across sectors uses the same rule
    municipal = municipality_problems(OCTOBER, SMOLENSK, top=3, con=con)
    assert municipal["category_name"].tolist() == top["category_name"].tolist()


# --- the brief ---------------------------------------------------------------------------------------


def _unescape(markdown: str) -> str:
    """What CommonMark prints for backslash escapes of ASCII punctuation (written out independently)."""
    out, i = [], 0
    while i < len(markdown):
        if markdown[i] == "\\" and i + 1 < len(markdown) and markdown[i + 1] in string.punctuation:
            out.append(markdown[i + 1])
            i += 2
        else:
            out.append(markdown[i])
            i += 1
    return "".join(out)


def test_brief_prints_imported_names_as_plain_text(con, tmp_path) -> None:
    from docx import Document

    brief = build_brief(OCTOBER, con=con)
    problems = next(s for s in brief.sections if s.title.startswith("Самые острые"))
    energy = next(b for b in problems.bullets if PHISHING in b)
    assert BOLD in energy
    md = brief.to_markdown()
    # no link, emphasis or autolink can form: brackets, stars and the colon of «http://» are escaped
    assert PHISHING not in md and BOLD not in md and "http://" not in md and "**" not in md
    assert "\\[нажмите\\](http\\://evil.example)" in md and "\\*\\*x\\*\\*" in md
    assert plain_markdown(PHISHING) in md and plain_markdown(BOLD) in md
    for line in md.splitlines():
        body = line.removeprefix("# ").removeprefix("## ").removeprefix("- ")
        if body.startswith("_") and body.endswith("_"):
            body = body[1:-1]  # the subtitle's own emphasis
        assert re.search(r"(?<!\\)[][*_`<>!#&|~@]|(?<!\\):/|(?i:www)\.", body) is None, line
    # rendered, the text is the original one
    assert PHISHING in _unescape(md) and BOLD in _unescape(md)
    docx = tmp_path / "brief.docx"
    brief.to_docx(docx)
    text = "\n".join(p.text for p in Document(str(docx)).paragraphs)
    assert PHISHING in text and BOLD in text  # the document is not Markdown: names as they are


def test_brief_growth_below_ten_previous_appeals_is_small_base(con) -> None:
    brief = build_brief(OCTOBER, con=con)
    volume = next(s for s in brief.sections if s.title == "Сколько обращений")
    housing, energy = volume.bullets  # by volume: ЖКХ 41, энергетика 8
    # ЖКХ: 41 against 51 → −19,6 %; энергетика: 8 against 3 — a base below 10, no percent
    assert "41" in housing and "19,6" in housing and SMALL_BASE not in housing
    assert SMALL_BASE in energy and "%" not in energy
    # the region: 49 against 54, a base of 10 or more
    assert "%" in volume.paragraphs[0] and SMALL_BASE not in volume.paragraphs[0]
    problems = next(s for s in brief.sections if s.title.startswith("Самые острые"))
    power = next(b for b in problems.bullets if PHISHING in b)
    assert SMALL_BASE in power and "%" not in power


# --- «—» outside the scope ---------------------------------------------------------------------------


def test_kpi_series_outside_the_scope_has_no_value(con) -> None:
    smolensk = Scope.municipalities({SMOLENSK})
    own = kpi_series("volume", months=2, municipality=SMOLENSK, scope=smolensk, con=con)
    assert own["value"].tolist() == [51.0, 41.0]  # September, October: the hand-built counts
    # Велижский has 3 and 8 appeals, but it is outside the scope: «—», not 0 and not its numbers
    other = kpi_series("volume", months=2, municipality=VELIZH, scope=smolensk, con=con)
    assert other["value"].isna().all() and other["base"].isna().all() and other["low"].all()
    assert other["meets_target"].isna().all()
    # the same when only the request scope (the signed-in user's) holds the limit
    install_provider(lambda: smolensk)
    try:
        other = kpi_series("volume", months=2, municipality=VELIZH, con=con)
        sector = kpi_small_multiples("volume", months=2, municipality=VELIZH, con=con)
        share = kpi_series("on_time_share", months=2, sector="energy", municipality=VELIZH, con=con)
    finally:
        install_provider(None)
    assert other["value"].isna().all()
    assert len(sector) and sector["value"].isna().all()
    assert share["value"].isna().all()
    # a sector scope: another sector's category has no value either
    housing_only = Scope.sectors({int(con.execute("SELECT id FROM sector WHERE code = 'housing'").fetchall()[0][0])})
    energy_other = con.execute("SELECT c.id FROM category c JOIN sector s ON s.id = c.sector_id "
                               "WHERE s.code = 'energy' AND c.is_other").fetchall()[0][0]
    assert kpi_series("volume", months=2, category=energy_other, scope=housing_only, con=con)["value"].isna().all()
    assert kpi_series("volume", months=2, category=energy_other, con=con)["value"].tolist() == [0.0, 8.0]
