"""Who may see what: a scope limits every query of metrics/ to some municipalities and sectors.

The scope is applied inside the query entry point (``metrics.query``), after any filter, so a
filter can only narrow what the scope allows, never widen it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    municipality_ids: frozenset[int] | None = None  # None: every municipality
    sector_ids: frozenset[int] | None = None  # None: every sector
    label: str = "весь регион"

    @classmethod
    def region(cls) -> Scope:
        return cls()

    @classmethod
    def municipalities(cls, ids: set[int] | list[int], label: str = "") -> Scope:
        return cls(municipality_ids=frozenset(int(i) for i in ids), label=label or "муниципалитет")

    @classmethod
    def sectors(cls, ids: set[int] | list[int], label: str = "") -> Scope:
        return cls(sector_ids=frozenset(int(i) for i in ids), label=label or "отраслевой блок")

    def allows_municipality(self, municipality_id: int) -> bool:
        return self.municipality_ids is None or municipality_id in self.municipality_ids


REGION = Scope.region()
