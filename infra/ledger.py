"""The event-sourced application: one global ordered log for every aggregate.

A thin service layer in the style of eventsourcing's examples: each method loads aggregates,
calls their command methods and saves the new events atomically. Optimistic concurrency is the
library's: a second writer of the same aggregate version fails on the primary key.
"""

from __future__ import annotations

from uuid import UUID

from domain.case import ReliefCase
from domain.provenance import Provenance
from infra.purchasing import PurchasingCommands


class ReliefLedger(PurchasingCommands):
    name = "relief"  # the library derives the table name from it; every subclass restates it

    # Relief cases -------------------------------------------------------------------------

    def open_case(
        self, *, programme: str, applicant_id: str, registered_division: str, provenance: Provenance
    ) -> ReliefCase:
        case = ReliefCase.open(
            programme=programme,
            applicant_id=applicant_id,
            registered_division=registered_division,
            provenance=provenance,
        )
        self.save(case)
        return case

    def close_case(
        self,
        case_id: UUID,
        *,
        reason_code: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        case = self.get_case(case_id)
        self._check_expected_version(case, expected_version)
        case.close(reason_code=reason_code, provenance=provenance)
        self.save(case)
        return case

    def get_case(self, case_id: UUID, *, version: int | None = None) -> ReliefCase:
        return self._get(ReliefCase, case_id, version=version)
