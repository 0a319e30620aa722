"""Who may do the government's work: one check per rule, shared by every aggregate.

Two rules, decided once (before, cases and contracts each had a ``_check_government`` and they
disagreed about supervisors):

- *Government work* (cases, payments, contracts, staff management) is never done by contractor
  staff, who may investigate and recommend under a contract only, nor by the read-only roles
  (auditor, integration). Supervisors and approvers may do government work: supervision
  terminates contracts and bans contractors when it closes an investigation.
- *Case work* is government work that supervision does not do either: supervision oversees
  relief cases; it does not receive, handle, pay, correct or decide them.
"""

from __future__ import annotations

from domain.errors import GovernmentWorkOnly, SupervisorsDoNotOperateCases
from domain.provenance import Provenance, Role

READ_ONLY_ROLES = frozenset({Role.AUDITOR, Role.INTEGRATION})


def check_government_work(provenance: Provenance, doing: str) -> None:
    role = provenance.actor.role
    if role is Role.CONTRACTOR_STAFF:
        raise GovernmentWorkOnly(
            f"contractor staff may investigate and recommend, never {doing}", field="actor.role"
        )
    if role in READ_ONLY_ROLES:
        raise GovernmentWorkOnly(f"a {role.value} may not {doing}", field="actor.role")


def check_case_work(provenance: Provenance, doing: str) -> None:
    check_government_work(provenance, doing)
    if provenance.actor.role is Role.SUPERVISOR:
        raise SupervisorsDoNotOperateCases(
            f"a supervisor may not {doing}: supervision oversees cases", field="actor.role"
        )
