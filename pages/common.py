"""Pieces every page shares: the period choices and their default (the last complete month), the
period's warnings («неполный период», «ответы ещё поступают»), Russian dropdowns and the message for a
missing warehouse. Where a period stands is decided in ``metrics.periods`` only."""

from __future__ import annotations

import datetime as dt

import dash_bootstrap_components as dbc
from dash import dcc, html

from auth.session import current_scope  # noqa: F401  (pages read the scope here)
from metrics import catalog
from metrics.periods import Period, default_month, is_complete, month, parse_period, quarter_of, status_notes
from metrics.scope import Scope
from metrics.source import warehouse_path

# dcc.Dropdown's own texts (search box, multi-select actions) are English; the component does not
# merge a partial dict with its defaults, so every key is given.
DROPDOWN_LABELS = {
    "select_all": "Выбрать все",
    "deselect_all": "Снять выбор",
    "selected_count": "Выбрано: {num_selected}",
    "search": "Поиск",
    "clear_search": "Очистить поиск",
    "clear_selection": "Очистить выбор",
    "no_options_found": "Ничего не найдено",
}


def dropdown(id: str, **props) -> dcc.Dropdown:  # noqa: A002  (Dash's own name for the prop)
    """A dcc.Dropdown speaking Russian; every page builds its dropdowns through this."""
    return dcc.Dropdown(id=id, labels=DROPDOWN_LABELS, **props)


def period_options(months: list[dt.date], quarters_first: bool = False, last30: bool = False,
                   as_of: dt.datetime | None = None) -> list[dict]:
    """Months with data (newest first) and their quarters, as dropdown options with Russian labels;
    with the data date ``as_of`` a period not yet complete says so in its label."""

    def label(period: Period) -> str:
        text = period.label[:1].upper() + period.label[1:]
        return f"{text} — неполный" if as_of is not None and not is_complete(period, as_of) else text

    monthly = [{"label": label(month(m)), "value": month(m).code} for m in months]
    quarterly = [{"label": label(parse_period(q)), "value": q}
                 for q in dict.fromkeys(quarter_of(m).code for m in months)]
    options = quarterly + monthly if quarters_first else monthly + quarterly
    if last30:
        options.append({"label": "Последние 30 дней", "value": "last30"})
    return options


def default_period(months: list[dt.date], as_of: dt.datetime) -> str | None:
    """The code of the period a page opens on: the last complete month with data
    (``metrics.periods.default_month``)."""
    period = default_month(months, as_of)
    return period.code if period is not None else None


def period_warning(period: Period, as_of: dt.datetime, answer_based: bool = True) -> str:
    """« · неполный период · ответы ещё поступают» (what applies) to follow a period's label."""
    return "".join(f" · {note}" for note in status_notes(period, as_of, answer_based))


def period_badges(period: Period, as_of: dt.datetime, answer_based: bool = True, id: str | None = None) -> html.Span:  # noqa: A002
    """The period's warnings as badges beside its numbers; empty when it is complete and settled."""
    notes = status_notes(period, as_of, answer_based)
    extra = {"id": id} if id else {}
    return html.Span([dbc.Badge(n, color="warning", text_color="dark", className="me-1 fw-normal") for n in notes],
                     className="period-warnings", **extra)


def missing_warehouse(alert_id: str) -> dbc.Alert:
    return dbc.Alert(
        [
            html.H4("Хранилище данных не найдено", className="alert-heading"),
            html.P(f"Файл {warehouse_path()} отсутствует."),
            html.P(["Постройте демо-данные командой ", html.Code("make demo"), " или загрузите свои: ",
                    html.Code("python -m data import ФАЙЛ"), "."]),
        ],
        color="warning",
        id=alert_id,
    )


def no_appeals(alert_id: str) -> dbc.Alert:
    return dbc.Alert("В хранилище пока нет обращений: загрузите файл командой python -m data import.",
                     color="info", id=alert_id)


def compared_with(scope: Scope, unit: int | None = None) -> str | None:
    """The words before a tile's comparison value, as the user's scope sees the «region»: «в регионе»
    for the whole region; otherwise the user's own municipalities (the queries run under the scope,
    so the «region» of an МЦУ is their municipality). None when the comparison would set ``unit``
    against itself: a municipality's tiles beside the only municipality its user may see."""
    ids = scope.municipality_ids
    if ids is None:
        return "в регионе"
    if unit is not None and ids == {unit}:
        return None
    # short: a tile is ~200 px wide at 1366 px, and the user has just this one municipality
    return "в муниципалитете" if len(ids) == 1 else "в ваших муниципалитетах"


def scope_note(scope: Scope, tail: tuple[str, str] = ("все числа здесь — только по нему, а не по всему региону",
                                                     "все числа здесь — только по ним, а не по всему региону")) -> str:
    """For a user who sees only some municipalities, what a region-wide view actually shows: their
    municipalities by name, then ``tail`` (its wording for one municipality, for several); "" for the whole region."""
    ids = scope.municipality_ids
    if ids is None:
        return ""
    names = sorted(n for i, n in catalog.names("municipality").items() if i in ids)
    if len(names) == 1:
        return f"Вам доступен только муниципалитет «{names[0]}»: {tail[0]}."
    listed = ", ".join(f"«{n}»" for n in names) or "нет"
    return f"Вам доступны только муниципалитеты {listed}: {tail[1]}."


def scope_place(scope: Scope) -> str:
    """What «весь регион» is for the user, in a chart's subtitle: the region, or their municipalities by name."""
    ids = scope.municipality_ids
    if ids is None:
        return "весь регион"
    names = sorted(n for i, n in catalog.names("municipality").items() if i in ids)
    return ", ".join(names) if 0 < len(names) <= 3 else f"доступные вам муниципалитеты ({len(names)})"
