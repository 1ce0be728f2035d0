"""Decision support: forecast and staffing arithmetic, roadmap import and effect, the monthly brief."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from docx import Document

from data import demo_stories as st
from data.demo import build_demo
from data.roadmap import RoadmapFileError, add_item, import_roadmap
from data.warehouse import connect
from metrics import words
from metrics.query import query_on
from metrics.roadmap import ALPHA, item_effect, min_placebos, permutation_did, roadmap_effects, roadmap_items
from metrics.scope import Scope
from metrics.workload import (
    StaffingConfig,
    StaffingConfigError,
    forecast_series,
    monthly_load,
    parse_config,
    proposal_for,
    seasonal_naive,
    staff_needed,
    staffing_plan,
    working_days_in_month,
)
from report import brief as brief_module
from report.brief import BriefError, build_brief

SEED = 7
END_MONTH = "2026-10"


@pytest.fixture(scope="module")
def decision_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A demo big enough for the planted stories to beat the noise in one okrug: 100 000 appeals, 12 months."""
    path = tmp_path_factory.mktemp("decisions") / "demo.duckdb"
    started = time.perf_counter()
    build_demo(path, appeals=100_000, months=12, seed=SEED, end_month=END_MONTH)
    return path, time.perf_counter() - started


@pytest.fixture(scope="module")
def con(decision_demo) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(decision_demo[0]), read_only=True)
    yield connection
    connection.close()


# --- words ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [(1, "1 обращение"), (2, "2 обращения"), (5, "5 обращений"),
                                             (11, "11 обращений"), (21, "21 обращение"), (112, "112 обращений"),
                                             (1234, "1\u00a0234 обращения")])
def test_russian_plural_forms(n: int, expected: str) -> None:
    assert words.count(n, words.APPEALS) == expected.replace(" ", "\u00a0")


def test_month_forms() -> None:
    assert words.month_genitive(dt.date(2026, 12, 1)) == "декабря 2026"
    assert words.month_prepositional(dt.date(2026, 10, 1)) == "октябре 2026"


# --- forecast and staffing ----------------------------------------------------------------------------


def _synthetic(months: int, seed: int = 1) -> np.ndarray:
    """A seasonal monthly series: level 1 000, ±40 % yearly wave, 3 % noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    return 1000 * (1 + 0.4 * np.sin(2 * np.pi * t / 12)) * (1 + rng.normal(0, 0.03, months))


def test_holt_winters_forecast_of_a_seasonal_series_within_ten_percent() -> None:
    y = _synthetic(51)
    result = forecast_series(y[:48])
    assert result.model.startswith("holt_winters") or result.model == "seasonal_naive"
    truth = 1000 * (1 + 0.4 * np.sin(2 * np.pi * np.arange(48, 51) / 12))
    # stated error: within 10 % of the noiseless truth at every step of the horizon
    assert np.all(np.abs(result.values - truth) / truth < 0.10)
    hw, naive = result.errors["holt_winters"], result.errors["seasonal_naive"]
    assert hw["origins"] == naive["origins"] == 12 and hw["points"] > 12
    assert hw["smape"] < 0.08 and naive["smape"] < 0.12


def test_short_history_uses_seasonal_naive_and_says_so() -> None:
    y = _synthetic(18)
    result = forecast_series(y)
    assert result.model == "seasonal_naive"
    assert np.allclose(result.values, seasonal_naive(y))
    assert np.allclose(result.values, y[6:9])
    assert "holt_winters" not in result.errors and result.errors["seasonal_naive"]["origins"] == 6


def test_staff_needed_by_hand() -> None:
    # 2 400 appeals, 10 a day per specialist, 20 working days: 2 400 / 200 = 12 exactly
    assert staff_needed(2400, 10, 20) == 12
    assert staff_needed(2401, 10, 20) == 13
    assert staff_needed(120, 10, 12) == 1


def test_working_days_follow_the_production_calendar() -> None:
    assert working_days_in_month(dt.date(2027, 1, 1)) == 15  # New Year holidays 1–8 January
    assert working_days_in_month(dt.date(2026, 12, 1)) == 22
    assert working_days_in_month(dt.date(2026, 11, 1)) == 20  # 4 November


def test_proposal_arithmetic_and_wording() -> None:
    rows = pd.DataFrame({"month": [dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)],
                         "needed": [10, 12, 14]})
    p = proposal_for("housing", "ЖКХ", rows, current=10)
    assert p.action == "reinforce" and p.change == 4 and p.start_month == dt.date(2026, 12, 1)
    assert p.text.startswith("Усилить блок «ЖКХ» на 4\u00a0специалистов с декабря 2026")
    one = proposal_for("housing", "ЖКХ", rows.assign(needed=[10, 11, 11]), current=10)
    assert "на 1\u00a0специалиста с декабря 2026" in one.text
    spare = proposal_for("waste", "ТКО", rows.assign(needed=[5, 6, 6]), current=9)
    assert spare.action == "surplus" and spare.change == -3
    assert proposal_for("waste", "ТКО", rows, current=None).action == "unknown"


def test_staffing_settings_errors_are_in_russian() -> None:
    with pytest.raises(StaffingConfigError, match="норма"):
        parse_config({"norm_per_day": 0}, "x.toml")
    with pytest.raises(StaffingConfigError, match="неизвестный блок"):
        parse_config({"headcount": {"zhkh": 3}}, "x.toml", {"housing"})
    with pytest.raises(StaffingConfigError, match="целое"):
        parse_config({"headcount": {"housing": 2.5}}, "x.toml", {"housing"})
    assert parse_config({"norm": {"housing": 8}}, "x.toml").norm("housing") == 8


def test_month_end_stocks_agree_with_the_declared_indicators(con) -> None:
    load = monthly_load(con=con)
    last = load[load["month"] == load["month"].max()].set_index("sector_id")
    now = query_on(con, ["backlog_open", "overdue_open"], ["sector"]).set_index("sector_id")
    assert (last["open_end"] == now.loc[last.index, "backlog_open"]).all()
    assert (last["overdue_end"] == now.loc[last.index, "overdue_open"]).all()
    # open at the end of an earlier month, counted independently from the facts
    m = dt.date(2026, 6, 1)
    expected = con.execute("""SELECT count(*) FROM appeal WHERE received_at < $e AND (answered_at IS NULL
                              OR answered_at >= $e)""", {"e": dt.date(2026, 7, 1)}).fetchall()[0][0]
    assert int(load.loc[load["month"] == m, "open_end"].sum()) == expected


def test_staffing_plan_on_the_demo_has_a_proposal_for_every_block(con) -> None:
    config = StaffingConfig(10.0, headcount={"housing": 1, "waste": 500})
    plan = staffing_plan(config=config, con=con)
    assert len(plan.proposals) == 9
    by_code = {p.sector_code: p for p in plan.proposals}
    assert by_code["housing"].action == "reinforce" and by_code["waste"].action == "surplus"
    assert by_code["health"].action == "unknown"
    housing = plan.forecast[plan.forecast["sector_code"] == "housing"]
    # the data end on 31.10.2026 before midnight: October is not complete (metrics.periods), so it is
    # forecast, not learnt from
    assert list(housing["month"]) == [dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 12, 1)]
    assert (housing["model"] == "mean3").all()  # 11 complete months: too few for a seasonal model
    assert plan.backtest.empty  # nothing seasonal to test on 11 months (the synthetic series above do)


# --- roadmap ----------------------------------------------------------------------------------------


def test_demo_build_stays_small(decision_demo) -> None:
    assert decision_demo[1] < 20  # seconds; about 2 on an idle 2-core machine


def test_demo_writes_its_roadmap_measures(con) -> None:
    items = roadmap_items(con=con)
    assert len(items) == len(st.ROADMAP)
    planted = items[items["municipality_name"] == st.MEASURE_EFFECT.municipality].iloc[0]
    assert planted["category_names"] == [st.MEASURE_EFFECT.category]
    assert planted["start_date"] == st.measure_start(dt.date(2026, 11, 1))


def test_planted_measure_effect_is_detected_and_the_other_is_not(con) -> None:
    effects = roadmap_effects(con=con).set_index("title")
    for story in st.ROADMAP:
        row = effects.loc[story.title]
        if story.start_weeks_before_end < 0:
            assert row["verdict"] == "not_started"
        elif story.planted_effect:
            assert row["verdict"] == "decrease", row["text"]
            assert row["p_value"] <= ALPHA and row["placebos"] >= min_placebos() and "плацебо-проверке" in row["text"]
            # the demo halves the rate: the interval holds −50 %
            assert row["ci_low"] < st.MEASURE_EFFECT.factor_after / st.MEASURE_EFFECT.factor_before - 1 < row["ci_high"]
            assert "Эффект доказан" in row["text"]
        else:
            assert row["verdict"] == "not_proven", row["text"]
            assert row["ci_low"] < 0 < row["ci_high"] and row["p_value"] > ALPHA
            assert "интервал включает ноль" in row["text"]
            assert "Эффект не доказан" in row["text"]


def test_effect_with_too_few_weeks_says_not_proven(con) -> None:
    planted = roadmap_items(con=con)
    item_id = int(planted.loc[planted["municipality_name"] == st.MEASURE_EFFECT.municipality, "id"].iloc[0])
    start = st.measure_start(dt.date(2026, 11, 1))
    early = item_effect(item_id, until=start + dt.timedelta(days=15), con=con)
    assert early.verdict == "too_few" and "данных мало" in early.text
    assert early.series["after"].sum() == 2


def test_planted_effect_beats_every_placebo(con) -> None:
    planted = roadmap_items(con=con)
    item_id = int(planted.loc[planted["municipality_name"] == st.MEASURE_EFFECT.municipality, "id"].iloc[0])
    effect = item_effect(item_id, con=con)
    assert effect.placebos >= min_placebos() == 19
    # the smallest attainable p: no comparison okrug pretending to have the measure comes close
    assert effect.p_value == pytest.approx(1 / (effect.placebos + 1))
    assert effect.proven and effect.ci_high < 0


def test_too_few_placebos_cannot_prove_anything(con) -> None:
    """With ten comparison okrugs even the planted halving cannot reach p ≤ 5 % (1/11 at best): «данных мало»."""
    items = roadmap_items(con=con)
    planted = items[items["municipality_name"] == st.MEASURE_EFFECT.municipality].iloc[0]
    kinds = con.execute("SELECT id FROM municipality WHERE kind = 'муниципальный округ' ORDER BY id").fetchall()
    ids = [int(planted["municipality_id"]), *[i for (i,) in kinds if i != planted["municipality_id"]][:10]]
    effect = item_effect(int(planted["id"]), scope=Scope.municipalities(ids, "десять округов"), con=con)
    assert effect.verdict == "too_few" and effect.placebos <= 10
    assert "данных мало" in effect.text and f"нужно не меньше {min_placebos()}" in effect.text
    assert effect.change is not None and effect.change < 0 and effect.ci_low is None


# --- the placebo test on synthetic panels (no demo) ---------------------------------------------------

UNITS, WEEKS, START = 25, 60, 40  # one measured unit and 24 comparison units; 40 weeks before, 20 after


def _panel(rng: np.random.Generator, effect: float = 0.0, treated: int = 0,
           treated_size: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weekly Poisson counts, units of 3–40 a week, a common season, and unit-specific AR(1) shocks
    (ρ = 0.7, σ = 0.15 on the log rate): the over-dispersed, autocorrelated weeks that make robust
    errors of one treated unit too small. ``effect`` multiplies the treated unit's rate from START."""
    size = np.exp(rng.uniform(np.log(3), np.log(40), UNITS))
    if treated_size is not None:
        size[treated] = treated_size
    season = 1 + 0.3 * np.sin(2 * np.pi * (np.arange(WEEKS) + rng.integers(52)) / 52)
    shocks = rng.normal(0, 0.15, (UNITS, WEEKS))
    z = np.zeros((UNITS, WEEKS))
    for w in range(WEEKS):
        z[:, w] = (0.7 * z[:, w - 1] if w else 0.0) + shocks[:, w]
    after = np.arange(WEEKS) >= START
    rate = size[:, None] * season[None, :] * np.exp(z)
    rate[treated, after] *= 1 + effect
    return rng.poisson(rate), after


def test_placebo_test_false_alarms_stay_near_five_percent_where_naive_errors_do_not() -> None:
    rng = np.random.default_rng(2024)
    draws, alarms, naive = 400, 0, 0
    for _ in range(draws):
        y, after = _panel(rng)
        test = permutation_did(y, int(rng.integers(UNITS)), after)  # any unit may be the «measured» one
        assert test.placebos == UNITS - 1
        alarms += test.p_value <= ALPHA
        naive += abs(test.beta / test.se) > 1.959964
    # exact size of the rank test with 24 placebos is 1/25 = 4 %; 400 draws: ±1 % standard error
    assert alarms / draws <= 0.07
    # the same data fool a normal-approximation test: that is what the placebo ranking corrects
    assert naive / draws >= 2 * max(alarms / draws, 0.04)


def test_placebo_test_detects_a_planted_reduction() -> None:
    rng = np.random.default_rng(7)
    draws = 100
    found = 0
    for _ in range(draws):
        y, after = _panel(rng, effect=-0.5, treated_size=12)  # like the demo's potholes: halved, ≈ 12 a week
        test = permutation_did(y, 0, after)
        found += test.p_value <= ALPHA and test.beta < 0
    assert found / draws >= 0.8  # about 90 % on this generator (a −45 % effect: about 80 %)


def test_placebo_interval_excludes_zero_exactly_when_p_is_small() -> None:
    rng = np.random.default_rng(5)
    for i in range(60):
        y, after = _panel(rng, effect=-0.3 if i % 2 else 0.0, treated_size=10)
        test = permutation_did(y, 0, after)
        low, high = test.beta - test.critical * test.se, test.beta + test.critical * test.se
        assert (test.p_value <= ALPHA) == (high < 0 or low > 0)
        assert 1 / (UNITS) <= test.p_value <= 1


def _write_csv(path: Path, rows: list[str]) -> Path:
    header = "Мероприятие;Муниципалитет;Блок;Категории;Ответственный;Начало;Окончание;Статус"
    path.write_text("\n".join([header, *rows]), encoding="utf-8")
    return path


def test_roadmap_import_rejects_bad_rows_with_reasons(tmp_path: Path, decision_demo) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(decision_demo[0].read_bytes())
    f = _write_csv(tmp_path / "roadmap.csv", [
        "Ремонт дорог;Вяземский;Дороги;Ямы и разрушение покрытия;Администрация Вяземского муниципального округа;"
        "01.05.2026;01.10.2026;выполняется",
        "Мера на весь регион;весь регион;ЖКХ;;Министерство ЖКХ;2026-03-01;;",
        ";Вяземский;Дороги;;Кто-то;01.05.2026;;",
        "Ремонт;Смолнск;Дороги;;Кто-то;01.05.2026;;",
        "Ремонт школ;Вяземский;Образование;Отопление;Кто-то;01.05.2026;;",
        "Ремонт;Вяземский;Дороги;;Кто-то;31.02.2026;;",
        "Ремонт;Вяземский;Дороги;;Кто-то;01.05.2026;01.04.2026;",
        "Ремонт;Вяземский;Дороги;;Кто-то;01.05.2026;;почти готово",
        "Ремонт дорог;Вяземский;Дороги;Ямы и разрушение покрытия;Другие;01.05.2026;;",
    ])
    con = connect(db)
    try:
        result = import_roadmap(con, f)
        stored = con.execute("SELECT count(*) FROM roadmap_item").fetchall()[0][0]
    finally:
        con.close()
    assert result.read == 9 == result.accepted + result.rejected
    assert result.accepted == 2 and stored == len(st.ROADMAP) + 2
    reasons = {r["row"]: r["reason"] for r in result.rejected_rows}
    assert reasons[4] == "не указано название меры"
    assert "неизвестный муниципалитет: «Смолнск»" in reasons[5]
    assert "категория «Отопление» не из блока «Образование»" in reasons[6]
    assert "неверная дата начала" in reasons[7]
    assert "дата окончания раньше даты начала" in reasons[8]
    assert "неизвестный статус" in reasons[9]
    assert "такая мера уже есть" in reasons[10]


def test_roadmap_file_without_title_changes_nothing(tmp_path: Path, decision_demo) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(decision_demo[0].read_bytes())
    f = tmp_path / "bad.csv"
    f.write_text("Муниципалитет;Блок\nВяземский;Дороги\n", encoding="utf-8")
    con = connect(db)
    try:
        with pytest.raises(RoadmapFileError, match="нет столбца с названием"):
            import_roadmap(con, f)
        assert con.execute("SELECT count(*) FROM roadmap_item").fetchall()[0][0] == len(st.ROADMAP)
    finally:
        con.close()


def test_form_writer_adds_an_item_to_a_served_file_and_refuses_a_bad_one(tmp_path: Path, decision_demo) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(decision_demo[0].read_bytes())
    good = {"title": "Освещение улиц", "municipality": "Ярцевский", "sector": "energy",
            "categories": "Уличное освещение", "organisation": "Администрация", "start_date": "2026-09-01",
            "planned_end_date": "", "status": "in_progress"}
    new_id, reasons = add_item(db, good)
    assert reasons == [] and new_id == len(st.ROADMAP) + 1
    bad_id, reasons = add_item(db, {**good, "title": "", "start_date": "вчера"})
    assert bad_id is None and len(reasons) == 2
    check = duckdb.connect(str(db), read_only=True)
    try:
        assert check.execute("SELECT count(*) FROM roadmap_item").fetchall()[0][0] == len(st.ROADMAP) + 1
    finally:
        check.close()
    assert not list(tmp_path.glob("*.editing*"))


# --- brief ------------------------------------------------------------------------------------------


def test_brief_names_the_planted_spike_and_the_planted_effect(con) -> None:
    brief = build_brief("2026-10", con=con)
    text = brief.to_markdown()
    assert "В октябре 2026 года поступило" in text
    signals = next(s for s in brief.sections if s.title.startswith("Сигналы"))
    spike_lines = " ".join(signals.bullets)
    assert any(f"{s.municipality} — {s.category}" in spike_lines for s in st.SPIKES)
    roadmap = next(s for s in brief.sections if s.title.startswith("Дорожная карта"))
    assert any(st.MEASURE_EFFECT.municipality in b and "Эффект доказан" in b for b in roadmap.bullets)
    # the number of appeals is the declared indicator's
    total = int(query_on(con, ["volume"], [], brief_module.resolve_period("2026-10", con))["volume"].iloc[0])
    assert words.count(total, words.APPEALS) in text


def test_brief_refuses_a_quarter_and_a_month_without_data(con) -> None:
    with pytest.raises(BriefError, match="за месяц"):
        build_brief("2026-Q3", con=con)
    with pytest.raises(BriefError, match="нет обращений"):
        build_brief("2020-01", con=con)


def test_brief_command_writes_docx_and_markdown(tmp_path: Path, decision_demo, capsys) -> None:
    out = tmp_path / "brief.docx"
    assert brief_module.main(["--period", "2026-10", "--db", str(decision_demo[0]), "--out", str(out)]) == 0
    text = "\n".join(p.text for p in Document(str(out)).paragraphs)
    assert "Сигналы: рост сверх обычного уровня" in text and st.MEASURE_EFFECT.municipality in text
    md = tmp_path / "brief.md"
    assert brief_module.main(["--period", "2026-10", "--db", str(decision_demo[0]), "--out", str(md)]) == 0
    assert md.read_text(encoding="utf-8").startswith("# Обращения граждан: октябрь 2026")
    assert brief_module.main(["--period", "2026-10", "--db", str(decision_demo[0]), "--out", "x.pdf"]) == 2
    assert "docx или .md" in capsys.readouterr().err
