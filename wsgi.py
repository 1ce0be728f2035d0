"""Production entry point: ``gunicorn -c gunicorn.conf.py wsgi:application`` (see README).

Refuses to start without a users file (``CUR_USERS``) and a secret key (``CUR_SECRET_KEY``): a
dashboard of citizens' appeals is never served to a network without sign-in.
"""

from __future__ import annotations

import os
import sys

from app import create_app
from auth.users import UsersError, load_users
from auth.web import AuthSettings

MIN_SECRET = 32


def create_production_app():
    settings = AuthSettings.from_env()
    if settings.users_file is None:
        raise SystemExit("ЦУР Heatmap: не задан файл пользователей (CUR_USERS); создайте его командой "
                         "python -m auth add-user")
    try:
        if not load_users(settings.users_file):
            raise UsersError(f"в файле {settings.users_file} нет ни одного пользователя")
    except UsersError as exc:
        raise SystemExit(f"ЦУР Heatmap: {exc}") from exc
    if not settings.secret_key or len(settings.secret_key) < MIN_SECRET:
        raise SystemExit(f"ЦУР Heatmap: не задан секретный ключ CUR_SECRET_KEY (не короче {MIN_SECRET} символов; "
                         "например: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
    app = create_app(os.environ.get("CUR_DB"), settings)
    # a first request inside the worker runs Dash's one-time set-up before real traffic (STACK.md:
    # without it the first JS requests under threads may answer 500)
    app.server.test_client().get("/login")
    return app


try:
    application = create_production_app().server
except SystemExit as exc:
    print(exc, file=sys.stderr)
    raise
