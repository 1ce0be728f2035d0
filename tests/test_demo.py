"""The demo warehouse: reference data, planted stories and data invariants.

One build of 120 000 appeals per module (about two seconds) carries most tests; the
determinism tests make three more small builds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from data import demo, workcalendar
from data import demo_stories as st
from data.demo import build_demo
from data.demo_organisations import KINDS, demo_organisations
from data.schema import CLOSURE_REASONS, STATUSES

END_MONTH = "2026-10"
DATA_END = dt.date(2026, 11, 1)
APPEALS = 120_000  # small municipality × category cells need this many for the stories to beat the noise
SEED = 20251


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    stats = build_demo(path, appeals=APPEALS, months=24, seed=SEED, end_month=END_MONTH)
    return path, stats


@pytest.fixture(scope="module")
def con(demo_build: tuple[Path, dict]) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(demo_build[0]), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None):  # noqa: ANN201
    return rows(con, sql, params)[0][0]


def monthly(con: duckdb.DuckDBPyConnection, category: str) -> dict[int, int]:
    """Appeals of one category by calendar month, summed over both years."""
    return dict(
        rows(
            con,
            """SELECT month(received_at), count(*) FROM appeal a JOIN category c ON c.id = a.category_id
               WHERE c.name = $c GROUP BY ALL""",
            {"c": category},
        )
    )


def daily_rate(
    con: duckdb.DuckDBPyConnection,
    municipality: str,
    category: str,
    start: dt.date,
    end: dt.date,
    *,
    others: bool = False,
) -> float:
    """Appeals a day of one category in one municipality (or, with ``others``, in all the others)."""
    n = scalar(
        con,
        """SELECT count(*) FROM appeal a JOIN category c ON c.id = a.category_id
           JOIN municipality m ON m.id = a.municipality_id
           WHERE c.name = $c AND (m.name = $m) <> $others AND received_at >= $start AND received_at < $end""",
        {"c": category, "m": municipality, "start": start, "end": end, "others": others},
    )
    return n / (end - start).days


# --- shape of the build ----------------------------------------------------------------------


def test_build_reports_stats_and_writes_the_requested_number_of_appeals(con, demo_build) -> None:
    _, stats = demo_build
    assert stats["appeals"] == APPEALS == scalar(con, "SELECT count(*) FROM appeal")
    assert stats["organisations"] == scalar(con, "SELECT count(*) FROM organisation")
    assert stats["first_month"] == "2024-11" and stats["last_month"] == END_MONTH
    assert stats["seconds"] > 0


def test_file_replaced_atomically_and_nothing_left_behind(demo_build) -> None:
    path, _ = demo_build
    assert path.exists()
    assert not Path(str(path) + ".building").exists()
    assert not Path(str(path) + ".building.wal").exists()
    assert not Path(str(path) + ".wal").exists()


def test_rebuild_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"not a database")
    build_demo(path, appeals=2_000, months=3, seed=1, end_month=END_MONTH)
    build_demo(path, appeals=3_000, months=3, seed=2, end_month=END_MONTH)
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute("SELECT count(*) FROM appeal").fetchall()[0][0] == 3_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]


def test_27_municipalities_each_with_a_shape_and_appeals(con) -> None:
    assert scalar(con, "SELECT count(*) FROM municipality") == 27
    assert scalar(con, "SELECT count(*) FROM municipality_shape") == 27
    assert scalar(con, "SELECT count(DISTINCT municipality_id) FROM appeal") == 27
    assert (
        scalar(
            con,
            """SELECT count(*) FROM appeal a
               WHERE NOT EXISTS (SELECT 1 FROM municipality_shape s
                                 WHERE s.municipality_id = a.municipality_id)""",
        )
        == 0
    )


def test_every_sector_has_data_in_at_least_three_categories(con) -> None:
    per_sector = rows(
        con,
        """SELECT s.code, count(DISTINCT a.category_id) FILTER (WHERE a.category_id IS NOT NULL)
           FROM sector s LEFT JOIN appeal a ON a.sector_id = s.id GROUP BY s.code""",
    )
    assert len(per_sector) == 9
    for code, n_categories in per_sector:
        assert n_categories >= 3, code
    assert (
        scalar(
            con,
            "SELECT count(*) FROM appeal a JOIN category c ON c.id = a.category_id "
            "WHERE c.sector_id <> a.sector_id",
        )
        == 0
    )


def test_organisations_of_every_kind_and_all_get_appeals(con) -> None:
    n = scalar(con, "SELECT count(*) FROM organisation")
    assert 120 <= n <= 180
    kinds = {k for (k,) in rows(con, "SELECT DISTINCT kind FROM organisation")}
    assert set(KINDS) <= kinds
    assert (
        scalar(con, "SELECT count(*) FROM organisation WHERE kind = 'ОМСУ' AND name LIKE 'Администрация%'")
        == 27
    )
    assert scalar(con, "SELECT count(*) FROM organisation WHERE municipality_id IS NULL") >= 6
    idle = scalar(
        con,
        "SELECT count(*) FROM organisation o "
        "WHERE NOT EXISTS (SELECT 1 FROM appeal a WHERE a.organisation_id = o.id)",
    )
    assert idle == 0
    names = [o.name for o in demo_organisations()]
    assert len(names) == len(set(names))
    for planted in st.ORGANISATION_QUALITY:
        assert planted.organisation in names


def test_each_appeal_goes_to_an_organisation_serving_its_municipality(con) -> None:
    serves = {(o.name, m) for o in demo_organisations() for m in o.serves}
    pairs = rows(
        con,
        """SELECT DISTINCT o.name, m.name FROM appeal a JOIN organisation o ON o.id = a.organisation_id
           JOIN municipality m ON m.id = a.municipality_id""",
    )
    assert all(pair in serves for pair in pairs)


def test_chunked_build_keeps_ids_in_time_order_and_links_valid_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "CHUNK_ROWS", 1_000)  # chunks of ~6 days: a 7+ day link crosses a border
    path = tmp_path / "chunked.duckdb"
    build_demo(path, appeals=30_000, months=6, seed=3, end_month=END_MONTH)
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute("SELECT count(DISTINCT source_id), count(*) FROM appeal").fetchall()[0] == (
            30_000,
            30_000,
        )
        out_of_order = c.execute(
            """SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER (ORDER BY source_id) AS bad
                                     FROM appeal) WHERE bad"""
        ).fetchall()[0][0]
        assert out_of_order == 0
        far = {}
        for column in ("repeat_of", "duplicate_of"):
            n, bad, far[column] = c.execute(
                f"""SELECT count(*),
                           count(*) FILTER (WHERE e.source_id IS NULL OR e.received_at >= a.received_at
                                            OR e.municipality_id <> a.municipality_id
                                            OR e.category_id <> a.category_id),
                           count(*) FILTER (WHERE a.received_at - e.received_at > INTERVAL 7 DAY)
                    FROM appeal a LEFT JOIN appeal e ON e.source_id = a.{column}
                    WHERE a.{column} IS NOT NULL"""
            ).fetchall()[0]
            assert n > 0 and bad == 0, column
        assert far["repeat_of"] > 0 and far["duplicate_of"] == 0  # repeats looked back across chunk borders


# --- determinism -----------------------------------------------------------------------------


def _table_hash(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as c:
        return c.execute(
            "SELECT md5(string_agg(CAST(hash(a) AS VARCHAR), ',' ORDER BY source_id)) FROM appeal a"
        ).fetchall()[0][0]


def test_same_seed_gives_the_same_table_and_another_seed_does_not(tmp_path: Path) -> None:
    kwargs = {"appeals": 5_000, "months": 6, "end_month": END_MONTH}
    build_demo(tmp_path / "a.duckdb", seed=11, **kwargs)
    build_demo(tmp_path / "b.duckdb", seed=11, **kwargs)
    build_demo(tmp_path / "c.duckdb", seed=12, **kwargs)
    assert _table_hash(tmp_path / "a.duckdb") == _table_hash(tmp_path / "b.duckdb")
    assert _table_hash(tmp_path / "a.duckdb") != _table_hash(tmp_path / "c.duckdb")


# --- stories ---------------------------------------------------------------------------------


def test_seasonality_heating_potholes_waste_grass(con) -> None:
    heating = monthly(con, "Отопление")
    assert heating[12] + heating[1] > 4 * (heating[6] + heating[7])
    assert heating[10] > heating[12]  # the start of the heating season is the peak
    potholes = monthly(con, "Ямы и разрушение покрытия")
    assert potholes[4] > 3 * potholes[8]
    waste = monthly(con, "Несвоевременный вывоз мусора")
    assert waste[7] > 2 * waste[1]
    grass = monthly(con, "Покос травы и содержание газонов")
    assert grass[6] + grass[7] > 20 * (grass[12] + grass[1])
    snow = monthly(con, "Уборка снега и наледи во дворах")
    assert snow[1] > 20 * snow[7]


def test_weekdays_busier_than_weekends_and_letters_come_on_working_days(con) -> None:
    per_day = dict(
        rows(
            con,
            """SELECT isodow(d) <= 5, avg(n) FROM (
                   SELECT CAST(received_at AS DATE) d, count(*) n FROM appeal GROUP BY 1) GROUP BY 1""",
        )
    )
    assert per_day[True] > 1.4 * per_day[False]
    letters = dict(
        rows(con, "SELECT isodow(received_at) <= 5, count(*) FROM appeal WHERE channel = 'letter' GROUP BY 1")
    )
    assert letters[True] > 15 * letters.get(False, 0)
    reception_days = (
        con.execute("SELECT DISTINCT CAST(received_at AS DATE) FROM appeal WHERE channel = 'reception'")
        .df()
        .iloc[:, 0]
        .to_numpy("datetime64[D]")
    )
    assert workcalendar.is_working_day(reception_days).all()  # transferred working Saturdays included


def test_channel_mix_pos_largest_then_social_media(con) -> None:
    shares = dict(rows(con, "SELECT channel, count(*) / sum(count(*)) OVER () FROM appeal GROUP BY 1"))
    assert set(shares) == set(st.CHANNELS)
    assert shares["pos"] == max(shares.values())
    assert shares["im"] == sorted(shares.values())[-2]
    kinds = rows(
        con, "SELECT DISTINCT a.channel, a.kind, c.kind FROM appeal a JOIN channel c ON c.code = a.channel"
    )
    assert all(k == ck for _, k, ck in kinds)


@pytest.mark.parametrize("spike", st.SPIKES, ids=[s.municipality for s in st.SPIKES])
def test_planted_spike_visible_in_the_last_three_weeks(con, spike: st.Spike) -> None:
    recent = (DATA_END - dt.timedelta(days=21), DATA_END)
    start = st.spike_start(spike, DATA_END)
    before = (start - dt.timedelta(days=182), start)
    growth_here = daily_rate(con, spike.municipality, spike.category, *recent) / daily_rate(
        con, spike.municipality, spike.category, *before
    )
    # the same category elsewhere over the same weeks: cancels its seasonality
    growth_elsewhere = daily_rate(con, spike.municipality, spike.category, *recent, others=True) / daily_rate(
        con, spike.municipality, spike.category, *before, others=True
    )
    assert growth_here > 2.5 * growth_elsewhere


def test_measure_effect_halves_potholes_in_one_okrug_only(con) -> None:
    effect = st.MEASURE_EFFECT
    start = st.measure_start(DATA_END)
    counts = {
        (bool(after), bool(target)): n
        for after, target, n in rows(
            con,
            """SELECT received_at >= $start, m.name = $m, count(*) FROM appeal a
               JOIN category c ON c.id = a.category_id JOIN municipality m ON m.id = a.municipality_id
               WHERE c.name = $c GROUP BY ALL""",
            {"start": start, "m": effect.municipality, "c": effect.category},
        )
    }
    # after/before of the okrug relative to after/before of everyone else (cancels seasonality)
    ratio = (counts[True, True] / counts[False, True]) / (counts[True, False] / counts[False, False])
    expected = effect.factor_after / effect.factor_before
    assert 0.6 * expected < ratio < 1.5 * expected


@pytest.mark.parametrize("chronic", st.CHRONIC, ids=[c.municipality for c in st.CHRONIC])
def test_chronic_problem_stands_out_all_period(con, chronic: st.Chronic) -> None:
    share_here, share_elsewhere = rows(
        con,
        """SELECT avg((c.name = $c)::INT) FILTER (WHERE m.name = $m),
               avg((c.name = $c)::INT) FILTER (WHERE m.name <> $m)
           FROM appeal a JOIN category c ON c.id = a.category_id
           JOIN municipality m ON m.id = a.municipality_id""",
        {"c": chronic.category, "m": chronic.municipality},
    )[0]
    assert share_here > 1.8 * share_elsewhere


def test_organisations_differ_clearly_in_speed_and_quality(con) -> None:
    per_org = rows(
        con,
        """SELECT o.name, avg((answered_at <= due_at)::INT), median(answered_at - received_at),
                  avg((satisfaction >= 4)::INT) FILTER (WHERE satisfaction IS NOT NULL),
                  avg((repeat_of IS NOT NULL)::INT)
           FROM appeal a JOIN organisation o ON o.id = a.organisation_id
           WHERE answered_at IS NOT NULL GROUP BY o.name HAVING count(*) >= 200""",
    )
    on_time = [r[1] for r in per_org]
    assert max(on_time) - min(on_time) >= 0.30
    stats = {r[0]: r for r in per_org}
    bad = [
        stats[p.organisation] for p in st.ORGANISATION_QUALITY if p.quality < 0 and p.organisation in stats
    ]
    good = [
        stats[p.organisation] for p in st.ORGANISATION_QUALITY if p.quality > 0 and p.organisation in stats
    ]
    assert bad and good
    assert max(b[1] for b in bad) < min(g[1] for g in good)  # on time
    assert min(b[2] for b in bad) > max(g[2] for g in good)  # median answer time
    assert max(b[3] for b in bad) + 0.3 < min(g[3] for g in good)  # satisfaction
    assert min(b[4] for b in bad) > max(g[4] for g in good)  # repeats


# --- invariants ------------------------------------------------------------------------------


def test_timestamps_ordered_and_never_in_the_future(con) -> None:
    assert (
        scalar(
            con,
            """SELECT count(*) FROM appeal WHERE first_response_at < received_at
               OR answered_at < first_response_at
           OR (answered_at IS NOT NULL AND first_response_at IS NULL)
           OR due_at IS NULL OR due_at < received_at""",
        )
        == 0
    )
    as_of = dt.datetime.fromisoformat(scalar(con, "SELECT value FROM meta WHERE key = 'data_as_of'"))
    assert as_of == scalar(con, "SELECT max(received_at) FROM appeal")
    assert as_of < dt.datetime.combine(DATA_END, dt.time())
    assert (
        scalar(
            con,
            "SELECT greatest(max(received_at), max(first_response_at), max(answered_at)) FROM appeal",
        )
        <= as_of
    )
    first, last = rows(con, "SELECT min(received_at), max(received_at) FROM appeal")[0]
    assert first >= dt.datetime(2024, 11, 1) and last.date() >= dt.date(2026, 10, 31)


def test_deadlines_follow_the_channel_rules(con) -> None:
    for code, kind, value, fr_kind, fr_value in rows(
        con,
        "SELECT code, deadline_kind, deadline_value, first_response_kind, first_response_value FROM channel",
    ):
        df = con.execute(
            "SELECT received_at, due_at, first_response_due_at FROM appeal WHERE channel = $c", {"c": code}
        ).df()
        received = df["received_at"].to_numpy("datetime64[s]")
        assert (workcalendar.deadline(received, kind, value) == df["due_at"].to_numpy("datetime64[s]")).all()
        if fr_kind is None:
            assert df["first_response_due_at"].isna().all()
        else:
            expected = workcalendar.deadline(received, fr_kind, fr_value)
            assert (expected == df["first_response_due_at"].to_numpy("datetime64[s]")).all()


def test_values_within_the_declared_lists(con) -> None:
    assert {s for (s,) in rows(con, "SELECT DISTINCT status FROM appeal")} <= set(STATUSES)
    assert {
        c for (c,) in rows(con, "SELECT DISTINCT closure_reason FROM appeal WHERE closure_reason IS NOT NULL")
    } == set(CLOSURE_REASONS)
    assert {c for (c,) in rows(con, "SELECT DISTINCT channel FROM appeal")} <= {
        c for (c,) in rows(con, "SELECT code FROM channel")
    }
    assert scalar(con, "SELECT count(*) FROM appeal WHERE satisfaction NOT BETWEEN 1 AND 5") == 0
    assert scalar(con, "SELECT count(*) FROM appeal WHERE source <> 'demo' OR topic IS NULL") == 0
    assert scalar(con, "SELECT count(*) FROM appeal WHERE redirect_count < 0 OR redirect_count IS NULL") == 0


def test_status_agrees_with_answer_and_closure(con) -> None:
    assert (
        scalar(
            con,
            """SELECT count(*) FROM appeal WHERE
             (status IN ('new', 'in_work')) <> (answered_at IS NULL)
             OR (answered_at IS NULL) <> (closure_reason IS NULL)
             OR (status = 'resolved') <> (coalesce(closure_reason, '') = 'resolved')
             OR (status = 'new' AND first_response_at IS NOT NULL)
             OR (status = 'in_work' AND first_response_at IS NULL)
             OR (answered_at IS NULL AND (satisfaction IS NOT NULL OR answer_on_merits IS NOT NULL
                                          OR returned_for_rework IS NOT NULL))
             OR (answered_at IS NOT NULL AND (answer_on_merits IS NULL OR returned_for_rework IS NULL))""",
        )
        == 0
    )


def test_recent_appeals_open_and_a_few_old_ones_overdue(con) -> None:
    as_of = scalar(con, "SELECT max(received_at) FROM appeal")
    last_days, old = rows(
        con,
        """SELECT avg((status IN ('new', 'in_work'))::INT)
            FILTER (WHERE received_at >= $as_of - INTERVAL 2 DAY),
                  avg((status IN ('new', 'in_work') AND due_at < $as_of)::INT)
                      FILTER (WHERE received_at < $as_of - INTERVAL 60 DAY)
           FROM appeal""",
        {"as_of": as_of},
    )[0]
    assert last_days > 0.5
    assert 0 < old < 0.02


def test_satisfaction_rated_for_a_third_of_answers_mostly_pos(con) -> None:
    rated_share = scalar(
        con, "SELECT avg((satisfaction IS NOT NULL)::INT) FROM appeal WHERE answered_at IS NOT NULL"
    )
    assert 0.3 <= rated_share <= 0.4
    by_channel = dict(
        rows(con, "SELECT channel, count(*) FROM appeal WHERE satisfaction IS NOT NULL GROUP BY 1")
    )
    assert by_channel["pos"] > sum(by_channel.values()) / 2
    assert (
        0.45
        < scalar(con, "SELECT avg((satisfaction >= 4)::INT) FROM appeal WHERE satisfaction IS NOT NULL")
        < 0.75
    )


def test_source_ids_unique_and_links_point_to_earlier_appeals_of_the_same_problem(con) -> None:
    assert scalar(con, "SELECT count(*) - count(DISTINCT (source, source_id)) FROM appeal") == 0
    assert scalar(con, "SELECT min(source_id) FROM appeal") == "D00000001"
    for column, max_days in (("repeat_of", None), ("duplicate_of", 2)):
        n, bad = rows(
            con,
            f"""SELECT count(*), count(*) FILTER (WHERE e.source_id IS NULL OR e.received_at >= a.received_at
                                                  OR e.municipality_id <> a.municipality_id
                                                  OR e.category_id <> a.category_id)
                FROM appeal a LEFT JOIN appeal e ON e.source = a.source AND e.source_id = a.{column}
                WHERE a.{column} IS NOT NULL""",
        )[0]
        assert n > 0 and bad == 0, column
        if max_days is not None:
            assert scalar(
                con,
                f"""SELECT max(a.received_at - e.received_at) FROM appeal a
                    JOIN appeal e ON e.source_id = a.{column} WHERE a.{column} IS NOT NULL""",
            ) <= dt.timedelta(days=max_days)
    repeat_share = scalar(con, "SELECT avg((repeat_of IS NOT NULL)::INT) FROM appeal")
    assert 0.03 < repeat_share < 0.1
    assert (
        scalar(
            con,
            "SELECT count(*) FROM appeal a JOIN appeal e ON e.source_id = a.duplicate_of "
            "WHERE e.duplicate_of IS NOT NULL",
        )
        == 0
    )


def test_points_for_about_half_near_their_municipality(con) -> None:
    share, far = rows(
        con,
        """SELECT avg((a.lat IS NOT NULL)::INT),
                  count(*) FILTER (WHERE abs(a.lat - m.lat) > 1 OR abs(a.lon - m.lon) > 1.5)
           FROM appeal a JOIN municipality m ON m.id = a.municipality_id""",
    )[0]
    assert 0.4 < share < 0.6
    assert far == 0


def test_other_children_carry_their_own_name_as_topic(con) -> None:
    mismatched = scalar(
        con,
        """SELECT count(*) FROM appeal a JOIN category c ON c.id = a.category_id
           WHERE c.parent_id IS NOT NULL AND a.topic <> c.name""",
    )
    assert mismatched == 0
    assert scalar(con, "SELECT count(DISTINCT topic) FROM appeal") > 100


# --- bookkeeping -----------------------------------------------------------------------------


def test_import_log_meta_and_targets(con, demo_build) -> None:
    _, stats = demo_build
    log = rows(con, "SELECT import_id, source, read, accepted, inserted, finished_at FROM import_log")
    assert len(log) == 1
    import_id, source, read, accepted, inserted, finished = log[0]
    assert source == "demo" and read == accepted == inserted == APPEALS and finished is not None
    assert scalar(con, "SELECT count(*) FROM appeal WHERE import_id <> $i", {"i": import_id}) == 0
    meta = dict(rows(con, "SELECT key, value FROM meta"))
    assert meta["demo_seed"] == str(SEED)
    assert meta["region_name"] == "Смоленская область"
    assert meta["data_as_of"] == stats["data_as_of"]
    months = rows(con, "SELECT DISTINCT period_start FROM target ORDER BY 1")
    assert len(months) == 24 and months[0][0] == dt.date(2024, 11, 1)
    region = dict(
        rows(
            con,
            "SELECT indicator, value FROM target "
            "WHERE sector_id IS NULL AND period_start = DATE '2026-10-01'",
        )
    )
    assert (
        region["on_time_share"] == 0.9
        and region["satisfaction_share"] == 0.6
        and region["repeat_share"] == 0.1
    )
    assert {"response_hours_median", "resolve_days_median", "overdue_open", "resolved_share"} <= set(region)
    assert scalar(con, "SELECT count(DISTINCT sector_id) FROM target WHERE sector_id IS NOT NULL") >= 3


def test_period_validation() -> None:
    with pytest.raises(ValueError, match="ГГГГ-ММ"):
        build_demo(Path("/nonexistent/x.duckdb"), appeals=10, end_month="2026/10")
    with pytest.raises(ValueError, match="не наступил"):
        build_demo(Path("/nonexistent/x.duckdb"), appeals=10, end_month="2999-01")


def test_volume_follows_population_with_dampening(con) -> None:
    per_municipality = rows(
        con,
        """SELECT m.population, count(*) FROM appeal a JOIN municipality m ON m.id = a.municipality_id
           GROUP BY m.population ORDER BY m.population""",
    )
    pop = np.array([p for p, _ in per_municipality], dtype=float)
    n = np.array([c for _, c in per_municipality], dtype=float)
    assert np.corrcoef(np.log(pop), np.log(n))[0, 1] > 0.9
    assert n.min() > APPEALS * 0.004  # the smallest okrug still has data
    per_capita = n / pop
    assert 1.0 < per_capita[0] / per_capita[-1] < 3.0  # dampened, not flat
