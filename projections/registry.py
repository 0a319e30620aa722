"""Every projection the system runs, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.caseload import CaseloadProjection

ALL_PROJECTIONS: tuple[type[Projection], ...] = (CaseloadProjection,)


def projection_class(name: str) -> type[Projection]:
    for projection in ALL_PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in ALL_PROJECTIONS)
    raise KeyError(f"unknown projection {name!r}; known: {known}")
