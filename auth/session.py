"""The signed-in user and their scope, read on the server for every request.

``auth.web`` puts the user on ``flask.g`` before any view runs; pages and the metrics layer read it
from here. Nothing the browser sends can change it: the session cookie is signed and only names
the login, while the role and scope come from the users file on the server.
"""

from __future__ import annotations

from flask import g, has_request_context

from auth.users import User
from metrics.scope import Scope, request_scope

NOBODY = Scope(municipality_ids=frozenset(), sector_ids=frozenset(), label="нет доступа")


def current_user() -> User | None:
    """The user behind the current request; None in the open demo or outside a request."""
    return g.get("cur_user") if has_request_context() else None


def current_scope() -> Scope:
    """Scope of the user behind the current request; the whole region when sign-in is off (demo mode)."""
    return request_scope()


def scope_provider() -> Scope:
    """Installed into ``metrics.scope`` when sign-in is on: a request without a user sees nothing."""
    if not has_request_context():
        # command-line work inside the server process (none today) is not a user's request
        return Scope()
    return g.get("cur_scope", NOBODY)
