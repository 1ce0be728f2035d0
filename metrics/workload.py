"""Workload of the sector blocks and the staff they need: history, forecast, proposal.

For each sector block (``sector``), month by month:

- ``received`` — appeals received (the declared indicator ``volume`` through ``metrics.query``,
  read from the monthly rollup);
- ``open_end`` — appeals without an answer at the end of the month (received before it, answered
  after it or not yet);
- ``overdue_end`` — of those, past their deadline at the end of the month.

The last two are stocks at a moment, not sums over the month: they come from the facts as running
totals (received − answered; due − answered after their due date) with one scan per event kind, so
no appeal × month join is needed. For the month of the data date «the end» is the data date, so
the last values equal the indicators ``backlog_open`` and ``overdue_open``.

Forecast of ``received`` for the next ``HORIZON`` months after the last complete month, fitted on
the block's own history: Holt-Winters (statsmodels ``ExponentialSmoothing``, no trend, seasonal
period 12, additive or multiplicative seasonality by AICc) when there are at least
``HW_MIN_MONTHS`` complete months; the seasonal naive forecast (the same month a year earlier)
with 12–23 months; the mean of the last three months with fewer. Both models are checked by a
rolling-origin backtest (train on the months before an origin, forecast 1–3 months ahead, compare
with what came; the last ``BACKTEST_ORIGINS`` origins): MAPE and sMAPE per block. When the backtest
shows the seasonal naive forecast better than Holt-Winters on the same origins, it is used instead.

Staff needed in a month = ⌈load per working day / norm⌉, the norm being appeals one specialist
processes per working day (``config/staffing.toml``). The load per working day is the month's
appeals over the working days that serve them: appeals arrive on every calendar day and are
answered within 30 days, so a month's appeals are worked off at the year's average pace, not in
the month's own working days — the days of the month × the year's working days / its calendar days
(``capacity_days``, by the region's calendar of ``data.workcalendar``, Russian by default). Dividing
by the month's own working days would make January (15 working days after the New Year holidays)
need a third more people than December for the same daily inflow: a phantom shortage. Compared with
the block's current headcount this gives the proposal «усилить блок ЖКХ на 2 специалистов с декабря 2026».
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from data import workcalendar
from data.warehouse import read_region
from metrics import words
from metrics.periods import Period, add_months, is_complete, month, month_start, months_between
from metrics.query import _where, data_as_of, query_on, reference
from metrics.scope import REGION, Scope, effective
from metrics.source import reader, warehouse_identity

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "staffing.toml"
CONFIG_ENV = "CUR_STAFFING_CONFIG"
DEFAULT_NORM = 10.0

HORIZON = 3
SEASON = 12
HW_MIN_MONTHS = 24
NAIVE_MIN_MONTHS = 12
MIN_MONTHS = 3  # fewer complete months: no forecast at all
BACKTEST_ORIGINS = 12
PLAN_CACHE_SIZE = 32  # plans kept (one per scope in use) until the warehouse file changes
_plan_cache: dict[tuple, WorkloadPlan] = {}
_plan_lock = threading.Lock()

MODEL_LABELS: dict[str, str] = {
    "holt_winters_add": "Холт-Уинтерс, аддитивная сезонность",
    "holt_winters_mul": "Холт-Уинтерс, мультипликативная сезонность",
    "seasonal_naive": "сезонный наивный (тот же месяц год назад)",
    "mean3": "среднее последних трёх месяцев",
}
LOAD_LABELS: dict[str, str] = {
    "received": "Поступило",
    "open_end": "Без ответа на конец месяца",
    "overdue_end": "Просрочено на конец месяца",
}


class StaffingConfigError(ValueError):
    """The staffing settings are wrong; the message is for a person."""


@dataclass(frozen=True)
class StaffingConfig:
    norm_per_day: float
    norms: dict[str, float] = field(default_factory=dict)  # sector code → norm for that block
    headcount: dict[str, int] = field(default_factory=dict)  # sector code → specialists now

    def norm(self, sector_code: str) -> float:
        return self.norms.get(sector_code, self.norm_per_day)


@dataclass(frozen=True)
class Proposal:
    sector_code: str
    sector_name: str
    action: str  # reinforce | enough | surplus | unknown
    text: str
    start_month: dt.date | None
    change: int  # specialists to add (negative: could be moved elsewhere)


@dataclass
class WorkloadPlan:
    history: pd.DataFrame  # sector × month: received, open_end, overdue_end, complete
    forecast: pd.DataFrame  # sector × forecast month: forecast, model, working_days, norm, needed, current, gap
    backtest: pd.DataFrame  # sector × model: mape, smape, origins
    proposals: list[Proposal]
    as_of: dt.datetime
    config: StaffingConfig


# --- settings ---------------------------------------------------------------------------------


def _positive_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise StaffingConfigError(f"{where}: норма — число обращений больше нуля, получено {value!r}")
    return float(value)


def parse_config(data: Mapping[str, object], where: str, sector_codes: set[str] | None = None) -> StaffingConfig:
    """Settings from a parsed TOML table; every problem is a Russian ``StaffingConfigError``."""
    unknown = sorted(set(data) - {"norm_per_day", "norm", "headcount"})
    if unknown:
        raise StaffingConfigError(f"{where}: неизвестные настройки {', '.join(unknown)}; "
                                  "допустимы norm_per_day, [norm] и [headcount]")
    norm = _positive_number(data.get("norm_per_day", DEFAULT_NORM), f"{where}: norm_per_day")
    tables: dict[str, dict] = {}
    for name in ("norm", "headcount"):
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise StaffingConfigError(f"{where}: {name} — таблица [{name}] «код блока = число»")
        if sector_codes is not None:
            strange = sorted(set(raw) - sector_codes)
            if strange:
                raise StaffingConfigError(f"{where}: [{name}] неизвестный блок {', '.join(strange)}; "
                                          f"допустимы: {', '.join(sorted(sector_codes))}")
        tables[name] = raw
    norms = {code: _positive_number(v, f"{where}: [norm] {code}") for code, v in tables["norm"].items()}
    headcount: dict[str, int] = {}
    for code, value in tables["headcount"].items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StaffingConfigError(
                f"{where}: [headcount] {code} — целое неотрицательное число специалистов, получено {value!r}")
        headcount[code] = value
    return StaffingConfig(norm, norms, headcount)


def load_config(path: str | Path | None = None, sector_codes: set[str] | None = None) -> StaffingConfig:
    """Settings from ``path``, else env ``CUR_STAFFING_CONFIG``, else ``config/staffing.toml``.

    A missing default file means the default norm and no headcount (needs without proposals); a
    file named explicitly must exist.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else DEFAULT_CONFIG
    if not file.exists():
        if explicit:
            raise StaffingConfigError(f"файл настроек кадров не найден: {file}")
        return StaffingConfig(DEFAULT_NORM)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StaffingConfigError(f"{file}: файл настроек кадров не читается: {exc}") from exc
    return parse_config(data, str(file), sector_codes)


# --- load history -----------------------------------------------------------------------------


def monthly_load(scope: Scope = REGION, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Sector × month: ``received``, ``open_end``, ``overdue_end`` and ``complete`` (whole month in the data).

    Columns also ``sector_id``, ``sector_code``, ``sector_name``, ``month`` (first day). Every month
    from the first with data to the data date, for every sector of the scope with data.
    """
    if con is None:
        with reader() as own:
            return monthly_load(scope, own)
    as_of = data_as_of(con)
    bounds = con.execute("SELECT min(month), max(month) FROM appeal_monthly").fetchall()[0]
    if bounds[0] is None:
        return pd.DataFrame(columns=["sector_id", "sector_code", "sector_name", "month", "received", "open_end",
                                     "overdue_end", "complete"])
    first, last = bounds
    last = max(last, month_start(as_of.date()))
    end = add_months(last, 1)
    span = Period(first, end, "range", f"{first:%Y-%m-%d}..{end - dt.timedelta(days=1):%Y-%m-%d}")
    received = query_on(con, ["volume"], ["sector", "month"], span, scope=scope, as_of=as_of, labels=False)
    received = received.rename(columns={"volume": "received"})[["sector_id", "month", "received"]]

    where, params = _where({}, scope, span, rollup=False)
    params["as_of"] = as_of
    # running totals of events by month; an event at or after the data date has not happened yet
    sql = f"""
        SELECT sector_id, kind, month, count(*) AS n FROM (
            SELECT sector_id, 'answered' AS kind, CAST(date_trunc('month', answered_at) AS DATE) AS month
            FROM appeal WHERE answered_at < $as_of AND {where}
            UNION ALL
            SELECT sector_id, 'due', CAST(date_trunc('month', due_at) AS DATE)
            FROM appeal WHERE due_at < $as_of AND {where}
            UNION ALL
            SELECT sector_id, 'due_answered', CAST(date_trunc('month', greatest(due_at, answered_at)) AS DATE)
            FROM appeal WHERE answered_at IS NOT NULL AND due_at IS NOT NULL
                AND greatest(due_at, answered_at) < $as_of AND {where}
        ) GROUP BY ALL"""  # noqa: S608 - the clause of metrics.query._where, values bound
    events = con.execute(sql, params).df()

    months = [p.start for p in months_between(first, last)]
    sectors = sorted(set(received["sector_id"].dropna().astype("int64")))
    grid = pd.MultiIndex.from_product([sectors, months], names=["sector_id", "month"]).to_frame(index=False)
    received["sector_id"] = received["sector_id"].astype("int64")
    received["month"] = _dates(received["month"])
    out = grid.merge(received, on=["sector_id", "month"], how="left")
    if not events.empty:
        events["sector_id"] = events["sector_id"].astype("int64")
        events["month"] = _dates(events["month"])
        wide = events.pivot_table(index=["sector_id", "month"], columns="kind", values="n", aggfunc="sum")
        out = out.merge(wide.reset_index(), on=["sector_id", "month"], how="left")
    for col in ("received", "answered", "due", "due_answered"):
        out[col] = out[col].fillna(0).astype("int64") if col in out else 0
    cum = out.groupby("sector_id")[["received", "answered", "due", "due_answered"]].cumsum()
    out["open_end"] = (cum["received"] - cum["answered"]).astype("int64")
    out["overdue_end"] = (cum["due"] - cum["due_answered"]).astype("int64")
    out["complete"] = [is_complete(month(m), as_of) for m in out["month"]]
    out = out.merge(reference(con, "sector"), on="sector_id", how="left")
    return out[["sector_id", "sector_code", "sector_name", "month", "received", "open_end", "overdue_end",
                "complete"]].reset_index(drop=True)


# --- forecasting -------------------------------------------------------------------------------


def seasonal_naive(y: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """The same month a year earlier (needs ≥ 12 values)."""
    y = np.asarray(y, dtype="float64")
    return np.array([y[len(y) - SEASON + (h % SEASON)] for h in range(horizon)])


def mean_last3(y: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    return np.full(horizon, float(np.mean(np.asarray(y, dtype="float64")[-3:])))


def holt_winters(y: np.ndarray, horizon: int = HORIZON, seasonal: str | None = None) -> tuple[np.ndarray, str]:
    """Holt-Winters without trend, seasonal period 12; ``seasonal`` None: additive or multiplicative,
    whichever has the lower AICc (multiplicative only for a positive series). Returns (forecast, kind)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.asarray(y, dtype="float64")
    kinds = [seasonal] if seasonal else (["add", "mul"] if (y > 0).all() else ["add"])
    best: tuple[float, np.ndarray, str] | None = None
    for kind in kinds:
        with warnings.catch_warnings():
            # convergence chatter on short series; the backtest is what judges the model
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(y, trend=None, seasonal=kind, seasonal_periods=SEASON,
                                       initialization_method="estimated").fit()
        aicc = float(fit.aicc) if np.isfinite(fit.aicc) else float("inf")
        values = np.asarray(fit.forecast(horizon), dtype="float64")
        if not np.isfinite(values).all():
            continue
        if best is None or aicc < best[0]:
            best = (aicc, values, kind)
    if best is None:
        return seasonal_naive(y, horizon), "naive"
    return np.maximum(best[1], 0.0), best[2]


def backtest(
    y: np.ndarray,
    predict: Callable[[np.ndarray, int], np.ndarray],
    origins: list[int],
    horizon: int = HORIZON,
) -> dict[str, float]:
    """Rolling-origin errors: for each origin t, train on y[:t], forecast 1…horizon ahead, compare with
    y[t:t+horizon] (as far as known). MAPE over actual values > 0; sMAPE = mean 2|a − f| / (|a| + |f|)."""
    y = np.asarray(y, dtype="float64")
    actual, predicted = [], []
    for t in origins:
        h = min(horizon, len(y) - t)
        if h <= 0:
            continue
        f = predict(y[:t], h)
        actual.extend(y[t:t + h])
        predicted.extend(f[:h])
    a, f = np.array(actual), np.array(predicted)
    if not len(a):
        return {"mape": float("nan"), "smape": float("nan"), "points": 0, "origins": 0}
    pos = a > 0
    mape = float(np.mean(np.abs(a[pos] - f[pos]) / a[pos])) if pos.any() else float("nan")
    denom = np.abs(a) + np.abs(f)
    smape = float(np.mean(np.where(denom > 0, 2 * np.abs(a - f) / np.where(denom > 0, denom, 1), 0.0)))
    return {"mape": mape, "smape": smape, "points": len(a), "origins": len(origins)}


@dataclass(frozen=True)
class SeriesForecast:
    values: np.ndarray
    model: str  # a key of MODEL_LABELS
    errors: dict[str, dict[str, float]]  # model family (holt_winters | seasonal_naive) → backtest errors
    note: str


def forecast_series(y: np.ndarray, horizon: int = HORIZON) -> SeriesForecast:
    """The forecast of one monthly series by the module's rule, with the backtest of both models."""
    y = np.asarray(y, dtype="float64")
    n = len(y)
    errors: dict[str, dict[str, float]] = {}
    if n < MIN_MONTHS:
        return SeriesForecast(np.full(horizon, np.nan), "", errors, "меньше трёх полных месяцев истории")
    if n < NAIVE_MIN_MONTHS:
        return SeriesForecast(mean_last3(y, horizon), "mean3", errors,
                              "меньше 12 месяцев истории: сезонность не оценить")
    hw_origins = list(range(max(HW_MIN_MONTHS, n - BACKTEST_ORIGINS), n))
    naive_origins = list(range(max(NAIVE_MIN_MONTHS, n - BACKTEST_ORIGINS), n))
    if n < HW_MIN_MONTHS:
        errors["seasonal_naive"] = backtest(y, seasonal_naive, naive_origins, horizon)
        return SeriesForecast(seasonal_naive(y, horizon), "seasonal_naive", errors,
                              f"меньше {HW_MIN_MONTHS} месяцев истории: сезонный наивный прогноз")
    values, kind = holt_winters(y, horizon)
    if kind == "naive":
        errors["seasonal_naive"] = backtest(y, seasonal_naive, naive_origins, horizon)
        return SeriesForecast(seasonal_naive(y, horizon), "seasonal_naive", errors,
                              "Холт-Уинтерс не сошёлся: сезонный наивный прогноз")
    if hw_origins:
        # the seasonality kind chosen on the whole history is kept at every origin (one fit each)
        errors["holt_winters"] = backtest(y, lambda t, h: holt_winters(t, h, kind)[0], hw_origins, horizon)
        errors["seasonal_naive"] = backtest(y, seasonal_naive, hw_origins, horizon)
        if errors["seasonal_naive"]["smape"] < errors["holt_winters"]["smape"]:
            return SeriesForecast(seasonal_naive(y, horizon), "seasonal_naive", errors,
                                  "на проверке по истории сезонный наивный прогноз точнее Холта-Уинтерса")
        return SeriesForecast(values, f"holt_winters_{kind}", errors, "")
    errors["seasonal_naive"] = backtest(y, seasonal_naive, naive_origins, horizon)
    return SeriesForecast(values, f"holt_winters_{kind}", errors,
                          f"Холт-Уинтерс проверить по истории нельзя: нужно больше {HW_MIN_MONTHS} месяцев")


# --- staffing ------------------------------------------------------------------------------------


def working_days_in_month(first: dt.date, calendar: str = workcalendar.DEFAULT_CALENDAR) -> int:
    """Working days of a month by the region's calendar (Russian by default: holidays and transfers included)."""
    start = np.datetime64(month_start(first), "D")
    end = np.datetime64(add_months(first, 1), "D")
    return int(workcalendar.is_working_day(np.arange(start, end), calendar).sum())


def capacity_days(first: dt.date, calendar: str = workcalendar.DEFAULT_CALENDAR) -> float:
    """Working days that serve a month's appeals: its calendar days at the year's share of working
    days of the region's calendar (247 of 365 in a usual Russian year), so equal daily inflow means
    equal staff in every month."""
    year_start = np.datetime64(dt.date(first.year, 1, 1), "D")
    year_end = np.datetime64(dt.date(first.year + 1, 1, 1), "D")
    working = int(workcalendar.is_working_day(np.arange(year_start, year_end), calendar).sum())
    days = (add_months(month_start(first), 1) - month_start(first)).days
    return days * working / int((year_end - year_start).astype(int))


def staff_needed(forecast: float, norm_per_day: float, working_days: float) -> int:
    """Specialists to process ``forecast`` appeals over ``working_days``: ⌈forecast / (norm × working days)⌉."""
    if working_days <= 0 or norm_per_day <= 0:
        raise ValueError("норма и число рабочих дней должны быть больше нуля")
    # a hair of float noise (120 / (10 × 12) = 1.0000000001) must not add a person
    return int(math.ceil(forecast / (norm_per_day * working_days) - 1e-9))


def proposal_for(sector_code: str, sector_name: str, rows: pd.DataFrame, current: int | None) -> Proposal:
    """The proposal for one block from its forecast rows (month, needed), in order."""
    if current is None:
        return Proposal(sector_code, sector_name, "unknown",
                        f"Блок «{sector_name}»: численность не задана в настройках — предложение не формируется.",
                        None, 0)
    if rows.empty or rows["needed"].isna().all():
        return Proposal(sector_code, sector_name, "unknown",
                        f"Блок «{sector_name}»: истории мало для прогноза — предложение не формируется.", None, 0)
    gap = rows["needed"] - current
    if (gap > 0).any():
        first = rows.loc[gap > 0, "month"].iloc[0]
        add = int(gap.max())
        text = (f"Усилить блок «{sector_name}» на {add}\u00a0{words.plural(add, words.SPECIALISTS_DATIVE)} "
                f"с {words.month_genitive(first)}")
        by_month = "; ".join(
            f"{words.MONTHS_NOMINATIVE[r.month.month - 1]} — нужно {int(r.needed)}" for r in rows.itertuples())
        return Proposal(sector_code, sector_name, "reinforce", f"{text} (сейчас {current}; {by_month}).",
                        first, add)
    spare = int((-gap).min())
    if spare >= 1:
        return Proposal(sector_code, sector_name, "surplus",
                        f"Блок «{sector_name}»: нагрузка ниже численности — в ближайшие три месяца можно "
                        f"перераспределить до {spare}\u00a0{words.plural(spare, words.SPECIALISTS_DATIVE)} "
                        f"(сейчас {current}, нужно не больше {int(rows['needed'].max())}).", None, -spare)
    return Proposal(sector_code, sector_name, "enough",
                    f"Блок «{sector_name}»: численности достаточно (сейчас {current}, нужно {int(rows['needed'].max())}).",
                    None, 0)


def staffing_plan(
    scope: Scope = REGION,
    config: StaffingConfig | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    horizon: int = HORIZON,
) -> WorkloadPlan:
    """History, forecast, backtest and proposals of every sector block of the scope.

    Without ``con`` the plan is kept until the warehouse file changes (keyed by the file's identity,
    the effective scope, the settings and the horizon): the page and the brief ask for it on every
    open of «Решения», and it changes only with the data. Callers treat it as read-only."""
    if con is None:
        key = (warehouse_identity(), effective(scope), repr(config), horizon)
        with _plan_lock:
            cached = _plan_cache.get(key)
        if cached is not None:
            return cached
        with reader() as own:
            plan = staffing_plan(scope, config, own, horizon)
        with _plan_lock:
            _plan_cache[key] = plan
            while len(_plan_cache) > PLAN_CACHE_SIZE:
                _plan_cache.pop(next(iter(_plan_cache)))
        return plan
    sectors = reference(con, "sector")
    if config is None:
        config = load_config(sector_codes=set(sectors["sector_code"]))
    as_of = data_as_of(con)
    calendar = read_region(con).calendar
    history = monthly_load(scope, con)
    forecasts, tests, proposals = [], [], []
    for (sector_id, code, name), part in history.groupby(["sector_id", "sector_code", "sector_name"], sort=True):
        complete = part[part["complete"]].sort_values("month")
        if complete.empty:
            continue
        result = forecast_series(complete["received"].to_numpy(dtype="float64"), horizon)
        start = add_months(complete["month"].iloc[-1], 1)
        months = [add_months(start, h) for h in range(horizon)]
        norm = config.norm(code)
        current = config.headcount.get(code)
        rows = []
        for m, value in zip(months, result.values, strict=True):
            wd = working_days_in_month(m, calendar)
            days = capacity_days(m, calendar)
            needed = staff_needed(value, norm, days) if np.isfinite(value) else None
            rows.append({"sector_id": int(sector_id), "sector_code": code, "sector_name": name, "month": m,
                         "forecast": float(value), "model": result.model, "model_label": MODEL_LABELS.get(result.model, ""),
                         "note": result.note, "working_days": wd, "capacity_days": days,
                         "load_per_day": float(value) / days if np.isfinite(value) else float("nan"),
                         "norm": norm, "needed": needed, "current": current,
                         "gap": (needed - current) if needed is not None and current is not None else None})
        frame = pd.DataFrame(rows)
        forecasts.append(frame)
        for family, err in result.errors.items():
            tests.append({"sector_id": int(sector_id), "sector_code": code, "sector_name": name, "model": family,
                          "mape": err["mape"], "smape": err["smape"], "origins": err["origins"],
                          "points": err["points"], "chosen": result.model.startswith(family)})
        proposals.append(proposal_for(code, name, frame, current))
    forecast = pd.concat(forecasts, ignore_index=True) if forecasts else pd.DataFrame()
    tests_frame = pd.DataFrame(tests, columns=["sector_id", "sector_code", "sector_name", "model", "mape", "smape",
                                               "origins", "points", "chosen"])
    return WorkloadPlan(history, forecast, tests_frame, proposals, as_of, config)


def _dates(values: pd.Series) -> pd.Series:
    """Month keys as ``datetime.date`` whatever DuckDB and pandas made of them."""
    return pd.Series(pd.to_datetime(values).dt.date, index=values.index, dtype="object")
