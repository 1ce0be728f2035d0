"""Ratings of organisations and municipalities on fixed, published scales, with their uncertainty.

Components (DESIGN §4), each the mean of the scores of its sub-indicators from the registry:

- количество (``quantity``, shown as «доля ответов») — ``response_share``;
- скорость (``speed``) — ``on_time_share``, ``response_hours_median`` (lower is better);
- качество (``quality``) — ``satisfaction_share``, ``rework_share`` (lower is better);
- полнота (``completeness``) — ``merits_share``, ``repeat_share`` (lower is better).

**Scores.** Each sub-indicator is scored on its own fixed scale from ``config/rating.toml``: the
value that earns 0 (``zero``) and the value that earns 100 (``full``), linear in between and
clipped to 0–100: ``score = clip(100 · (x − zero) / (full − zero), 0, 100)``. A body's score
therefore depends on its own values only. (Scoring ``rework_share`` with zero = 20 %, full = 0 %
is the same as scoring 1 − ``rework_share`` from 80 % to 100 %.)

**«Нет данных».** A sub-indicator without data (no base: nothing rated, nothing answered…; or a field
that none of the body's data sources fills: ``returned_for_rework``, ``answer_on_merits``,
``repeat_of`` are stored as NULL when an export lacks them and would otherwise count as "no rework,
no repeats" = 100) gets no score. A component is the mean of its sub-indicators with data; a
component with none is «нет данных» (``no_data``) and its weight is spread over the others in
proportion to their weights. A missing field never scores 100 and never scores 0.

**Composite** = weighted mean of the components with data. Bodies with fewer appeals in the period
than ``min_volume`` are «недостаточно данных»: no score, no rank.

**90 % interval** (``composite_low``, ``composite_high``): the sampling uncertainty of the composite,
by a per-body parametric bootstrap that treats a body's appeals as independent draws from its true
rates. ``DRAWS`` normal draws (one fixed matrix, so the same data always give the same interval
and a body's interval depends on its own data only) perturb each sub-indicator:

- a share ``p = x / n`` is drawn as ``p + se · z`` with the Agresti–Coull standard error
  ``se = sqrt(p̃ (1 − p̃) / (n + z²))``, ``p̃ = (x + z²/2) / (n + z²)``, z = 1.645 (not zero at 0 %
  and 100 %, where the plain binomial error would claim certainty);
- ``on_time_share`` and ``response_share`` rest on (nearly) the same appeals, on-time answers being
  part of the answers: their draws are correlated with ``ρ = sqrt(p_t (1 − p_a) / (p_a (1 − p_t)))``,
  the correlation of two nested shares of one base (without it the interval covered ≈ 86 %);
- the median time ``m`` of ``n`` responses is drawn on the log scale with the standard error of a
  lognormal sample median, ``sqrt(π/2) · σ / sqrt(n)``, where ``σ = sqrt(2 ln(mean / median))``
  is read from the body's own mean and median (clipped to 0.5–2.0); the other sub-indicators are
  drawn independently;

each draw is scored (clipped to 0–100) and combined exactly as the point value, and the interval is
the 5th–95th percentile of the draws (widened, if needed, to contain the point value).
``tests/test_rating.py`` simulates bodies with known true rates and appeal-level correlated outcomes
and checks that the interval covers the true composite in ≥ 85 % of draws (89–91 % measured).

**Rank ranges.** Within a list (the whole list, or a peer group) of ranked bodies with intervals
``[lo, hi]``: the best possible place of a body is 1 + the number of bodies whose lower bound is
above its upper bound (certainly better); the worst possible place is the number of bodies (itself
included) whose upper bound is at or above its lower bound (not certainly worse). The point place
(``rank``, ties share the best place) always lies in this range. A rank change against the previous
period is *certain* (``rank_change_certain``) only when this period's range and the previous
period's range do not overlap; otherwise it is within the uncertainty.

**The previous period** is rated the same way on its own list; while this period is not settled
(its end + 30 days is after the data date) it is measured at the same age
(``metrics.periods.same_age_as_of``), so a rank change never rests on answers that do not exist yet.

**Peer groups.** Organisations are ranked within their kind (``organisation_kind``); a kind with a
single ranked organisation is ranked among all organisations (``peer_group`` says so).
Municipalities form one group.

A body's own indicator values are used even when one of them rests on few appeals (its
``<code>_low``): the rating's minimum volume is the gate, applied to the body as a whole, and the
interval shows how little a small base says.
"""

from __future__ import annotations

import math
import os
import tomllib
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from metrics import indicators as ind
from metrics import words
from metrics.periods import Period, is_settled, same_age_as_of
from metrics.query import data_as_of, query_periods, reference
from metrics.scope import REGION, Scope, municipal_rating
from metrics.source import is_served, reader

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "rating.toml"
CONFIG_ENV = "CUR_RATING_CONFIG"
DEFAULT_MIN_VOLUME = 20

COMPONENT_LABELS: dict[str, str] = {
    # DESIGN calls it «количество»; on its own that reads as "too many appeals", so the label says
    # what it measures
    "quantity": "доля ответов",
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
MEDIAN_CODE = "response_hours_median"
_MEDIAN = INDICATOR_CODES.index(MEDIAN_CODE)
_RESPONSE, _ON_TIME = INDICATOR_CODES.index("response_share"), INDICATOR_CODES.index("on_time_share")
MEAN_CODE = "response_hours_mean"  # read only for the spread of response times (the interval)
# sub-indicators counted from a field an export may lack (stored as NULL, counted as FALSE / none)
FIELD_OF: dict[str, str] = {
    "rework_share": "returned_for_rework",
    "merits_share": "answer_on_merits",
    "repeat_share": "repeat_of",
}

CHANGE_WITHIN = "в пределах точности"
STATUS_RANKED = "в рейтинге"
STATUS_TOO_FEW = "недостаточно данных"
NO_DATA = "нет данных"
MUNICIPALITY_PEER_GROUP = "все муниципалитеты"
NO_KIND_PEER_GROUP = "вид не указан"
ALONE_PEER_GROUP = "все организации (единственная своего вида)"

LEVEL = 0.90  # the interval's coverage (DESIGN §4)
DRAWS = 500
_Z = 1.6448536269514722  # the normal quantile of (1 + LEVEL) / 2
_SIGMA_RANGE = (0.5, 2.0)  # the log-scale spread of response times assumed for the median's error
# one fixed matrix of standard normal draws (float32: the interval needs no more, and it halves the time)
_NORMAL = np.random.default_rng(20251).standard_normal((DRAWS, len(INDICATOR_CODES))).astype("float32")
# the order statistics of the draws taken as the interval's ends (outward-rounded 5th and 95th percentiles)
_NORMAL_T = np.ascontiguousarray(_NORMAL.T)  # sub-indicators × draws
_ENDS = (math.floor((1 - LEVEL) / 2 * (DRAWS - 1)), math.ceil((1 + LEVEL) / 2 * (DRAWS - 1)))

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
    "rank_best": "Место: лучшее возможное",
    "rank_worst": "Место: худшее возможное",
    "peer_rank": "Место в группе",
    "peer_rank_best": "Место в группе: лучшее возможное",
    "peer_rank_worst": "Место в группе: худшее возможное",
    "peer_count": "Участников в группе",
    "rank_prev": "Место в прошлом периоде",
    "rank_prev_best": "Место в прошлом периоде: лучшее возможное",
    "rank_prev_worst": "Место в прошлом периоде: худшее возможное",
    "peer_rank_prev": "Место в группе в прошлом периоде",
    "peer_rank_prev_best": "Место в группе в прошлом периоде: лучшее возможное",
    "peer_rank_prev_worst": "Место в группе в прошлом периоде: худшее возможное",
    "rank_change": "Изменение места",
    "rank_change_certain": "Изменение места больше погрешности",
    "peer_rank_change": "Изменение места в группе",
    "peer_rank_change_certain": "Изменение места в группе больше погрешности",
    "composite": "Итоговая оценка",
    "composite_low": "Итоговая оценка: нижняя граница 90 % интервала",
    "composite_high": "Итоговая оценка: верхняя граница 90 % интервала",
    "composite_prev": "Итоговая оценка в прошлом периоде",
    **COMPONENT_LABELS,
    "no_data": "Нет данных",
    "weak_component": "Слабое место",
    "weak_component_code": "Слабое место (код)",
    **{code: ind.get(code).label for code in INDICATOR_CODES},
    **{f"{code}_base": f"{ind.get(code).label}: база" for code in INDICATOR_CODES},
    **{f"{code}_score": f"{ind.get(code).label}: баллы" for code in INDICATOR_CODES},
}

_EPS = 1e-9  # differences below this are float noise: the values are equal


class RatingConfigError(ValueError):
    """The rating settings are wrong; the message is for a person."""


@dataclass(frozen=True)
class Scale:
    """The value that earns 0 and the value that earns 100; linear in between, clipped to 0–100."""

    zero: float
    full: float

    def score(self, value: float | np.ndarray) -> float | np.ndarray:
        """0–100 (NaN stays NaN)."""
        with np.errstate(invalid="ignore"):
            return np.clip(100.0 * (np.asarray(value, dtype="float64") - self.zero) / (self.full - self.zero),
                           0.0, 100.0)


@dataclass(frozen=True)
class RatingConfig:
    weights: dict[str, float]
    min_volume: int
    scales: dict[str, Scale]


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


def validate_scales(raw: Mapping[str, object], where: str = "шкалы рейтинга") -> dict[str, Scale]:
    """A scale for each of the seven sub-indicators, checked against the registry's direction."""
    known = ", ".join(INDICATOR_CODES)
    unknown = sorted(set(raw) - set(INDICATOR_CODES))
    if unknown:
        raise RatingConfigError(f"{where}: неизвестный показатель {', '.join(unknown)}; допустимы: {known}")
    missing = [c for c in INDICATOR_CODES if c not in raw]
    if missing:
        raise RatingConfigError(f"{where}: не задана шкала для {', '.join(missing)}; нужны все семь: {known}")
    scales: dict[str, Scale] = {}
    for code in INDICATOR_CODES:
        spec = ind.get(code)
        name = f"шкала {code} («{spec.label}»)"
        table = raw[code]
        if not isinstance(table, Mapping) or set(table) != {"zero", "full"}:
            raise RatingConfigError(f"{where}: {name} — таблица [scales.{code}] ровно с двумя числами: "
                                    "zero (значение за 0 баллов) и full (значение за 100 баллов)")
        values = {}
        for key in ("zero", "full"):
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise RatingConfigError(f"{where}: {name}: {key} должно быть числом, получено {value!r}")
            if spec.kind == "ratio" and not 0 <= value <= 1:
                raise RatingConfigError(f"{where}: {name}: {key} — доля от 0 до 1 (0,8 = 80 %), получено {value!r}")
            if spec.kind != "ratio" and value < 0:
                raise RatingConfigError(f"{where}: {name}: {key} не может быть отрицательным ({value})")
            values[key] = float(value)
        if values["zero"] == values["full"]:
            raise RatingConfigError(f"{where}: {name}: zero и full не могут совпадать")
        if (values["full"] > values["zero"]) != bool(spec.higher_is_better):
            better = "больше" if spec.higher_is_better else "меньше"
            relation = "больше" if spec.higher_is_better else "меньше"
            raise RatingConfigError(f"{where}: {name}: для этого показателя лучше {better} значение, "
                                    f"поэтому full должно быть {relation} zero")
        scales[code] = Scale(values["zero"], values["full"])
    return scales


def _validate_min_volume(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RatingConfigError(f"{where}: min_volume — целое неотрицательное число обращений, получено {value!r}")
    return value


def load_config(path: str | Path | None = None) -> RatingConfig:
    """Settings from ``path``, else env ``CUR_RATING_CONFIG``, else ``config/rating.toml``.

    The file must exist and publish every scale; ``min_volume`` defaults to 20 and the weights to
    equal ones when the file leaves them out.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else DEFAULT_CONFIG
    if not file.exists():
        raise RatingConfigError(f"файл настроек рейтинга не найден: {file}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RatingConfigError(f"{file}: файл настроек рейтинга не читается: {exc}") from exc
    unknown = sorted(set(data) - {"weights", "min_volume", "scales"})
    if unknown:
        raise RatingConfigError(f"{file}: неизвестные настройки {', '.join(unknown)}; "
                                "допустимы weights, min_volume и scales")
    raw_weights = data.get("weights", dict.fromkeys(COMPONENT_LABELS, 1))
    if not isinstance(raw_weights, dict):
        raise RatingConfigError(f"{file}: weights — таблица [weights] с четырьмя весами")
    raw_scales = data.get("scales")
    if not isinstance(raw_scales, dict):
        raise RatingConfigError(f"{file}: не заданы шкалы — таблицы [scales.<показатель>] с zero и full "
                                f"для каждого из: {', '.join(INDICATOR_CODES)}")
    return RatingConfig(
        validate_weights(raw_weights, str(file)),
        _validate_min_volume(data.get("min_volume", DEFAULT_MIN_VOLUME), str(file)),
        validate_scales(raw_scales, str(file)),
    )


def load_weights(path: str | Path | None = None) -> dict[str, float]:
    """Component weights from the settings file (see ``load_config``)."""
    return load_config(path).weights


# --- texts of one row (pages, pack and brief say it the same way) -------------------------------


def place_text(best: object, worst: object, count: object = None) -> str:
    """«3», «3–5», «3–5 из 20»; "" for a body without a place."""
    if best is None or pd.isna(best):
        return ""
    places = f"{int(best)}" if best == worst else f"{int(best)}–{int(worst)}"
    return places if count is None or pd.isna(count) else f"{places} из {int(count)}"


def interval_text(low: object, high: object) -> str:
    """«68,2–79,0»; "" without an interval."""
    if low is None or pd.isna(low):
        return ""
    return f"{words.number(float(low), 1)}–{words.number(float(high), 1)}"


def change_text(change: object, certain: object) -> str:
    """«▲ 2», «▼ 1» where the change of place exceeds the uncertainty, «в пределах точности»
    otherwise, «—» without a previous place."""
    if change is None or pd.isna(change):
        return "—"
    if not certain:
        return CHANGE_WITHIN
    return f"▲ {int(change)}" if change > 0 else f"▼ {int(-change)}"


# --- ratings ----------------------------------------------------------------------------------


def rate_organisations(
    period: Period,
    scope: Scope = REGION,
    filters: Mapping[str, Iterable[object]] | None = None,
    weights: Mapping[str, float] | None = None,
    min_volume: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    scales: Mapping[str, Scale] | None = None,
) -> pd.DataFrame:
    """Organisations of the scope rated and ranked within their kind; see the module doc.

    One row per organisation with appeals in the period: ``organisation_id``, ``organisation_name``,
    ``organisation_kind``, ``peer_group``, home ``municipality_id`` / ``municipality_name``,
    ``volume``, ``volume_prev``, ``status``; ``rank`` (1 = best of the whole list) with
    ``rank_best`` – ``rank_worst``, ``peer_rank`` (within the group) with ``peer_rank_best`` –
    ``peer_rank_worst`` of ``peer_count`` ranked bodies; the same for the previous period
    (``rank_prev``…, ``peer_rank_prev``…); ``rank_change`` / ``peer_rank_change`` (positive =
    moved up) and ``rank_change_certain`` / ``peer_rank_change_certain`` (the ranges do not
    overlap); ``composite`` with ``composite_low`` – ``composite_high`` (90 % interval),
    ``composite_prev``; the four component scores; ``no_data`` (Russian labels of the components
    without data, "" when none); ``weak_component`` (Russian label; ``weak_component_code``); each
    sub-indicator's value, ``<code>_base`` and ``<code>_score``. Ranked bodies first, by rank; then
    the rest («недостаточно данных»), by volume. ``attrs``: ``period``, ``previous``, ``data_date``,
    ``settled`` (False: «ответы ещё поступают») and ``previous_as_of`` (the moment the previous period
    is measured at: the data date, or the same age while ``period`` is not settled).
    """
    cfg = _settings(weights, min_volume, scales)
    return _with_connection(con, lambda c: _rate(c, "organisation", period, scope, filters, cfg))


def rate_municipalities(
    period: Period,
    scope: Scope = REGION,
    filters: Mapping[str, Iterable[object]] | None = None,
    weights: Mapping[str, float] | None = None,
    min_volume: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    scales: Mapping[str, Scale] | None = None,
) -> pd.DataFrame:
    """Municipalities of the scope rated all together; the columns of ``rate_organisations``.

    An МЦУ user sees every municipality here (the rating compares them), and only here."""
    cfg = _settings(weights, min_volume, scales)
    with municipal_rating():
        return _with_connection(con, lambda c: _rate(c, "municipality", period, scope, filters, cfg))


def _settings(weights: Mapping[str, float] | None, min_volume: int | None,
              scales: Mapping[str, Scale] | None) -> RatingConfig:
    """Arguments over the settings file; checked before any query."""
    if weights is None or min_volume is None or scales is None:
        config = load_config()
        weights = config.weights if weights is None else weights
        min_volume = config.min_volume if min_volume is None else min_volume
        scales = config.scales if scales is None else scales
    raw_scales = {c: {"zero": s.zero, "full": s.full} if isinstance(s, Scale) else s for c, s in scales.items()}
    return RatingConfig(validate_weights(weights), _validate_min_volume(min_volume, "min_volume"),
                        validate_scales(raw_scales))


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
    cfg: RatingConfig,
) -> pd.DataFrame:
    key = "organisation_id" if by == "organisation" else "municipality_id"
    as_of = data_as_of(con)

    # Each period rated on its own list of bodies (the previous ranks must be the previous list's).
    # A settled period: both in one pass over the rollups. One whose answers are still arriving is
    # flattered by the answers that do not exist yet: the previous period is then measured at the same
    # age (DESIGN §4), as it was known when it was as old as this one is now.
    # The scoring works on numpy columns: pandas selections on a list of a few hundred bodies cost
    # more than the whole rollup query.
    codes = [*INDICATOR_CODES, MEAN_CODE]
    previous_period = period.previous()
    settled = is_settled(period, as_of)
    previous_as_of = as_of if settled else same_age_as_of(previous_period, period, as_of)
    if settled:
        both = query_periods(con, codes, [by], [period, previous_period], filters, scope, as_of=as_of)
    else:
        now = query_periods(con, codes, [by], [period], filters, scope, as_of=as_of)
        before = query_periods(con, codes, [by], [previous_period], filters, scope, as_of=previous_as_of)
        both = pd.concat([now, before.assign(period_index=1)], ignore_index=True)
    body = both[key].to_numpy(dtype="float64", na_value=np.nan)
    which = both["period_index"].to_numpy()
    known = _fields_known(con, key)
    names = (["organisation_name", "organisation_kind"] if by == "organisation"
             else ["municipality_name"])
    columns_of = {c: both[c].to_numpy(dtype="float64", na_value=np.nan)
                  for c in [*INDICATOR_CODES, *(f"{c}_base" for c in INDICATOR_CODES), MEAN_CODE]}
    volume = both["volume"].to_numpy(dtype="int64")
    lists = []
    for index in (0, 1):
        rows = np.flatnonzero((which == index) & ~np.isnan(body))
        ids = body[rows].astype("int64")
        if by == "organisation":
            kinds = both["organisation_kind"].to_numpy(dtype=object, na_value=None)[rows]
            groups = np.array([NO_KIND_PEER_GROUP if k is None else k for k in kinds], dtype=object)
        else:
            groups = np.full(len(rows), MUNICIPALITY_PEER_GROUP, dtype=object)
        values = np.stack([columns_of[c][rows] for c in INDICATOR_CODES], axis=1)
        bases = np.stack([columns_of[f"{c}_base"][rows] for c in INDICATOR_CODES], axis=1)
        scored = _score(ids, volume[rows], groups, values, bases, columns_of[MEAN_CODE][rows], cfg, known)
        scored[key] = ids
        for name in names if index == 0 else []:
            scored[name] = both[name].to_numpy(dtype=object, na_value=None)[rows]
        lists.append(scored)
    out, previous = lists

    # the previous list's numbers, looked up by key (-1: not in the previous list)
    at = pd.Index(previous[key]).get_indexer(out[key])
    found = at >= 0

    def before(column: str, missing: float = np.nan) -> np.ndarray:
        taken = np.full(len(at), missing)
        taken[found] = np.asarray(previous[column], dtype="float64")[at[found]]
        return taken

    out["volume_prev"] = before("volume", 0).astype("int64")
    out["composite_prev"] = before("composite")
    for name in ("rank", "peer_rank"):
        for suffix in ("", "_best", "_worst"):
            out[f"{name}_prev{suffix}"] = before(f"{name}{suffix}")
        out[f"{name}_change"] = out[f"{name}_prev"] - out[name]
        # certain only when the two periods' ranges do not overlap (NaN compares False)
        out[f"{name}_change_certain"] = ((out[f"{name}_worst"] < out[f"{name}_prev_best"])
                                         | (out[f"{name}_best"] > out[f"{name}_prev_worst"]))
    if by == "organisation":
        homes = reference(con, "organisation_home")
        at_home = pd.Index(homes["organisation_id"]).get_indexer(out[key])
        home_ids = homes["municipality_id"].to_numpy(dtype="float64", na_value=np.nan)
        home_names = homes["municipality_name"].to_numpy(dtype=object, na_value=None)
        home = at_home >= 0
        out["municipality_id"] = np.full(len(at_home), np.nan)
        out["municipality_id"][home] = home_ids[at_home[home]]
        out["municipality_name"] = np.full(len(at_home), None, dtype=object)
        out["municipality_name"][home] = home_names[at_home[home]]

    labels = (["organisation_id", "organisation_name", "organisation_kind"] if by == "organisation" else []) + [
        "municipality_id", "municipality_name"]
    integers = {"municipality_id", "rank", "rank_best", "rank_worst", "peer_rank", "peer_rank_best",
                "peer_rank_worst", "rank_prev", "rank_prev_best", "rank_prev_worst", "peer_rank_prev",
                "peer_rank_prev_best", "peer_rank_prev_worst", "rank_change", "peer_rank_change"}
    columns = [*labels, "peer_group", "volume", "volume_prev", "status",
               "rank", "rank_best", "rank_worst", "peer_rank", "peer_rank_best", "peer_rank_worst", "peer_count",
               "rank_prev", "rank_prev_best", "rank_prev_worst",
               "peer_rank_prev", "peer_rank_prev_best", "peer_rank_prev_worst",
               "rank_change", "rank_change_certain", "peer_rank_change", "peer_rank_change_certain",
               "composite", "composite_low", "composite_high", "composite_prev",
               *COMPONENT_LABELS, "no_data", "weak_component", "weak_component_code",
               *INDICATOR_CODES, *(f"{c}_base" for c in INDICATOR_CODES), *(f"{c}_score" for c in INDICATOR_CODES)]
    # ranked bodies first by rank, then by volume (descending) and name
    rank = np.nan_to_num(out["rank"], nan=np.inf)
    name_of = out[labels[1]]
    order = sorted(range(len(rank)), key=lambda i: (rank[i], -out["volume"][i], str(name_of[i])))
    frame = pd.DataFrame({c: pd.array(out[c][order], dtype="Int64") if c in integers else out[c][order]
                          for c in columns})
    frame.attrs.update(period=period, previous=previous_period, data_date=as_of, settled=settled,
                       previous_as_of=previous_as_of)
    return frame


# which fields the data sources fill, per served connection (it sees one file for life)
_known_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fields_known(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, np.ndarray | None]:
    """For each sub-indicator of ``FIELD_OF``: None when every data source fills its field (every
    body is known), else the ids (``key``) of the bodies with appeals from a source that does. An
    export without the column leaves it NULL on every appeal; a source that has it fills it (FALSE or
    TRUE; ``repeat_of`` on some appeals). Cheap in the usual case (a few existence probes); a scan of
    the facts only when some source lacks a field; once per served connection."""
    cache = _known_cache.setdefault(con, {}) if is_served(con) else {}
    if key not in cache:
        if "filling" not in cache:  # which sources fill each field: one scan for both kinds of body
            sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM appeal").fetchall()]
            cache["filling"] = sources, {field: [s for s in sources if con.execute(
                f"SELECT 1 FROM appeal WHERE source = ? AND {field} IS NOT NULL LIMIT 1", [s]).fetchall()]  # noqa: S608 - fixed identifiers
                for field in FIELD_OF.values()}
        sources, fills = cache["filling"]
        known: dict[str, np.ndarray | None] = {}
        for code, field in FIELD_OF.items():
            filling = fills[field]
            if len(filling) == len(sources):
                known[code] = None
            elif not filling:
                known[code] = np.zeros(0, dtype="int64")
            else:
                rows = con.execute(f"SELECT DISTINCT {key} FROM appeal WHERE source IN ({', '.join('?' * len(filling))}) "  # noqa: S608
                                   f"AND {key} IS NOT NULL", filling).fetchall()
                known[code] = np.array([r[0] for r in rows], dtype="int64")
        cache[key] = known
    return cache[key]


# --- scoring ----------------------------------------------------------------------------------


def _combine(sub: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components (``...`` × 4) and composite (``...``) from sub-indicator scores (``...`` × 7, NaN
    = no data): a component is the mean of its sub-scores with data, the composite the weighted mean
    of the components with data (weights renormalised over them)."""
    column = {code: i for i, code in enumerate(INDICATOR_CODES)}
    parts = []
    for codes in COMPONENT_INDICATORS.values():
        part = sub[..., [column[c] for c in codes]]
        known = (~np.isnan(part)).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            parts.append(np.where(known > 0, np.nansum(part, axis=-1) / np.maximum(known, 1), np.nan))
    components = np.stack(parts, axis=-1)
    present = ~np.isnan(components)
    weight_sum = (present * weights).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        composite = np.where(weight_sum > 0, (np.where(present, components, 0.0) * weights).sum(axis=-1) / weight_sum,
                             np.nan)
    return components, composite


def sub_scores(values: np.ndarray, scales: Mapping[str, Scale]) -> np.ndarray:
    """Scores 0–100 of a ``...`` × 7 array of sub-indicator values (columns in ``INDICATOR_CODES``
    order); NaN where the value is missing."""
    out = np.empty(values.shape, dtype="float64")
    for k, code in enumerate(INDICATOR_CODES):
        out[..., k] = scales[code].score(values[..., k])
    return out


def composite_interval(values: np.ndarray, bases: np.ndarray, mean_hours: np.ndarray,
                       scales: Mapping[str, Scale], weights: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The 90 % interval (low, high) of each body's composite; rows of ``values`` and ``bases`` are
    bodies × 7 sub-indicators (``INDICATOR_CODES`` order, NaN = no data), ``mean_hours`` the mean
    response time of each body. The parametric bootstrap of the module doc."""
    n_bodies = values.shape[0]
    if n_bodies == 0:
        return np.zeros(0), np.zeros(0)
    w = np.array([weights[c] for c in COMPONENT_LABELS], dtype="float64")
    _, point = _combine(sub_scores(values, scales), w)
    # the composite is sum_k coef_k · score_k, with the body's own pattern of missing sub-indicators
    # (a component's weight shared by its sub-indicators with data, renormalised over the components)
    coef = _coefficients(~np.isnan(values), w)
    zero = np.array([scales[c].zero for c in INDICATOR_CODES])
    slope = 100.0 / (np.array([scales[c].full for c in INDICATOR_CODES]) - zero)
    z2 = _Z * _Z
    with np.errstate(invalid="ignore", divide="ignore"):
        t = bases + z2
        spread = np.sqrt(2.0 * np.log(np.fmax(mean_hours / values[:, _MEDIAN], 1.0)))
        spread = np.clip(np.nan_to_num(spread, nan=_SIGMA_RANGE[0]), *_SIGMA_RANGE)
        se_log = math.sqrt(math.pi / 2.0) * spread / np.sqrt(bases[:, _MEDIAN])
        centre = (values * bases + z2 / 2.0) / t
        se = np.sqrt(centre * (1.0 - centre) / t)
    # answered on time is (nearly) a part of answered over the same appeals, so the two shares move
    # together: correlation sqrt(p_t (1 − p_a) / (p_a (1 − p_t))) for nested shares of one base
    pa, pt = centre[:, _RESPONSE], centre[:, _ON_TIME]
    rho = np.nan_to_num(np.sqrt(np.clip(pt * (1.0 - pa) / (pa * (1.0 - pt)), 0.0, 1.0)))
    # each sub-indicator's draws as bodies × draws (contiguous: this is most of the rating's own
    # time), scored, clipped to 0–100 and added to the composite with the body's coefficient
    a = np.nan_to_num(slope * (values - zero)).astype("float32")
    b = np.nan_to_num(slope * se).astype("float32")
    coef32 = coef.astype("float32")
    composite = np.zeros((n_bodies, DRAWS), dtype="float32")
    score = np.empty((n_bodies, DRAWS), dtype="float32")
    for k in range(len(INDICATOR_CODES)):
        if not coef[:, k].any():
            continue
        if k == _MEDIAN:
            drawn = values[:, k, None] * np.exp(se_log[:, None] * _NORMAL_T[None, k, :])
            score[:] = np.nan_to_num(slope[k] * (drawn - zero[k]))
        elif k == _ON_TIME:
            mixed = (rho[:, None] * _NORMAL_T[None, _RESPONSE, :]
                     + np.sqrt(1.0 - rho * rho)[:, None] * _NORMAL_T[None, k, :])
            np.multiply(b[:, k, None], mixed, out=score)
            score += a[:, k, None]
        else:
            np.multiply(b[:, k, None], _NORMAL_T[None, k, :], out=score)
            score += a[:, k, None]
        np.clip(score, 0.0, 100.0, out=score)
        score *= coef32[:, k, None]
        composite += score
    ends = np.partition(composite, _ENDS, axis=1)
    low, high = ends[:, _ENDS[0]].astype("float64"), ends[:, _ENDS[1]].astype("float64")
    return np.fmin(low, point), np.fmax(high, point)


def _coefficients(present: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """bodies × 7: the weight of each sub-indicator in the composite (0 without data)."""
    coef = np.zeros(present.shape)
    column = {code: i for i, code in enumerate(INDICATOR_CODES)}
    component_weight = np.zeros((present.shape[0], len(COMPONENT_INDICATORS)))
    for j, codes in enumerate(COMPONENT_INDICATORS.values()):
        cols = [column[c] for c in codes]
        known = present[:, cols].sum(axis=1)
        component_weight[:, j] = np.where(known > 0, weights[j], 0.0)
        coef[:, cols] = np.where(present[:, cols], weights[j] / np.maximum(known, 1)[:, None], 0.0)
    total = component_weight.sum(axis=1)
    return coef / np.where(total > 0, total, 1.0)[:, None]


def rank_range(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst possible places of each body of one list from its interval ``[low, high]``
    (NaN rows take no part and get NaN): best = 1 + #bodies whose low is above this high;
    worst = #bodies (itself included) whose high is at or above this low."""
    best = np.full(len(low), np.nan)
    worst = np.full(len(low), np.nan)
    member = ~np.isnan(low) & ~np.isnan(high)
    lo, hi = low[member], high[member]
    best[member] = 1 + (lo[None, :] > hi[:, None] + _EPS).sum(axis=1)
    worst[member] = (hi[None, :] >= lo[:, None] - _EPS).sum(axis=1)
    return best, worst


def _rank_desc(values: np.ndarray) -> np.ndarray:
    """Rank 1 = highest, ties share the best place (pandas' method="min"); NaN where NaN."""
    out = np.full(len(values), np.nan)
    member = ~np.isnan(values)
    ordered = np.sort(values[member])
    out[member] = len(ordered) - np.searchsorted(ordered, values[member], side="right") + 1
    return out


def _ranks(composite: np.ndarray, low: np.ndarray, high: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Point rank, best and worst place (3 × bodies) within each group of ``codes``."""
    out = np.full((3, len(composite)), np.nan)
    for g in np.unique(codes):
        member = codes == g
        out[0, member] = _rank_desc(composite[member])
        out[1, member], out[2, member] = rank_range(low[member], high[member])
    return out


def _score(ids: np.ndarray, volume: np.ndarray, groups: np.ndarray, values: np.ndarray, bases: np.ndarray,
           mean_hours: np.ndarray, cfg: RatingConfig, known: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Sub-indicator and component scores, composite with its interval, status and ranks of one
    period's list (numpy columns in, numpy columns out)."""
    eligible = volume >= cfg.min_volume
    for code, bodies in known.items():
        if bodies is not None:  # a field none of the body's sources fills is no data, not "none happened"
            values[~np.isin(ids, bodies), INDICATOR_CODES.index(code)] = np.nan
    values[~(bases > 0)] = np.nan
    values[~eligible] = np.nan

    w = np.array([cfg.weights[c] for c in COMPONENT_LABELS], dtype="float64")
    sub = sub_scores(values, cfg.scales)
    components, composite = _combine(sub, w)
    ranked = eligible & ~np.isnan(composite)
    low = np.full(len(ids), np.nan)
    high = np.full(len(ids), np.nan)
    if ranked.any():
        low[ranked], high[ranked] = composite_interval(values[ranked], bases[ranked], mean_hours[ranked],
                                                       cfg.scales, cfg.weights)
    components[~ranked] = np.nan
    composite[~ranked] = np.nan
    sub[~ranked] = np.nan

    # peer groups: a kind with a single ranked organisation is ranked among all of them
    codes = pd.factorize(groups)[0]
    members = np.bincount(codes, weights=ranked)[codes] if len(codes) else np.zeros(0)
    alone = ranked & (members == 1) & (groups != MUNICIPALITY_PEER_GROUP) & (ranked.sum() > 1)
    groups = np.where(alone, ALONE_PEER_GROUP, groups)
    whole = _ranks(composite, low, high, np.zeros(len(ids), dtype=np.int64))
    final_codes = pd.factorize(groups)[0]
    peer = _ranks(composite, low, high, final_codes)
    peer[:, alone] = whole[:, alone]
    peer_count = np.bincount(final_codes, weights=ranked)[final_codes] if len(ids) else np.zeros(0)
    peer_count = np.where(alone, ranked.sum(), peer_count)

    missing = np.isnan(components) & ranked[:, None]
    labels = np.array(list(COMPONENT_LABELS.values()), dtype=object)
    used = np.array([cfg.weights[c] > 0 for c in COMPONENT_LABELS])
    weak = _weak(components[:, used], np.array(list(COMPONENT_LABELS), dtype=object)[used])
    out: dict[str, np.ndarray] = {
        "volume": volume, "peer_group": groups, "peer_count": peer_count.astype("int64"),
        **{c: components[:, j] for j, c in enumerate(COMPONENT_LABELS)},
        "composite": composite, "composite_low": low, "composite_high": high,
        "status": np.where(ranked, STATUS_RANKED, STATUS_TOO_FEW).astype(object),
        "no_data": np.array(["; ".join(labels[row]) for row in missing], dtype=object),
        "weak_component_code": weak,
        "weak_component": np.array([COMPONENT_LABELS.get(c) if c else None for c in weak], dtype=object),
        **{code: values[:, k] for k, code in enumerate(INDICATOR_CODES)},
        **{f"{code}_base": bases[:, k] for k, code in enumerate(INDICATOR_CODES)},
        **{f"{code}_score": sub[:, k] for k, code in enumerate(INDICATOR_CODES)},
    }
    for name, table in (("rank", whole), ("peer_rank", peer)):
        for i, suffix in enumerate(("", "_best", "_worst")):
            out[f"{name}{suffix}"] = table[i]
    return out


def _weak(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The code of the lowest component of each row (the first listed on a tie); None when there
    is nothing to pick: no scores, or all of them equal."""
    if scores.shape[1] == 0:
        return np.full(len(scores), None, dtype=object)
    known = ~np.isnan(scores)
    low = np.where(known, scores, np.inf)
    spread = np.where(known, scores, -np.inf).max(axis=1) - low.min(axis=1)
    picked = known.any(axis=1) & (spread > _EPS)
    return np.where(picked, codes[low.argmin(axis=1)], None).astype(object)
