"""Build the demo warehouse: Смоленская область with organisations, appeals and targets.

``build_demo`` writes a new file next to the target (``<db>.building``) and moves it onto
the target only when it is complete, so a dashboard reading the old file never sees a
half-built one. The stories the data tells are declared in ``data/demo_stories.py`` and
the organisations in ``data/demo_organisations.py``; this module is the engine.

How appeals are made (all vectorised, in chunks of whole days, in time order):
1. an intensity for every day × municipality × category (population, base mix,
   seasonality, weekly rhythm, planted chronic problems, spikes and the measure effect),
   and one multinomial draw of all appeal counts from it;
2. per chunk: channel (per sector, fewer letters on days off), time of day, organisation
   (among those serving the municipality and category), topic, point; duplicates and
   repeats are linked to earlier appeals of the same municipality × category;
3. outcomes from the organisation's quality: closure reason, answer and first-reaction
   times, redirects, stuck appeals, satisfaction, rework, answers on the merits; deadlines
   from the channel's rules; appeals whose answer lies after the end of the data stay open.

Same seed + same parameters → the same ``appeal`` table row for row (each chunk draws from
its own ``SeedSequence`` child).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import numpy as np
import pyarrow as pa

from data import demo_stories as st
from data import workcalendar
from data.demo_organisations import KIND_EXECUTIVE, KIND_LOCAL_GOV, DemoOrganisation, demo_organisations
from data.months import add_months, month_start
from data.rollup import refresh_rollups
from data.schema import CLOSURE_REASONS, KINDS, STATUSES
from data.warehouse import (
    DEFAULT_CALENDAR,
    DEFAULT_TIMEZONE,
    DEMO_MUNICIPALITIES,
    DEMO_REGION,
    ensure_initialised,
    set_meta,
    set_region,
)

DEMO_SOURCE = "demo"
ID_WIDTH = 8  # source_id 'D00000001': INSERT_SQL pads to this width
MAX_APPEALS = 10**ID_WIDTH - 1
CHUNK_ROWS = 400_000  # ~0.2 GB of numpy arrays per chunk: keeps 10 M appeals well under 4 GiB
HISTORY_DAYS = 50  # repeats look back up to 45 days, across chunk borders
DUCKDB_MEMORY_LIMIT = "1GB"
_KEY_SHIFT = 32  # key = group << 32 | seconds since the start: sorts by group, then time
_DAY_S = 86_400
_HOUR_S = 3_600

# closure reason → status (order of schema.CLOSURE_REASONS / STATUSES)
_CLOSURE_STATUS = np.array(
    [STATUSES.index(s) for s in ("resolved", "answered", "rejected", "answered", "redirected", "answered")]
)
_RESOLVED, _EXPLAINED, _REFUSED, _NOT_COMPETENT, _REDIRECTED, _DUPLICATE = range(6)
# answer time multiplier: a real fix takes longer than a formal reply
_CLOSURE_SPEED = np.array([1.15, 0.95, 0.8, 0.5, 0.35, 0.3])
# log-odds added to "rated 4 or 5"
_CLOSURE_SATISFACTION = np.array([1.4, -0.5, -2.0, -1.3, -0.9, 0.0])
_CLOSURE_REWORK = np.array([0.5, 1.6, 1.2, 0.8, 0.5, 0.2])
_OFFICE_CHANNELS = ("letter", "e_reception", "hotline", "reception")  # answered on working days only

INSERT_SQL = """
INSERT INTO appeal
SELECT 'demo', 'D' || lpad(CAST(seq AS VARCHAR), 8, '0'), kind, channel, received_at, municipality_id,
       sector_id, category_id, organisation_id, status, first_response_at, answered_at, due_at,
       first_response_due_at, closure_reason, answer_on_merits, returned_for_rework, redirect_count,
       satisfaction,
       CASE WHEN repeat_seq IS NOT NULL THEN 'D' || lpad(CAST(repeat_seq AS VARCHAR), 8, '0') END,
       CASE WHEN duplicate_seq IS NOT NULL THEN 'D' || lpad(CAST(duplicate_seq AS VARCHAR), 8, '0') END,
       topic, lat, lon, ?
FROM demo_chunk
"""


# --- public entry point -----------------------------------------------------------------------


def build_demo(
    db_path: Path,
    appeals: int = 300_000,
    months: int = 24,
    seed: int = 20251,
    end_month: str | None = None,
    regions: int = 1,
) -> dict:
    """Write a fresh demo warehouse to ``db_path`` (replacing it atomically); return build stats.

    ``regions`` > 1 adds further federal subjects (``data.regions.federal_subjects``: real names,
    approximate populations) beside Смоленская область, each with its own units and appeals from the
    same generator; ``appeals`` is then the total over all regions.

    ``end_month`` ('YYYY-MM') is the last month of data; None means the last full calendar
    month before today. The data covers ``months`` whole months ending with it (the
    current month only up to now).
    """
    started = time.perf_counter()
    if not 1 <= appeals <= MAX_APPEALS:
        raise ValueError(f"число обращений должно быть от 1 до {MAX_APPEALS}")
    if months < 1:
        raise ValueError("число месяцев должно быть не меньше 1")
    from data.demo_regions import check_region_count

    check_region_count(regions)
    now = _now_local(DEFAULT_TIMEZONE)
    first_month, period_start, period_end = _period(months, end_month, now)

    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    building = db_path.with_name(db_path.name + ".building")
    _remove_db_files(building)
    try:
        con = duckdb.connect(str(building))
        try:
            con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
            stats = _build(con, appeals, seed, first_month, period_start, period_end, now, regions)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        # a stale WAL of the old file would be replayed onto the new one
        Path(str(db_path) + ".wal").unlink(missing_ok=True)
        os.replace(building, db_path)
    except BaseException:
        _remove_db_files(building)
        raise
    stats["seconds"] = round(time.perf_counter() - started, 2)
    return stats


def _build(
    con: duckdb.DuckDBPyConnection,
    appeals: int,
    seed: int,
    first_month: dt.date,
    period_start: dt.datetime,
    period_end: dt.datetime,
    now: dt.datetime,
    regions: int = 1,
) -> dict:
    from data.demo_regions import add_demo_regions, home_share

    ensure_initialised(con, municipalities_csv=DEMO_MUNICIPALITIES)
    set_region(con, DEMO_REGION, DEFAULT_TIMEZONE, DEFAULT_CALENDAR)
    ref = _Reference.load(con)
    org_count = _insert_organisations(con, ref)
    import_id = int(con.execute("SELECT coalesce(max(import_id), 0) + 1 FROM import_log").fetchall()[0][0])
    con.execute(
        "INSERT INTO import_log (import_id, file, source, started_at) VALUES (?, ?, ?, ?)",
        [import_id, f"demo: seed={seed}", DEMO_SOURCE, now],
    )
    model = _Model.build(ref, seed, period_start, period_end)
    home = appeals if regions == 1 else max(1, round(appeals * home_share(regions)))
    inserted = _generate_appeals(con, model, seed, home, import_id)
    if regions > 1:  # the other regions' units and appeals, before the data date is fixed
        inserted += add_demo_regions(con, regions, appeals - home, seed, period_start, period_end, import_id)
    as_of = _close_data_at_last_receipt(con)
    last_month = month_start((period_end - dt.timedelta(seconds=1)).date())
    _insert_targets(con, ref, first_month, last_month)

    finished = _now_local(DEFAULT_TIMEZONE)
    con.execute(
        """UPDATE import_log SET finished_at = ?, read = ?, accepted = ?, inserted = ?, updated = 0,
           unchanged = 0, rejected = 0, new_categories = 0, new_organisations = ? WHERE import_id = ?""",
        [finished, inserted, inserted, inserted, org_count, import_id],
    )
    stories = st.resolve_stories(period_end.date())
    if regions > 1:  # the warehouse is the country's, its first region one of several
        set_meta(con, "region_name", f"Российская Федерация · демо, регионов: {regions}")
    set_meta(con, "demo_seed", str(seed))
    set_meta(con, "data_as_of", as_of.isoformat(sep=" "))
    set_meta(con, "demo_period", f"{first_month:%Y-%m}..{last_month:%Y-%m}")
    set_meta(con, "demo_stories", json.dumps(stories, ensure_ascii=False))
    refresh_rollups(con)
    roadmap_ids = _insert_roadmap(con, period_end.date(), as_of)

    # The real OSM boundaries shipped with the project; schematic cells only as a fallback.
    from geo.shipped import load_demo_boundaries

    shapes = load_demo_boundaries(con)
    return {
        "appeals": inserted,
        "organisations": org_count,
        "first_month": f"{first_month:%Y-%m}",
        "last_month": f"{last_month:%Y-%m}",
        "data_as_of": as_of.isoformat(sep=" "),
        "seed": seed,
        "import_id": import_id,
        "shapes": shapes,
        "roadmap_items": len(roadmap_ids),
    }


def _insert_roadmap(con: duckdb.DuckDBPyConnection, data_end: dt.date, as_of: dt.datetime) -> list[int]:
    """The demo's roadmap measures (``demo_stories.ROADMAP``), through the same validation as a file."""
    from data.roadmap import Lookups, insert_items, validate

    lookups = Lookups(con)
    items = []
    for story in st.ROADMAP:
        start = st.roadmap_start(story, data_end)
        item, reasons = validate({
            "title": story.title, "municipality": story.municipality, "sector": story.sector,
            "categories": "; ".join(story.categories), "organisation": story.organisation,
            "start_date": start.isoformat(),
            "planned_end_date": (start + dt.timedelta(weeks=story.planned_weeks)).isoformat(),
            "status": story.status,
        }, lookups)
        if item is None:  # a declaration that does not match the reference lists is a bug of the demo
            raise ValueError(f"демо: мера «{story.title}» не прошла проверку: {'; '.join(reasons)}")
        items.append(item)
    return insert_items(con, items, DEMO_SOURCE, created_at=as_of)


# --- period and files -------------------------------------------------------------------------


def _now_local(tz: str) -> dt.datetime:
    try:
        return dt.datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)
    except ZoneInfoNotFoundError:  # no tz database on the machine: Moscow has been UTC+3 since 2014
        return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).replace(tzinfo=None, microsecond=0)


def _period(months: int, end_month: str | None, now: dt.datetime) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """(first month, start, end) of the data; end is exclusive and never after ``now``."""
    current = month_start(now.date())
    if end_month is None:
        last = add_months(current, -1)
    else:
        try:
            last = dt.datetime.strptime(end_month, "%Y-%m").date()
        except ValueError:
            raise ValueError(f"месяц окончания должен быть в виде ГГГГ-ММ: {end_month!r}") from None
        if last > current:
            raise ValueError(f"месяц окончания {end_month} ещё не наступил")
    first = add_months(last, -(months - 1))
    start = dt.datetime.combine(first, dt.time())
    end = min(dt.datetime.combine(add_months(last, 1), dt.time()), now)
    if end <= start:
        raise ValueError("период демо-данных пуст")
    return first, start, end


def _remove_db_files(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)


# --- reference data ---------------------------------------------------------------------------


@dataclass
class _Reference:
    muni_ids: np.ndarray
    muni_names: list[str]
    muni_kinds: list[str]
    population: np.ndarray
    area_km2: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    sector_codes: list[str]  # by sector index; sector id = index + 1 is not assumed
    sector_ids: np.ndarray
    cat_ids: np.ndarray
    cat_names: list[str]
    cat_sector: np.ndarray  # sector index of each category
    cat_parent: list[int | None]
    cat_is_other: list[bool]
    channels: dict[str, tuple[str, str | None, int | None, str | None, int | None]]
    organisations: list[DemoOrganisation]
    org_ids: np.ndarray

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> _Reference:
        munis = con.execute(
            "SELECT id, name, coalesce(kind, ''), coalesce(population, 0), coalesce(area_km2, 1000), lat, lon"
            " "
            "FROM municipality ORDER BY id"
        ).fetchall()
        sectors = con.execute("SELECT id, code FROM sector ORDER BY id").fetchall()
        sector_index = {sid: i for i, (sid, _) in enumerate(sectors)}
        cats = con.execute(
            "SELECT id, sector_id, name, parent_id, is_other FROM category ORDER BY id"
        ).fetchall()
        channels = {
            code: (kind, dk, dv, fk, fv)
            for code, kind, dk, dv, fk, fv in con.execute(
                "SELECT code, kind, deadline_kind, deadline_value, first_response_kind, first_response_value "
                "FROM channel"
            ).fetchall()
        }
        missing = [c for c in st.CHANNELS if c not in channels]
        if missing:
            raise ValueError(f"в справочнике каналов нет: {', '.join(missing)}")
        return cls(
            muni_ids=np.array([r[0] for r in munis], dtype=np.int32),
            muni_names=[r[1] for r in munis],
            muni_kinds=[r[2] for r in munis],
            population=np.array([max(r[3], 1000) for r in munis], dtype=np.float64),
            area_km2=np.array([r[4] for r in munis], dtype=np.float64),
            lat=np.array([r[5] for r in munis], dtype=np.float64),
            lon=np.array([r[6] for r in munis], dtype=np.float64),
            sector_codes=[code for _, code in sectors],
            sector_ids=np.array([sid for sid, _ in sectors], dtype=np.int16),
            cat_ids=np.array([r[0] for r in cats], dtype=np.int32),
            cat_names=[r[2] for r in cats],
            cat_sector=np.array([sector_index[r[1]] for r in cats], dtype=np.int64),
            cat_parent=[r[3] for r in cats],
            cat_is_other=[bool(r[4]) for r in cats],
            channels=channels,
            organisations=[],
            org_ids=np.zeros(0, dtype=np.int32),
        )


def _insert_organisations(con: duckdb.DuckDBPyConnection, ref: _Reference) -> int:
    orgs = demo_organisations()
    muni_id = {name: int(i) for name, i in zip(ref.muni_names, ref.muni_ids, strict=True)}
    unknown = sorted({m for o in orgs for m in o.serves if m not in muni_id})
    if unknown:
        raise ValueError(f"организации ссылаются на неизвестные муниципалитеты: {', '.join(unknown)}")
    start = int(con.execute("SELECT coalesce(max(id), 0) FROM organisation").fetchall()[0][0]) + 1
    rows = []
    for i, org in enumerate(orgs):
        sectors = {ref.sector_codes[s] for s in _org_sectors(org.handles, ref)}
        sector = ref.sector_ids[ref.sector_codes.index(sectors.pop())] if len(sectors) == 1 else None
        home = muni_id[org.municipality] if org.municipality else None
        rows.append((start + i, org.name, org.kind, home, None if sector is None else int(sector)))
    con.executemany(
        "INSERT INTO organisation (id, name, kind, municipality_id, sector_id) VALUES (?, ?, ?, ?, ?)", rows
    )
    ref.organisations = orgs
    ref.org_ids = np.array([r[0] for r in rows], dtype=np.int32)
    return len(rows)


def _org_sectors(handles: dict[str, float], ref: _Reference) -> set[int]:
    """Sector indices an organisation works in: its sector keys and the sectors of its
    (unambiguous) category keys with a positive weight."""
    out: set[int] = set()
    for key, weight in handles.items():
        if weight <= 0:
            continue
        if key in ref.sector_codes:
            out.add(ref.sector_codes.index(key))
            continue
        sectors = {int(ref.cat_sector[i]) for i, n in enumerate(ref.cat_names) if n == key}
        if len(sectors) == 1:
            out |= sectors
    return out


def _org_category_weights(handles: dict[str, float], ref: _Reference) -> np.ndarray:
    """Weight of every category for one organisation (0 = does not handle it)."""
    touched = _org_sectors(handles, ref)
    touched |= {ref.sector_codes.index(k) for k in handles if k in ref.sector_codes}
    out = np.zeros(len(ref.cat_ids))
    for c, name in enumerate(ref.cat_names):
        sector = int(ref.cat_sector[c])
        if sector not in touched:
            continue
        if name in handles:
            out[c] = handles[name]
        else:
            out[c] = handles.get(ref.sector_codes[sector], 0.0)
    return out


# --- the generative model ---------------------------------------------------------------------


def _cum_table(weights: np.ndarray) -> np.ndarray:
    """Rows of weights → rows of cumulative probabilities; padding (weight 0 after the last
    positive one) gets 2.0 so that a uniform draw never lands there."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    cum = np.cumsum(w, axis=1) / np.where(total > 0, total, 1.0)
    last = np.where(w > 0, np.arange(w.shape[1]), -1).max(axis=1)
    cols = np.arange(w.shape[1])[None, :]
    cum[cols == last[:, None]] = 1.0
    cum[cols > last[:, None]] = 2.0
    return cum


def _pick(u: np.ndarray, groups: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Index drawn from each row's distribution ``cum[groups]`` with uniforms ``u``."""
    return (u[:, None] >= cum[groups]).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Model:
    ref: _Reference
    start_s: int  # epoch seconds of the first day 00:00 (naive local time)
    end_s: int  # exclusive end of the data
    days: np.ndarray  # datetime64[D]
    day_off: np.ndarray  # bool per day
    intensity: np.ndarray  # day × municipality × category
    # channels, in st.CHANNELS order
    channel_cum: np.ndarray  # (sector * 2 + day_off) × channel
    hour_cum: np.ndarray  # channel × 24
    ch_answer_days: np.ndarray
    ch_first_hours: np.ndarray
    ch_has_first_rule: np.ndarray
    ch_rated: np.ndarray
    ch_geo: np.ndarray
    ch_office: np.ndarray
    ch_kind: np.ndarray  # index into schema.KINDS
    # categories
    cat_speed: np.ndarray
    cat_resolvability: np.ndarray
    cat_duplicate: np.ndarray
    topic_table: np.ndarray  # category × max topics → index into topic_dictionary
    topic_count: np.ndarray
    topic_dictionary: pa.Array
    # organisations
    route_cum: np.ndarray  # (municipality * C + category) × K
    route_org: np.ndarray  # same shape: organisation index
    org_quality: np.ndarray
    org_speed: np.ndarray
    org_regional: np.ndarray
    org_local_gov: np.ndarray
    # points
    sd_lat: np.ndarray
    sd_lon: np.ndarray

    @classmethod
    def build(cls, ref: _Reference, seed: int, start: dt.datetime, end: dt.datetime) -> _Model:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        start_s = int(np.datetime64(start, "s").astype(np.int64))
        end_s = int(np.datetime64(end, "s").astype(np.int64))
        first_day = np.datetime64(start.date(), "D")
        n_days = -(-(end_s - start_s) // _DAY_S)
        days = first_day + np.arange(n_days)
        m_count, c_count = len(ref.muni_ids), len(ref.cat_ids)
        name_to_cat = {}
        for c, name in enumerate(ref.cat_names):
            name_to_cat.setdefault(name, c)
        muni_index = {n: i for i, n in enumerate(ref.muni_names)}

        # weekly rhythm and public holidays
        weekday = (days.astype(np.int64) + 3) % 7
        working = workcalendar.is_working_day(days)
        dow = np.array(st.WEEKDAY_FACTORS)[weekday]
        dow = np.where(working & (weekday >= 5), st.WEEKDAY_FACTORS[4], dow)  # a transferred working Saturday
        dow = np.where(~working & (weekday < 5), st.HOLIDAY_FACTOR, dow)

        # seasonality: day × category
        month = days.astype("datetime64[M]").astype(np.int64) % 12
        day_of_month = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
        profile = np.ones((c_count, 12))
        for s in st.SEASONALITY:
            if s.category in name_to_cat:
                profile[name_to_cat[s.category]] = s.months
        season = profile[:, month].T.copy()
        md = (month + 1) * 100 + day_of_month
        for b in st.SEASON_BUMPS:
            if b.category in name_to_cat:
                lo, hi = b.start[0] * 100 + b.start[1], b.end[0] * 100 + b.end[1]
                inside = (md >= lo) & (md <= hi) if lo <= hi else (md >= lo) | (md <= hi)
                season[inside, name_to_cat[b.category]] *= b.factor

        # municipality × category: population (dampened), base mix, locality, chronic problems
        muni_w = ref.population**st.POPULATION_DAMPING * rng.lognormal(0.0, 0.12, m_count)
        cat_w = np.array(
            [
                st.CATEGORY_WEIGHTS.get(ref.sector_codes[ref.cat_sector[c]], {}).get(name, 0.1)
                for c, name in enumerate(ref.cat_names)
            ]
        )
        mc = muni_w[:, None] * cat_w[None, :]
        for m, kind in enumerate(ref.muni_kinds):
            for name, factor in st.LOCALITY_FACTORS.get(kind, {}).items():
                if name in name_to_cat:
                    mc[m, name_to_cat[name]] *= factor
        for ch in st.CHRONIC:
            mc[muni_index[ch.municipality], name_to_cat[ch.category]] *= ch.factor

        intensity = dow[:, None, None] * season[:, None, :] * mc[None, :, :]
        end_day = end.date()
        for sp in st.SPIKES:
            first = np.datetime64(st.spike_start(sp, end_day), "D")
            intensity[days >= first, muni_index[sp.municipality], name_to_cat[sp.category]] *= sp.factor
        eff = st.MEASURE_EFFECT
        after = days >= np.datetime64(st.measure_start(end_day), "D")
        m, c = muni_index[eff.municipality], name_to_cat[eff.category]
        intensity[:, m, c] *= np.where(after, eff.factor_after, eff.factor_before)
        # the last day may be cut short at "now"
        intensity[-1] *= (end_s - (start_s + (n_days - 1) * _DAY_S)) / _DAY_S

        # channels
        sector_mix = np.array(
            [st.CHANNEL_MIX.get(code, st.CHANNEL_MIX["other"]) for code in ref.sector_codes], dtype=np.float64
        )
        off = np.array(st.CHANNEL_DAY_OFF_FACTOR)
        channel_w = np.stack([sector_mix, sector_mix * off[None, :]], axis=1).reshape(-1, len(st.CHANNELS))
        profiles = [st.CHANNEL_PROFILES[c] for c in st.CHANNELS]
        hour_w = np.array([st.HOUR_PROFILES[p.hours] for p in profiles], dtype=np.float64)

        # categories: topics from a small dictionary of strings
        children: dict[int, list[str]] = {}
        for c, parent in enumerate(ref.cat_parent):
            if parent is not None:
                children.setdefault(int(parent), []).append(ref.cat_names[c])
        per_cat: list[tuple[str, ...]] = []
        for c, name in enumerate(ref.cat_names):
            if name in st.TOPICS:
                per_cat.append(st.TOPICS[name])
            elif ref.cat_is_other[c] and children.get(int(ref.cat_ids[c])):
                per_cat.append(tuple(children[int(ref.cat_ids[c])]))
            else:
                per_cat.append((name,))
        dictionary = sorted({t for topics in per_cat for t in topics})
        position = {t: i for i, t in enumerate(dictionary)}
        width = max(len(t) for t in per_cat)
        topic_table = np.zeros((c_count, width), dtype=np.int32)
        for c, topics in enumerate(per_cat):
            topic_table[c, : len(topics)] = [position[t] for t in topics]

        # organisations: routing table and quality
        orgs = ref.organisations
        org_cat = np.stack([_org_category_weights(o.handles, ref) for o in orgs])  # org × category
        serves = np.zeros((len(orgs), m_count), dtype=bool)
        for o, org in enumerate(orgs):
            serves[o, [muni_index[m] for m in org.serves]] = True
        route = serves[:, :, None] * org_cat[:, None, :]  # org × municipality × category
        route = route.reshape(len(orgs), -1).T  # group × org
        local_gov = np.array([o.kind == KIND_LOCAL_GOV for o in orgs])
        for g in np.flatnonzero(route.sum(axis=1) == 0):  # nobody handles it: the local administration
            m = g // c_count
            route[g, np.flatnonzero(local_gov & serves[:, m])[:1]] = 1.0
        k_max = int((route > 0).sum(axis=1).max())
        order = np.argsort(-route, axis=1, kind="stable")[:, :k_max]
        route_org = order.astype(np.int32)
        route_w = np.take_along_axis(route, order, axis=1)

        quality_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        quality = np.clip(
            quality_rng.normal(0.0, st.RANDOM_QUALITY_SD, len(orgs)),
            -st.RANDOM_QUALITY_LIMIT,
            st.RANDOM_QUALITY_LIMIT,
        )
        by_name = {o.name: i for i, o in enumerate(orgs)}
        for planted in st.ORGANISATION_QUALITY:
            quality[by_name[planted.organisation]] = planted.quality

        radius_km = np.sqrt(ref.area_km2 / np.pi)
        sd_km = 0.35 * radius_km
        return cls(
            ref=ref,
            start_s=start_s,
            end_s=end_s,
            days=days,
            day_off=~working,
            intensity=intensity,
            channel_cum=_cum_table(channel_w),
            hour_cum=_cum_table(hour_w),
            ch_answer_days=np.array([p.answer_days_median for p in profiles]),
            ch_first_hours=np.array([p.first_response_hours_median for p in profiles]),
            ch_has_first_rule=np.array([ref.channels[c][3] is not None for c in st.CHANNELS]),
            ch_rated=np.array([p.rated_share for p in profiles]),
            ch_geo=np.array([p.geotag_share for p in profiles]),
            ch_office=np.array([c in _OFFICE_CHANNELS for c in st.CHANNELS]),
            ch_kind=np.array([KINDS.index(ref.channels[c][0]) for c in st.CHANNELS]),
            cat_speed=np.array([st.CATEGORY_SPEED.get(n, 1.0) for n in ref.cat_names]),
            cat_resolvability=np.array([st.CATEGORY_RESOLVABILITY.get(n, 0.0) for n in ref.cat_names]),
            cat_duplicate=np.array(
                [st.DUPLICATE_PRONENESS.get(n, st.DEFAULT_DUPLICATE_PRONENESS) for n in ref.cat_names]
            ),
            topic_table=topic_table,
            topic_count=np.array([len(t) for t in per_cat], dtype=np.int64),
            topic_dictionary=pa.array(dictionary, type=pa.string()),
            route_cum=_cum_table(route_w),
            route_org=route_org,
            org_quality=quality,
            org_speed=np.exp(-0.95 * quality),
            org_regional=np.array([o.municipality is None and o.kind == KIND_EXECUTIVE for o in orgs]),
            org_local_gov=local_gov,
            sd_lat=sd_km / 111.0,
            sd_lon=sd_km / (111.0 * np.cos(np.radians(ref.lat))),
        )


# --- appeals ----------------------------------------------------------------------------------


@dataclass
class _History:
    """Earlier appeals (not duplicates) that duplicates and repeats may point to."""

    key: np.ndarray
    seq: np.ndarray
    org: np.ndarray
    topic: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    @classmethod
    def empty(cls) -> _History:
        i8, i4, f8 = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64)
        return cls(i8, i8.copy(), i4, i4.copy(), f8, f8.copy())


def _generate_appeals(
    con: duckdb.DuckDBPyConnection, model: _Model, seed: int, appeals: int, import_id: int
) -> int:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    p = model.intensity.ravel()
    # scaled a hair below 1: rounding must never make the first k−1 probabilities sum above 1
    counts = rng.multinomial(appeals, p * ((1 - 1e-9) / p.sum())).reshape(model.intensity.shape)
    model.intensity = np.empty(0)  # not needed any more; 10 MB per 2 years
    per_day = counts.sum(axis=(1, 2))

    history = _History.empty()
    offset = 0
    chunk_no = 0
    d0 = 0
    while d0 < len(per_day):
        d1 = d0 + 1
        rows = int(per_day[d0])
        while d1 < len(per_day) and rows + per_day[d1] <= CHUNK_ROWS:
            rows += int(per_day[d1])
            d1 += 1
        if rows:
            chunk_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, chunk_no)))
            table, history = _make_chunk(chunk_rng, model, counts, d0, d1, offset, history)
            con.register("demo_chunk", table)
            try:
                con.execute(INSERT_SQL, [import_id])
            finally:
                con.unregister("demo_chunk")
            offset += rows
        chunk_no += 1
        d0 = d1
    return offset


def _make_chunk(
    rng: np.random.Generator,
    model: _Model,
    counts: np.ndarray,
    d0: int,
    d1: int,
    offset: int,
    history: _History,
) -> tuple[pa.Table, _History]:
    ref = model.ref
    c_count = len(ref.cat_ids)
    sub = counts[d0:d1]
    cells = np.flatnonzero(sub)
    cell = np.repeat(cells, sub.ravel()[cells])
    n = len(cell)
    day_local, rest = np.divmod(cell, sub.shape[1] * sub.shape[2])
    muni, cat = np.divmod(rest, c_count)
    day = day_local + d0
    sector = ref.cat_sector[cat]

    # channel, time of day, organisation, topic, point
    channel = _pick(rng.random(n), sector * 2 + model.day_off[day], model.channel_cum)
    hour = _pick(rng.random(n), channel, model.hour_cum)
    received = model.start_s + day * _DAY_S + hour * _HOUR_S + rng.integers(0, _HOUR_S, n)
    last_start = model.start_s + (len(model.days) - 1) * _DAY_S
    if model.end_s - last_start < _DAY_S:  # the last day is cut at "now": squeeze its times into it
        cut = received >= last_start
        received[cut] = last_start + (received[cut] - last_start) * (model.end_s - last_start - 1) // _DAY_S
    group = muni * c_count + cat
    org = model.route_org[group, _pick(rng.random(n), group, model.route_cum)]
    topic_pos = (rng.random(n) ** 1.4 * model.topic_count[cat]).astype(np.int64)
    topic = model.topic_table[cat, topic_pos]
    has_point = rng.random(n) < model.ch_geo[channel]
    lat = np.where(has_point, ref.lat[muni] + rng.normal(0.0, 1.0, n) * model.sd_lat[muni], np.nan)
    lon = np.where(has_point, ref.lon[muni] + rng.normal(0.0, 1.0, n) * model.sd_lon[muni], np.nan)

    # time order: ids follow it, and DuckDB's zone maps on received_at get tight
    order = np.argsort(received, kind="stable")
    received, muni, cat, sector, channel, org, topic, lat, lon, group = (
        a[order] for a in (received, muni, cat, sector, channel, org, topic, lat, lon, group)
    )
    seq = offset + np.arange(1, n + 1, dtype=np.int64)
    t_rel = received - model.start_s
    key = (group.astype(np.int64) << _KEY_SHIFT) | t_rel

    # Earlier appeals a duplicate or a repeat may point to: recent history and this chunk,
    # except the appeals that will be duplicates themselves (a duplicate names the first report).
    is_dup = rng.random(n) < model.cat_duplicate[cat]
    own = np.flatnonzero(~is_dup)
    cand = _History(
        *(
            np.concatenate([old, new[own]])
            for old, new in zip(
                (history.key, history.seq, history.org, history.topic, history.lat, history.lon),
                (key, seq, org, topic, lat, lon),
                strict=True,
            )
        )
    )
    by_key = np.argsort(cand.key, kind="stable")
    cand = _History(*(a[by_key] for a in vars(cand).values()))
    cand_pos = np.empty(n, dtype=np.int64)  # where each of this chunk's own rows sits in cand
    cand_pos[own] = np.argsort(by_key)[len(history.key) :]

    # repeats: the citizen writes again weeks later about the same problem; bad organisations
    # get more of them
    p_repeat = np.minimum(st.REPEAT_BASE_SHARE * np.exp(-1.1 * model.org_quality[org]), 0.35)
    rep_idx = np.flatnonzero(~is_dup & (rng.random(n) < p_repeat))
    back = (rng.uniform(7.0, 45.0, len(rep_idx)) * _DAY_S).astype(np.int64)
    prev = _latest_before(cand.key, group[rep_idx], t_rel[rep_idx] - back, None)
    retry = prev < 0
    prev[retry] = _latest_before(cand.key, group[rep_idx[retry]], t_rel[rep_idx[retry]] - _DAY_S, None)
    found = prev >= 0
    rep_idx, prev = rep_idx[found], prev[found]
    repeat_seq = np.full(n, -1, dtype=np.int64)
    repeat_seq[rep_idx] = cand.seq[prev]
    for column, values in ((topic, cand.topic), (lat, cand.lat), (lon, cand.lon)):
        column[rep_idx] = values[prev]
    for values, column in ((cand.topic, topic), (cand.lat, lat), (cand.lon, lon)):
        values[cand_pos[rep_idx]] = column[rep_idx]  # a duplicate of a repeat sees what the repeat says

    # duplicates: the same problem reported by someone else a few hours to two days before
    dup_idx = np.flatnonzero(is_dup)
    lag = (rng.uniform(0.5, 24.0, len(dup_idx)) * _HOUR_S).astype(np.int64)
    parent = _latest_before(
        cand.key, group[dup_idx], t_rel[dup_idx] - lag, st.DUPLICATE_WINDOW_HOURS * _HOUR_S - lag
    )
    found = parent >= 0
    is_dup[dup_idx[~found]] = False
    dup_idx, parent = dup_idx[found], parent[found]
    duplicate_seq = np.full(n, -1, dtype=np.int64)
    duplicate_seq[dup_idx] = cand.seq[parent]
    org[dup_idx] = cand.org[parent]
    topic[dup_idx] = cand.topic[parent]
    lat[dup_idx] = cand.lat[parent] + rng.normal(0.0, 0.0002, len(dup_idx))
    lon[dup_idx] = cand.lon[parent] + rng.normal(0.0, 0.0003, len(dup_idx))

    # what later chunks may point to: the last HISTORY_DAYS of appeals that are not duplicates
    horizon = d1 * _DAY_S - HISTORY_DAYS * _DAY_S
    own = ~is_dup
    new_history = _History(
        *(
            np.concatenate([old, new[own]])
            for old, new in zip(
                (history.key, history.seq, history.org, history.topic, history.lat, history.lon),
                (key, seq, org, topic, lat, lon),
                strict=True,
            )
        )
    )
    recent = (new_history.key & ((1 << _KEY_SHIFT) - 1)) >= horizon
    new_history = _History(*(a[recent] for a in vars(new_history).values()))

    outcome = _outcomes(rng, model, received, channel, cat, org, is_dup)
    table = pa.table(
        {
            "seq": seq,
            "kind": _dict_array(model.ch_kind[channel], list(KINDS)),
            "channel": _dict_array(channel, list(st.CHANNELS)),
            "received_at": pa.array(received.astype("datetime64[s]")),
            "municipality_id": ref.muni_ids[muni],
            "sector_id": ref.sector_ids[sector],
            "category_id": ref.cat_ids[cat],
            "organisation_id": ref.org_ids[org],
            "status": _dict_array(outcome["status"], list(STATUSES)),
            "first_response_at": _ts_array(outcome["first_response"]),
            "answered_at": _ts_array(outcome["answered"]),
            "due_at": _ts_array(outcome["due"]),
            "first_response_due_at": _ts_array(outcome["first_due"]),
            "closure_reason": _dict_array(outcome["closure"], list(CLOSURE_REASONS)),
            "answer_on_merits": _bool_array(outcome["merits"], outcome["closed"]),
            "returned_for_rework": _bool_array(outcome["rework"], outcome["closed"]),
            "redirect_count": outcome["redirects"].astype(np.int16),
            "satisfaction": pa.array(
                outcome["satisfaction"].astype(np.int16), mask=outcome["satisfaction"] <= 0
            ),
            "repeat_seq": pa.array(repeat_seq, mask=repeat_seq < 0),
            "duplicate_seq": pa.array(duplicate_seq, mask=duplicate_seq < 0),
            "topic": pa.DictionaryArray.from_arrays(pa.array(topic), model.topic_dictionary),
            # 5 decimals ≈ 1 m: enough for a map, and compresses better
            "lat": pa.array(np.round(lat, 5), mask=np.isnan(lat)),
            "lon": pa.array(np.round(lon, 5), mask=np.isnan(lon)),
        }
    )
    return table, new_history


def _latest_before(
    keys: np.ndarray, group: np.ndarray, at: np.ndarray, window_s: np.ndarray | None
) -> np.ndarray:
    """Index into ``keys`` of the latest candidate of ``group`` received at or before ``at``
    (seconds since the start); −1 if there is none, or if it is more than ``window_s`` earlier."""
    target = (group.astype(np.int64) << _KEY_SHIFT) | np.maximum(at, 0)
    pos = np.searchsorted(keys, target, side="right") - 1
    hit = keys[np.maximum(pos, 0)]
    ok = (pos >= 0) & (at >= 0) & ((hit >> _KEY_SHIFT) == group)
    if window_s is not None:
        ok &= (target - hit) <= window_s
    return np.where(ok, pos, -1)


def _outcomes(
    rng: np.random.Generator,
    model: _Model,
    received: np.ndarray,
    channel: np.ndarray,
    cat: np.ndarray,
    org: np.ndarray,
    is_dup: np.ndarray,
) -> dict[str, np.ndarray]:
    n = len(received)
    q = model.org_quality[org]
    speed = model.org_speed[org]
    regional = model.org_regional[org]
    local_gov = model.org_local_gov[org]

    # how it ends: a formal reply is not a solved problem; bad organisations explain more
    p_refused = np.clip(0.045 - 0.02 * q, 0.01, 0.12)
    p_not_competent = np.where(regional | local_gov, 0.07, 0.025)
    p_redirected = np.where(regional, 0.10, np.where(local_gov, 0.05, 0.025))
    others = p_refused + p_not_competent + p_redirected
    p_resolved = np.clip(0.40 + 0.16 * q + model.cat_resolvability[cat], 0.05, 0.95 - others)
    cum = np.cumsum(
        np.stack([p_resolved, 1 - others - p_resolved, p_refused, p_not_competent], axis=1), axis=1
    )
    closure = (rng.random(n)[:, None] >= cum).sum(axis=1)
    closure = np.where(is_dup & (rng.random(n) < 0.7), _DUPLICATE, closure)

    redirect_p = np.where(regional, 0.14, np.where(local_gov, 0.09, 0.04))
    u = rng.random(n)
    redirects = (u < redirect_p).astype(np.int64) + (u < redirect_p * 0.2)
    redirects = np.where(closure == _REDIRECTED, np.maximum(redirects, 1), redirects)

    # answer time: channel norm × organisation speed × category × noise, plus forwarding
    answer_days = model.ch_answer_days[channel] * speed * model.cat_speed[cat] * _CLOSURE_SPEED[
        closure
    ] * rng.lognormal(0.0, 0.65, n) + redirects * rng.uniform(0.5, 3.0, n)
    answered = received + np.maximum(answer_days * _DAY_S, 600).astype(np.int64)
    # offices answer letters on working days, in the morning after a day off
    office = model.ch_office[channel]
    answered = np.where(office, _next_working_time(answered, rng), answered)

    first_hours = model.ch_first_hours[channel] * rng.lognormal(0.0, 0.75, n)
    rule = model.ch_has_first_rule[channel]
    first_hours *= np.where(rule, speed**0.8, speed**0.5)
    hour_of_day = (received % _DAY_S) / _HOUR_S
    # social media are watched 08:00–21:00: a night post waits for the morning
    night_wait = np.where(
        hour_of_day >= 21, 32 - hour_of_day, np.where(hour_of_day < 8, 8 - hour_of_day, 0.0)
    )
    first_hours += np.where(rule, night_wait, 0.0)
    first = np.minimum(received + (first_hours * _HOUR_S).astype(np.int64), answered)

    # a few appeals get stuck with no answer at all, more often at bad organisations
    stuck = rng.random(n) < np.clip(0.0025 * np.exp(-1.8 * q), 0, 0.05)
    closed = ~stuck & (answered <= model.end_s)
    first_ok = first <= model.end_s

    due = np.zeros(n, dtype=np.int64)
    first_due = np.full(n, -1, dtype=np.int64)
    ts = received.astype("datetime64[s]")
    for k, code in enumerate(st.CHANNELS):
        sel = channel == k
        if not sel.any():
            continue
        _, dk, dv, fk, fv = model.ref.channels[code]
        due[sel] = workcalendar.deadline(ts[sel], dk, dv).astype(np.int64)
        if fk is not None:
            first_due[sel] = workcalendar.deadline(ts[sel], fk, fv).astype(np.int64)

    status = np.where(closed, _CLOSURE_STATUS[closure], np.where(first_ok, 1, 0))

    # ratings: mostly ПОС; a fixed problem pleases, a late formal reply does not
    rate_p = model.ch_rated[channel] * np.where((closure == _REDIRECTED) | (closure == _DUPLICATE), 0.3, 1.0)
    rated = closed & (rng.random(n) < rate_p)
    logit = 0.35 + 1.4 * q + _CLOSURE_SATISFACTION[closure] - 0.8 * (answered > due)
    high = rng.random(n) < _sigmoid(logit)
    low_value = 1 + (rng.random(n)[:, None] >= np.array([0.4, 0.65])).sum(axis=1)
    value = np.where(high, 4 + (rng.random(n) < 0.6), low_value)
    satisfaction = np.where(rated, value, 0)

    merits_p = np.select(
        [(closure == _RESOLVED) | (closure == _EXPLAINED), closure == _REFUSED],
        [_sigmoid(1.6 + 1.3 * q), np.full(n, 0.45)],
        0.15,
    )
    merits = rng.random(n) < merits_p
    rework = rng.random(n) < np.clip(0.04 * np.exp(-1.3 * q) * _CLOSURE_REWORK[closure], 0, 0.45)

    return {
        "status": status,
        "closed": closed,
        "closure": np.where(closed, closure, -1),
        "first_response": np.where(first_ok, first, -1),
        "answered": np.where(closed, answered, -1),
        "due": due,
        "first_due": first_due,
        "redirects": redirects,
        "satisfaction": satisfaction,
        "merits": merits,
        "rework": rework,
    }


def _next_working_time(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep times on working days; move the others to 09:00–17:00 of the next working day."""
    wd = workcalendar.working_days().astype(np.int64)
    day = t // _DAY_S
    pos = np.minimum(np.searchsorted(wd, day), len(wd) - 1)
    on_working_day = wd[pos] == day
    moved = wd[pos] * _DAY_S + 9 * _HOUR_S + rng.integers(0, 8 * _HOUR_S, len(t))
    return np.where(on_working_day, t, moved)


def _dict_array(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    codes = np.asarray(codes, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(values, type=pa.string()))


def _ts_array(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("datetime64[s]"), mask=seconds < 0)


def _bool_array(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(values, mask=~valid)


def _close_data_at_last_receipt(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """``data_as_of`` is the last receipt: an answer generated after it (minutes before the end)
    is not known yet, so that appeal is still open."""
    as_of = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0]
    con.execute(
        """UPDATE appeal SET answered_at = NULL, closure_reason = NULL, satisfaction = NULL,
               answer_on_merits = NULL, returned_for_rework = NULL,
               status = CASE WHEN first_response_at <= $as_of THEN 'in_work' ELSE 'new' END
           WHERE answered_at > $as_of""",
        {"as_of": as_of},
    )
    con.execute(
        "UPDATE appeal SET first_response_at = NULL, status = 'new' WHERE first_response_at > $as_of",
        {"as_of": as_of},
    )
    return as_of


# --- targets ----------------------------------------------------------------------------------

# (indicator, sector code or None, channel or None, value, note)
_TARGETS: tuple[tuple[str, str | None, str | None, float, str], ...] = (
    ("on_time_share", None, None, 0.9, "Не менее 90 % ответов в установленный срок"),
    (
        "satisfaction_share",
        None,
        None,
        0.6,
        "Не менее 60 % оценок граждан — 4 или 5 (целевой показатель 2025 г.)",
    ),
    (
        "response_hours_median",
        None,
        "im",
        8.0,
        "Реакция на инциденты в соцсетях — в течение 8 рабочих часов (целевой показатель 2025 г.)",
    ),
    (
        "resolve_days_median",
        None,
        "pos",
        8.0,
        "Среднее время ответа на сообщение ПОС — не более 8 дней (целевой показатель 2025 г.)",
    ),
    ("overdue_open", None, None, 0.0, "Просроченных обращений без ответа быть не должно"),
    ("resolved_share", None, None, 0.5, "Не менее половины обращений — с решённой проблемой"),
    ("repeat_share", None, None, 0.1, "Повторных обращений — не более 10 %"),
    ("on_time_share", "housing", None, 0.9, "ЖКХ: ответы в срок"),
    ("resolved_share", "housing", None, 0.5, "ЖКХ: проблема решена"),
    ("on_time_share", "roads", None, 0.9, "Дороги: ответы в срок"),
    ("resolved_share", "roads", None, 0.45, "Дороги: проблема решена"),
    ("on_time_share", "waste", None, 0.9, "ТКО: ответы в срок"),
    ("satisfaction_share", "waste", None, 0.6, "ТКО: удовлетворённость"),
    ("on_time_share", "health", None, 0.9, "Здравоохранение: ответы в срок"),
    ("satisfaction_share", "health", None, 0.6, "Здравоохранение: удовлетворённость"),
)


def _insert_targets(con: duckdb.DuckDBPyConnection, ref: _Reference, first: dt.date, last: dt.date) -> None:
    rows = []
    month = first
    while month <= last:
        for indicator, sector, channel, value, note in _TARGETS:
            if sector is not None and sector not in ref.sector_codes:
                continue
            sector_id = None if sector is None else int(ref.sector_ids[ref.sector_codes.index(sector)])
            rows.append((indicator, sector_id, None, None, channel, month, value, note))
        month = add_months(month, 1)
    con.executemany("INSERT INTO target VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
