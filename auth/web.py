"""Sign-in, role checks and security headers for the Dash app's Flask server.

Everything is decided in ``before_request``, before Dash sees the request:
- without a user only ``/login`` and ``/assets/`` answer (pages redirect to the sign-in form,
  everything else gets 401);
- the user comes from a signed session cookie (form sign-in), a configured trusted header set by a
  signing-in reverse proxy, or, for the wall display, a token in the ``/wall`` URL;
- a role reaches only its pages, checked both for page addresses and for the Dash page router and
  callbacks posted to ``/_dash-update-component``;
- the user's scope is put on ``flask.g`` and every metrics query is narrowed to it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlencode, urlsplit

from dash import Dash
from flask import Response, g, redirect, request, session
from markupsafe import escape

from auth import callback_guard
from auth.session import scope_provider
from auth.startup import parse_networks
from auth.throttle import REVOCATION_STALE_LIMIT, RevocationList, StateUnavailable, open_state, state_spec
from auth.users import User, UsersError, UsersFile, check_password, user_for_token
from data.names import normalise_municipality_name
from metrics import catalog
from metrics import scope as scope_module
from metrics.scope import Scope
from metrics.source import WarehouseMissing, warehouse_identity

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1 << 20  # a callback request is a few KB; anything near a megabyte is not ours
# The wall display sees its own page only; the data-status page shows counts for the whole
# warehouse, so it is for curators. Every other page is open to every person's role (the scope
# limits what it shows), so a new page needs no entry here.
WALL_PAGES = frozenset({"/wall"})
CURATOR_PAGES = frozenset({"/status", "/regions"})  # /regions: the country view ranks whole regions
HOME = {"wall": "/wall"}
IDLE_LIFETIME = timedelta(hours=12)
ABSOLUTE_LIFETIME = timedelta(hours=12)  # since sign-in, however busy the session
WALL_LIFETIME = timedelta(days=90)  # an unattended display; re-creating the wall user ends it at once
DASH_INTERNAL = ("/_dash-", "/_reload-hash", "/_favicon")


@dataclass
class AuthSettings:
    users_file: Path | None  # None: open demo, no sign-in
    secret_key: str | None = None
    trusted_header: str | None = None  # e.g. X-Remote-User, set by a signing-in reverse proxy
    trusted_proxies: tuple = ()  # networks allowed to set it (CUR_TRUSTED_PROXIES); required with the header
    wall_frame_ancestors: str = "'self'"  # CSP source list for /wall (the video-wall software may frame it)
    secure_cookies: bool = False  # behind TLS: cookies only over HTTPS
    throttle_path: Path | None = None  # the machine's SQLite file when the state is local (default: temp folder)
    # where sign-in attempts and logout marks live (``auth.throttle.state_spec``): "" — the SQLite
    # file; ``clickhouse://…`` — shared by every machine serving that ClickHouse
    auth_state: str = ""
    revocation_refresh: float | None = None  # seconds between reloads of the marks (None: the store's own)
    revocation_stale_limit: float = REVOCATION_STALE_LIMIT

    @classmethod
    def from_env(cls, users_file: str | Path | None = None, secret_key: str | None = None) -> AuthSettings:
        users = users_file or os.environ.get("CUR_USERS")
        return cls(
            users_file=Path(users) if users else None,
            secret_key=secret_key or os.environ.get("CUR_SECRET_KEY"),
            trusted_header=os.environ.get("CUR_TRUSTED_HEADER") or None,
            trusted_proxies=parse_networks(os.environ.get("CUR_TRUSTED_PROXIES")),
            wall_frame_ancestors=os.environ.get("CUR_WALL_FRAME_ANCESTORS", "'self'"),
            secure_cookies=os.environ.get("CUR_SECURE_COOKIES", "") == "1",
            auth_state=state_spec(os.environ.get("CUR_AUTH_STATE"), os.environ.get("CUR_ENGINE")),
        )

    @property
    def enabled(self) -> bool:
        return self.users_file is not None


STATE_DOWN = "Вход временно невозможен: хранилище отметок входа недоступно. Повторите через минуту."


def _seconds_ru(seconds: float) -> str:
    n = max(1, math.ceil(seconds))
    return f"{n} с" if n < 60 else f"{math.ceil(n / 60)} мин"


def page_of(path: str) -> str:
    """The page a URL path belongs to: ``/municipality/12`` → ``/municipality``."""
    if path in ("", "/"):
        return "/"
    return "/" + path.strip("/").split("/", 1)[0]


def role_allows_page(role: str, path: str) -> bool:
    page = page_of(path)
    if role == "wall":
        return page in WALL_PAGES
    return role == "curator" or page not in CURATOR_PAGES


def scope_for(user: User) -> Scope:
    """The user's scope resolved against the warehouse's own reference lists; unknown names see nothing."""
    scope = Scope()
    if user.sectors:
        codes = catalog.sector_ids()
        ids = {codes[c] for c in user.sectors if c in codes}
        if len(ids) < len(user.sectors):
            log.warning("user %s: unknown sector in %s", user.login, user.sectors)
        names = catalog.names("sector")
        scope = Scope.sectors(ids, label=", ".join(names.get(c, c) for c in user.sectors))
    if user.municipality:
        wanted = normalise_municipality_name(user.municipality)
        ids = {mid for mid, name in catalog.names("municipality").items()
               if normalise_municipality_name(name) == wanted}
        if not ids:
            log.warning("user %s: unknown municipality %r", user.login, user.municipality)
        scope = Scope(municipality_ids=frozenset(ids), sector_ids=scope.sector_ids, label=user.municipality,
                      rating_sees_all_municipalities=user.role == "municipal")
    return scope


_scopes: dict[tuple, Scope] = {}


def cached_scope(user: User) -> Scope:
    """``scope_for`` remembered per user and warehouse file: a page load should not wait on the
    warehouse (during the switch to a newly imported file, readers briefly do)."""
    key = (user, *warehouse_identity())
    scope = _scopes.get(key)
    if scope is None:
        if len(_scopes) > 1000:
            _scopes.clear()
        scope = _scopes[key] = scope_for(user)
    return scope


# ---- the sign-in page -------------------------------------------------------------------------

_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ЦУР Heatmap — вход</title>
<link rel="stylesheet" href="/assets/vendor/bootstrap/bootstrap.min.css"></head>
<body class="bg-light"><main class="container" style="max-width: 26rem; margin-top: 12vh">
<h1 class="h4 mb-3">ЦУР Heatmap</h1><p class="text-muted">Вход для сотрудников центра управления регионом</p>
{message}
<form method="post" action="/login" class="card card-body shadow-sm">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label class="form-label" for="login">Логин</label>
<input class="form-control mb-3" id="login" name="login" autocomplete="username" required autofocus>
<label class="form-label" for="password">Пароль</label>
<input class="form-control mb-3" id="password" name="password" type="password" autocomplete="current-password" required>
<button class="btn btn-primary" type="submit" id="login-submit">Войти</button>
</form></main></body></html>"""


def _safe_next(value: str | None) -> str:
    """Only a path on this site: browsers drop tabs and newlines and read a backslash as a slash, so
    ``/%09/evil.example`` or ``/%5Cevil.example`` (once decoded) would leave it; anything unusual goes home."""
    if not value or len(value) > 2000:
        return "/"
    for form in (value, unquote(value)):  # a proxy or a second decoding must not turn it into another site
        if not form.startswith("/") or form.startswith("//"):
            return "/"
        if any(ord(c) < 0x21 or c == "\\" or ord(c) == 0x7F for c in form):
            return "/"
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return "/"
    return value


def _login_page(message: str = "", status: int = 200, next_path: str = "/") -> Response:
    csrf = session.get("csrf") or secrets.token_urlsafe(24)
    session["csrf"] = csrf
    alert = f'<div class="alert alert-danger" id="login-error">{escape(message)}</div>' if message else ""
    html = _LOGIN_PAGE.format(message=alert, csrf=escape(csrf), next=escape(_safe_next(next_path)))
    return Response(html, status=status, mimetype="text/html")


# ---- installation ---------------------------------------------------------------------------


def install(app: Dash, settings: AuthSettings) -> None:
    """Attach security headers always, and sign-in and role checks when a users file is configured."""
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    csp_cache: dict[str, str] = {}

    @server.after_request
    def security_headers(response: Response) -> Response:
        if "script" not in csp_cache:
            # hashes of Dash's own inline scripts (renderer start, clientside callbacks): no 'unsafe-inline'
            csp_cache["script"] = " ".join(app.csp_hashes())  # already quoted
        wall = page_of(request.path) == "/wall"
        ancestors = settings.wall_frame_ancestors if wall else "'self'"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; "
            f"script-src 'self' {csp_cache['script']}; "
            "style-src 'self' 'unsafe-inline'; "  # plotly.js and AG Grid set inline styles
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; "
            f"frame-ancestors {ancestors}"
        )
        if not wall or settings.wall_frame_ancestors == "'self'":
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if settings.secure_cookies:  # served over TLS: browsers must never fall back to plain HTTP
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if g.get("cur_user") is not None and not request.path.startswith("/assets/"):
            response.headers.setdefault("Cache-Control", "no-store")  # unless the answer says otherwise
        return response

    if not settings.enabled:
        scope_module.install_provider(None)
        return

    if not settings.secret_key:
        raise UsersError("для входа по паролям нужен секретный ключ: переменная CUR_SECRET_KEY")
    server.secret_key = settings.secret_key
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="cur_session",
        PERMANENT_SESSION_LIFETIME=IDLE_LIFETIME,  # idle: the cookie is renewed by every request
    )
    if settings.trusted_header and not settings.trusted_proxies:
        raise UsersError("вход по заголовку CUR_TRUSTED_HEADER требует CUR_TRUSTED_PROXIES: адреса прокси, "
                         "которым разрешено его ставить")
    users_file = UsersFile(settings.users_file)
    throttle = open_state(settings.auth_state, settings.users_file, settings.throttle_path)
    revocations = RevocationList(throttle, settings.revocation_refresh, settings.revocation_stale_limit)
    scope_module.install_provider(scope_provider)

    def start_session(user: User) -> None:
        session.clear()  # a fresh session on sign-in: no fixation
        session["login"] = user.login
        session["issued"] = time.time()
        session["fp"] = user.fingerprint
        session.permanent = True

    def session_user(users: dict[str, User], check_revocation: bool = True) -> User | None:
        """The session's user while the session is valid: same password, role and scope as when it
        was issued, younger than its absolute lifetime, not revoked by a logout since."""
        login = session.get("login")
        user = users.get(login) if isinstance(login, str) else None
        issued = session.get("issued")
        if user is None or not isinstance(issued, int | float) or session.get("fp") != user.fingerprint:
            return None
        lifetime = WALL_LIFETIME if user.role == "wall" else ABSOLUTE_LIFETIME
        if time.time() - issued > lifetime.total_seconds():
            return None
        if check_revocation and issued <= revocations.revoked_before(login):
            return None
        return user

    def from_trusted_proxy() -> bool:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            return False
        return any(address in network for network in settings.trusted_proxies)

    def signed_in_user() -> User | None:
        users = users_file.users()
        if settings.trusted_header and request.headers.get(settings.trusted_header) is not None:
            if from_trusted_proxy():
                # the proxy signs people in; a request that bypassed it carries no header and gets nothing
                return users.get(request.headers.get(settings.trusted_header, ""))
            log.warning("header %s ignored: %s is not a trusted proxy", settings.trusted_header, request.remote_addr)
        token = request.args.get("token")
        if token and page_of(request.path) == "/wall":
            user = user_for_token(users, token)
            if user is not None:
                start_session(user)
            return user
        return session_user(users)

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        if request.method == "GET":
            return _login_page(next_path=request.args.get("next", "/"))
        form_login = request.form.get("login", "").strip()[:64]
        password = request.form.get("password", "")
        next_path = request.form.get("next", "/")
        expected = session.get("csrf")
        if not expected or not secrets.compare_digest(expected, request.form.get("csrf", "")):
            return _login_page("Форма устарела, попробуйте ещё раз.", 400, next_path)
        address = request.remote_addr or "?"
        try:
            wait, ticket = throttle.reserve(form_login, address)
        except StateUnavailable as exc:  # unthrottled guessing is no option: no sign-in until it answers
            log.error("sign-in refused, attempts cannot be counted: %s", exc)
            return _login_page(STATE_DOWN, 503, next_path)
        if wait > 0:
            log.warning("sign-in throttled: %r from %s", form_login, address)
            return _login_page(f"Слишком много неудачных попыток. Повторите через {_seconds_ru(wait)}.", 429,
                               next_path)
        user = None
        try:
            user = check_password(users_file.users(), form_login, password)
            if user is not None and user.role == "wall":
                user = None  # a wall token is not a password
        finally:
            try:
                throttle.finish(form_login, address, ticket, success=user is not None)
            except StateUnavailable as exc:  # an uncounted failure would be a free guess: refuse either way
                log.error("sign-in refused, outcome not recorded: %s", exc)
                user = None
                finished = False
            else:
                finished = True
        if not finished:
            return _login_page(STATE_DOWN, 503, next_path)
        if user is None:
            log.warning("sign-in failed: %r from %s", form_login, address)
            return _login_page("Неверный логин или пароль.", 401, next_path)
        start_session(user)
        log.info("signed in: %s (%s)", user.login, user.role)
        target = _safe_next(next_path)
        return redirect(target if role_allows_page(user.role, target) else HOME.get(user.role, "/"))

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Response:
        login = session.get("login")
        try:
            users = users_file.users()
            try:
                valid = session_user(users) is not None
            except StateUnavailable:  # marks unknown: a leaving person is believed (at worst a second logout)
                valid = session_user(users, check_revocation=False) is not None
            recorded = not (isinstance(login, str) and valid) or revocations.revoke(login)  # every copy ends here
        except (UsersError, OSError):
            recorded = False  # this device leaves all the same
        session.clear()
        if not recorded:
            return _login_page("Вы вышли на этом устройстве. Хранилище отметок входа сейчас недоступно: на других "
                               "серверах выход вступит в силу, когда оно ответит.", 503)
        return redirect("/login")

    @server.before_request
    def guard() -> Response | None:
        path = request.path
        if path.startswith("/assets/"):
            # an odd asset path would fall through to Dash's page shell
            return Response("Не найдено.", 404, mimetype="text/plain") if "//" in path or ".." in path else None
        if path == "/login":
            return None
        try:
            user = signed_in_user()
        except (UsersError, OSError):
            log.exception("users file cannot be read")
            return Response("Сервис временно недоступен: файл пользователей не читается.", 503)
        except StateUnavailable as exc:
            if path == "/logout":
                return None  # leaving stays possible: the logout records its mark when the store answers
            log.error("logout marks unknown, request refused: %s", exc)
            return Response("Сервис временно недоступен: хранилище отметок входа не отвечает. Повторите через "
                            "минуту.", 503, mimetype="text/plain")
        if user is None:
            if request.method == "GET" and not path.startswith("/_"):
                return redirect("/login?next=" + _quote_path(request.full_path.rstrip("?")))
            return Response("Требуется вход.", 401, mimetype="text/plain")
        if request.method == "GET" and page_of(path) == "/wall" and "token" in request.args:
            # signed in by the token: the address bar, history and later access-log lines lose it
            rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
            return redirect(path + ("?" + urlencode(rest) if rest else ""))
        g.cur_user = user
        try:
            g.cur_scope = cached_scope(user)
        except WarehouseMissing:
            g.cur_scope = Scope()  # no data to protect yet: pages show «хранилище не найдено»
        if path.startswith(DASH_INTERNAL):
            if path == "/_dash-update-component":
                return _check_callback(user)
            return None
        if path in ("/logout", "/region.geojson"):  # boundaries: the same for every role, no data
            return None
        if not role_allows_page(user.role, path):
            if request.method == "GET":
                return redirect(HOME.get(user.role, "/"))
            return Response("Нет доступа.", 403, mimetype="text/plain")
        return None

    declared: dict[str, object] = {}

    def _check_callback(user: User) -> Response | None:
        # built once Dash has set itself up (the page router is declared at its first request)
        if declared.get("size") != len(app.callback_map):
            declared["callbacks"] = callback_guard.declared_callbacks(app)
            declared["size"] = len(app.callback_map)
        body = request.get_json(silent=True)
        try:
            spec = callback_guard.match(body, declared["callbacks"])
            callback_guard.decide(spec, body, user.role, role_allows_page)
        except callback_guard.Refused as refused:
            log.warning("callback refused for %s (%s): %s", user.login, user.role, refused)
            return Response(refused.message, refused.status, mimetype="text/plain")
        return None


def _quote_path(path: str) -> str:
    return quote(path, safe="/?=&")
