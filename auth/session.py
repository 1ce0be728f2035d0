"""The signed-in user and their scope, read on the server for every request.

``auth.web`` puts the user on ``flask.g`` before any view runs; pages and the metrics layer read it
from here. Nothing the browser sends can change it: the session cookie is signed and only names
the login, while the role and scope come from the users file on the server.
"""

from __future__ import annotations

from flask import g, has_request_context

from auth.users import User
from metrics.scope import NOBODY, REGION, Scope, in_system_scope, request_scope

__all__ = ["NOBODY", "current_scope", "current_user", "scope_provider"]


def current_user() -> User | None:
    """The user behind the current request; None in the open demo or outside a request."""
    return g.get("cur_user") if has_request_context() else None


def current_scope() -> Scope:
    """Scope of the user behind the current request; the whole region when sign-in is off (demo mode)."""
    return request_scope()


def scope_provider() -> Scope:
    """Installed into ``metrics.scope`` when sign-in is on: a request without a user sees nothing, and
    so does code running outside any request in the server process (a thread, a start-up step) —
    unless it is the server's own work declared with ``metrics.scope.system_scope()`` (the warm-up)."""
    if has_request_context():
        return g.get("cur_scope", NOBODY)
    return REGION if in_system_scope() else NOBODY
