"""Decision-makers as staff records, for the tools that write cases through the services.

Every decision-maker on a case is a staff record (domain/staff.py ``check_decision_maker``):
a tool acting as an officer or an approver hires the record first and acts under its id, as
the API records a caller whose sign-in is linked to the record."""

from __future__ import annotations

import dataclasses

from domain.commands.purchasing import AssignStaff, HireStaff
from domain.provenance import Actor, Provenance, Role
from services import Services

#: The staff kind each acting role is hired as.
KIND_OF_ROLE = {
    Role.APPROVER: "approver",
    Role.HANDLING_STAFF: "handling_staff",
    Role.INTAKE_CLERK: "handling_staff",
}


def as_staff(services: Services, by: Provenance, name: str | None = None) -> Provenance:
    """``by``, a government actor of a county, hired by that county's bureau and assigned to
    the county; answers ``by`` acting under the record's id (its old id kept as the subject)."""
    actor = by.actor
    county = actor.organisation
    staff = services.purchasing.hire_staff(
        HireStaff(
            name=name or actor.id,
            kind=KIND_OF_ROLE[actor.role],
            government_unit=county,
            provenance=by,
        )
    )
    services.purchasing.assign_staff(AssignStaff(staff_id=staff.id, division=county, provenance=by))
    return dataclasses.replace(by, actor=Actor(str(staff.id), actor.role, county, subject=actor.id))
