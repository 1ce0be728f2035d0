"""What a meeting pack (or the monthly report to the governor) contains: data and figures, no layout.

Every number comes from the metrics layer (``metrics.query``, ``rating``, ``priority``, ``kpi``) under
the caller's scope; every chart from ``charts.figures``. The writers (PPTX, PDF, XLSX) only lay out
the sections built here, so the three files always show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from charts import figures
from metrics import catalog
from metrics import indicators as ind
from metrics.compare import compare
from metrics.kpi import kpi_series
from metrics.periods import (
    INCOMPLETE,
    UNSETTLED,
    Period,
    PeriodError,
    is_complete,
    parse_period,
    status_notes,
)
from metrics.priority import municipality_problems, priority_problems
from metrics.query import query
from metrics.rating import COMPONENT_LABELS, interval_text, place_text, rate_organisations
from metrics.scope import REGION, Scope

KINDS = {"meeting": "Пакет к совещанию", "governor": "Ежемесячный доклад губернатору"}
MAP_INDICATOR = "rate_10k"
KEY_INDICATORS = ("volume", "growth", "on_time_share", "overdue_open", "resolve_days_median",
                  "satisfaction_share", "resolved_share", "repeat_share")
KPI_TRENDS = ("on_time_share", "satisfaction_share", "resolved_share", "repeat_share")
KPI_MONTHS = 13  # the month and the same month a year before on one chart


class PackError(ValueError):
    """A request the pack cannot answer; the message is for a person."""


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | int | dec1 | pct | date | yesno | indicator (format of the row's indicator)
    on_slide: bool = True  # False: only in the spreadsheet (slides keep to what a room can read)

    @property
    def weight(self) -> float:
        """Share of a slide table's width: names need room, numbers little."""
        return 3.0 if self.kind == "text" else 1.0

    def display(self, value: object, indicator: str | None = None) -> str:
        """The value as a slide shows it («1 234», «87,5 %», «31.10.2025»)."""
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return "—"
        if self.kind == "indicator" and indicator:
            return ind.get(indicator).format(float(value))
        if self.kind == "int":
            return f"{int(value):,}".replace(",", "\u00a0")
        if self.kind == "dec1":
            return f"{float(value):,.1f}".replace(",", "\u00a0").replace(".", ",")
        if self.kind == "pct":
            return f"{float(value) * 100:.1f}\u00a0%".replace(".", ",")
        if self.kind == "date":
            return f"{pd.Timestamp(value):%d.%m.%Y}"
        if self.kind == "yesno":
            return "да" if bool(value) else "нет"
        return str(value)


@dataclass
class Section:
    title: str
    sheet: str  # XLSX sheet name (≤ 31 characters)
    data: pd.DataFrame
    columns: list[Column]
    figure: go.Figure | None = None  # a chart slide; None: a table slide
    image: bytes | None = None  # the figure rendered (filled by report.pack)
    slide_rows: int = 13  # a table longer than this continues on the next slide


@dataclass
class Pack:
    kind: str
    title: str
    region: str
    period: Period
    filters: str  # «ЖКХ, город Смоленск» or «весь регион»
    as_of: dt.datetime
    scope: Scope
    sections: list[Section] = field(default_factory=list)

    @property
    def note(self) -> str:
        """The line every slide carries: period (with «неполный период» while it is not complete),
        filters and data date."""
        label = self.period.label + "".join(f" ({n})" for n in status_notes(self.period, self.as_of, False))
        return figures.data_note(f"{label}, {self.filters}", self.as_of)

    @property
    def file_stem(self) -> str:
        return figures.export_filename(self.title, self.filters if self.filters != "весь регион" else "",
                                       self.period.code)


def _indicator_format(code: str) -> str:
    spec = ind.get(code)
    return "pct" if spec.number_format.endswith("%") else "int" if spec.number_format.endswith(".0f") else "dec1"


def _resolve(period: str, sector: str | None, municipality: str | int | None, scope: Scope,
             kind: str) -> tuple[Period, str | None, int | None, dict[str, list], list[str]]:
    """Check the request against the warehouse and the scope; (period, sector code, municipality id,
    metrics filters, filter names). Every refusal is a ``PackError`` in Russian."""
    if kind not in KINDS:
        raise PackError(f"неизвестный вид документа: {kind} (допустимы: {', '.join(KINDS)})")
    months = catalog.months_with_data()
    if not months:
        raise PackError("в хранилище нет обращений: загрузите данные командой python -m data import")
    as_of = catalog.as_of()
    try:
        parsed = parse_period(period, as_of=as_of.date())
    except PeriodError as exc:
        raise PackError(str(exc)) from exc
    if kind == "governor" and parsed.kind != "month":
        raise PackError(f"ежемесячный доклад строится за месяц (например, 2025-10), а не за «{period}»")
    if parsed.end <= min(months) or parsed.start > as_of.date():
        raise PackError(f"нет данных за период «{parsed.label}»: данные есть с {min(months):%m.%Y} "
                        f"по {max(months):%m.%Y}")
    filters: dict[str, list] = {}
    names: list[str] = []
    sector_code = None
    if sector:
        sectors = catalog.sectors()
        match = sectors[(sectors["sector_code"] == sector) | (sectors["sector_name"].str.lower() == sector.lower())]
        if match.empty:
            known = ", ".join(f"{r.sector_code} ({r.sector_name})" for r in sectors.itertuples())
            raise PackError(f"неизвестный отраслевой блок: «{sector}». Есть: {known}")
        row = match.iloc[0]
        if scope.sector_ids is not None and int(row["sector_id"]) not in scope.sector_ids:
            raise PackError(f"отраслевой блок «{row['sector_name']}» вне вашей зоны доступа ({scope.label})")
        sector_code = str(row["sector_code"])
        filters["sector"] = [sector_code]
        names.append(str(row["sector_name"]))
    municipality_id = None
    if municipality not in (None, ""):
        munis = catalog.municipalities()
        text = str(municipality).strip()
        match = munis[(munis["municipality_id"].astype(str) == text)
                      | (munis["municipality_name"].str.lower() == text.lower())]
        if match.empty:
            raise PackError(f"неизвестный муниципалитет: «{municipality}» (укажите код или точное название)")
        municipality_id = int(match.iloc[0]["municipality_id"])
        if not scope.allows_municipality(municipality_id):
            raise PackError(f"муниципалитет «{match.iloc[0]['municipality_name']}» вне вашей зоны доступа "
                            f"({scope.label})")
        filters["municipality"] = [municipality_id]
        names.append(str(match.iloc[0]["municipality_name"]))
    return parsed, sector_code, municipality_id, filters, names


def build(period: str, sector: str | None = None, municipality: str | int | None = None,
          scope: Scope = REGION, kind: str = "meeting") -> Pack:
    """Every section of the pack for the filters, within ``scope``; figures not yet rendered."""
    parsed, sector_code, municipality_id, filters, names = _resolve(period, sector, municipality, scope, kind)
    as_of = catalog.as_of()
    if scope is not REGION and scope.label and scope.label != REGION.label:
        names.append(f"доступ: {scope.label}")
    pack = Pack(kind, KINDS[kind], catalog.region_name(), parsed, ", ".join(names) or "весь регион", as_of, scope)
    note = pack.note
    pack.sections.append(_key_numbers(parsed, filters, scope, as_of))
    pack.sections += _map_and_matrix(pack, filters, note)
    pack.sections.append(_problems(parsed, sector_code, municipality_id, scope))
    pack.sections.append(_rating(pack, filters, note))
    # the trends end with the pack's period; their values are those known at the data date
    last_day = min(parsed.end - dt.timedelta(days=1), as_of.date())
    for code in KPI_TRENDS:
        pack.sections.append(_kpi(code, sector_code, municipality_id, scope, last_day, pack, note))
    return pack


def _key_numbers(period: Period, filters: dict[str, list], scope: Scope, as_of: dt.datetime) -> Section:
    """The key indicators beside the previous period's: answer-based ones of a period not settled
    at the same age (``metrics.compare``) and marked «ответы ещё поступают»."""
    codes = list(KEY_INDICATORS)
    row = compare(codes, period=period, filters=filters, scope=scope, as_of=as_of).iloc[0]
    partial = not is_complete(period, as_of)
    rows = []
    for code in codes:
        spec = ind.get(code)
        low = bool(row.get(f"{code}_low", False))
        value = None if low else row.get(code)
        previous = row.get(f"{code}_prev") if code != "growth" else None
        notes = [INCOMPLETE] if partial else []
        if bool(row.get(f"{code}_unsettled", False)):
            notes.append(f"{UNSETTLED}; прошлый период — на тот же срок "
                         f"({pd.Timestamp(row[f'{code}_prev_as_of']):%d.%m.%Y %H:%M})")
        rows.append({"indicator": code, "label": spec.label, "value": value, "previous": previous,
                     "base": row.get(f"{code}_base"), "note": "; ".join(notes), "description": spec.description})
    data = pd.DataFrame(rows)
    columns = [Column("label", "Показатель"), Column("value", period.label.capitalize(), "indicator"),
               Column("previous", f"{period.previous().label.capitalize()}", "indicator"),
               Column("base", "Опирается на обращений", "int"),
               Column("note", "Примечание"),
               Column("description", "Как считается", on_slide=False)]
    return Section("Ключевые показатели", "Ключевые показатели", data, columns)


def _map_and_matrix(pack: Pack, filters: dict[str, list], note: str) -> list[Section]:
    spec = ind.get(MAP_INDICATOR)
    by_muni = query(["volume", MAP_INDICATOR], by=["municipality"], period=pack.period, filters=filters,
                    scope=pack.scope)
    title = f"{spec.label} — {pack.period.label}"
    fig_map = figures.choropleth(by_muni, catalog.region_geojson(), spec, title)
    figures.mark_export(fig_map, figures.export_filename(spec.label, pack.filters, pack.period.code), note)
    map_data = by_muni.sort_values("municipality_name")[["municipality_name", "volume", MAP_INDICATOR,
                                                         "population"]]
    map_columns = [Column("municipality_name", "Муниципалитет"), Column("volume", ind.get("volume").label, "int"),
                   Column(MAP_INDICATOR, f"{spec.label} (обращений)", "dec1"),
                   Column("population", "Население (оценка)", "int")]

    by_category = "sector" in filters or "municipality" in filters
    second = "category" if by_category else "sector"
    cells = query(["volume", MAP_INDICATOR], by=["municipality", second], period=pack.period, filters=filters,
                  scope=pack.scope)
    label = "категориям" if by_category else "отраслевым блокам"
    matrix_spec = ind.get("volume")
    fig_matrix = figures.matrix(cells, matrix_spec, "municipality_name", f"{second}_name",
                                f"{matrix_spec.label} по муниципалитетам и {label} — {pack.period.label}")
    figures.mark_export(fig_matrix, figures.export_filename("матрица", pack.filters, pack.period.code), note)
    matrix_data = cells.sort_values(["municipality_name", "volume"], ascending=[True, False])[
        ["municipality_name", f"{second}_name", "volume", MAP_INDICATOR]]
    matrix_columns = [Column("municipality_name", "Муниципалитет"),
                      Column(f"{second}_name", "Категория" if by_category else "Отраслевой блок"),
                      Column("volume", matrix_spec.label, "int"), Column(MAP_INDICATOR, spec.label, "dec1")]
    return [Section("Тепловая карта", "Карта", map_data.reset_index(drop=True), map_columns, fig_map),
            Section("Муниципалитеты и " + ("категории" if by_category else "отраслевые блоки"), "Матрица",
                    matrix_data.reset_index(drop=True), matrix_columns, fig_matrix)]


def _problems(period: Period, sector_code: str | None, municipality_id: int | None, scope: Scope) -> Section:
    if municipality_id is not None:
        df = municipality_problems(period, municipality_id, scope=scope, top=10)
        if sector_code is not None:
            df = df[df["sector_code"] == sector_code]
    else:
        df = priority_problems(period, scope=scope)
        if sector_code is not None:
            df = df[df["sector_code"] == sector_code]
    data = df.assign(decomposed_from=df["decomposed_from"].fillna("")).reset_index(drop=True)
    columns = [Column("sector_name", "Отраслевой блок"), Column("rank", "Место", "int"),
               Column("category_name", "Проблема"), Column("volume", "Обращений", "int"),
               Column("volume_prev", "В прошлом периоде", "int", on_slide=False), Column("growth", "Рост", "pct"),
               Column("satisfaction_share", ind.get("satisfaction_share").label, "pct"),
               Column("score", "Приоритет, баллы", "dec1"),
               Column("decomposed_from", "Уточняет категорию", on_slide=False)]
    return Section("Приоритетные проблемы", "Проблемы", data, columns)


def _rating(pack: Pack, filters: dict[str, list], note: str) -> Section:
    df = rate_organisations(pack.period, scope=pack.scope, filters=filters or None)
    title = f"Лучшие и отстающие организации — {pack.period.label}"
    fig = figures.rating_top_bottom(df, "organisation_name", title)
    figures.mark_export(fig, figures.export_filename("рейтинг", pack.filters, pack.period.code), note)
    data = df.assign(municipality_name=df["municipality_name"].fillna("регион"),
                     weak_component=df["weak_component"].fillna(""),
                     organisation_kind=df["organisation_kind"].fillna(""),
                     place=[place_text(*r) for r in zip(df["peer_rank_best"], df["peer_rank_worst"],
                                                        df["peer_count"], strict=True)],
                     interval=[interval_text(*r) for r in zip(df["composite_low"], df["composite_high"], strict=True)])
    columns = [Column("place", "Место в группе"), Column("organisation_name", "Организация"),
               Column("peer_group", "Группа сравнения"), Column("municipality_name", "Муниципалитет"),
               Column("volume", "Обращений", "int"), Column("composite", "Итоговая оценка (0–100)", "dec1"),
               Column("interval", "90 % интервал", on_slide=False),
               *(Column(code, f"{label.capitalize()} (0–100)", "dec1") for code, label in COMPONENT_LABELS.items()),
               Column("no_data", "Нет данных", on_slide=False), Column("weak_component", "Слабое место"),
               Column("status", "Статус")]
    return Section("Рейтинг организаций", "Рейтинг", data, columns, fig)


def _kpi(code: str, sector_code: str | None, municipality_id: int | None, scope: Scope, last_day: dt.date,
         pack: Pack, note: str) -> Section:
    spec = ind.get(code)
    series = kpi_series(code, months=KPI_MONTHS, sector=sector_code, municipality=municipality_id, scope=scope,
                        as_of=pack.as_of, until=last_day)
    fig = figures.kpi_trend(series, spec, f"{spec.label}: динамика и цель — {pack.filters}")
    figures.mark_export(fig, figures.export_filename(spec.label, pack.filters, pack.period.code), note)
    value_kind = _indicator_format(code)
    data = series.assign(period_start=pd.to_datetime(series["period_start"]).dt.date,
                         unsettled=~series["settled"].astype(bool) & spec.answer_based,
                         meets_target=series["meets_target"].map(lambda v: "" if pd.isna(v) else
                                                                 ("да" if v else "нет")))
    columns = [Column("period_start", "Месяц", "date"), Column("value", spec.label, value_kind),
               Column("target", "Цель", value_kind), Column("year_ago", "Год назад", value_kind),
               Column("meets_target", "Цель достигнута"), Column("base", "Опирается на обращений", "int"),
               Column("partial", "Неполный период", "yesno"),
               Column("unsettled", "Ответы ещё поступают", "yesno")]
    return Section(f"{spec.label}: динамика и цель", spec.label[:31], data, columns, fig)
