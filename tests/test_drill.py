"""The drill-down without a browser: the appeals list against hand-written SQL, its CSV, forged addresses,
and a municipal user who reaches for another unit's appeals."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator

import duckdb
import pytest

from metrics import appeals
from metrics import source as source_module
from metrics.periods import parse_period
from tests.test_auth import app_for, post, sign_in, users_file  # noqa: F401 - fixtures

OCTOBER = parse_period("2025-10")
FORBIDDEN = ("lat", "lon", "source_id", "source", "широта", "долгота")


@pytest.fixture(scope="module")
def con(small_demo) -> Iterator[duckdb.DuckDBPyConnection]:
    from data.warehouse import connect

    source_module.configure(small_demo)
    c = connect(small_demo, read_only=True)
    try:
        yield c
    finally:
        c.close()
        source_module.configure(None)


def busiest(con) -> tuple[int, int, int, str]:
    """(municipality, category, organisation, channel) of October's busiest combination."""
    row = con.execute("""SELECT municipality_id, category_id, organisation_id, channel FROM appeal
                         WHERE received_at >= DATE '2025-10-01' AND received_at < DATE '2025-11-01'
                           AND organisation_id IS NOT NULL
                         GROUP BY ALL ORDER BY count(*) DESC, 1, 2, 3, 4 LIMIT 1""").fetchall()[0]
    return int(row[0]), int(row[1]), int(row[2]), str(row[3])


def hand_rows(con, municipality: int, category: int, organisation: int | None = None) -> list[tuple]:
    """The appeals of the view, written out by hand: newest first, ties by the source key."""
    org = "AND a.organisation_id = $o" if organisation is not None else ""
    return con.execute(f"""
        SELECT strftime(a.received_at, '%d.%m.%Y %H:%M'), m.name, ch.name, coalesce(o.name, ''), a.status,
               coalesce(a.closure_reason, ''), coalesce(a.topic, '')
        FROM appeal a JOIN municipality m ON m.id = a.municipality_id JOIN channel ch ON ch.code = a.channel
        LEFT JOIN organisation o ON o.id = a.organisation_id
        WHERE a.received_at >= DATE '2025-10-01' AND a.received_at < DATE '2025-11-01'
          AND a.municipality_id = $m AND a.category_id = $c {org}
        ORDER BY a.received_at DESC, a.source, a.source_id""",
        {"m": municipality, "c": category, **({"o": organisation} if organisation is not None else {})}).fetchall()


def test_the_list_is_the_views_appeals_newest_first(con) -> None:
    municipality, category, organisation, _ = busiest(con)
    listed = appeals.appeal_list(OCTOBER, municipality=municipality, category=category, con=con)
    expected = hand_rows(con, municipality, category)
    assert listed.total == len(expected) and not listed.truncated
    got = [(appeals.format_times(listed.rows["received_at"])[i], r.municipality_name, r.channel_name,
            r.organisation_name, r.status_name, r.closure_name, r.topic) for i, r in enumerate(listed.rows.itertuples())]
    status = {v: k for k, v in appeals.STATUS_NAMES.items()}
    closure = {v: k for k, v in appeals.CLOSURE_NAMES.items()} | {"": ""}
    assert [(a, b, c, d, status[e], closure[f], g or "") for a, b, c, d, e, f, g in got] == expected
    # one organisation of it: a subset, counted the same way
    one = appeals.appeal_list(OCTOBER, municipality=municipality, category=category, organisation=organisation,
                              con=con)
    assert one.total == len(hand_rows(con, municipality, category, organisation)) and 0 < one.total < listed.total
    assert set(one.rows["organisation_name"]) == {expected_name(con, organisation)}


def expected_name(con, organisation: int) -> str:
    return con.execute("SELECT name FROM organisation WHERE id = ?", [organisation]).fetchall()[0][0]


def test_the_limit_keeps_the_newest_and_the_total_counts_all(con) -> None:
    municipality, category, _, _ = busiest(con)
    whole = appeals.appeal_list(OCTOBER, municipality=municipality, category=category, con=con)
    first = appeals.appeal_list(OCTOBER, municipality=municipality, category=category, limit=7, con=con)
    assert first.truncated and first.total == whole.total and len(first.rows) == 7
    assert first.rows.equals(whole.rows.head(7))
    with pytest.raises(ValueError):
        appeals.appeal_list(OCTOBER, limit=0, con=con)


def test_a_parent_category_stands_for_its_sub_problems_as_in_every_indicator(con) -> None:
    from metrics.query import query_on

    parent = con.execute("SELECT parent_id FROM category WHERE parent_id IS NOT NULL LIMIT 1").fetchall()[0][0]
    listed = appeals.appeal_list(OCTOBER, category=int(parent), con=con)
    expected = con.execute("""SELECT count(*) FROM appeal WHERE received_at >= DATE '2025-10-01'
                              AND received_at < DATE '2025-11-01' AND category_id IN
                              (SELECT id FROM category WHERE id = $p OR parent_id = $p)""", {"p": parent}).fetchall()[0][0]
    assert listed.total == expected
    assert listed.total == int(query_on(con, ["volume"], [], OCTOBER, {"category": [int(parent)]})["volume"].iloc[0])


def test_the_csv_is_the_list_with_russian_headers_and_no_personal_data(con) -> None:
    municipality, category, _, channel = busiest(con)
    listed = appeals.appeal_list(OCTOBER, municipality=municipality, category=category, channel=channel, con=con)
    body = appeals.appeals_csv(listed)
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == list(appeals.COLUMNS.values())
    assert not any(word in " ".join(rows[0]).lower() for word in FORBIDDEN)
    assert len(rows) - 1 == listed.total == con.execute(
        """SELECT count(*) FROM appeal WHERE received_at >= DATE '2025-10-01' AND received_at < DATE '2025-11-01'
           AND municipality_id = ? AND category_id = ? AND channel = ?""",
        [municipality, category, channel]).fetchall()[0][0]
    assert [r[10] for r in rows[1:]] == listed.rows["category_name"].tolist()
    assert [r[0] for r in rows[1:]] == appeals.format_times(listed.rows["received_at"]).tolist()


# --- pages, signed in -------------------------------------------------------------------------------------


def router(client, dash_app, path: str, search: str = "") -> str:
    from tests.dash_requests import callback_body

    body = callback_body(dash_app.callback_map, "_pages_content", {})
    body["inputs"][0]["value"], body["inputs"][1]["value"] = path, search
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return answer.get_data(as_text=True)


def csv_of(client, dash_app, view: dict) -> str | None:
    answer = post(client, dash_app, "drill-csv", {"drill-csv-button": 1, "drill-view": view})
    if answer.status_code == 204 or not answer.get_json()["response"]:  # nothing to download
        return None
    data = answer.get_json()["response"]["drill-csv"]["data"]
    return base64.b64decode(data["content"]).decode("utf-8-sig")


def test_a_municipal_user_cannot_reach_another_units_appeals(app_for, con) -> None:  # noqa: F811
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "yartsevo")
    names = dict(con.execute("SELECT id, name FROM municipality").fetchall())
    own = next(i for i, n in names.items() if n.startswith("Ярцевский"))
    other = next(i for i in names if i != own)
    category = int(con.execute("SELECT category_id FROM appeal WHERE municipality_id = ? GROUP BY 1 "
                               "ORDER BY count(*) DESC LIMIT 1", [other]).fetchall()[0][0])
    refused = router(client, dash_app, f"/drill/{other}", f"?period=2025-10&category={category}")
    assert "drill-refused" in refused and "нет доступного муниципального образования" in refused
    assert names[other] not in refused.replace("К тепловой карте", "")
    assert csv_of(client, dash_app, {"unit": str(other), "period": "2025-10"}) is None
    # the region's view holds only its own appeals; its CSV matches a hand count of them
    region = router(client, dash_app, "/drill/region", f"?period=2025-10&category={category}")
    assert "drill-grid" in region and names[other] not in region
    text = csv_of(client, dash_app, {"unit": "region", "period": "2025-10", "category": str(category)})
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))[1:]
    expected = con.execute("""SELECT count(*) FROM appeal WHERE received_at >= DATE '2025-10-01'
                              AND received_at < DATE '2025-11-01' AND municipality_id = ? AND category_id IN
                              (SELECT id FROM category WHERE id = $1 OR parent_id = $1)""".replace("$1", "?"),
                           [own, category, category]).fetchall()[0][0]
    assert len(rows) == expected and {r[8] for r in rows} <= {names[own]}
    # an organisation that works only elsewhere does not exist for this user
    foreign = int(con.execute("""SELECT organisation_id FROM appeal WHERE organisation_id IS NOT NULL
                                 AND organisation_id NOT IN (SELECT organisation_id FROM appeal
                                   WHERE municipality_id = ? AND organisation_id IS NOT NULL)
                                 GROUP BY 1 ORDER BY count(*) DESC LIMIT 1""", [own]).fetchall()[0][0])
    assert "organisation-unknown" in router(client, dash_app, f"/organisation/{foreign}")
    assert "drill-refused" in router(client, dash_app, "/drill/region", f"?organisation={foreign}")


@pytest.mark.parametrize("path, search, message", [
    ("/drill/abc", "", "нет доступного муниципального образования"),
    ("/drill/99999", "", "нет доступного муниципального образования"),
    ("/drill/region", "?category=1 OR 1=1", "недопустимое значение поля «категория»"),
    ("/drill/region", "?category=999999", "нет доступной категории"),
    ("/drill/region", "?organisation=-5", "недопустимое значение поля «организация»"),
    ("/drill/region", "?period=1999-01", "нет данных за период"),
    ("/drill/region", "?indicator=drop", "недопустимое значение поля «показатель»"),
    ("/drill/region", "?sector=health&category=__HOUSING__", "не относится к выбранному отраслевому блоку"),
])
def test_a_forged_address_gets_a_russian_message_and_no_data(app_for, con, path, search, message) -> None:  # noqa: F811
    housing = con.execute("SELECT c.id FROM category c JOIN sector s ON s.id = c.sector_id "
                          "WHERE s.code = 'housing' LIMIT 1").fetchall()[0][0]
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "curator")
    answer = router(client, dash_app, path, search.replace("__HOUSING__", str(housing)))
    assert "drill-refused" in answer and message in answer
    assert "drill-grid" not in answer
    view = {"unit": path.rsplit("/", 1)[1], **dict(p.split("=", 1) for p in search.lstrip("?").split("&") if p)}
    assert csv_of(client, dash_app, view) is None


# --- the pages as Dash calls them (no browser) --------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(small_demo, tmp_path_factory):
    import app as app_module

    app_module.create_app(tmp_path_factory.mktemp("drill_pages") / "absent.duckdb")
    before = source_module._configured
    source_module.configure(small_demo)
    from pages import drill, heatmap, municipality, organisation

    yield {"drill": drill, "heatmap": heatmap, "municipality": municipality, "organisation": organisation}
    source_module.configure(before)


def _text(component) -> str:
    from tests.test_period_pages import _text as text

    return text(component)


def test_the_full_profile_keeps_the_maps_sector_and_indicator(pages, con) -> None:
    from tests.test_app import find

    unit = int(con.execute("SELECT id FROM municipality WHERE name LIKE 'Ярцевский%'").fetchall()[0][0])
    housing = con.execute("""SELECT count(*) FROM appeal a JOIN sector s ON s.id = a.sector_id
                             WHERE s.code = 'housing' AND a.municipality_id = ? AND a.received_at >= DATE '2025-10-01'
                               AND a.received_at < DATE '2025-11-01'""", [unit]).fetchall()[0][0]
    page = pages["municipality"].layout(str(unit), period="2025-10", sector="housing", indicator="on_time_share")
    tiles = find(page, "municipality-tiles")
    assert _text(tiles.children[0]).split()[-1] == str(housing)  # the volume tile counts ЖКХ only
    assert "ЖКХ" in _text(find(page, "municipality-filters"))
    assert "Доля в срок по месяцам" in str(find(page, "municipality-trend").figure["layout"]["title"]["text"])
    back = find(page, "municipality-map-link").href
    assert "sector=housing" in back and "indicator=on_time_share" in back and f"municipality={unit}" in back


def test_the_map_panel_follows_the_sector_filter(pages, con) -> None:
    unit = int(con.execute("SELECT id FROM municipality WHERE name LIKE 'Ярцевский%'").fetchall()[0][0])
    panel = pages["heatmap"].profile(unit, "2025-10", "housing", "all", "volume")
    rows = panel.children[-1].children[1].children  # the table body
    expected = con.execute("""SELECT c.name, count(*) FROM appeal a JOIN category c ON c.id = a.category_id
                              JOIN sector s ON s.id = a.sector_id WHERE s.code = 'housing' AND a.municipality_id = ?
                                AND a.received_at >= DATE '2025-10-01' AND a.received_at < DATE '2025-11-01'
                              GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8""", [unit]).fetchall()
    assert [(_text(r.children[0]), int(_text(r.children[1]))) for r in rows] == [(n, int(v)) for n, v in expected]
    # a forged unit gets a message, not data
    assert "нет доступного муниципального образования" in _text(pages["heatmap"].profile("999", "2025-10", "all",
                                                                                        "all", "volume"))
