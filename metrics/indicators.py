"""Indicators, declared once: every page, export and test reads these declarations.

A ratio is ``sum(numerator) / sum(denominator)`` over the group (never a mean of ratios); numerator
and denominator name measures of ``data.rollup.MEASURES`` or ``DERIVED_MEASURES``. Words as DESIGN §4
defines them: **closed** = has an answer date (any closure); **answered** = closed and not redirected
(a redirect is a lawful hand-off, not a reply); **overdue** = open with its deadline passed. Cohort
indicators judge the appeals received in the period as known at the data date; the two stocks count
what was open at t = min(period end, data date). Medians and percentiles are exact on every path.
Adding an indicator is adding one entry here.

The social-tension index (DESIGN §4, the Moscow Oblast «ИСН» practice) is a declared composite
(``kind="index"``): a weighted sum of shares over one denominator (the period's appeals), each part
a declared indicator of its own, the weights from ``config/severity.toml`` ``[index]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from data.rollup import MEASURES
from data.severity import load_config as load_severity

Kind = Literal["count", "ratio", "rate", "growth", "median", "open", "mean", "index"]


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    description: str
    kind: Kind
    unit: str
    number_format: str  # Python format spec for one value, e.g. ",.0f" or ".1%"
    higher_is_better: bool | None  # None: neither (volume is not good or bad by itself)
    numerator: str | None = None  # measure summed for count / ratio / mean
    denominator: str | None = None  # measure summed for ratio / mean
    duration: int | None = None  # code of data.rollup.DURATIONS for medians
    quantile: float = 0.5
    hours_per_unit: float = 1.0  # medians: hours → unit
    min_volume: int = 20  # below this many appeals in the base the value is «мало данных»
    additive: bool = False  # may be summed across groups
    # index: (indicator code, weight) of each part; the parts are ratios over one denominator and the
    # value is 100 × Σ weight × part / Σ weight
    parts: tuple[tuple[str, float], ...] = ()
    # Rests on answers (closures, first responses, ratings) that keep arriving for 30 days after the
    # period: «ответы ещё поступают» until it is settled, compared at the same age (metrics.compare).
    # Set from ANSWER_BASED below.
    answer_based: bool = False

    def format(self, value: float | None) -> str:
        """A value as a person reads it: «1 234», «87,5 %», «12,3 ч»."""
        if value is None or value != value:  # NaN
            return "—"
        text = format(value, self.number_format).replace(",", "\u00a0").replace(".", ",")
        if self.number_format.endswith("%"):
            return text.replace("%", "\u00a0%")
        return f"{text}\u00a0{self.unit}" if self.unit and self.kind in ("median", "mean") else text


def _weight(value: float) -> str:
    return f"{value:g}".replace(".", ",")


_WEIGHTS = load_severity().weights
_INDEX_PARTS = (("severe_share", _WEIGHTS["severe"]), ("repeat_share", _WEIGHTS["repeat"]),
                ("surge_share", _WEIGHTS["surge"]))

INDICATORS: tuple[Indicator, ...] = (
    Indicator("volume", "Количество обращений", "Обращения и сообщения, поступившие за период.",
              "count", "обращений", ",.0f", None, numerator="n", min_volume=0, additive=True),
    Indicator("rate_10k", "На 10 тыс. жителей", "Обращений за период на 10 000 жителей (население приблизительное).",
              "rate", "на 10 тыс.", ",.1f", None, numerator="n", min_volume=0),
    Indicator("growth", "Рост к прошлому периоду", "(количество − количество за прошлый период) / количество за прошлый.",
              "growth", "%", "+.1%", False, numerator="n", min_volume=10),
    Indicator("on_time_share", "Доля в срок",
              "Закрыты не позже срока / (закрытые с известным сроком + просроченные без ответа): "
              "неотвеченное просроченное обращение считается нарушением срока.",
              "ratio", "%", ".1%", True, numerator="n_on_time", denominator="on_time_base"),
    Indicator("overdue_open", "Просрочено без ответа",
              "Остаток: обращения без ответа на конец периода (для текущего — на дату данных), срок которых "
              "к этому моменту прошёл, когда бы они ни поступили.",
              "open", "обращений", ",.0f", False, min_volume=0, additive=True),
    Indicator("backlog_open", "Без ответа",
              "Остаток: обращения без ответа на конец периода (для текущего — на дату данных), когда бы они "
              "ни поступили; ответ после конца периода не в счёт. По возрасту на этот момент в календарных "
              "днях: ≤ 3, 4–10, 11–30, > 30.",
              "open", "обращений", ",.0f", False, min_volume=0, additive=True),
    Indicator("response_hours_median", "Медиана времени первой реакции, ч",
              "Медиана часов от поступления до первой реакции, по обращениям периода с первой реакцией.",
              "median", "ч", ",.1f", False, duration=0, denominator="n_responded"),
    Indicator("resolve_days_median", "Медиана срока ответа, дн",
              "Медиана дней от поступления до ответа, по обращениям периода с ответом (перенаправление — не ответ).",
              "median", "дн", ",.1f", False, duration=1, hours_per_unit=24.0, denominator="n_answered"),
    Indicator("resolve_days_p90", "90-й процентиль срока ответа, дн",
              "Девять из десяти ответов даны не позже (перенаправление — не ответ).",
              "median", "дн", ",.1f", False, duration=1, quantile=0.9, hours_per_unit=24.0, denominator="n_answered"),
    Indicator("resolved_share", "Проблема решена",
              "Закрыто с решением проблемы / все ответы (разъяснение — не решение, перенаправление — не ответ).",
              "ratio", "%", ".1%", True, numerator="n_resolved", denominator="n_answered"),
    Indicator("distinct_problems", "Уникальных проблем", "Обращения без пометки «дубликат»: несколько жалоб на одну яму — одна проблема.",
              "count", "проблем", ",.0f", None, numerator="n_distinct", min_volume=0, additive=True),
    Indicator("within_30d_share", "Решено за 30 дней",
              "Ответ до конца 30-го календарного дня после дня поступления / (обращения, чей 30-дневный срок "
              "истёк к дате данных, + получившие ответ в этот срок).",
              "ratio", "%", ".1%", True, numerator="n_within_30d", denominator="eligible_30d"),
    Indicator("satisfaction_share", "Удовлетворённость", "Оценки 4 и 5 / все оценки граждан.",
              "ratio", "%", ".1%", True, numerator="n_satisfied", denominator="n_rated"),
    Indicator("rework_share", "Возвращено на доработку",
              "Возвращённые на доработку / все ответы (перенаправление — не ответ).",
              "ratio", "%", ".1%", False, numerator="n_rework", denominator="n_answered"),
    Indicator("merits_share", "Ответ по существу", "Ответы по существу / все ответы (перенаправление — не ответ).",
              "ratio", "%", ".1%", True, numerator="n_merits", denominator="n_answered"),
    Indicator("repeat_share", "Повторные обращения", "Повторные обращения / все обращения.",
              "ratio", "%", ".1%", False, numerator="n_repeat", denominator="n"),
    Indicator("severe_share", "Доля сообщений высокой тяжести",
              "Обращения в категориях высокой тяжести / все обращения. Тяжесть категорий задаёт центр "
              "(нет тепла, воды, света, лекарств, аварийное жильё, невыплаты…).",
              "ratio", "%", ".1%", False, numerator="n_severe", denominator="n"),
    Indicator("surge_share", "Доля прироста",
              "max(0, количество − количество за прошлый сравнимый период) / количество: какая часть "
              "обращений периода пришла сверх уровня прошлого периода той же длины (по измерению времени — "
              "прошлого месяца, квартала, недели или дня).",
              "ratio", "%", ".1%", False, numerator="n_excess", denominator="n"),
    Indicator("tension_index", "Индекс социальной напряжённости",
              f"ИСН = 100 × ({_weight(_WEIGHTS['severe'])} × доля сообщений высокой тяжести + "
              f"{_weight(_WEIGHTS['repeat'])} × доля повторных + {_weight(_WEIGHTS['surge'])} × доля прироста) / "
              f"{_weight(sum(_WEIGHTS.values()))}: от 0 до 100, больше — напряжённее. Все доли — от обращений "
              "периода; тяжесть категорий и веса задаёт центр.",
              "index", "баллов", ",.1f", False, parts=_INDEX_PARTS),
    Indicator("response_share", "Доля с ответом",
              "Получили ответ / (закрытые + просроченные без ответа), по обращениям периода; "
              "перенаправление закрывает обращение, но ответом не считается.",
              "ratio", "%", ".1%", True, numerator="n_answered", denominator="response_base"),
    Indicator("redirect_share", "Перенаправлено",
              "Закрыты перенаправлением в другой орган / все закрытые обращения периода.",
              "ratio", "%", ".1%", None, numerator="n_redirected", denominator="n_closed"),
    Indicator("first_response_on_time_share", "Первая реакция в срок", "Первая реакция не позже срока (соцсети: 8 рабочих часов).",
              "ratio", "%", ".1%", True, numerator="n_first_on_time", denominator="n_first_due"),
    Indicator("response_hours_mean", "Среднее время первой реакции, ч", "Среднее часов до первой реакции.",
              "mean", "ч", ",.1f", False, numerator="sum_response_hours", denominator="n_responded"),
)

# Everything but the counts of receipts (volume, rate, growth, distinct, repeat) and the stocks,
# which are fully known at their snapshot point: one list, so that a new indicator is a one-word change.
ANSWER_BASED = frozenset({
    "on_time_share", "response_hours_median", "resolve_days_median", "resolve_days_p90", "resolved_share",
    "within_30d_share", "satisfaction_share", "rework_share", "merits_share", "response_share",
    "first_response_on_time_share", "response_hours_mean", "redirect_share",
})
INDICATORS = tuple(replace(i, answer_based=i.code in ANSWER_BASED) for i in INDICATORS)

# Measures the query derives besides the rollup's own (see metrics.query): they depend on the moment
# the data are judged at. ``n_overdue``: appeals of the period open and past their deadline;
# ``on_time_base`` = closed with a deadline + n_overdue; ``response_base`` = closed + n_overdue;
# ``eligible_30d``: appeals whose 30-day window has ended + those answered inside it.
# ``n_severe``: appeals in a category of high severity (``category.severity``, read at query time);
# ``n_prev``: appeals of the previous comparable period (or time bucket) of the same group;
# ``n_excess`` = max(n − n_prev, 0).
DERIVED_MEASURES = ("eligible_30d", "n_overdue", "on_time_base", "response_base", "n_severe", "n_prev", "n_excess")


def registry() -> dict[str, Indicator]:
    return {i.code: i for i in INDICATORS}


def get(code: str) -> Indicator:
    try:
        return registry()[code]
    except KeyError as exc:
        raise KeyError(f"неизвестный показатель: {code!r}") from exc


def validate_registry() -> list[str]:
    """Every problem of the declarations at once (empty when all is well)."""
    problems = []
    known = set(MEASURES) | set(DERIVED_MEASURES)
    seen: set[str] = set()
    for ind in INDICATORS:
        if ind.code in seen:
            problems.append(f"{ind.code}: declared twice")
        seen.add(ind.code)
        for part in (ind.numerator, ind.denominator):
            if part is not None and part not in known:
                problems.append(f"{ind.code}: unknown measure {part}")
        if ind.kind == "ratio" and not (ind.numerator and ind.denominator):
            problems.append(f"{ind.code}: a ratio needs numerator and denominator")
        if ind.kind == "median" and ind.duration is None:
            problems.append(f"{ind.code}: a median needs a duration")
        if ind.kind == "index":
            parts = [registry().get(code) for code, _ in ind.parts]
            if not parts or any(p is None or p.kind != "ratio" for p in parts):
                problems.append(f"{ind.code}: an index is made of declared ratios")
            elif len({p.denominator for p in parts}) != 1:
                problems.append(f"{ind.code}: the parts of an index share one denominator")
            if any(w < 0 for _, w in ind.parts) or sum(w for _, w in ind.parts) <= 0:
                problems.append(f"{ind.code}: index weights are non-negative with a positive sum")
        if not ind.label or not ind.description:
            problems.append(f"{ind.code}: label and description are required")
    return problems
