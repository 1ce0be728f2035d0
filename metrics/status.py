"""A summary of what the warehouse holds: region, data date, volumes by sector."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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


def warehouse_status() -> WarehouseStatus:
    with reader() as con:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        appeals, as_of = con.execute("SELECT count(*), max(received_at) FROM appeal").fetchall()[0]
        municipalities = con.execute("SELECT count(*) FROM municipality").fetchall()[0][0]
        organisations = con.execute("SELECT count(*) FROM organisation").fetchall()[0][0]
        by_sector = con.execute(
            """SELECT s.code AS sector_code, s.name AS sector_name, count(a.sector_id) AS appeals
               FROM sector s LEFT JOIN appeal a ON a.sector_id = s.id
               GROUP BY s.id, s.code, s.name ORDER BY s.id"""
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
