"""Several machines on one ClickHouse: sign-in attempts and logout marks live in the shared store.

Two "machines" are two app instances with their own temp folders (their own SQLite files, unused
here) and their own process-local caches of the logout marks, sharing one ClickHouse store — chDB
in a temp directory, the same SQL a server runs."""

from __future__ import annotations

import time

import pytest

from auth.throttle import ClickHouseState, SqliteState, StateUnavailable, _keys
from auth.web import AuthSettings
from tests.test_auth import PASSWORD, add_user, sign_in
from tests.test_sessions import sign_ins_at_once

REFRESH = 0.3  # the tests' reload interval of the logout marks (production: 5 s)
STALE = 1.0  # the tests' limit for serving on a stale list (production: 60 s)
UNREACHABLE = "clickhouse://default:@127.0.0.1:1/cur"  # nothing listens on port 1


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.toml"
    assert add_user(path, "curator", "curator").returncode == 0
    return path


@pytest.fixture
def store(tmp_path):
    from data.clickhouse import ChdbConnection

    directory = tmp_path / "auth-ch"
    yield f"chdb:{directory}"
    ChdbConnection.release(directory)


@pytest.fixture
def machine(small_demo, users, tmp_path):
    import app as app_module
    from metrics import source
    from metrics.scope import install_provider

    def make(name: str, state: str):
        (tmp_path / name).mkdir(exist_ok=True)
        settings = AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=tmp_path / name / "t.sqlite",
                                auth_state=state, revocation_refresh=REFRESH, revocation_stale_limit=STALE)
        return app_module.create_app(small_demo, settings)

    yield make
    install_provider(None)
    source.configure(None)


def _rename(store: str, old: str, new: str) -> None:
    """Take the shared store away (and give it back) the way a lost server looks to the web tier."""
    from data.clickhouse import ChdbConnection

    ChdbConnection(store.removeprefix("chdb:"), database=old).command(f"RENAME DATABASE {old} TO {new}",
                                                                       in_database=False)


def test_failures_on_one_machine_count_on_another(machine, store):
    a, b = machine("a", store), machine("b", store)
    for _ in range(3):  # the pair's free failures, all on machine A
        assert sign_in(a.server.test_client(), "curator", "неверный-пароль-1").status_code == 401
    on_b = sign_in(b.server.test_client(), "curator", "неверный-пароль-1")
    assert on_b.status_code == 429 and "Повторите через" in on_b.get_data(as_text=True)
    assert sign_in(b.server.test_client(), "curator").status_code == 429  # the pair waits, even with the password
    elsewhere = b.server.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.1.2.3"  # another address: only the login's milder count
    assert sign_in(elsewhere, "curator").status_code == 302


def test_a_logout_on_one_machine_ends_the_copied_cookie_on_another(machine, store):
    a, b = machine("a", store), machine("b", store)
    owner = a.server.test_client()
    assert sign_in(owner, "curator").status_code == 302
    thief = b.server.test_client()
    thief.set_cookie("cur_session", owner.get_cookie("cur_session").value)
    assert thief.get("/").status_code == 200  # the cookie is good on every machine
    assert owner.get("/logout").status_code == 302
    time.sleep(REFRESH + 0.1)  # B reloads the marks within its refresh time
    assert thief.get("/").status_code == 302
    assert thief.post("/_dash-update-component", json={}).status_code == 401
    assert sign_in(owner, "curator").status_code == 302 and owner.get("/").status_code == 200


def test_twenty_concurrent_guesses_on_two_machines_check_at_most_three_passwords(machine, store):
    results = sign_ins_at_once([machine("a", store), machine("b", store)],
                               [f"неверный-{i}-пароль" for i in range(20)])
    assert len(results) == 20 and set(results) <= {401, 429}
    assert results.count(401) <= 3 and results.count(429) >= 17, results


def test_the_owners_concurrent_sign_ins_on_two_machines_all_succeed(machine, store):
    results = sign_ins_at_once([machine("a", store), machine("b", store)], [PASSWORD] * 8)
    assert results == [302] * 8


@pytest.mark.parametrize("kind", ["sqlite", "clickhouse"])
def test_both_stores_forget_after_a_day_and_clear_on_success(kind, store, tmp_path):
    state = SqliteState(tmp_path / "s.sqlite") if kind == "sqlite" else ClickHouseState.for_target(store)
    keys = _keys("curator", "10.0.0.1")
    day_ago = time.time() - 25 * 3600
    for _ in range(6):  # yesterday's failures: forgotten
        state._end(keys, "old", False, day_ago)
    assert state.reserve("Curator", "10.0.0.1")[0] == 0  # a login's case does not matter
    for _ in range(4):  # 4 failures now: 3 free, then 2 ** (4 - 3) = 2 s for the pair
        state.finish("curator", "10.0.0.1", "t", success=False)
    wait, ticket = state.reserve("curator", "10.0.0.1")
    assert ticket == "" and 1.5 < wait <= 2.0
    assert state.reserve("curator", "10.0.0.2")[0] == 0  # the login alone has 6 more free failures
    state.finish("curator", "10.0.0.1", "t", success=True)  # the owner got in (after the wait)
    assert state.reserve("curator", "10.0.0.1")[0] == 0
    mark = round(time.time()) - 100.0
    state.revoke("curator", mark)
    state.revoke("curator", mark - 50)  # an older mark never moves the newest one back
    assert state.revocations() == {"curator": mark} and state.revoked_before("nobody") == 0.0


def test_an_unreachable_store_refuses_sign_in_in_russian(machine, store, small_demo, users):
    from auth.startup import problems

    down = machine("down", UNREACHABLE)
    answer = sign_in(down.server.test_client(), "curator")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 503 and "Вход временно невозможен" in text and "Traceback" not in text
    # a cookie from a machine whose store answers is refused here: no marks were ever known
    up = machine("up", store)
    owner = up.server.test_client()
    assert sign_in(owner, "curator").status_code == 302
    stranger = down.server.test_client()
    stranger.set_cookie("cur_session", owner.get_cookie("cur_session").value)
    refused = stranger.get("/")
    assert refused.status_code == 503 and "хранилище отметок входа не отвечает" in refused.get_data(as_text=True)
    env = {"CUR_USERS": str(users), "CUR_SECRET_KEY": "s" * 40, "CUR_DB": str(small_demo)}
    found = problems({**env, "CUR_AUTH_STATE": UNREACHABLE})
    assert len(found) == 1 and "хранилище отметок входа" in found[0] and "Traceback" not in found[0]
    assert problems({**env, "CUR_AUTH_STATE": "memcached://x"})[0].startswith("CUR_AUTH_STATE: не понято")
    assert "одну папку" in problems({**env, "CUR_AUTH_STATE": store, "CUR_ENGINE": "chdb:/elsewhere"})[-1]
    assert problems({**env, "CUR_AUTH_STATE": store}) == []


def test_a_store_that_goes_away_is_survived_briefly_then_refused_and_logouts_catch_up(machine, store):
    a, b = machine("a", store), machine("b", store)
    owner = a.server.test_client()
    assert sign_in(owner, "curator").status_code == 302
    copy = b.server.test_client()
    copy.set_cookie("cur_session", owner.get_cookie("cur_session").value)
    assert copy.get("/").status_code == 200
    _rename(store, "cur_auth", "cur_auth_away")
    time.sleep(REFRESH + 0.1)
    assert copy.get("/").status_code == 200  # the last known marks serve for a while
    refused = sign_in(a.server.test_client(), "curator")
    assert refused.status_code == 503 and "Вход временно невозможен" in refused.get_data(as_text=True)
    left = owner.get("/logout")  # this device leaves; the mark waits in A until the store answers
    assert left.status_code == 503 and "Вы вышли на этом устройстве" in left.get_data(as_text=True)
    time.sleep(STALE + 0.1)
    down = copy.get("/")
    assert down.status_code == 503 and "Traceback" not in down.get_data(as_text=True)
    _rename(store, "cur_auth_away", "cur_auth")
    time.sleep(REFRESH + 0.1)
    lingering = a.server.test_client()  # any signed-in request on A writes the logout A kept
    lingering.set_cookie("cur_session", copy.get_cookie("cur_session").value)
    assert lingering.get("/").status_code == 302
    time.sleep(REFRESH + 0.1)
    assert copy.get("/").status_code == 302  # and B honours it


def test_the_state_is_chosen_by_the_engine_unless_set(tmp_path):
    from auth.throttle import open_state, state_spec

    assert state_spec(None, "clickhouse://u:p@ch:8123/cur") == "clickhouse://u:p@ch:8123/cur_auth"
    assert state_spec("sqlite:/x.sqlite", "clickhouse://u:p@ch:8123/cur") == "sqlite:/x.sqlite"
    assert state_spec(None, "chdb:/data/ch") == "" and state_spec("", None) == ""
    assert isinstance(open_state("", tmp_path / "users.toml", tmp_path / "t.sqlite"), SqliteState)
    with pytest.raises(StateUnavailable, match="имя базы"):
        ClickHouseState.for_target("clickhouse://ch:8123/cur;DROP")
