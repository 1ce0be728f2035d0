"""The answer cache after a data switch: twins computed once, the most asked questions warmed again
as the users who asked them (issue 18, item 7)."""

from __future__ import annotations

import shutil
import threading
import time

from data.swap import writing
from tests.dash_requests import plotly_array
from tests.test_auth import app_for, coloured_municipalities, heatmap_values, post, sign_in, users_file  # noqa: F401


def _total(response) -> float:
    fig = response.get_json()["response"]["heatmap-map"]["figure"]
    return sum(v for v in plotly_array(fig["data"][1]["z"]) if v is not None and v == v)  # a missing value: null (or NaN in typed arrays)


def test_identical_cold_requests_are_computed_once(app_for):  # noqa: F811
    dash_app = app_for()
    client = dash_app.server.test_client()
    sign_in(client, "curator")
    cache = dash_app.server.extensions["callback_cache"]
    answers: list[int] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        mine = dash_app.server.test_client()
        sign_in(mine, "curator")
        barrier.wait()
        answers.append(post(mine, dash_app, "heatmap-map", heatmap_values(indicator="on_time_share")).status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 8
    assert cache.stored == 1  # one computation, seven answers from it


def test_after_a_data_switch_the_most_asked_questions_are_warmed_as_their_users(small_demo, users_file,  # noqa: F811
                                                                                tmp_path):
    import app as app_module
    from auth.web import AuthSettings
    from data.rollup import refresh_rollups
    from metrics import source
    from metrics.scope import install_provider

    db = tmp_path / "served.duckdb"
    shutil.copy(small_demo, db)
    settings = AuthSettings(users_file=users_file[0], secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite")
    dash_app = app_module.create_app(db, settings)
    try:
        curator, municipal = dash_app.server.test_client(), dash_app.server.test_client()
        sign_in(curator, "curator")
        sign_in(municipal, "yartsevo")
        cache = dash_app.server.extensions["callback_cache"]
        before_curator = _total(post(curator, dash_app, "heatmap-map", heatmap_values()))
        before_municipal = _total(post(municipal, dash_app, "heatmap-map", heatmap_values()))
        assert before_curator > before_municipal > 0
        with writing(db) as con:  # a real writer: October's first days go away
            con.execute("DELETE FROM appeal WHERE received_at >= '2025-10-01' AND received_at < '2025-10-08'")
            refresh_rollups(con)
        # a different question is the first to see the new file: it starts the warm-up
        post(curator, dash_app, "heatmap-map", heatmap_values(indicator="on_time_share"))
        deadline = time.monotonic() + 30
        while cache.warmed < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cache.warmed >= 2
        hits = cache.hits
        after_curator = _total(post(curator, dash_app, "heatmap-map", heatmap_values()))
        after_municipal = _total(post(municipal, dash_app, "heatmap-map", heatmap_values()))
        assert cache.hits == hits + 2  # both answered from the warmed cache
        assert after_curator < before_curator and after_municipal < before_municipal
        # each user got the answer of their own scope
        assert len(coloured_municipalities(post(municipal, dash_app, "heatmap-map", heatmap_values()))) == 1
    finally:
        install_provider(None)
        source.configure(None)


def test_a_shared_piece_of_an_answer_is_kept_per_scope_and_data_file(small_demo, tmp_path):
    """``per_data`` (the signals of «Проблемы», the KPI panels by sector): computed once per arguments,
    scope and warehouse file; another user's scope and a switched-in file are computed anew."""
    import datetime as dt

    import duckdb

    from data.rollup import refresh_rollups
    from metrics import source
    from metrics.periods import month
    from metrics.query import query
    from metrics.scope import Scope, install_provider
    from pages.callback_cache import per_data

    db = tmp_path / "served.duckdb"
    shutil.copy(small_demo, db)
    source.configure(db)
    calls: list[str] = []

    @per_data
    def volume(period_code: str) -> float:
        calls.append(period_code)
        period = month(dt.date.fromisoformat(f"{period_code}-01"))
        return float(query(["volume"], period=period)["volume"].iloc[0])

    def counted(where: str = "") -> int:  # the same number by hand, from the facts
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute("SELECT count(*) FROM appeal WHERE received_at >= DATE '2025-10-01' "
                               f"AND received_at < DATE '2025-11-01' {where}").fetchall()[0][0]
        finally:
            con.close()

    try:
        region = volume("2025-10")
        assert volume("2025-10") == region == counted() and calls == ["2025-10"]
        install_provider(lambda: Scope(municipality_ids=frozenset({27})))
        assert volume("2025-10") == counted("AND municipality_id = 27") < region and len(calls) == 2
        install_provider(None)
        assert volume("2025-10") == region and len(calls) == 2  # the region's answer is still kept
        with writing(db) as con:  # an import switches in a new file
            con.execute("DELETE FROM appeal WHERE received_at >= '2025-10-01' AND received_at < '2025-10-08'")
            refresh_rollups(con)
        assert volume("2025-10") == counted() < region and len(calls) == 3
    finally:
        install_provider(None)
        source.configure(None)
