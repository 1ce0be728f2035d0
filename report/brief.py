"""The monthly brief for the governor: short plain Russian generated from the metrics, no language model.

``python -m report brief --period 2025-10 [--region ID|NAME] [--db PATH] [--out FILE.docx|FILE.md]``
(without ``--out`` the Markdown goes to the standard output). ``--region`` (a warehouse of several
regions): the brief of one region — its name in the title, only its units named, every number counted
over them, the data date on its own clock. The page «Решения» shows the same text: both call
``build_brief``. Every number comes from the functions the pages use — ``metrics.query`` (the declared
indicators), ``metrics.priority``, ``metrics.signals``, ``metrics.rating``, ``metrics.workload``,
``metrics.roadmap`` — so the brief and the screens cannot disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import pandas as pd

from charts.figures import export_filename
from data.regions import UnknownRegion
from data.warehouse import read_region
from metrics import catalog, indicators, words
from metrics.periods import (
    INCOMPLETE,
    UNSETTLED,
    Period,
    PeriodError,
    default_month,
    is_complete,
    is_settled,
    last_complete_month,
    month,
    parse_period,
)
from metrics.priority import priority_problems
from metrics.query import data_as_of, query_on, reference
from metrics.rating import STATUS_RANKED, place_text, rate_organisations
from metrics.roadmap import roadmap_effects
from metrics.scope import REGION, Scope
from metrics.signals import detect_signals
from metrics.source import is_served, reader
from metrics.workload import monthly_load, staffing_plan

TOP_MUNICIPALITIES = 2
SIGNALS_SHOWN = 5
WEAKEST_SHOWN = 3
REGION_WIDE = 3  # a category signalling in this many municipalities at once is a regional rise
# growth below this many appeals in the previous period is «мало данных» (the declared indicator's rule)
GROWTH_MIN_PREVIOUS = indicators.get("growth").min_volume
SMALL_BASE = "мало данных для сравнения"


class BriefError(ValueError):
    """The brief cannot be built for this request; the message is for a person."""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # after the bullets


@dataclass
class Brief:
    title: str
    subtitle: str
    sections: list[Section]
    period_code: str = ""
    region: str = ""  # one region of a multi-region warehouse; "" — the warehouse's own brief

    @property
    def file_stem(self) -> str:
        """«doklad_2025-10», «doklad_2025-10_Тверская_область» for one region of several."""
        return export_filename("doklad", self.period_code, self.region)

    def to_markdown(self) -> str:
        """Markdown whose every text is plain: names come from imported files and a curator's form, so a
        name like «[нажмите](http://…)» must print as it is, never become a link or emphasis."""
        lines = [f"# {plain_markdown(self.title)}", "", f"_{plain_markdown(self.subtitle)}_", ""]
        for s in self.sections:
            lines += [f"## {plain_markdown(s.title)}", ""]
            for p in s.paragraphs:
                lines += [plain_markdown(p), ""]
            if s.bullets:
                lines += [f"- {plain_markdown(b)}" for b in s.bullets] + [""]
            for p in s.notes:
                lines += [plain_markdown(p), ""]
        return "\n".join(lines)

    def to_docx(self, path: str | Path | BinaryIO) -> None:
        """Write a DOCX to a path or a binary file object."""
        from docx import Document
        from docx.shared import Pt

        doc = Document()
        doc.styles["Normal"].font.size = Pt(11)
        doc.add_heading(self.title, level=0)
        doc.add_paragraph(self.subtitle).italic = True
        for s in self.sections:
            doc.add_heading(s.title, level=1)
            for p in s.paragraphs:
                doc.add_paragraph(p)
            for b in s.bullets:
                doc.add_paragraph(b, style="List Bullet")
            for p in s.notes:
                doc.add_paragraph(p)
        doc.save(str(path) if isinstance(path, str | Path) else path)


# Characters that open a Markdown construct anywhere in a line (links, images, emphasis, code, raw HTML,
# entities, tables, strikethrough, e-mail autolinks); in CommonMark a backslash makes any of them literal.
_MARKDOWN_ANYWHERE = re.compile(r"([\\`*_\[\]<>&|~!#@])")


def plain_markdown(text: str) -> str:
    """``text`` as literal Markdown: whatever a name holds prints as it is. Escapes every character that
    can open a construct, the ``:`` of ``scheme://`` and the ``.`` of ``www.`` (GFM autolinks), and a
    list marker at the start; folds line breaks and runs of spaces (no new block, no indented code).
    Other punctuation stays as it is, so the Markdown file remains readable."""
    text = re.sub(r"[ \t\r\n\f\v]+", " ", text).strip()
    text = _MARKDOWN_ANYWHERE.sub(r"\\\1", text)
    text = re.sub(r":(?=/)", r"\\:", text)
    text = re.sub(r"(?i)\b(www)\.", r"\1\\.", text)
    text = re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # «1.» would open an ordered list
    return re.sub(r"^([-+=])", r"\\\1", text)


# --- building -----------------------------------------------------------------------------------


def resolve_period(text: str | None, con: duckdb.DuckDBPyConnection) -> Period:
    """A month with data; None = the last complete month of the data (``metrics.periods.default_month``:
    the current one only when it is the only month with data)."""
    as_of = data_as_of(con)
    if not text:
        months = [r[0] for r in con.execute("SELECT DISTINCT month FROM appeal_monthly").fetchall()]
        return default_month(months, as_of) or last_complete_month(as_of)
    try:
        period = parse_period(text, as_of.date())
    except PeriodError as exc:
        raise BriefError(str(exc)) from exc
    if period.kind != "month":
        raise BriefError(f"доклад готовится за месяц: укажите период как ГГГГ-ММ, например 2025-10 (получено «{text}»)")
    first = con.execute("SELECT min(month), max(month) FROM appeal_monthly").fetchall()[0]
    if first[0] is None or not first[0] <= period.start <= first[1]:
        span = f"{first[0]:%Y-%m} … {first[1]:%Y-%m}" if first[0] else "данных нет"
        raise BriefError(f"за {period.label} в хранилище нет обращений (есть: {span})")
    return period


def build_brief(period: Period | str | None = None, scope: Scope = REGION,
                con: duckdb.DuckDBPyConnection | None = None, region: str | int | None = None) -> Brief:
    """The brief for a month (see ``resolve_period``) within the scope.

    ``region`` (id, name, ISO code; a warehouse of several regions): the brief of that region, like
    the meeting pack's (``catalog.pick_region``) — the scope narrowed to its units, its name in the
    title and the file name, its data date on its own clock. In a warehouse of one region nothing
    changes; a region the warehouse does not hold or the user may not see is a ``BriefError``."""
    if con is None:
        with reader() as own:
            return build_brief(period, scope, own, region)
    try:
        region_id = catalog.pick_region(region, scope, con)
    except UnknownRegion as exc:
        raise BriefError(str(exc)) from exc
    if not isinstance(period, Period):
        period = resolve_period(period, con)
    as_of = data_as_of(con)
    region_name, stamp = read_region(con).label, f"{as_of:%d.%m.%Y %H:%M}"
    # the user's own units (an МЦУ), not the region narrowing below: staff counts are the region's
    own_units = scope.municipality_ids
    if region_id is not None:  # every section reads through the scope: narrowed, never widened
        scope = catalog.within_region(scope, region_id, con)
        region_name = catalog.region_settings(region_id, con).label
        stamp = catalog.region_data_date(region_id, scope, as_of, con).text  # as the region's wall states it
    last_day = period.end - dt.timedelta(days=1)
    sections = [
        _volume(con, period, scope),
        _problems(con, period, scope),
        _signals(con, period, scope, as_of),
        _weakest(con, period, scope),
        _overdue(con, period, scope),
    ]
    if period.start == month(as_of.date()).start or period.end >= month(as_of.date()).start:
        sections.append(_staffing(con, scope, own_units))
    sections.append(_roadmap(con, scope, min(last_day, as_of.date())))
    where = "" if scope.municipality_ids is None and scope.sector_ids is None else f" ({scope.label})"
    return Brief(
        title=f"Обращения граждан: {period.label}{where}",
        subtitle=(f"{region_name}. Доклад сформирован автоматически по данным на {stamp}. "
                  "Числа — из тех же показателей, что на страницах панели." + _period_standing(period, as_of)),
        sections=sections,
        period_code=period.code,
        region=region_name if region_id is not None else "",
    )


def _period_standing(period: Period, as_of: dt.datetime) -> str:
    """What the reader must know about an unfinished month (``metrics.periods``): « Неполный период…»,
    « Ответы ещё поступают…», or nothing for a settled one."""
    text = ""
    if not is_complete(period, as_of):
        text += f" {INCOMPLETE.capitalize()}: месяц ещё не закончился, обращения за него продолжают поступать."
    if not is_settled(period, as_of):
        text += (f" {UNSETTLED.capitalize()}: с конца месяца прошло меньше 30 дней, поэтому оценки организаций "
                 "и доля ответов предварительные.")
    return text


def _change_phrase(now: float, before: float, before_label: str) -> str:
    if before <= 0:
        return f"в {before_label} обращений не было"
    if before < GROWTH_MIN_PREVIOUS:
        return f"в {before_label} — {words.number(before)}, {SMALL_BASE}"
    change = (now - before) / before
    if abs(change) < 0.0005:
        return f"столько же, сколько в {before_label}"
    direction = "больше" if change > 0 else "меньше"
    return f"на {words.percent(abs(change))} {direction}, чем в {before_label} ({words.number(before)})"


def _volume(con: duckdb.DuckDBPyConnection, period: Period, scope: Scope) -> Section:
    total = query_on(con, ["volume", "growth"], [], period, scope=scope)
    now = int(total["volume"].iloc[0])
    before = float(total["volume_prev"].fillna(0).iloc[0])
    prev_label = words.MONTHS_PREPOSITIONAL[period.previous().start.month - 1]
    section = Section("Сколько обращений")
    section.paragraphs.append(
        f"В {words.month_prepositional(period.start)} года поступило {words.count(now, words.APPEALS)} — "
        f"{_change_phrase(now, before, prev_label)}.")
    by_sector = query_on(con, ["volume", "growth"], ["sector"], period, scope=scope)
    by_sector = by_sector[by_sector["volume"] > 0].sort_values("volume", ascending=False)
    for r in by_sector.itertuples():
        if r.growth_low:
            growth = f" (к прошлому месяцу — {SMALL_BASE})"
        else:
            growth = "" if pd.isna(r.growth) else f" ({words.percent(r.growth, signed=True)} к прошлому месяцу)"
        section.bullets.append(f"{r.sector_name} — {words.count(int(r.volume), words.APPEALS)}{growth}")
    return section


def _problems(con: duckdb.DuckDBPyConnection, period: Period, scope: Scope) -> Section:
    section = Section("Самые острые проблемы по блокам")
    problems = priority_problems(period, scope, per_sector=3, con=con)
    if problems.empty:
        section.paragraphs.append("За месяц нет обращений с указанной категорией.")
        return section
    top_places: dict = {}
    # one municipality's brief (an МЦУ): «больше всего: <it>» after every problem would say nothing
    if scope.municipality_ids is None or len(scope.municipality_ids) > 1:
        ids = sorted({int(c) for c in problems["category_id"]})
        places = query_on(con, ["volume"], ["category", "municipality"], period, filters={"category": ids},
                          scope=scope)
        places = places[places["volume"] > 0].sort_values(["volume", "municipality_name"], ascending=[False, True])
        # a parent («Прочие») was expanded to its children by the filter: its own rows are its own appeals
        top_places = {cid: part.head(TOP_MUNICIPALITIES) for cid, part in places.groupby("category_id")}
    for (_, sector_name), part in problems.groupby(["sector_id", "sector_name"], sort=True):
        items = []
        for r in part.sort_values("rank").head(3).itertuples():
            text = f"{r.category_name} — {words.count(int(r.volume), words.APPEALS)}"
            if r.volume_prev < GROWTH_MIN_PREVIOUS:
                text += f" ({SMALL_BASE})"
            elif not pd.isna(r.growth):
                text += f" ({words.percent(r.growth, 0, signed=True)})"
            where = top_places.get(r.category_id)
            if where is not None and not r.is_topic and len(where):
                text += ", больше всего: " + ", ".join(
                    f"{w.municipality_name} ({words.number(int(w.volume))})" for w in where.itertuples())
            items.append(text)
        section.bullets.append(f"{sector_name}: " + "; ".join(items) + ".")
    return section


def _signals(con: duckdb.DuckDBPyConnection, period: Period, scope: Scope, as_of: dt.datetime) -> Section:
    section = Section("Сигналы: рост сверх обычного уровня")
    last_day = period.end - dt.timedelta(days=1)
    when = None if last_day >= as_of.date() else last_day
    signals = detect_signals(as_of=when, scope=scope, con=con)
    if signals.empty:
        section.paragraphs.append("Сигналов нет: ни одна проблема не выросла заметно сверх своего обычного уровня.")
        return section
    regional = signals[signals["same_category_signals"] >= REGION_WIDE]
    local = signals[signals["same_category_signals"] < REGION_WIDE]
    if not regional.empty:
        summary = regional.groupby("category_name")["municipality_id"].size().sort_values(ascending=False)
        section.paragraphs.append("Рост по всему региону (часто сезонный): " + "; ".join(
            f"{name} — {words.count(int(n), words.MUNICIPALITIES)}" for name, n in summary.items()) + ".")
    if not local.empty:
        section.paragraphs.append(
            # «Местных сигналов: 1», not «Местных сигнал: 1»: the count after the colon does not agree
            f"Местных сигналов: {words.number(len(local))}. Самые сильные:")
        for r in local.head(SIGNALS_SHOWN).itertuples():
            ratio = f", в {words.number(r.ratio, 1)} раза больше" if pd.notna(r.ratio) else ""
            section.bullets.append(
                f"{r.municipality_name} — {r.category_name}: {words.count(int(r.count), words.APPEALS)} за неделю "
                f"при обычных {words.number(r.baseline, 0)}{ratio}; рост с {r.first_week:%d.%m.%Y}.")
    return section


def _weakest(con: duckdb.DuckDBPyConnection, period: Period, scope: Scope) -> Section:
    section = Section("Отстающие организации")
    rating = rate_organisations(period, scope, con=con)
    ranked = rating[rating["status"] == STATUS_RANKED]
    if ranked.empty:
        section.paragraphs.append("Организаций с достаточным числом обращений для рейтинга нет.")
        return section
    worst = ranked.sort_values(["composite", "volume"], ascending=[True, False]).head(WEAKEST_SHOWN)
    section.paragraphs.append(
        f"Итоговая оценка — от 0 до 100 по постоянным опубликованным шкалам, место — среди организаций "
        f"того же вида, диапазоном там, где 90 % интервалы оценок пересекаются; в рейтинге {len(ranked)}.")
    for r in worst.itertuples():
        if isinstance(r.weak_component, str) and r.weak_component:
            weak = f"; тянет вниз {r.weak_component} ({words.number(getattr(r, r.weak_component_code), 0)} из 100)"
        else:
            weak = "; отстаёт по всем составляющим одинаково"
        section.bullets.append(
            f"{r.organisation_name} ({r.organisation_kind}): оценка {words.number(r.composite, 0)} из 100, "
            f"место {place_text(r.peer_rank_best, r.peer_rank_worst, r.peer_count)} в группе, "
            f"{words.count(int(r.volume), words.APPEALS)}{weak}.")
    return section


def _overdue(con: duckdb.DuckDBPyConnection, period: Period, scope: Scope) -> Section:
    section = Section("Без ответа и просрочено")
    load = monthly_load(scope, con)
    at = load[load["month"] == period.start]
    if at.empty:
        section.paragraphs.append("Данных о нагрузке за этот месяц нет.")
        return section
    open_total, overdue_total = int(at["open_end"].sum()), int(at["overdue_end"].sum())
    end_label = "на дату данных" if not at["complete"].all() else f"на конец {words.month_genitive(period.start)}"
    section.paragraphs.append(
        f"{end_label.capitalize()} без ответа {words.count(open_total, words.APPEALS)}, "
        f"из них с истёкшим сроком — {words.number(overdue_total)}.")
    worst = at[at["overdue_end"] > 0].sort_values("overdue_end", ascending=False).head(3)
    if not worst.empty:
        section.bullets += [f"{r.sector_name}: просрочено {words.count(int(r.overdue_end), words.APPEALS)} "
                            f"из {words.number(int(r.open_end))} без ответа" for r in worst.itertuples()]
    return section


def _staffing(con: duckdb.DuckDBPyConnection, scope: Scope, own_units: frozenset[int] | None = None) -> Section:
    section = Section("Кадры: прогноз нагрузки на три месяца")
    if own_units is not None:
        # the blocks' staff counts are the region's: set against some municipalities' load they would
        # say «хватает» or propose nonsense — the brief says so instead, as «Решения» does
        ref = reference(con, "municipality")
        names = sorted(ref.loc[ref["municipality_id"].isin(own_units), "municipality_name"])
        if len(names) == 1:
            section.paragraphs.append(
                f"Доклад — только по муниципалитету «{names[0]}»: нагрузка в нём считается по его обращениям, "
                "а численность блоков в настройках — региональная, поэтому оценка кадров для одного "
                "муниципалитета не делается.")
        else:
            listed = ", ".join(f"«{n}»" for n in names) or "нет"
            section.paragraphs.append(
                f"Доклад — только по муниципалитетам {listed}: нагрузка в них считается по их обращениям, "
                "а численность блоков в настройках — региональная, поэтому оценка кадров для них не делается.")
        return section
    # on the served file the page's cached plan is the same one: no second forecast per open of «Решения»
    plan = staffing_plan(scope) if is_served(con) else staffing_plan(scope, con=con)
    reinforce = [p for p in plan.proposals if p.action == "reinforce"]
    if not reinforce:
        section.paragraphs.append("Численности всех блоков хватает на прогнозируемую нагрузку.")
    for p in reinforce:
        section.bullets.append(p.text)
    return section


def _roadmap(con: duckdb.DuckDBPyConnection, scope: Scope, until: dt.date) -> Section:
    section = Section("Дорожная карта: меры с доказанным эффектом")
    effects = roadmap_effects(scope, until, con)
    if effects.empty:
        section.paragraphs.append("Мер дорожной карты в хранилище нет.")
        return section
    proven = effects[effects["verdict"] == "decrease"]
    for r in proven.itertuples():
        section.bullets.append(f"{r.municipality_name}: «{r.title}» ({r.organisation_name}, с {r.start_date:%d.%m.%Y}). "
                               f"{r.text}")
    started = effects[effects["verdict"] != "not_started"]
    rest = len(started) - len(proven)
    if proven.empty:
        section.paragraphs.append("Мер с доказанным эффектом пока нет.")
    if rest > 0:
        section.notes.append(
            f"Ещё {words.count(rest, words.MEASURES)}: эффект не доказан — подробности на странице «Решения».")
    return section


# --- command line -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report brief", description="Доклад за месяц (DOCX или Markdown)")
    parser.add_argument("--period", help="месяц ГГГГ-ММ (по умолчанию последний полный месяц данных)")
    parser.add_argument("--region", help="регион хранилища нескольких регионов: код (2), название или код ISO (RU-TVE)")
    parser.add_argument("--db", help="файл хранилища (по умолчанию $CUR_DB или var/warehouse.duckdb)")
    parser.add_argument("--out", type=Path, help="файл .docx или .md (без него — Markdown в стандартный вывод)")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.suffix.lower() not in (".docx", ".md"):
        print(f"ошибка: доклад сохраняется в .docx или .md, а не «{args.out.suffix or args.out.name}»", file=sys.stderr)
        return 2
    from data.warehouse import connect, default_db_path

    db = Path(args.db) if args.db else default_db_path()
    if not db.exists():
        print(f"ошибка: хранилище не найдено: {db}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    con = connect(db, read_only=True)
    try:
        brief = build_brief(args.period, REGION, con, args.region)
    except BriefError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    if args.out is None:
        print(brief.to_markdown())
    elif args.out.suffix.lower() == ".docx":
        brief.to_docx(args.out)
    else:
        args.out.write_text(brief.to_markdown(), encoding="utf-8")
    print(f"доклад готов за {time.perf_counter() - started:.2f} с", file=sys.stderr)
    return 0
