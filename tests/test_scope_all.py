"""Every public function of ``metrics`` applies the request scope itself (issue 14, item 5; issue 18).

(a) Signed in as the МЦУ of Дорогобужский (only the request scope is set, the way a page that forgot
to pass its scope would call), every function that reads appeals is called with arguments reaching for
the whole region or for another municipality; what comes back is checked against hand-written SQL
over Дорогобужский's appeals alone. The public functions are enumerated with ``inspect``: a new one
without a case here fails ``test_every_public_function_has_a_case``. Functions that legitimately see
more than the scope are listed in ``SEES_THE_REGION``, with the reason.

(b) With the web layer's provider installed and no request being served (a thread, a start-up
step), the same functions return nothing — not the region's totals; ``system_scope()`` is the one
declared way for the server's own work (the warm-up) to read the region, and it never widens a request.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pytest

import metrics
from metrics import appeals, catalog, kpi, priority, query, rating, roadmap, signals, status, workload
from metrics import source as source_module
from metrics.periods import parse_period
from metrics.scope import NOBODY, REGION, Scope, install_provider, system_scope

MINE, OTHER = 8, 19  # Дорогобужский (a roadmap measure of its own) and Сафоновский (one of another)
OCTOBER, SEPTEMBER = parse_period("2025-10"), parse_period("2025-09")
MCU = Scope(municipality_ids=frozenset({MINE}), label="Дорогобужский", rating_sees_all_municipalities=True)


@pytest.fixture(scope="module")
def con(small_demo) -> Iterator[duckdb.DuckDBPyConnection]:
    from data.warehouse import connect

    source_module.configure(small_demo)
    c = connect(small_demo, read_only=True)
    try:
        yield c
    finally:
        c.close()
        install_provider(None)
        source_module.configure(None)


@contextmanager
def signed_in(scope: Scope) -> Iterator[None]:
    """Only the request scope is set: the functions are called with their default (whole-region) scope."""
    install_provider(lambda: scope)
    try:
        yield
    finally:
        install_provider(None)


# --- hand-written SQL over the facts ----------------------------------------------------------------------


def hand(con, where: str = "TRUE", params: list | None = None, period=OCTOBER, municipality: int | None = MINE) -> int:
    clauses = [where]
    if period is not None:
        clauses.append(f"received_at >= DATE '{period.start}' AND received_at < DATE '{period.end}'")
    if municipality is not None:
        clauses.append(f"municipality_id = {int(municipality)}")
    return int(con.execute(f"SELECT count(*) FROM appeal WHERE {' AND '.join(clauses)}", params or []).fetchall()[0][0])


def names(con) -> dict[int, str]:
    return dict(con.execute("SELECT id, name FROM municipality").fetchall())


def foreign_names(con) -> list[str]:
    return [n for i, n in names(con).items() if i != MINE]


# --- the cases ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    call: Callable[[duckdb.DuckDBPyConnection], object]  # run under the request scope only
    mine: Callable[[duckdb.DuckDBPyConnection, object], None]  # asserts only MINE's data came back
    nothing: Callable[[object], None]  # asserts no data came back (scope NOBODY)


def _refused(call: Callable[[], object], error: type[Exception]) -> Callable[[duckdb.DuckDBPyConnection], object]:
    def run(_con):
        with pytest.raises(error):
            call()
        return "refused"
    return run


def _was_refused(result: object, *more: object) -> None:
    """A case whose call is refused outright (``_refused``) under any scope narrower than the region."""
    assert (more[0] if more else result) == "refused"


def _empty(df: object) -> None:
    assert isinstance(df, pd.DataFrame) and df.empty, df


def _ids(df: pd.DataFrame, column: str = "municipality_id") -> set[int]:
    return {int(v) for v in df[column].dropna()}


def _check_query(con, df) -> None:
    assert _ids(df) == {MINE}
    assert int(df["volume"].sum()) == hand(con)


def _check_query_on(con, df) -> None:
    by_sector, total, other = df
    assert int(by_sector["volume"].sum()) == hand(con)
    assert int(total["volume"].iloc[0]) == hand(con)
    assert other.empty or int(other["volume"].sum()) == 0  # a filter on another municipality: nothing


def _check_query_periods(con, df) -> None:
    assert _ids(df) == {MINE}
    got = df.set_index("period_index")["volume"].to_dict()
    assert got == {0: hand(con, period=SEPTEMBER), 1: hand(con, period=OCTOBER)}


def _check_problems(con, df) -> None:
    assert len(df)
    for r in df.itertuples():
        extra = " AND topic = ?" if r.is_topic else ""
        params = [int(r.category_id)] + ([r.category_name] if r.is_topic else [])
        assert hand(con, "category_id = ?" + extra, params) == r.volume, r.category_name


def _check_kpi(con, df) -> None:
    own, other = df
    assert own["value"].tolist() == [float(hand(con, period=SEPTEMBER)), float(hand(con, period=OCTOBER))]
    assert other["value"].isna().all()  # another municipality: «—», not 0 and not its numbers


def _check_small_multiples(con, df) -> None:
    own, other = df
    months = own.groupby("period_start")["value"].sum().tolist()
    assert months == [float(hand(con, period=SEPTEMBER)), float(hand(con, period=OCTOBER))]
    assert other["value"].isna().all()


def _check_organisations(con, df) -> None:
    expected = dict(con.execute(
        "SELECT organisation_id, count(*) FROM appeal WHERE municipality_id = ? AND organisation_id IS NOT NULL "
        "AND received_at >= DATE '2025-10-01' AND received_at < DATE '2025-11-01' GROUP BY 1", [MINE]).fetchall())
    # the home municipality of a regional body is a reference name; its numbers are MINE's appeals only
    assert {int(i): int(v) for i, v in zip(df["organisation_id"], df["volume"], strict=True)} == expected


def _check_municipal_rating(con, df) -> None:
    # SEES_THE_REGION: the municipalities' rating compares every municipality, also for an МЦУ
    volumes = dict(con.execute("SELECT municipality_id, count(*) FROM appeal WHERE received_at >= DATE '2025-10-01' "
                               "AND received_at < DATE '2025-11-01' GROUP BY 1").fetchall())
    assert {int(i): int(v) for i, v in zip(df["municipality_id"], df["volume"], strict=True)} == volumes


def _check_roadmap_items(con, df) -> None:
    expected = {t for (t,) in con.execute("SELECT title FROM roadmap_item WHERE municipality_id = ?", [MINE]).fetchall()}
    assert expected and set(df["title"]) == expected and _ids(df) == {MINE}


def _check_effects(con, df) -> None:
    _check_roadmap_items(con, df)
    # the comparison municipalities lie in the scope too: none here, so the effect cannot be judged
    assert (df["verdict"] == "too_few").all()
    for text in df["text"]:
        assert not any(name in text for name in foreign_names(con)), text


def _check_item_effect(con, effect) -> None:
    assert effect.comparison_names == []
    assert not any(name in effect.text for name in foreign_names(con))


def _check_form(con, choices) -> None:
    assert choices["municipalities"] == [(MINE, names(con)[MINE])]
    assert choices["region_allowed"] is False


def _check_add_measure(con, result) -> None:
    other, region = result
    assert other[0] is None and "вне доступной области" in other[1][0]
    assert region[0] is None and "вне доступной области" in region[1][0]
    assert con.execute("SELECT count(*) FROM roadmap_item").fetchall()[0][0] == 3  # nothing written


def _check_signals(con, df) -> None:
    assert len(df) and _ids(df) == {MINE}
    for r in df.itertuples():
        n = hand(con, "category_id = ? AND received_at >= ? AND received_at < ?",
                 [int(r.category_id), r.week, r.week + dt.timedelta(days=7)], period=None)
        assert n == r.count


def _check_monthly_load(con, df) -> None:
    got = df.groupby("month")["received"].sum()
    for m, n in got.items():
        assert n == hand(con, period=parse_period(f"{m:%Y-%m}")), m
    as_of = con.execute("SELECT CAST(value AS TIMESTAMP) FROM meta WHERE key = 'data_as_of'").fetchall()[0][0]
    still_open = hand(con, "received_at < ? AND (answered_at IS NULL OR answered_at >= ?)", [as_of, as_of],
                      period=None)
    assert int(df.loc[df["month"] == df["month"].max(), "open_end"].sum()) == still_open


def _check_staffing(con, plan) -> None:
    _check_monthly_load(con, plan.history)
    sectors = {s for (s,) in con.execute("SELECT DISTINCT sector_id FROM appeal WHERE municipality_id = ?",
                                         [MINE]).fetchall()}
    assert set(plan.history["sector_id"]) <= sectors


def _check_status(con, st) -> None:
    assert st.appeals == hand(con, period=None)
    assert int(st.by_sector["appeals"].sum()) == hand(con, period=None)
    assert st.municipalities == 1


def _check_catalog_municipalities(con, df) -> None:
    assert df["municipality_id"].tolist() == [MINE]


def _check_catalog_sectors(con, df) -> None:
    # a sector lead: only the sectors of the role (an МЦУ sees every sector of its municipality)
    assert df["sector_code"].tolist() == ["housing"]


def _check_appeal_list(con, lists) -> None:
    own, other = lists
    assert own.total == hand(con) and len(own.rows) == min(own.total, own.limit)
    assert set(own.rows["municipality_name"]) == {names(con)[MINE]}
    assert other.total == 0 and other.rows.empty  # a filter on another municipality: nothing


def _nothing_appeal_list(lists) -> None:
    for listed in lists:
        assert listed.total == 0 and listed.rows.empty


def _check_categories(con, df) -> None:
    assert set(df["sector_code"]) == {"housing"}  # a sector lead: only the categories of the role's sectors
    expected = {c for (c,) in con.execute("SELECT c.id FROM category c JOIN sector s ON s.id = c.sector_id "
                                          "WHERE s.code = 'housing'").fetchall()}
    assert set(df["category_id"]) == expected


def _busiest_organisation(con, municipality: int, elsewhere: bool) -> int:
    """The busiest body with appeals in ``municipality`` and (``elsewhere``) none in MINE."""
    sql = ("SELECT organisation_id FROM appeal WHERE municipality_id = ? AND organisation_id IS NOT NULL "
           + ("AND organisation_id NOT IN (SELECT organisation_id FROM appeal WHERE municipality_id = ? "
              "AND organisation_id IS NOT NULL) " if elsewhere else "")
           + "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    return int(con.execute(sql, [municipality, MINE] if elsewhere else [municipality]).fetchall()[0][0])


def _cards(c):
    return (appeals.organisation_card(_busiest_organisation(c, MINE, False), con=c),
            appeals.organisation_card(_busiest_organisation(c, OTHER, True), con=c))


def _check_cards(con, cards) -> None:
    own, foreign = cards
    assert own is not None and own.appeals == hand(con, "organisation_id = ?", [own.organisation_id], period=None)
    assert foreign is None  # a body working only elsewhere does not exist for this МЦУ


def _nothing_cards(cards) -> None:
    assert cards == (None, None)


def _nothing_status(st) -> None:
    assert st.appeals == 0 and st.data_as_of is None and st.by_sector.empty and st.municipalities == 0


def _nothing_pair(pair) -> None:
    for df in pair:
        assert df.empty or df["value"].isna().all() or int(np.nansum(df["volume"])) == 0, df


def _nothing_kpi(pair) -> None:
    for df in pair:
        assert df.empty or df["value"].isna().all(), df


def _nothing_form(choices) -> None:
    assert choices["municipalities"] == [] and choices["sectors"] == [] and choices["region_allowed"] is False


def _nothing_plan(plan) -> None:
    assert plan.history.empty and plan.forecast.empty and plan.proposals == []


def _nothing_volume(df) -> None:
    assert df.empty or int(df["volume"].sum()) == 0, df


def _nothing_query_on(frames) -> None:
    for df in frames:
        _nothing_volume(df)


def _mine_item(con) -> int:
    return int(con.execute("SELECT id FROM roadmap_item WHERE municipality_id = ?", [MINE]).fetchall()[0][0])


def _other_item(con) -> int:
    return int(con.execute("SELECT id FROM roadmap_item WHERE municipality_id = ?", [OTHER]).fetchall()[0][0])


def _form(municipality: str) -> dict[str, object]:
    return {"title": "Проверка области", "municipality": municipality, "sector": "roads",
            "start_date": "01.10.2025"}


SIGNAL_ARGS = {"min_count": 2, "z_threshold": 2.0}  # low thresholds: the region has signals in many places

_AS_OF = dt.datetime(2025, 10, 31, 23, 59)


def _last_mine(con) -> dt.datetime:
    return con.execute("SELECT max(received_at) FROM appeal WHERE municipality_id = ?", [MINE]).fetchall()[0][0]


def _check_last_receipt(con, found) -> None:
    latest = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
    assert found == _last_mine(con) and found < latest  # MINE's own feed, not the region's newest appeal


def _check_data_date_nothing(result) -> None:
    assert result.moment == _AS_OF  # no appeal of anybody's: the warehouse's date, no unit's last receipt


def _is_none(result) -> None:
    assert result is None


def _check_visible_regions(con, df) -> None:
    assert list(df["region_id"]) == [1]


def _pick(con):
    from data.regions import UnknownRegion

    try:
        return catalog.pick_region(1, REGION, con)
    except UnknownRegion as exc:
        return exc


def _check_pick(con, result) -> None:
    assert result is None  # a warehouse of one region: the whole document, scoped by the reader


def _check_pick_nothing(result) -> None:
    assert "вне вашей зоны доступа" in str(result)


CASES: dict[str, Case] = {
    "query.query": Case(lambda c: query.query(["volume"], ["municipality"], OCTOBER), _check_query, _nothing_volume),
    "query.query_on": Case(
        lambda c: (query.query_on(c, ["volume", "on_time_share"], ["sector"], OCTOBER),
                   query.query_on(c, ["volume", "growth"], [], OCTOBER),
                   query.query_on(c, ["volume"], ["municipality"], OCTOBER, filters={"municipality": [OTHER]})),
        _check_query_on, _nothing_query_on),
    "query.query_periods": Case(
        lambda c: query.query_periods(c, ["volume"], ["municipality"], [SEPTEMBER, OCTOBER]),
        _check_query_periods, _nothing_volume),
    "priority.priority_problems": Case(lambda c: priority.priority_problems(OCTOBER, con=c), _check_problems, _empty),
    "priority.municipality_problems": Case(
        lambda c: (_refused(lambda: priority.municipality_problems(OCTOBER, OTHER, con=c), query.QueryError)(c),
                   priority.municipality_problems(OCTOBER, MINE, con=c))[1],
        _check_problems, lambda r: pytest.fail("refused above")),
    "kpi.kpi_series": Case(
        lambda c: (kpi.kpi_series("volume", months=2, con=c),
                   kpi.kpi_series("volume", months=2, municipality=OTHER, con=c)),
        _check_kpi, _nothing_kpi),
    "kpi.kpi_small_multiples": Case(
        lambda c: (kpi.kpi_small_multiples("volume", months=2, con=c),
                   kpi.kpi_small_multiples("volume", months=2, municipality=OTHER, con=c)),
        _check_small_multiples, _nothing_kpi),
    "rating.rate_organisations": Case(lambda c: rating.rate_organisations(OCTOBER, con=c), _check_organisations,
                                      _empty),
    "rating.rate_municipalities": Case(lambda c: rating.rate_municipalities(OCTOBER, con=c), _check_municipal_rating,
                                       _empty),
    "roadmap.roadmap_items": Case(lambda c: roadmap.roadmap_items(con=c), _check_roadmap_items, _empty),
    "roadmap.roadmap_effects": Case(lambda c: roadmap.roadmap_effects(con=c), _check_effects, _empty),
    "roadmap.item_effect": Case(
        lambda c: (_refused(lambda: roadmap.item_effect(_other_item(c), con=c), KeyError)(c),
                   roadmap.item_effect(_mine_item(c), con=c))[1],
        _check_item_effect, lambda r: pytest.fail("refused above")),
    "roadmap.form_choices": Case(lambda c: roadmap.form_choices(con=c), _check_form, _nothing_form),
    "roadmap.add_measure": Case(
        lambda c: (roadmap.add_measure(_form(names(c)[OTHER])), roadmap.add_measure(_form(""))),
        _check_add_measure, lambda r: _check_add_measure_nothing(r)),
    "signals.detect_signals": Case(lambda c: signals.detect_signals(con=c, **SIGNAL_ARGS), _check_signals, _empty),
    "signals.recent_signals": Case(lambda c: signals.recent_signals(50, con=c, **SIGNAL_ARGS), _check_signals, _empty),
    "workload.monthly_load": Case(lambda c: workload.monthly_load(con=c), _check_monthly_load, _empty),
    "workload.staffing_plan": Case(lambda c: workload.staffing_plan(con=c), _check_staffing, _nothing_plan),
    "status.warehouse_status": Case(lambda c: status.warehouse_status(), _check_status, _nothing_status),
    "catalog.municipalities": Case(lambda c: catalog.municipalities(), _check_catalog_municipalities, _empty),
    # the country view ranks whole regions: any narrower scope is refused, nothing is returned
    "country.region_rating": Case(_refused(lambda: _module("country").region_rating(OCTOBER), query.QueryError),
                                  _was_refused, _was_refused),
    "country.all_regions": Case(_refused(lambda: _module("country").all_regions(OCTOBER), query.QueryError),
                                _was_refused, _was_refused),
    "catalog.sectors": Case(lambda c: catalog.sectors(), _check_catalog_sectors, _empty),
    # the regions a user may choose, and one region's «данные на», follow the request's scope
    "catalog.visible_regions": Case(lambda c: catalog.visible_regions(c), _check_visible_regions, _empty),
    "catalog.pick_region": Case(lambda c: _pick(c), _check_pick, _check_pick_nothing),
    "status.last_receipt": Case(lambda c: status.last_receipt(REGION, con=c), _check_last_receipt,
                                lambda r: _is_none(r)),
    "catalog.region_data_date": Case(lambda c: catalog.region_data_date(1, REGION, _AS_OF, c),
                                     lambda c, r: _check_last_receipt(c, r.moment), _check_data_date_nothing),
    "appeals.appeal_list": Case(
        lambda c: (appeals.appeal_list(OCTOBER, limit=50, con=c),
                   appeals.appeal_list(OCTOBER, municipality=OTHER, con=c)),
        _check_appeal_list, _nothing_appeal_list),
    "appeals.categories": Case(lambda c: appeals.categories(), _check_categories, _empty),
    "appeals.organisation_card": Case(_cards, _check_cards, _nothing_cards),
    # metrics.compare arrives with the "periods" branch: its case runs once the module is there
    "compare.compare": Case(lambda c: _module("compare").compare(["volume", "on_time_share"], ["municipality"], OCTOBER,
                                                                 con=c),
                            _check_query, _nothing_volume),
}


def _module(name: str):
    return importlib.import_module(f"metrics.{name}")


def _present(qualified: str) -> bool:
    return importlib.util.find_spec(f"metrics.{qualified.split('.')[0]}") is not None


def _check_add_measure_nothing(result) -> None:
    for new_id, reasons in result:
        assert new_id is None and reasons


# Cases that run under another role's scope than the МЦУ's.
SECTOR_LEAD = Scope.sectors({4}, label="ЖКХ")
CASE_SCOPE = {"catalog.sectors": SECTOR_LEAD, "appeals.categories": SECTOR_LEAD}

# Functions that legitimately see beyond the request scope, and why (each still has a case above).
SEES_THE_REGION: dict[str, str] = {
    "rating.rate_municipalities": "рейтинг муниципалитетов сравнивает все муниципалитеты, и МЦУ видит его целиком",
}

# Reference lists and facts about the warehouse itself: names, codes, geometry, published targets, the
# data date and the months that hold data. Nothing in them is a count or a value of a municipality.
REFERENCE: dict[str, str] = {
    "catalog.months_with_data": "месяцы с данными (выбор периода)",
    "catalog.as_of": "дата данных",
    "catalog.channels": "справочник каналов",
    "catalog.region_geojson": "границы муниципалитетов (карта одна для всех ролей)",
    "catalog.region_name": "название региона",
    "catalog.region": "название, часовой пояс и календарь региона",
    "catalog.population_known": "есть ли в справочнике население видимых муниципалитетов (выбор показателя карты)",
    "catalog.population_info": "есть ли в справочнике население и оценка ли оно (названия муниципалитетов без него)",
    "catalog.names": "справочник названий; по нему же строится область пользователя",
    "catalog.sector_ids": "коды направлений; по ним строится область пользователя",
    "catalog.regions": "справочник регионов: названия и приблизительное население",
    "catalog.region_count": "число регионов хранилища (пункт меню «Регионы»)",
    "catalog.regions_geojson": "границы субъектов РФ (карта регионов)",
    "catalog.region_municipalities": "состав региона: коды его муниципалитетов (справочник)",
    "catalog.region_settings": "название и часовой пояс одного региона",
    "catalog.find_region": "код региона по его названию (справочник регионов)",
    "catalog.organisation_regions": "название региона регионального органа (подпись в рейтинге; чисел не отдаёт)",
    "catalog.within_region": "строит область из состава региона; читающие функции сужают её областью запроса",
    "query.reference": "справочники (названия, коды, население)",
    "query.data_as_of": "дата данных",
    "kpi.current_target": "опубликованные целевые значения всего региона",
    "roadmap.has_roadmap": "есть ли в хранилище таблица дорожной карты",
}

# Pure computations (no warehouse), settings files and the scope / connection machinery.
NO_DATA: set[str] = {
    "priority.priority_score", "query.quantile_from_histogram", "query.quantiles_from_histograms",
    "query.facts_only", "query.reads_rollups",
    "rating.validate_weights", "rating.load_config", "rating.load_weights", "rating.indicator_score",
    "roadmap.min_placebos", "roadmap.did_rows", "roadmap.permutation_did",
    "signals.last_whole_week", "compare.direction", "appeals.appeals_csv", "appeals.format_times",
    "rating.validate_scales", "rating.sub_scores", "rating.composite_interval", "rating.rank_range",
    "rating.place_text", "rating.interval_text", "rating.change_text",
    "workload.parse_config", "workload.load_config", "workload.seasonal_naive", "workload.mean_last3",
    "workload.holt_winters", "workload.backtest", "workload.forecast_series", "workload.working_days_in_month",
    "workload.capacity_days",
    "workload.staff_needed", "workload.proposal_for",
    "country.component_spec", "country.format_component",
}
# Modules that never open the warehouse: every function in them is a pure computation or the machinery
# that carries the scope and the connection.
NO_DATA_MODULES = {"indicators", "periods", "words", "scope", "source"}


def public_functions() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(metrics.__path__):
        module = importlib.import_module(f"metrics.{info.name}")
        for name, obj in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                found.add(f"{info.name}.{name}")
    return found


def test_every_public_function_has_a_case() -> None:
    functions = public_functions()
    unlisted = sorted(f for f in functions if f.split(".")[0] not in NO_DATA_MODULES
                      and f not in CASES and f not in REFERENCE and f not in NO_DATA)
    assert unlisted == [], f"a public function of metrics without a scope case: {unlisted}"
    assert set(SEES_THE_REGION) <= set(CASES)
    # a case for a function that is gone fails (names of NO_DATA may belong to branches not merged yet)
    stale = sorted(f for f in set(CASES) | set(REFERENCE) if _present(f) and f not in functions)
    assert stale == [], stale
    # the modules declared free of data never open the warehouse
    for name in NO_DATA_MODULES - {"source", "scope"}:
        module = importlib.import_module(f"metrics.{name}")
        assert not hasattr(module, "reader") and not hasattr(module, "duckdb") and not hasattr(module, "query_on"), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_municipal_scope_sees_only_its_municipality(con, name: str) -> None:
    if not _present(name):
        pytest.skip(f"metrics.{name.split('.')[0]} is not in this tree yet")
    case = CASES[name]
    with signed_in(CASE_SCOPE.get(name, MCU)):
        result = case.call(con)
    case.mine(con, result)


def test_the_cases_have_teeth(con) -> None:
    """Without the request scope the same calls show other municipalities: the checks above can fail."""
    assert _ids(query.query(["volume"], ["municipality"], OCTOBER)) > {MINE}
    assert len(set(roadmap.roadmap_items(con=con)["municipality_id"].dropna())) == 3
    assert _ids(signals.detect_signals(con=con, **SIGNAL_ARGS)) > {MINE}
    assert status.warehouse_status().appeals == hand(con, period=None, municipality=None)
    assert not kpi.kpi_series("volume", months=2, municipality=OTHER, con=con)["value"].isna().any()
    assert len(roadmap.form_choices(con=con)["municipalities"]) == 27
    # a municipal scope without the МЦУ's rating right sees only its own row in the municipalities' rating
    with signed_in(Scope.municipalities({MINE})):
        assert _ids(rating.rate_municipalities(OCTOBER, con=con)) == {MINE}


# --- (b) no request in a web process ------------------------------------------------------------------------


@contextmanager
def web_process() -> Iterator[None]:
    """The provider the web layer installs when sign-in is on, with no request being served."""
    from auth.session import scope_provider

    install_provider(scope_provider)
    try:
        yield
    finally:
        install_provider(None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outside_a_request_a_web_process_sees_nothing(con, name: str) -> None:
    if not _present(name):
        pytest.skip(f"metrics.{name.split('.')[0]} is not in this tree yet")
    case = CASES[name]
    with web_process():
        if name in ("priority.municipality_problems", "roadmap.item_effect"):
            # outside a request even MINE is out of reach
            call = {"priority.municipality_problems": (lambda: priority.municipality_problems(OCTOBER, MINE, con=con),
                                                       query.QueryError),
                    "roadmap.item_effect": (lambda: roadmap.item_effect(_mine_item(con), con=con), KeyError)}[name]
            with pytest.raises(call[1]):
                call[0]()
            return
        result = case.call(con)
    case.nothing(result)


def test_system_scope_reads_the_region_outside_a_request_only(con, small_demo) -> None:
    from flask import Flask, g

    from auth.session import scope_provider
    from metrics.scope import request_scope

    region_total = hand(con, period=None, municipality=None)
    with web_process():
        assert request_scope() == NOBODY
        assert status.warehouse_status().appeals == 0
        with system_scope():
            # the declared way for the server's own work (the warm-up after a data switch)
            assert request_scope() == REGION
            assert status.warehouse_status().appeals == region_total
        assert status.warehouse_status().appeals == 0  # and only inside the block
        app = Flask(__name__)
        with app.test_request_context("/"):
            assert scope_provider() == NOBODY  # a request without a user sees nothing
            g.cur_scope = MCU
            with system_scope():  # never widens a user's request
                assert request_scope() == MCU
                assert status.warehouse_status().appeals == hand(con, period=None)
    # without a provider (command line, tests, the open demo) the region, as before
    assert status.warehouse_status().appeals == region_total


def test_system_scope_is_not_inherited_by_a_thread(con) -> None:
    import threading

    seen: list[int] = []
    with web_process(), system_scope():
        thread = threading.Thread(target=lambda: seen.append(status.warehouse_status().appeals))
        thread.start()
        thread.join()
    assert seen == [0]


def test_a_thread_of_the_signed_in_app_sees_nothing(con, small_demo, tmp_path) -> None:
    """The app with sign-in installs the provider; work on a thread of that process gets no data."""
    import subprocess
    import sys
    import threading
    from pathlib import Path

    import app as app_module
    from auth.web import AuthSettings

    users = tmp_path / "users.toml"
    subprocess.run([sys.executable, "-m", "auth", "--users", str(users), "add-user", "curator", "--role", "curator"],
                   input="верный-пароль-123\n", capture_output=True, text=True, check=True,
                   cwd=Path(__file__).resolve().parent.parent)
    region_total = hand(con, municipality=None)
    seen: dict[str, int] = {}

    def work() -> None:
        seen["thread"] = int(query.query(["volume"], [], OCTOBER)["volume"].iloc[0])
        with system_scope():
            seen["system"] = int(query.query(["volume"], [], OCTOBER)["volume"].iloc[0])

    try:
        dash_app = app_module.create_app(small_demo, AuthSettings(users_file=users, secret_key="k" * 40,
                                                                 throttle_path=tmp_path / "t.sqlite"))
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert dash_app.server.test_client().get("/status").status_code in (302, 401)  # and no user: no page
    finally:
        install_provider(None)
        source_module.configure(small_demo)  # the module's other tests read it
    assert seen == {"thread": 0, "system": region_total}
