"""Every projection the system runs, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.caseload import CaseloadProjection
from projections.divisions import DivisionsProjection
from projections.policies import PoliciesProjection
from projections.red_flags.projection import RedFlagsProjection
from projections.staffing import StaffingProjection
from projections.standards import StandardsProjection

#: The division register first: the others' answers name divisions by it; then the policy
#: the staffing answers apply.
ALL_PROJECTIONS: tuple[type[Projection], ...] = (
    DivisionsProjection,
    PoliciesProjection,
    CaseloadProjection,
    StaffingProjection,
    StandardsProjection,
    RedFlagsProjection,
)


def projection_class(name: str) -> type[Projection]:
    for projection in ALL_PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in ALL_PROJECTIONS)
    raise KeyError(f"unknown projection {name!r}; known: {known}")
