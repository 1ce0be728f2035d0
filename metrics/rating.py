"""Ratings of organisations and municipalities: four components, each 0–100 within a peer group.

Components (DESIGN §4), each the mean of the scores of its indicators from the registry:

- количество (``quantity``) — ``response_share``;
- скорость (``speed``) — ``on_time_share``, ``response_hours_median`` (lower is better);
- качество (``quality``) — ``satisfaction_share``, 1 − ``rework_share``;
- полнота (``completeness``) — ``merits_share``, 1 − ``repeat_share``.

Scoring one indicator within a peer group (organisations: the same ``organisation_kind``;
municipalities: all together) is a min–max scaling over the bodies that are ranked:
``100 · (x − min) / (max − min)`` when higher is better, ``100 · (max − x) / (max − min)`` when
lower is better (1 − share scores exactly as "the share, lower is better"). When every body has
the same value each gets 100 (nobody is behind). A body without a value (no rated appeals, no
answers…) gets no score for that indicator and its component is the mean of the others; a
component without any value drops out of the composite, whose weights are then renormalised.

The composite is the weighted mean of the components (weights and the minimum volume come from
``config/rating.toml``). Bodies with fewer appeals in the period than the minimum are listed as
«недостаточно данных», take no part in the scaling and get no rank. The previous period is rated
the same way on its own bodies, so ``rank_change`` is the change of place (positive = moved up).

A body's own indicator values are used even when one of them rests on few appeals (its
``<code>_low``): the rating's minimum volume is the gate, applied to the body as a whole.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from metrics import indicators as ind
from metrics.periods import Period
from metrics.query import data_as_of, query_periods, reference
from metrics.scope import REGION, Scope, municipal_rating
from metrics.source import reader

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "rating.toml"
CONFIG_ENV = "CUR_RATING_CONFIG"
DEFAULT_MIN_VOLUME = 20

COMPONENT_LABELS: dict[str, str] = {
    "quantity": "количество",
    "speed": "скорость",
    "quality": "качество",
    "completeness": "полнота",
}
# component -> the registry indicators it rests on; their direction comes from the registry
COMPONENT_INDICATORS: dict[str, tuple[str, ...]] = {
    "quantity": ("response_share",),
    "speed": ("on_time_share", "response_hours_median"),
    "quality": ("satisfaction_share", "rework_share"),
    "completeness": ("merits_share", "repeat_share"),
}
INDICATOR_CODES: tuple[str, ...] = tuple(c for codes in COMPONENT_INDICATORS.values() for c in codes)

STATUS_RANKED = "в рейтинге"
STATUS_TOO_FEW = "недостаточно данных"
MUNICIPALITY_PEER_GROUP = "все муниципалитеты"
NO_KIND_PEER_GROUP = "вид не указан"
# A body alone in its kind would score 100 everywhere (min = max): it is compared with every
# ranked organisation instead, and its peer group says so.
ALONE_PEER_GROUP = "все организации (единственная своего вида)"

COLUMN_LABELS: dict[str, str] = {
    "organisation_id": "Код организации",
    "organisation_name": "Организация",
    "organisation_kind": "Вид организации",
    "municipality_id": "Код муниципалитета",
    "municipality_name": "Муниципалитет",
    "peer_group": "Группа сравнения",
    "volume": "Обращений за период",
    "volume_prev": "Обращений за прошлый период",
    "status": "Статус",
    "rank": "Место",
    "peer_rank": "Место в группе",
    "peer_count": "Участников в группе",
    "rank_prev": "Место в прошлом периоде",
    "peer_rank_prev": "Место в группе в прошлом периоде",
    "rank_change": "Изменение места",
    "peer_rank_change": "Изменение места в группе",
    "composite": "Итоговая оценка",
    "composite_prev": "Итоговая оценка в прошлом периоде",
    **COMPONENT_LABELS,
    "weak_component": "Слабое место",
    "weak_component_code": "Слабое место (код)",
    **{code: ind.get(code).label for code in INDICATOR_CODES},
}

_EPS = 1e-12  # spreads below this are float noise: the values are equal


class RatingConfigError(ValueError):
    """The rating settings are wrong; the message is for a person."""


@dataclass(frozen=True)
class RatingConfig:
    weights: dict[str, float]
    min_volume: int


# --- settings ---------------------------------------------------------------------------------


def validate_weights(raw: Mapping[str, object], where: str = "веса рейтинга") -> dict[str, float]:
    """The four component weights as floats; a clear Russian error for anything else."""
    known = ", ".join(f"{k} ({v})" for k, v in COMPONENT_LABELS.items())
    unknown = sorted(set(raw) - set(COMPONENT_LABELS))
    if unknown:
        raise RatingConfigError(f"{where}: неизвестный компонент {', '.join(unknown)}; допустимы: {known}")
    missing = [k for k in COMPONENT_LABELS if k not in raw]
    if missing:
        raise RatingConfigError(f"{where}: не задан вес для {', '.join(missing)}; нужны все четыре: {known}")
    weights: dict[str, float] = {}
    for key in COMPONENT_LABELS:
        value = raw[key]
        # bool is an int in Python, but «true» as a weight is a typo
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RatingConfigError(f"{where}: вес {key} должен быть числом, получено {value!r}")
        if value < 0:
            raise RatingConfigError(f"{where}: вес {key} не может быть отрицательным ({value})")
        weights[key] = float(value)
    if sum(weights.values()) <= 0:
        raise RatingConfigError(f"{where}: сумма весов должна быть больше нуля")
    return weights


def _validate_min_volume(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RatingConfigError(f"{where}: min_volume — целое неотрицательное число обращений, получено {value!r}")
    return value


def load_config(path: str | Path | None = None) -> RatingConfig:
    """Settings from ``path``, else env ``CUR_RATING_CONFIG``, else ``config/rating.toml``.

    A missing default file means the defaults (equal weights, 20 appeals); a file named
    explicitly (argument or env) must exist.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else DEFAULT_CONFIG
    if not file.exists():
        if explicit:
            raise RatingConfigError(f"файл настроек рейтинга не найден: {file}")
        return RatingConfig(dict.fromkeys(COMPONENT_LABELS, 1.0), DEFAULT_MIN_VOLUME)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RatingConfigError(f"{file}: файл настроек рейтинга не читается: {exc}") from exc
    unknown = sorted(set(data) - {"weights", "min_volume"})
    if unknown:
        raise RatingConfigError(f"{file}: неизвестные настройки {', '.join(unknown)}; допустимы weights и min_volume")
    raw_weights = data.get("weights", dict.fromkeys(COMPONENT_LABELS, 1))
    if not isinstance(raw_weights, dict):
        raise RatingConfigError(f"{file}: weights — таблица [weights] с четырьмя весами")
    return RatingConfig(
        validate_weights(raw_weights, str(file)),
        _validate_min_volume(data.get("min_volume", DEFAULT_MIN_VOLUME), str(file)),
    )


def load_weights(path: str | Path | None = None) -> dict[str, float]:
    """Component weights from the settings file (see ``load_config``)."""
    return load_config(path).weights


# --- ratings ----------------------------------------------------------------------------------


def rate_organisations(
    period: Period,
    scope: Scope = REGION,
    filters: Mapping[str, Iterable[object]] | None = None,
    weights: Mapping[str, float] | None = None,
    min_volume: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Organisations of the scope rated within their kind (``organisation_kind``); see the module doc.

    One row per organisation with appeals in the period: ``organisation_id``, ``organisation_name``,
    ``organisation_kind``, ``peer_group``, home ``municipality_id`` / ``municipality_name``, ``volume``,
    ``volume_prev``, ``status``, ``rank`` (1 = best of the whole list), ``peer_rank`` (within the kind)
    of ``peer_count`` ranked bodies of the kind, ``rank_prev``, ``peer_rank_prev``, ``rank_change``,
    ``peer_rank_change`` (positive = moved up), ``composite``, ``composite_prev``, the four component
    scores, ``weak_component`` (Russian label; ``weak_component_code``) and the indicator values.
    Ranked bodies first, by rank; then the rest («недостаточно данных»), by volume.
    """
    w, floor = _settings(weights, min_volume)
    return _with_connection(con, lambda c: _rate(c, "organisation", period, scope, filters, w, floor))


def rate_municipalities(
    period: Period,
    scope: Scope = REGION,
    filters: Mapping[str, Iterable[object]] | None = None,
    weights: Mapping[str, float] | None = None,
    min_volume: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Municipalities of the scope rated all together; the columns of ``rate_organisations``.

    An МЦУ user sees every municipality here (the rating compares them), and only here."""
    w, floor = _settings(weights, min_volume)
    with municipal_rating():
        return _with_connection(con, lambda c: _rate(c, "municipality", period, scope, filters, w, floor))


def _settings(weights: Mapping[str, float] | None, min_volume: int | None) -> tuple[dict[str, float], int]:
    """Arguments over the settings file; checked before any query."""
    if weights is None or min_volume is None:
        config = load_config()
        weights = config.weights if weights is None else weights
        min_volume = config.min_volume if min_volume is None else min_volume
    return validate_weights(weights), _validate_min_volume(min_volume, "min_volume")


def _with_connection(con, run):
    if con is not None:
        return run(con)
    with reader() as c:
        return run(c)


def _rate(
    con: duckdb.DuckDBPyConnection,
    by: str,
    period: Period,
    scope: Scope,
    filters: Mapping[str, Iterable[object]] | None,
    w: dict[str, float],
    floor: int,
) -> pd.DataFrame:
    key = "organisation_id" if by == "organisation" else "municipality_id"
    as_of = data_as_of(con)

    # Both periods in one pass over the rollups, each rated on its own list of bodies (not with
    # compare=True, which keeps only today's bodies: the previous ranks must be the previous list's).
    both = query_periods(con, INDICATOR_CODES, [by], [period, period.previous()], filters, scope, as_of=as_of)
    current = _prepare(both[both["period_index"] == 0], by, key)
    previous = _prepare(both[both["period_index"] == 1], by, key)

    current = _score(current, w, floor)
    previous = _score(previous, w, floor)
    # the previous list's numbers and the home municipality, looked up by key (no merges: they cost
    # more than the scoring itself on a list of a few hundred bodies)
    prev = previous.set_index(key)
    ids = current[key]
    extra: dict[str, object] = {
        "volume_prev": ids.map(prev["volume"]).fillna(0).astype("int64"),
        "composite_prev": ids.map(prev["composite"]).astype("float64"),
        "rank_prev": ids.map(prev["rank"]).astype("Int64"),
        "peer_rank_prev": ids.map(prev["peer_rank"]).astype("Int64"),
    }
    extra["rank_change"] = (extra["rank_prev"] - current["rank"]).astype("Int64")
    extra["peer_rank_change"] = (extra["peer_rank_prev"] - current["peer_rank"]).astype("Int64")
    if by == "organisation":
        homes = reference(con, "organisation_home").set_index("organisation_id")
        extra["municipality_id"] = ids.map(homes["municipality_id"]).astype("Int64")
        extra["municipality_name"] = ids.map(homes["municipality_name"])
    out = pd.concat([current.drop(columns=[c for c in extra if c in current]),
                     pd.DataFrame(extra, index=current.index)], axis=1)

    labels = (["organisation_id", "organisation_name", "organisation_kind"] if by == "organisation" else []) + [
        "municipality_id", "municipality_name"]
    columns = [*labels, "peer_group", "volume", "volume_prev", "status", "rank", "peer_rank", "peer_count",
               "rank_prev", "peer_rank_prev", "rank_change", "peer_rank_change", "composite", "composite_prev",
               *COMPONENT_LABELS, "weak_component", "weak_component_code", *INDICATOR_CODES]
    out = out.sort_values(["rank", "volume", labels[1]], ascending=[True, False, True], na_position="last")
    return out[columns].reset_index(drop=True)


def _prepare(df: pd.DataFrame, by: str, key: str) -> pd.DataFrame:
    """Drop appeals without a body and add the peer group (organisations: their kind)."""
    df = df[df[key].notna()].copy()
    df[key] = df[key].astype("int64")
    if by == "organisation":
        df["peer_group"] = df["organisation_kind"].fillna(NO_KIND_PEER_GROUP)
    else:
        df["peer_group"] = MUNICIPALITY_PEER_GROUP
    return df


def indicator_score(values: pd.Series, higher_is_better: bool, groups: pd.Series | None = None) -> pd.Series:
    """Min–max score 0–100 of one indicator within each group (one group when None); 100 for all
    when all values of a group are equal, NaN where the value is missing."""
    codes = pd.factorize(groups)[0] if groups is not None else np.zeros(len(values), dtype=np.int64)
    x = values.to_numpy(dtype="float64")[:, None]
    return pd.Series(_scores(x, np.array([higher_is_better]), codes)[:, 0], index=values.index)


def _scores(x: np.ndarray, higher: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``indicator_score`` of every column of ``x`` at once within the groups ``codes``, in numpy
    (pandas' grouped transforms cost more than the whole rating query on a few hundred bodies)."""
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    lo = np.full((n_groups, x.shape[1]), np.inf)
    hi = np.full((n_groups, x.shape[1]), -np.inf)
    np.fmin.at(lo, codes, x)  # fmin/fmax skip missing values
    np.fmax.at(hi, codes, x)
    lo, hi = lo[codes], hi[codes]
    spread = hi - lo
    varied = spread > _EPS
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (x - lo) / np.where(varied, spread, np.nan) * 100.0
    scaled[:, ~higher] = 100.0 - scaled[:, ~higher]
    return np.where(varied, scaled, np.where(np.isnan(x), np.nan, 100.0))


def _rank_desc(values: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
    """Rank 1 = highest, ties share the best place (pandas' method="min"), within each group of
    ``codes``; NaN where the value is NaN."""
    out = np.full(len(values), np.nan)
    groups = np.zeros(len(values), dtype=np.int64) if codes is None else codes
    for g in np.unique(groups):
        member = (groups == g) & ~np.isnan(values)
        ordered = np.sort(values[member])
        out[member] = len(ordered) - np.searchsorted(ordered, values[member], side="right") + 1
    return out


def _score(df: pd.DataFrame, weights: Mapping[str, float], min_volume: int) -> pd.DataFrame:
    """Component scores, composite, status and ranks of one period's list."""
    volume = df["volume"].to_numpy()
    groups = df["peer_group"].to_numpy(dtype=object)
    eligible = volume >= min_volume
    codes = pd.factorize(groups)[0]
    members = np.bincount(codes, weights=eligible)[codes] if len(codes) else np.zeros(0)
    alone = eligible & (members == 1) & (groups != MUNICIPALITY_PEER_GROUP) & (eligible.sum() > 1)
    # every rating indicator has a direction (tested)
    higher = np.array([bool(ind.get(code).higher_is_better) for code in INDICATOR_CODES])
    values = df[list(INDICATOR_CODES)].to_numpy(dtype="float64", copy=True)
    values[~eligible] = np.nan
    scores = _scores(values, higher, codes)
    if alone.any():
        scores[alone] = _scores(values, higher, np.zeros(len(values), dtype=np.int64))[alone]
        groups = np.where(alone, ALONE_PEER_GROUP, groups)
    column = {code: i for i, code in enumerate(INDICATOR_CODES)}
    components = np.full((len(df), len(COMPONENT_LABELS)), np.nan)
    for j, indicator_codes in enumerate(COMPONENT_INDICATORS.values()):
        part = scores[:, [column[c] for c in indicator_codes]]
        known = (~np.isnan(part)).sum(axis=1)
        with np.errstate(invalid="ignore"):
            components[:, j] = np.where(known > 0, np.nansum(part, axis=1) / np.maximum(known, 1), np.nan)
    w = np.array([weights[c] for c in COMPONENT_LABELS], dtype="float64")
    present = ~np.isnan(components)
    weight_sum = (present * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        composite = np.where(weight_sum > 0, (np.nan_to_num(components) * w).sum(axis=1) / weight_sum, np.nan)

    ranked = eligible & ~np.isnan(composite)
    components[~ranked] = np.nan
    composite[~ranked] = np.nan
    final_codes = pd.factorize(groups)[0]
    rank = _rank_desc(composite)
    peer_rank = _rank_desc(composite, final_codes)
    peer_count = np.bincount(final_codes, weights=ranked)[final_codes] if len(df) else np.zeros(0)
    # a body alone in its kind was scored against everyone: its place is its place in the whole list
    peer_rank = np.where(alone & ranked, rank, peer_rank)
    peer_count = np.where(alone & ranked, ranked.sum(), peer_count)

    out = {"peer_group": groups, **{c: components[:, j] for j, c in enumerate(COMPONENT_LABELS)},
           "composite": composite, "status": np.where(ranked, STATUS_RANKED, STATUS_TOO_FEW),
           "rank": pd.array(rank, dtype="Int64"), "peer_rank": pd.array(peer_rank, dtype="Int64"),
           "peer_count": peer_count.astype("int64")}
    frame = pd.DataFrame(out, index=df.index)
    frame["weak_component_code"] = _weak(frame[[c for c in COMPONENT_LABELS if weights[c] > 0]])
    frame["weak_component"] = frame["weak_component_code"].map(COMPONENT_LABELS)
    return pd.concat([df.drop(columns=[c for c in frame.columns if c in df.columns]), frame], axis=1)


def _weak(scores: pd.DataFrame) -> pd.Series:
    """The lowest component of each row (the first listed on a tie); None when there is nothing to
    pick: no scores, or all of them equal."""
    values = scores.to_numpy(dtype="float64")
    known = ~np.isnan(values)
    low = np.where(known, values, np.inf)
    spread = np.where(known, values, -np.inf).max(axis=1) - low.min(axis=1)
    names = np.array(scores.columns, dtype=object)[low.argmin(axis=1)] if len(scores.columns) else None
    picked = known.any(axis=1) & (spread > _EPS)
    return pd.Series(np.where(picked, names, None), index=scores.index, dtype="object")
