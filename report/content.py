"""What a meeting pack (or the monthly report to the governor) contains: data and charts, no layout.

Every number comes from the metrics layer (``metrics.query``, ``rating``, ``priority``, ``kpi``) under
the caller's scope. Charts are described here as data (``Chart``, ``HeatTable``, ``maps.Choropleth``:
categories, values, fitted axes, colours) and drawn natively by the writers — PowerPoint chart objects
and shapes, reportlab drawings — so the PPTX and the PDF show the same charts, and the XLSX the numbers
behind them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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
from report import maps

KINDS = {"meeting": "Пакет к совещанию", "governor": "Ежемесячный доклад губернатору"}
MAP_INDICATOR = "rate_10k"  # the map's indicator when the page names none (the heat map page's default)
MATRIX_INDICATOR = "volume"  # the matrix's indicator when the page names none
KEY_INDICATORS = ("volume", "growth", "on_time_share", "overdue_open", "resolve_days_median",
                  "satisfaction_share", "resolved_share", "repeat_share")
KPI_TRENDS = ("on_time_share", "satisfaction_share", "resolved_share", "repeat_share")
KPI_MONTHS = 13  # the month and the same month a year before on one chart
RATING_SHOWN = 10  # best and weakest organisations on the rating chart
FEW_UNITS = 5  # a matrix of at most this many municipalities turns: categories as its rows
FEW_UNITS_ROWS = 34  # and shows the largest categories, two slides at most
MONTHS_SHORT = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
BLUE, RED, GREY = "#2c7bb6", "#d7191c", "#9e9e9e"
HOLLOW_NOTE = "Полая точка — неполный период или ответы ещё поступают."


class PackError(ValueError):
    """A request the pack cannot answer; the message is for a person."""


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | int | dec1 | pct | growth (signed %) | date | yesno | indicator (the row's)
    on_slide: bool = True  # False: only in the spreadsheet (slides keep to what a room can read)

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
        if self.kind == "growth":
            return ind.get("growth").format(float(value))
        if self.kind == "date":
            return f"{pd.Timestamp(value):%d.%m.%Y}"
        if self.kind == "yesno":
            return "да" if bool(value) else "нет"
        return str(value)


@dataclass
class Series:
    """One series of a native chart; ``values`` in the indicator's own units (a share as 0.875)."""
    name: str
    values: list[float | None]
    colour: str
    dash: bool = False
    markers: bool = True
    hollow: list[bool] | None = None  # per point: a hollow marker (the value is still moving)
    point_colours: list[str] | None = None  # per bar


@dataclass
class Chart:
    """A chart the writers draw natively (PowerPoint chart object, reportlab drawing): same data both."""
    kind: str  # "line" (categories along x) or "bar" (horizontal bars, first category on top)
    categories: list[str]
    series: list[Series]
    axis: tuple[float, float, float]  # value axis minimum, maximum, major step
    number_format: str  # Excel number format of the value axis and labels
    text: Callable[[float], str]  # a value as a person reads it («87,5 %»)
    note: str = ""  # a line under the chart
    labels: bool = False  # the value printed at each bar

    @property
    def axis_format(self) -> str:
        """Excel number format of the value axis: as many decimals as its step needs («92,5 %», «90 %»)."""
        step = self.axis[2] * (100 if "%" in self.number_format else 1)
        whole = abs(step - round(step)) < 1e-9
        if "%" in self.number_format:
            return "0%" if whole else "0.0%"
        return "#,##0" if whole else "#,##0.0"


@dataclass
class HeatTable:
    """A heat-map table: rows × columns, each cell its value's text on its colour."""
    corner: str  # header of the name column
    rows: list[str]
    columns: list[str]
    texts: list[list[str]]
    fills: list[list[str]]  # "#rrggbb"
    inks: list[list[str]]  # text colour readable on the fill
    legend: str


@dataclass
class Section:
    title: str
    sheet: str  # XLSX sheet name (≤ 31 characters); "" — no sheet of its own (its data are another's)
    data: pd.DataFrame
    columns: list[Column]
    chart: Chart | None = None  # a native chart slide
    heat: HeatTable | None = None  # a heat-map table slide
    choropleth: maps.Choropleth | None = None  # a map slide drawn from the boundaries (None: a table)


@dataclass
class Pack:
    kind: str
    title: str
    region: str
    period: Period
    filters: str  # «ЖКХ, город Смоленск» or «весь регион»
    as_of: dt.datetime
    scope: Scope
    indicator: str = MAP_INDICATOR  # the page's indicator: the map, the ranking and the matrix show it
    sections: list[Section] = field(default_factory=list)

    @property
    def note(self) -> str:
        """The line every slide carries: period (with «неполный период» while it is not complete),
        filters and data date."""
        label = self.period.label + "".join(f" ({n})" for n in status_notes(self.period, self.as_of, False))
        return figures.data_note(f"{label}, {self.filters}", self.data_date)

    region_id: int | None = None  # one region of a multi-region warehouse; None: the warehouse's own
    region_as_of: catalog.RegionDataDate | None = None  # that region's «данные на», on its own clock

    @property
    def data_date(self) -> dt.datetime:
        """The «данные на» the pack states: one region's on that region's clock (as its wall shows it),
        else the warehouse's data date. The periods still follow ``as_of``."""
        return self.region_as_of.local if self.region_as_of else self.as_of

    @property
    def data_date_text(self) -> str:
        """«31.10.2025 23:39»; with the region's clock named when it is not the warehouse's."""
        return self.region_as_of.text if self.region_as_of else f"{self.as_of:%d.%m.%Y %H:%M}"

    @property
    def file_stem(self) -> str:
        return figures.export_filename(self.title, self.region if self.region_id is not None else "",
                                       self.filters if self.filters != "весь регион" else "", self.period.code)


def _indicator_format(code: str) -> str:
    spec = ind.get(code)
    return "pct" if spec.number_format.endswith("%") else "int" if spec.number_format.endswith(".0f") else "dec1"


def _resolve(period: str, sector: str | None, municipality: str | int | None, scope: Scope,
             kind: str, channel: str | None = None,
             indicator: str | None = None) -> tuple[Period, str | None, int | None, dict[str, list], list[str]]:
    """Check the request against the warehouse and the scope; (period, sector code, municipality id,
    metrics filters, filter names). Every refusal is a ``PackError`` in Russian."""
    if kind not in KINDS:
        raise PackError(f"неизвестный вид документа: {kind} (допустимы: {', '.join(KINDS)})")
    if indicator not in (None, "") and indicator not in ind.registry():
        known = ", ".join(f"{code} ({spec.label})" for code, spec in ind.registry().items())
        raise PackError(f"неизвестный показатель: «{indicator}». Есть: {known}")
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
    if channel not in (None, ""):
        channels = catalog.channels()
        match = channels[(channels["channel"] == channel) | (channels["channel_name"].str.lower() == channel.lower())]
        if match.empty:
            known = ", ".join(f"{r.channel} ({r.channel_name})" for r in channels.itertuples())
            raise PackError(f"неизвестный канал: «{channel}». Есть: {known}")
        filters["channel"] = [str(match.iloc[0]["channel"])]
        names.append(str(match.iloc[0]["channel_name"]))
    return parsed, sector_code, municipality_id, filters, names


def build(period: str, sector: str | None = None, municipality: str | int | None = None,
          scope: Scope = REGION, kind: str = "meeting", indicator: str | None = None,
          channel: str | None = None, region: str | int | None = None) -> Pack:
    """Every section of the pack for the filters, within ``scope``.

    ``indicator`` is the page's (the heat map's or the KPI page's): the map, the ranking of
    municipalities and the matrix show it, the key numbers and the trends begin with it. ``channel``
    narrows every section but the priority problems (a regional list, ranked over all channels).
    ``region`` (id, name, ISO code; a warehouse of several regions): the pack of that region — its
    name on the title, its units on the map, every number counted over them."""
    region_id = _region(region, scope)
    if region_id is not None:  # every section reads through the scope: narrowed, never widened
        outer, scope = scope, catalog.within_region(scope, region_id)
    parsed, sector_code, municipality_id, filters, names = _resolve(period, sector, municipality, scope, kind,
                                                                    channel, indicator)
    as_of = catalog.as_of()
    shown_scope = outer if region_id is not None else scope
    if shown_scope is not REGION and shown_scope.label and shown_scope.label != REGION.label:
        names.append(f"доступ: {shown_scope.label}")
    if region_id is not None:
        filters["region"] = [region_id]
    # like the heat map: without population in scope a rate per 10 000 residents is only grey
    default_indicator = MAP_INDICATOR if catalog.population_known() else "volume"
    region_name = catalog.region_settings(region_id).label if region_id is not None else catalog.region_name()
    pack = Pack(kind, KINDS[kind], region_name, parsed, ", ".join(names) or "весь регион", as_of, scope,
                indicator or default_indicator, region_id=region_id)
    if region_id is not None:
        pack.region_as_of = catalog.region_data_date(region_id, scope, as_of)
    pack.sections.append(_key_numbers(parsed, filters, scope, as_of, indicator))
    pack.sections += _map_and_matrix(pack, filters, indicator or MATRIX_INDICATOR)
    pack.sections.append(_problems(parsed, sector_code, municipality_id, scope, "channel" in filters))
    pack.sections.append(_rating(pack, filters))
    # the trends end with the pack's period; their values are those known at the data date
    last_day = min(parsed.end - dt.timedelta(days=1), as_of.date())
    trends = list(KPI_TRENDS)
    if indicator and indicator not in trends:
        trends.insert(0, indicator)
    elif indicator:
        trends.insert(0, trends.pop(trends.index(indicator)))
    channel_code = filters["channel"][0] if "channel" in filters else None
    for code in trends:
        pack.sections.append(_kpi(code, sector_code, municipality_id, channel_code, scope, last_day, pack))
    return pack


def _region(region: str | int | None, scope: Scope) -> int | None:
    """The region a pack is for (``catalog.pick_region``: None without one or in a warehouse of one);
    ``PackError`` for a region the warehouse does not hold or the user may not see."""
    from data.regions import UnknownRegion

    try:
        return catalog.pick_region(region, scope)
    except UnknownRegion as exc:
        raise PackError(str(exc)) from exc


def _key_numbers(period: Period, filters: dict[str, list], scope: Scope, as_of: dt.datetime,
                 indicator: str | None = None) -> Section:
    """The key indicators beside the previous period's: answer-based ones of a period not settled
    at the same age (``metrics.compare``) and marked «ответы ещё поступают». The page's indicator first."""
    codes = list(KEY_INDICATORS)
    if indicator:
        codes = [indicator, *(c for c in codes if c != indicator)]
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


def _map_and_matrix(pack: Pack, filters: dict[str, list], matrix_code: str) -> list[Section]:
    """The map (a picture with unit names), the units ranked (native bars) and the heat-map table."""
    spec = ind.get(pack.indicator)
    codes = list(dict.fromkeys(["volume", spec.code]))
    by_muni = query(codes, by=["municipality"], period=pack.period, filters=filters, scope=pack.scope)
    title = f"{spec.label} — {pack.period.label}"
    geojson = catalog.region_geojson()
    if pack.region_id is not None:  # one region of several: its units only, as the heat map draws it
        units = catalog.region_municipalities(pack.region_id)
        geojson = {**geojson, "features": [f for f in geojson.get("features", []) if int(f["id"]) in units]}
    choropleth = maps.build(geojson, by_muni, spec, pack.scope.municipality_ids)
    value_kind = _indicator_format(spec.code)
    keep = ["municipality_name", *codes, *(["population"] if "population" in by_muni else [])]
    map_data = by_muni.sort_values("municipality_name", key=lambda names: names.str.casefold())[keep]
    if f"{spec.code}_low" in by_muni:
        map_data = map_data.assign(**{spec.code: by_muni[spec.code].where(~by_muni[f"{spec.code}_low"]
                                                                          .fillna(True).astype(bool))})
    map_columns = [Column("municipality_name", "Муниципалитет"), Column("volume", ind.get("volume").label, "int")]
    if spec.code != "volume":
        map_columns.append(Column(spec.code, spec.label, value_kind))
    if "population" in map_data:
        estimate = catalog.population_info().is_estimate  # «оценка» only where the data say so
        map_columns.append(Column("population", "Население (оценка)" if estimate else "Население", "int"))
    ranking = Section(f"{spec.label} по муниципалитетам", "", map_data.reset_index(drop=True), map_columns,
                      chart=_ranking_chart(by_muni, spec))

    by_category = "sector" in filters or "municipality" in filters
    second = "category" if by_category else "sector"
    matrix_spec = ind.get(matrix_code)
    matrix_codes = list(dict.fromkeys(["volume", matrix_spec.code]))
    cells = query(matrix_codes, by=["municipality", second], period=pack.period, filters=filters, scope=pack.scope)
    matrix_data = cells.sort_values(["municipality_name", "volume"], ascending=[True, False])[
        ["municipality_name", f"{second}_name", *matrix_codes]]
    if f"{matrix_spec.code}_low" in cells:
        matrix_data = matrix_data.assign(**{matrix_spec.code: cells[matrix_spec.code].where(
            ~cells[f"{matrix_spec.code}_low"].fillna(True).astype(bool))})
    matrix_columns = [Column("municipality_name", "Муниципалитет"),
                      Column(f"{second}_name", "Категория" if by_category else "Отраслевой блок"),
                      Column("volume", ind.get("volume").label, "int")]
    if matrix_spec.code != "volume":
        matrix_columns.append(Column(matrix_spec.code, matrix_spec.label, _indicator_format(matrix_spec.code)))
    which = "категориям" if by_category else "отраслевым блокам"
    return [Section(title, "Карта", map_data.reset_index(drop=True), map_columns, choropleth=choropleth), ranking,
            Section(f"{matrix_spec.label} по муниципалитетам и {which}", "Матрица",
                    matrix_data.reset_index(drop=True), matrix_columns,
                    heat=_heat_table(cells, matrix_spec, f"{second}_name"))]


def _excel_format(spec: ind.Indicator) -> str:
    if spec.number_format.endswith("%"):
        return '+0.0%;-0.0%;0.0%' if spec.number_format.startswith("+") else "0.0%"
    return "#,##0" if spec.number_format.endswith(".0f") else "#,##0.0"


def fitted_axis(values: list[float | None], share: bool = False, zero: bool = False) -> tuple[float, float, float]:
    """(minimum, maximum, step) of a value axis that fits the data: the data's range with a margin,
    on round steps; ``zero`` keeps 0 on the axis (bars start at it); a share stays within 0–100 %."""
    data = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not data:
        return (0.0, 1.0, 0.2) if share else (0.0, 1.0, 0.2)
    lo, hi = min(data), max(data)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    span = hi - lo
    pad = max(span * 0.15, abs(hi) * 0.02, 0.005 if share else 0.5)
    raw = (span + 2 * pad) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    low = lo if zero and lo == 0 else math.floor((lo - pad) / step) * step
    high = hi if zero and hi == 0 else math.ceil((hi + pad) / step) * step
    if min(data) >= 0:
        low = max(low, 0.0)
    if share and max(data) <= 1:
        high = min(high, 1.0)
    return round(low, 10), round(high, 10), step


def _ranking_chart(by_muni: pd.DataFrame, spec: ind.Indicator) -> Chart:
    """The units by the indicator as horizontal bars, the highest on top; «мало данных» named below."""
    low = by_muni.get(f"{spec.code}_low", pd.Series(False, index=by_muni.index)).fillna(True).astype(bool)
    shown = by_muni[~low & by_muni[spec.code].notna()].sort_values(spec.code, ascending=False)
    values = [float(v) for v in shown[spec.code]]
    share = spec.number_format.endswith("%")
    small = sorted(by_muni.loc[low, "municipality_name"])
    note = f"Мало данных: {', '.join(small)}." if small else ""
    colours = None
    if spec.kind == "growth":  # a rise is worse: red, a fall blue
        colours = [RED if v > 0 else BLUE for v in values]
    return Chart("bar", list(shown["municipality_name"]), [Series(spec.label, values, BLUE, point_colours=colours)],
                 fitted_axis(values, share, zero=True), _excel_format(spec), spec.format, note, labels=True)


def _heat_colour(scale: str, t: float) -> str:
    from plotly.colors import sample_colorscale, unlabel_rgb

    rgb = unlabel_rgb(sample_colorscale(scale, [min(max(t, 0.0), 1.0)])[0])
    return "#" + "".join(f"{int(round(c)):02x}" for c in rgb)


def _ink(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else "#212529"


def _heat_table(cells: pd.DataFrame, spec: ind.Indicator, columns: str) -> HeatTable:
    """Every municipality (by name) × every sector or category (the largest first), coloured on one
    scale across the whole table so that split slides compare; «мало данных» grey with «—»."""
    low = cells.get(f"{spec.code}_low", pd.Series(False, index=cells.index)).fillna(True).astype(bool)
    data = cells.assign(_value=cells[spec.code].astype("float64").where(~low))
    z = data.pivot_table(index="municipality_name", columns=columns, values="_value", aggfunc="first",
                         dropna=False)
    z = z.sort_index(key=lambda names: names.str.casefold())  # «город Смоленск» among the Г, not after Я
    order = data.groupby(columns)["volume"].sum().sort_values(ascending=False).index
    z = z[[c for c in order if c in z.columns]]
    corner, more = "Муниципалитет", ""
    if len(z.index) <= FEW_UNITS and len(z.index) < len(z.columns):
        # one or a few municipalities (a profile's pack): categories down the slide, the largest first,
        # those without appeals left out — a one-row table over many slides reads as nothing
        z = z.T.dropna(how="all")
        corner = "Категория" if columns == "category_name" else "Отраслевой блок"
        if len(z.index) > FEW_UNITS_ROWS:  # the rest, smaller, stay in the spreadsheet
            rest = len(z.index) - FEW_UNITS_ROWS
            z = z.iloc[:FEW_UNITS_ROWS]
            more = f" Ещё {rest} категорий с меньшим числом обращений — в XLSX."
    scale, reverse = figures.colour_scale(spec)
    finite = np.sort(z.to_numpy()[~np.isnan(z.to_numpy())]) if z.size else np.array([])
    lo, hi = (float(finite[0]), float(finite[-1])) if finite.size else (0.0, 1.0)
    # growth: centred on 0, saturated at the 90th percentile of the size of the changes
    bound = float(np.quantile(np.abs(finite), 0.9)) if finite.size else 1.0
    bound = bound or 1.0

    def place(value: float) -> float:
        """Share of the table's cells below the value: one large city cannot wash every other cell out."""
        if finite.size < 2:
            return 0.5
        below = np.searchsorted(finite, value, side="left")
        same = np.searchsorted(finite, value, side="right") - below
        return float((below + (same - 1) / 2) / (finite.size - 1))
    texts, fills, inks = [], [], []
    for _, row in z.iterrows():
        t_row, f_row, i_row = [], [], []
        for value in row:
            if pd.isna(value):
                t_row.append("—")
                f_row.append(figures.NO_DATA_COLOUR)
            else:
                if spec.kind == "growth":  # centred on 0: a fall blue, a rise red
                    t = 0.5 + float(value) / (2 * bound)
                else:
                    t = place(float(value))
                    t = 1 - t if reverse else t
                t_row.append(spec.format(float(value)))
                f_row.append(_heat_colour(scale, 0.1 + 0.85 * t if spec.kind != "growth" else t))
            i_row.append(_ink(f_row[-1]))
        texts.append(t_row)
        fills.append(f_row)
        inks.append(i_row)
    if spec.kind == "growth":
        worse = "красный — рост, синий — снижение"
    else:
        worse = ("темнее — хуже" if spec.higher_is_better is not None else "темнее — больше") + \
            " (по месту среди всех клеток таблицы)"
    legend = (f"{spec.label}: {worse}; от {spec.format(lo)} до {spec.format(hi)}. "
              "Серая клетка с «—» — мало данных или нет обращений." + more)
    return HeatTable(corner, [str(r) for r in z.index], [str(c) for c in z.columns], texts, fills, inks, legend)


def _problems(period: Period, sector_code: str | None, municipality_id: int | None, scope: Scope,
              by_channel: bool = False) -> Section:
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
               Column("volume_prev", "В прошлом периоде", "int", on_slide=False), Column("growth", "Рост", "growth"),
               Column("satisfaction_share", ind.get("satisfaction_share").label, "pct"),
               Column("score", "Приоритет, баллы", "dec1"),
               Column("decomposed_from", "Уточняет категорию", on_slide=False)]
    title = "Приоритетные проблемы" + (" (по всем каналам)" if by_channel else "")
    return Section(title, "Проблемы", data, columns)


def _rating(pack: Pack, filters: dict[str, list]) -> Section:
    df = rate_organisations(pack.period, scope=pack.scope, filters=filters or None)
    from metrics.rating import STATUS_RANKED

    ranked = df[df["status"] == STATUS_RANKED].sort_values("composite", ascending=False)
    top, bottom = ranked.head(RATING_SHOWN), ranked.tail(RATING_SHOWN)
    shown = pd.concat([top, bottom[~bottom.index.isin(top.index)]])
    chart = Chart("bar", list(shown["organisation_name"]),
                  [Series("Итоговая оценка (0–100)", [float(v) for v in shown["composite"]], BLUE,
                          point_colours=[BLUE if i in top.index else RED for i in shown.index])],
                  (0.0, 100.0, 20.0), "0", lambda v: f"{v:.0f}",
                  f"Синие — {len(top)} лучших, красные — {len(shown) - len(top)} отстающих по итоговой оценке "
                  "0–100 среди организаций с достаточным числом обращений." if len(shown) else
                  "Нет организаций с достаточным числом обращений.", labels=True)
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
    return Section("Лучшие и отстающие организации", "Рейтинг", data, columns, chart=chart)


def _kpi(code: str, sector_code: str | None, municipality_id: int | None, channel: str | None, scope: Scope,
         last_day: dt.date, pack: Pack) -> Section:
    spec = ind.get(code)
    series = kpi_series(code, months=KPI_MONTHS, sector=sector_code, municipality=municipality_id, scope=scope,
                        as_of=pack.as_of, until=last_day, channel=channel)
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
    return Section(f"{spec.label}: динамика и цель", spec.label[:31], data, columns, chart=_kpi_chart(series, spec))


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _kpi_chart(series: pd.DataFrame, spec: ind.Indicator) -> Chart:
    """The indicator by month (hollow points still moving), its target and the same month a year before;
    the value axis fitted to all three."""
    months = [pd.Timestamp(v) for v in series["period_start"]]
    categories = [f"{MONTHS_SHORT[m.month - 1]} {m.year}" for m in months]
    low = series["low"].fillna(True).astype(bool)
    values = [None if lo else _number(v) for v, lo in zip(series["value"], low, strict=True)]
    flags = figures.period_flags(series, spec)
    lines = [Series(spec.label, values, BLUE, hollow=[bool(f) for f in flags])]
    targets = [_number(v) for v in series["target"]]
    if any(v is not None for v in targets):
        lines.append(Series("цель", targets, RED, dash=True, markers=False))
    year_ago = [_number(v) for v in series["year_ago"]]
    if any(v is not None for v in year_ago):
        lines.append(Series("год назад", year_ago, GREY, markers=False))
    everything = [v for s in lines for v in s.values]
    share = spec.number_format.endswith("%")
    notes = [HOLLOW_NOTE] if any(flags) else []
    if all(v is None for v in values):
        notes.append("Нет данных за выбранный период.")
    return Chart("line", categories, lines, fitted_axis(everything, share), _excel_format(spec), spec.format,
                 " ".join(notes))
