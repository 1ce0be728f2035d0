"""A summary of what the warehouse holds: region, data date, volumes by sector (within the scope)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from metrics.scope import REGION, Scope, effective
from metrics.source import reader


@dataclass(frozen=True)
class WarehouseStatus:
    region_name: str
    data_as_of: pd.Timestamp | None
    appeals: int
    municipalities: int
    organisations: int
    geometry_kind: str | None
    by_sector: pd.DataFrame  # columns: sector_code, sector_name, appeals


def _scope_clauses(seen: Scope, prefix: str = "") -> tuple[list[str], dict]:
    """WHERE clauses (and their parameters) keeping the appeals of an effective scope; ``prefix`` is
    the appeal table's alias with its dot."""
    clauses, params = ["TRUE"], {}
    if seen.municipality_ids is not None:
        clauses.append(f"list_contains($m, {prefix}municipality_id)")
        params["m"] = sorted(seen.municipality_ids)
    if seen.sector_ids is not None:
        clauses.append(f"list_contains($s, {prefix}sector_id)")
        params["s"] = sorted(seen.sector_ids)
    return clauses, params


def warehouse_status(scope: Scope = REGION) -> WarehouseStatus:
    """What the warehouse holds within the scope, narrowed to the signed-in user's (the page is the
    curator's, but the numbers never rely on the page guard alone): appeals, their last receipt time
    and counts by sector; every sector of the scope is listed, with 0 where it has no appeals."""
    seen = effective(scope)
    clauses, params = _scope_clauses(seen, "a.")
    within = " AND ".join(clauses)
    sectors = "TRUE" if seen.sector_ids is None else "list_contains($s, s.id)"
    with reader() as con:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        appeals, as_of = con.execute(f"SELECT count(*), max(received_at) FROM appeal a WHERE {within}",  # noqa: S608
                                     params).fetchall()[0]
        municipalities = (con.execute("SELECT count(*) FROM municipality").fetchall()[0][0]
                          if seen.municipality_ids is None else len(seen.municipality_ids))
        organisations = con.execute("SELECT count(*) FROM organisation").fetchall()[0][0]
        by_sector = con.execute(
            f"""SELECT s.code AS sector_code, s.name AS sector_name, count(a.sector_id) AS appeals
                FROM sector s LEFT JOIN appeal a ON a.sector_id = s.id AND {within}
                WHERE {sectors} GROUP BY s.id, s.code, s.name ORDER BY s.id""",  # noqa: S608 - fixed clauses, values bound
            params,
        ).df()
    return WarehouseStatus(
        region_name=meta.get("region_name", ""),
        data_as_of=pd.Timestamp(as_of) if as_of is not None else None,
        appeals=int(appeals),
        municipalities=int(municipalities),
        organisations=int(organisations),
        geometry_kind=meta.get("geometry_kind"),
        by_sector=by_sector,
    )


def last_receipt(scope: Scope, since: dt.datetime | None = None,
                 con: duckdb.DuckDBPyConnection | None = None) -> dt.datetime | None:
    """The last receipt time of an appeal within the scope (narrowed to the signed-in user's): how
    fresh one region's feed is in a warehouse of several (the wall of that region). ``since`` bounds
    the search (a recent window reads a small part of the facts); nothing in it: the whole history."""
    if con is None:
        with reader() as own:
            return last_receipt(scope, since, own)
    clauses, params = _scope_clauses(effective(scope))
    for bound in ([since] if since is not None else []) + [None]:
        where = " AND ".join([*clauses, *(["received_at >= $since"] if bound is not None else [])])
        found = con.execute(f"SELECT max(received_at) FROM appeal WHERE {where}",  # noqa: S608 - fixed clauses
                            {**params, **({"since": bound} if bound is not None else {})}).fetchall()[0][0]
        if found is not None:
            return pd.Timestamp(found).to_pydatetime()
    return None
