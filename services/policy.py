"""Policy data: staffing band tables, each with the date it takes effect.

A band table is not an event: it is policy data kept in its own table (a newer load for the
same effective date replaces it), read by the staffing view as of any date.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from domain.commands.policy import LoadStaffingPolicy
from domain.staffing import StaffingPolicy, check_policy_author


class PolicyStore(Protocol):
    """Where band tables are kept (infra/policies.py)."""

    def store(self, document: Mapping[str, object], loaded_by: str) -> StaffingPolicy: ...


class PolicyService:
    def __init__(self, policies: PolicyStore) -> None:
        self.policies = policies

    def load_staffing_policy(self, command: LoadStaffingPolicy) -> StaffingPolicy:
        check_policy_author(command.provenance)
        return self.policies.store(command.document, command.provenance.actor.id)
