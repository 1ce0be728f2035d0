"""Sessions that end when they should, sign-in redirects that stay here, a trusted header only from a
trusted proxy, throttling under concurrency, and a production server that refuses bad settings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from auth.startup import parse_networks
from auth.users import UsersError, check_password_rules
from auth.web import AuthSettings, _safe_next
from tests.test_auth import PASSWORD, PROJECT, add_user, sign_in


@pytest.fixture
def users(tmp_path) -> Path:
    path = tmp_path / "users.toml"
    assert add_user(path, "curator", "curator").returncode == 0
    assert add_user(path, "zhkh", "sector", "--sector", "housing").returncode == 0
    return path


@pytest.fixture
def make_app(small_demo, users, tmp_path):
    import app as app_module
    from metrics import source
    from metrics.scope import install_provider

    def make(**extra):
        settings = AuthSettings(users_file=users, secret_key="k" * 40, throttle_path=tmp_path / "t.sqlite", **extra)
        return app_module.create_app(small_demo, settings)

    yield make
    install_provider(None)
    source.configure(None)


def _copy_cookie(source_client, dash_app):
    thief = dash_app.server.test_client()
    cookie = source_client.get_cookie("cur_session")
    thief.set_cookie("cur_session", cookie.value)
    return thief


def test_a_copied_cookie_dies_with_logout(make_app):
    dash_app = make_app()
    owner = dash_app.server.test_client()
    assert sign_in(owner, "curator").status_code == 302
    thief = _copy_cookie(owner, dash_app)
    assert thief.get("/").status_code == 200
    owner.get("/logout")
    assert thief.get("/").status_code == 302  # back to the sign-in form
    assert thief.post("/_dash-update-component", json={}).status_code == 401
    assert sign_in(owner, "curator").status_code == 302 and owner.get("/").status_code == 200


@pytest.mark.parametrize("change", ["password", "role", "removed and re-added"])
def test_a_copied_cookie_dies_with_a_change_of_the_user(make_app, users, change):
    dash_app = make_app()
    owner = dash_app.server.test_client()
    assert sign_in(owner, "zhkh").status_code == 302
    thief = _copy_cookie(owner, dash_app)
    assert thief.get("/").status_code == 200
    time.sleep(0.01)  # a new users file must get a new modification time
    if change == "password":
        assert add_user(users, "zhkh", "sector", "--sector", "housing", password="другой-пароль-456").returncode == 0  # noqa: S106
    elif change == "role":
        assert add_user(users, "zhkh", "curator", password=PASSWORD).returncode == 0
    else:
        subprocess.run([sys.executable, "-m", "auth", "--users", str(users), "remove-user", "zhkh"],
                       cwd=PROJECT, check=True, capture_output=True)
        assert add_user(users, "zhkh", "curator", password=PASSWORD).returncode == 0
    assert thief.get("/").status_code == 302
    assert owner.get("/").status_code == 302  # the owner signs in again, with what is true now


def test_sessions_have_an_absolute_lifetime(make_app, monkeypatch):
    dash_app = make_app()
    client = dash_app.server.test_client()
    assert sign_in(client, "curator").status_code == 302
    assert client.get("/").status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 13 * 3600)  # busy all along, yet past 12 hours
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("payload", [
    "//evil.example/", "/\t/evil.example/", "/\\evil.example", "/\\/evil.example", "https://evil.example/",
    "/%09/evil.example/", "\t//evil.example", "/\n/evil.example", "javascript:alert(1)", "/ /evil.example",
])
def test_open_redirect_payloads_go_home(make_app, payload):
    from urllib.parse import unquote

    for value in (payload, unquote(payload)):
        assert _safe_next(value) in ("/", value) and not _safe_next(value).startswith("//")
        assert "evil" not in _safe_next(value) and ":" not in _safe_next(value)
    client = make_app().server.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"login": "curator", "password": PASSWORD, "csrf": csrf,
                                         "next": unquote(payload)})
    assert answer.status_code == 302
    assert answer.headers["Location"] in ("/", "http://localhost/"), answer.headers["Location"]
    assert _safe_next("/rating?period=2025-10") == "/rating?period=2025-10"


def sign_ins_at_once(apps: list, passwords: list[str]) -> list[int]:
    """One sign-in of «curator» per password, all released at the same moment, spread over ``apps``
    (several machines); the status codes."""
    results: list[int] = []
    barrier = threading.Barrier(len(passwords))

    def attempt(i: int) -> None:
        client = apps[i % len(apps)].server.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        barrier.wait()
        results.append(client.post("/login", data={"login": "curator", "password": passwords[i],
                                                    "csrf": csrf}).status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(passwords))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_twenty_concurrent_guesses_check_at_most_three_passwords(make_app):
    results = sign_ins_at_once([make_app()], [f"неверный-{i}-пароль" for i in range(20)])
    assert len(results) == 20
    assert results.count(401) <= 3 and results.count(429) >= 17, results
    assert set(results) <= {401, 429}


def test_the_trusted_header_counts_only_from_a_trusted_proxy(make_app, caplog):
    with pytest.raises(UsersError, match="CUR_TRUSTED_PROXIES"):
        make_app(trusted_header="X-Remote-User")
    dash_app = make_app(trusted_header="X-Remote-User", trusted_proxies=parse_networks("10.0.0.0/8"))
    forged = dash_app.server.test_client()  # straight to the server from 127.0.0.1
    assert forged.get("/", headers={"X-Remote-User": "curator"}).status_code == 302
    assert "not a trusted proxy" in caplog.text
    proxy = dash_app.server.test_client()
    proxy.environ_base["REMOTE_ADDR"] = "10.0.0.5"
    assert proxy.get("/", headers={"X-Remote-User": "curator"}).status_code == 200
    assert proxy.get("/", headers={"X-Remote-User": "nobody"}).status_code == 302


def test_password_rules_refuse_blank_and_trivial_passwords():
    for bad in ("          ", " " * 10 + "abc", "aaaaaaaaaaaa", "1234567890", "abababababab", "qwertyuiop",
                "curator-2025!", "9876543210"):
        with pytest.raises(UsersError):
            check_password_rules("curator", bad)
    check_password_rules("curator", PASSWORD)


def test_headers_hsts_and_odd_asset_paths(make_app):
    client = make_app(secure_cookies=True).server.test_client()
    assert "max-age" in client.get("/login").headers.get("Strict-Transport-Security", "")
    assert client.get("/assets//x").status_code == 404
    assert client.get("/assets/../app.py").status_code == 404


def _gunicorn(env: dict[str, str]) -> tuple[int | None, float, str]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:application"],
                            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, time.monotonic() - started, out
    return proc.returncode, time.monotonic() - started, out


def test_the_production_command_exits_at_once_on_each_bad_setting(small_demo, users, tmp_path):
    truncated = tmp_path / "truncated.duckdb"
    shutil.copy(small_demo, truncated)
    with open(truncated, "r+b") as f:
        f.truncate(os.path.getsize(truncated) // 3)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PORT": "0",
            "CUR_USERS": str(users), "CUR_SECRET_KEY": "s" * 40, "CUR_DB": str(small_demo)}
    cases = {
        "no users file": ({"CUR_USERS": ""}, "CUR_USERS"),
        "short key": ({"CUR_SECRET_KEY": "short"}, "CUR_SECRET_KEY"),
        "no warehouse": ({"CUR_DB": str(tmp_path / "none.duckdb")}, "не найден"),
        "truncated warehouse": ({"CUR_DB": str(truncated)}, "хранилищ"),
        "header without proxies": ({"CUR_TRUSTED_HEADER": "X-Remote-User"}, "CUR_TRUSTED_PROXIES"),
        "bad proxy": ({"CUR_TRUSTED_HEADER": "X-Remote-User", "CUR_TRUSTED_PROXIES": "ten.0.0.1"}, "ten.0.0.1"),
    }
    for name, (extra, message) in cases.items():
        code, seconds, out = _gunicorn({**base, **extra})
        assert code == 2, (name, code, out[-800:])
        assert seconds < 10 and message in out, (name, seconds, out[-800:])
        assert "Traceback" not in out, (name, out[-800:])


def test_the_owners_concurrent_sign_ins_all_succeed(make_app):
    dash_app = make_app()
    results: list[int] = []
    barrier = threading.Barrier(10)

    def sign() -> None:
        client = dash_app.server.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        barrier.wait()
        results.append(client.post("/login", data={"login": "curator", "password": PASSWORD, "csrf": csrf}).status_code)

    threads = [threading.Thread(target=sign) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [302] * 10
