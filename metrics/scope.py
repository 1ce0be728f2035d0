"""Who may see what: a scope limits every query of metrics/ to some municipalities and sectors.

The scope is applied inside the query entry point (``metrics.query``), after any filter, so a
filter can only narrow what the scope allows, never widen it.

Two scopes meet in every query: the one a caller passes (a profile page narrows to its
municipality) and the *request scope* of the signed-in user, supplied by a provider that the web
layer installs (``install_provider``). The effective scope is their intersection, so no page,
export or crafted request can reach past the user's own scope. Without a provider (command line,
tests, the open demo) the request scope is the whole region.

Every public function of ``metrics`` narrows the scope it is given with ``effective`` (through
``metrics.query`` or itself), so a page that forgets to pass a scope still shows only the user's.
With a provider installed, code running outside any request (a thread, a start-up step) gets the
provider's answer for "no request": ``NOBODY``, a scope that sees nothing. The server's own work
that must read the whole region outside a request — warming the common views after a data switch —
says so explicitly with ``system_scope()``; inside a request that block changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scope:
    municipality_ids: frozenset[int] | None = None  # None: every municipality
    sector_ids: frozenset[int] | None = None  # None: every sector
    label: str = "весь регион"
    # МЦУ see only their municipality, but the municipalities' rating of the whole region
    rating_sees_all_municipalities: bool = False

    @classmethod
    def region(cls) -> Scope:
        return cls()

    @classmethod
    def municipalities(cls, ids: set[int] | list[int], label: str = "") -> Scope:
        return cls(municipality_ids=frozenset(int(i) for i in ids), label=label or "муниципалитет")

    @classmethod
    def sectors(cls, ids: set[int] | list[int], label: str = "") -> Scope:
        return cls(sector_ids=frozenset(int(i) for i in ids), label=label or "отраслевой блок")

    @property
    def is_region(self) -> bool:
        return self.municipality_ids is None and self.sector_ids is None

    def allows_municipality(self, municipality_id: int) -> bool:
        return self.municipality_ids is None or municipality_id in self.municipality_ids

    def allows_sector(self, sector_id: int) -> bool:
        return self.sector_ids is None or sector_id in self.sector_ids

    def intersect(self, other: Scope) -> Scope:
        """What both scopes allow; the label of the narrower one."""
        if other.is_region and not other.rating_sees_all_municipalities:
            return self
        if self.is_region:
            return other

        def meet(a: frozenset[int] | None, b: frozenset[int] | None) -> frozenset[int] | None:
            if a is None:
                return b
            return a if b is None else a & b

        label = self.label if other.is_region else other.label
        return Scope(meet(self.municipality_ids, other.municipality_ids), meet(self.sector_ids, other.sector_ids),
                     label, self.rating_sees_all_municipalities and other.rating_sees_all_municipalities)

    def for_municipal_rating(self) -> Scope:
        """The scope a municipalities' rating runs under: every municipality if the role allows it."""
        if not self.rating_sees_all_municipalities:
            return self
        return replace(self, municipality_ids=None, label="весь регион")


REGION = Scope.region()
# sees no municipality and no sector: a request without a user, code outside any request
NOBODY = Scope(municipality_ids=frozenset(), sector_ids=frozenset(), label="нет доступа")

_provider: Callable[[], Scope] | None = None
_municipal_rating: ContextVar[bool] = ContextVar("municipal_rating", default=False)
# a context variable, not a global: another thread (which starts with a fresh context) never inherits it
_system: ContextVar[bool] = ContextVar("system_scope", default=False)


def install_provider(provider: Callable[[], Scope] | None) -> None:
    """The web layer installs a function returning the signed-in user's scope (None removes it)."""
    global _provider
    _provider = provider


def request_scope() -> Scope:
    """The signed-in user's scope; the whole region when no provider is installed."""
    scope = REGION if _provider is None else _provider()
    return scope.for_municipal_rating() if _municipal_rating.get() else scope


@contextmanager
def municipal_rating() -> Iterator[None]:
    """Within this block a role that may see the region's municipalities' rating sees all of them."""
    token = _municipal_rating.set(True)
    try:
        yield
    finally:
        _municipal_rating.reset(token)


@contextmanager
def system_scope() -> Iterator[None]:
    """The server's own work outside any request reads the whole region within this block.

    For the warm-up of the common views after a data switch (``wsgi`` / an import's switch-in), never
    for anything that answers a person: the installed provider honours it only when no request is
    being served (``auth.session.scope_provider``), so it can never widen a user's scope. Without a
    provider (command line, tests, the open demo) the scope is the whole region anyway.
    """
    token = _system.set(True)
    try:
        yield
    finally:
        _system.reset(token)


def in_system_scope() -> bool:
    """True inside ``system_scope`` (for the provider; metrics never widen a scope by it themselves)."""
    return _system.get()


def effective(scope: Scope) -> Scope:
    """The caller's scope narrowed to the request scope: what a query may actually read."""
    return scope.intersect(request_scope())
