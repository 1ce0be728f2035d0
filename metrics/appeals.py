"""The appeals behind a number: one selection's list (no personal data), and the organisation card.

A drill-down ends at the appeals themselves: «these 312 appeals about heating in Ярцевский in October,
answered by these bodies». ``appeal_list`` returns the newest of them (up to a row limit) with the
total count of the selection; the grid and its CSV ask the same function with the same arguments, so
the file holds exactly what the grid shows.

The selection uses the filter semantics of ``metrics.query`` (a parent category stands for its
sub-problems, a sector may be given by code) and always the request scope, so the list's count equals
the volume the indicators report for the same selection and no one reads past their own scope.

Only the formalised essence of an appeal leaves the warehouse: dates, channel, unit, category,
organisation, status, closure reason, ``topic``. Never the source system's key, coordinates or any
field a person could be recognised by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pandas as pd

from metrics.periods import Period
from metrics.query import _clean_filters, _filter_clauses, reference
from metrics.scope import REGION, Scope, effective
from metrics.source import reader

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# column -> Russian header, in the order the grid and the CSV show them
COLUMNS: dict[str, str] = {
    "received_at": "Поступило",
    "topic": "Суть обращения",
    "organisation_name": "Организация",
    "status_name": "Статус",
    "closure_name": "Причина закрытия",
    "channel_name": "Канал",
    "due_at": "Срок ответа",
    "answered_at": "Ответ дан",
    "municipality_name": "Муниципалитет",
    "sector_name": "Блок",
    "category_name": "Категория",
}
DATE_COLUMNS = ("received_at", "due_at", "answered_at")
STATUS_NAMES: dict[str, str] = {
    "new": "новое", "in_work": "в работе", "answered": "дан ответ", "resolved": "решено",
    "rejected": "отклонено", "redirected": "перенаправлено",
}
CLOSURE_NAMES: dict[str, str] = {
    "resolved": "проблема решена", "explained": "дано разъяснение", "refused": "отказано",
    "not_competent": "не в компетенции", "redirected": "перенаправлено", "duplicate": "дубликат",
}


@dataclass(frozen=True)
class AppealList:
    rows: pd.DataFrame  # COLUMNS, newest first
    total: int  # appeals of the selection in the scope, however many rows came back
    limit: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


def _with_connection(con: duckdb.DuckDBPyConnection | None, run: Callable):
    if con is not None:
        return run(con)
    with reader() as own:
        return run(own)


def appeal_list(
    period: Period,
    municipality: int | None = None,
    sector: int | str | None = None,
    category: int | None = None,
    organisation: int | None = None,
    channel: str | None = None,
    limit: int = DEFAULT_LIMIT,
    scope: Scope = REGION,
    con: duckdb.DuckDBPyConnection | None = None,
) -> AppealList:
    """The appeals received in ``period`` matching every given filter, within the scope: the newest
    ``limit`` rows (ties by the source key, so two calls give the same rows) and the total count."""
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise ValueError(f"число строк должно быть от 1 до {MAX_LIMIT}")
    raw = {"municipality": municipality, "sector": sector, "category": category, "organisation": organisation,
           "channel": channel}

    def run(c: duckdb.DuckDBPyConnection) -> AppealList:
        # the same filter and scope clauses as every indicator: the count is the selection's volume
        filters = _clean_filters(c, {k: v for k, v in raw.items() if v is not None})
        params: dict[str, object] = {"p_start": period.start, "p_end": period.end}
        clauses, params = _filter_clauses(filters, scope, params)
        where = " AND ".join(["received_at >= $p_start", "received_at < $p_end", *clauses])
        total = int(c.execute(f"SELECT count(*) FROM appeal WHERE {where}", params).fetchall()[0][0])  # noqa: S608
        params["limit"] = int(limit)
        rows = c.execute(
            f"""SELECT a.received_at, m.name AS municipality_name, s.name AS sector_name, k.name AS category_name,
                       ch.name AS channel_name, o.name AS organisation_name, a.status, a.closure_reason,
                       a.due_at, a.answered_at, a.topic
                FROM (SELECT * FROM appeal WHERE {where}
                      ORDER BY received_at DESC, source, source_id LIMIT $limit) a
                LEFT JOIN municipality m ON m.id = a.municipality_id
                LEFT JOIN sector s ON s.id = a.sector_id
                LEFT JOIN category k ON k.id = a.category_id
                LEFT JOIN channel ch ON ch.code = a.channel
                LEFT JOIN organisation o ON o.id = a.organisation_id
                ORDER BY a.received_at DESC, a.source, a.source_id""",  # noqa: S608 - clauses of registry columns
            params).df()
        rows["status_name"] = rows.pop("status").map(STATUS_NAMES).fillna("")
        rows["closure_name"] = rows.pop("closure_reason").map(CLOSURE_NAMES).fillna("")
        rows["channel_name"] = rows["channel_name"].fillna("")
        return AppealList(rows[list(COLUMNS)].reset_index(drop=True), total, int(limit))

    return _with_connection(con, run)


def appeals_csv(appeals: AppealList) -> bytes:
    """The list as a CSV for Excel in a Russian locale: Russian headers, «;», dates «дд.мм.гггг чч:мм»,
    UTF-8 with a byte-order mark (so Excel reads Cyrillic)."""
    table = appeals.rows.copy()
    for column in DATE_COLUMNS:
        table[column] = format_times(table[column])
    table = table.fillna("").rename(columns=COLUMNS)
    return table.to_csv(index=False, sep=";", lineterminator="\r\n").encode("utf-8-sig")


def format_times(values: pd.Series) -> pd.Series:
    """«31.10.2025 14:05»; empty where there is no time."""
    times = pd.to_datetime(values)
    return times.dt.strftime("%d.%m.%Y %H:%M").where(times.notna(), "")


def categories() -> pd.DataFrame:
    """Categories of the sectors the signed-in user may see: ``category_id``, ``category_name``,
    ``category_parent_id``, ``sector_code`` (a reference list; for checking a category in an address)."""
    allowed = effective(REGION).sector_ids
    with reader() as con:
        ref = reference(con, "category").merge(reference(con, "category_sector"), on="category_id")
        if allowed is not None:
            codes = reference(con, "sector")
            codes = set(codes.loc[codes["sector_id"].isin(allowed), "sector_code"])
            ref = ref[ref["sector_code"].isin(codes)]
    return ref[["category_id", "category_name", "category_parent_id", "sector_code"]].reset_index(drop=True)


@dataclass(frozen=True)
class OrganisationCard:
    organisation_id: int
    name: str
    kind: str
    home_municipality: str  # "" for a regional body
    sector_name: str
    first_appeal: dt.datetime
    last_appeal: dt.datetime
    appeals: int  # all time, within the scope


def organisation_card(organisation_id: int, scope: Scope = REGION,
                      con: duckdb.DuckDBPyConnection | None = None) -> OrganisationCard | None:
    """Who the organisation is and how many appeals of the scope it holds; None when the scope holds
    none of its appeals (an МЦУ never learns about a body that does not work for its municipality)."""

    def run(c: duckdb.DuckDBPyConnection) -> OrganisationCard | None:
        clauses, params = _filter_clauses({"organisation": [int(organisation_id)]}, scope, {})
        row = c.execute(
            f"""SELECT count(*), min(received_at), max(received_at) FROM appeal
                WHERE {' AND '.join(clauses)}""", params).fetchall()[0]  # noqa: S608 - registry columns only
        if not row[0]:
            return None
        ref = c.execute("""SELECT o.name, coalesce(o.kind, ''), coalesce(m.name, ''), coalesce(s.name, '')
                           FROM organisation o LEFT JOIN municipality m ON m.id = o.municipality_id
                           LEFT JOIN sector s ON s.id = o.sector_id WHERE o.id = $id""",
                        {"id": int(organisation_id)}).fetchall()
        if not ref:
            return None
        name, kind, home, sector_name = ref[0]
        return OrganisationCard(int(organisation_id), name, kind, home, sector_name, row[1], row[2], int(row[0]))

    return _with_connection(con, run)
