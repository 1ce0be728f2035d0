"""Production entry point: ``gunicorn -c gunicorn.conf.py wsgi:application`` (see README).

Refuses to start on a wrong setting (``auth.startup.problems``: users file, secret key, warehouse,
trusted proxies): a dashboard of citizens' appeals is never served to a network without sign-in.
gunicorn's master checks the same before any worker starts (``gunicorn.conf.py``).
"""

from __future__ import annotations

import os
import sys

from app import create_app, warm_up
from auth.startup import EXIT_BAD_SETTINGS, problems
from auth.web import AuthSettings


def create_production_app():
    found = problems()
    if found:
        print("ЦУР Heatmap: " + found[0], file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS)
    settings = AuthSettings.from_env()
    app = create_app(os.environ.get("CUR_ENGINE") or os.environ.get("CUR_DB"), settings)
    # a first request inside the worker runs Dash's one-time set-up before real traffic (STACK.md:
    # without it the first JS requests under threads may answer 500)
    app.server.test_client().get("/login")
    warm_up()
    return app


application = create_production_app().server
