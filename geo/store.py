"""Reading and writing ``municipality_shape`` and the region GeoJSON the map draws."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import shapely
from shapely.geometry.base import BaseGeometry

from data.warehouse import DEFAULT_TIMEZONE, get_meta, set_meta
from geo.simplify import MAX_GEOJSON_BYTES, dumps, feature, feature_collection, simplify_region


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """True inside an explicit transaction: only there do two statements share one txid.

    (A failed nested BEGIN would abort the caller's transaction, so it cannot be probed.)
    """
    first = con.execute("SELECT txid_current()").fetchall()[0][0]
    second = con.execute("SELECT txid_current()").fetchall()[0][0]
    return bool(first == second)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction, or join the caller's when one is already open (the demo builder's)."""
    if in_transaction(con):
        yield
        return
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def local_now(con: duckdb.DuckDBPyConnection) -> datetime:
    """Naive local time of the region, as every timestamp in the warehouse."""
    tz = get_meta(con, "region_timezone") or DEFAULT_TIMEZONE
    return datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)


def replace_shapes(
    con: duckdb.DuckDBPyConnection,
    shapes: Mapping[int, BaseGeometry],
    *,
    is_schematic: bool,
    source: str,
    geometry_kind: str,
    max_bytes: int = MAX_GEOJSON_BYTES,
    attribution: str | None = None,
    license: str | None = None,
) -> dict[str, Any]:
    """Replace all stored shapes with ``shapes`` (EPSG:4326, one per municipality id).

    The map must not mix two geometry sets, so shapes of units missing from ``shapes``
    are removed too. Runs inside the caller's transaction when there is one. Meta
    ``geometry_source``, ``geometry_attribution`` (e.g. «© участники OpenStreetMap``, shown
    on every map) and ``geometry_license`` describe the new set; empty when not given.
    """
    names = dict(con.execute("SELECT id, name FROM municipality").fetchall())
    missing = sorted(set(shapes) - set(names))
    if missing:
        raise ValueError(f"нет муниципалитетов с id {missing}")
    ids = sorted(shapes)
    region = simplify_region(
        [shapes[i] for i in ids], ids, [names[i] for i in ids], is_schematic, max_bytes=max_bytes
    )
    now = local_now(con)
    rows = [
        [i, shapely.to_wkb(shapes[i]), dumps(g), is_schematic, source, now]
        for i, g in zip(ids, region.geometries, strict=True)
    ]
    with transaction(con):
        con.execute("DELETE FROM municipality_shape")
        if rows:
            con.executemany("INSERT INTO municipality_shape VALUES (?, ?, ?, ?, ?, ?)", rows)
        set_meta(con, "geometry_kind", geometry_kind)
        set_meta(con, "geometry_tolerance_deg", repr(region.tolerance))
        set_meta(con, "geometry_source", source)
        set_meta(con, "geometry_attribution", attribution or "")
        set_meta(con, "geometry_license", license or "")
    return {
        "shapes": len(rows),
        "geojson_bytes": region.geojson_bytes,
        "tolerance_deg": region.tolerance,
        "method": region.method,
        "coverage_valid": region.coverage_valid,
        "over_budget": region.over_budget,
    }


def load_region_geojson(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The region FeatureCollection for ``go.Choropleth(featureidkey="id")``.

    Feature ``id`` is the municipality id; rings are already clockwise. Empty when no
    shapes are stored. The foreign member ``attribution`` (RFC 7946 §6.1) carries the text
    every map of these shapes must show (e.g. «© участники OpenStreetMap»), when there is one.
    """
    rows = con.execute(
        """SELECT s.municipality_id, m.name, s.is_schematic, s.simplified_geojson
           FROM municipality_shape s JOIN municipality m ON m.id = s.municipality_id
           ORDER BY s.municipality_id"""
    ).fetchall()
    collection = feature_collection(
        [feature(mid, name, schematic, json.loads(gj)) for mid, name, schematic, gj in rows]
    )
    attribution = get_meta(con, "geometry_attribution") if rows else None
    if attribution:
        collection["attribution"] = attribution
    return collection


def geometry_attribution(con: duckdb.DuckDBPyConnection) -> str | None:
    """The attribution the stored boundaries require on a map, or None."""
    return get_meta(con, "geometry_attribution") or None


def load_shapes(con: duckdb.DuckDBPyConnection) -> dict[int, BaseGeometry]:
    """Full-resolution shapes by municipality id (for point-in-polygon and area work)."""
    rows = con.execute("SELECT municipality_id, geometry_wkb FROM municipality_shape ORDER BY 1").fetchall()
    return {int(mid): shapely.from_wkb(bytes(wkb)) for mid, wkb in rows}
