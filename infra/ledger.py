"""The event-sourced application: one global ordered log for every aggregate.

A thin service layer in the style of eventsourcing's examples: each method loads aggregates,
calls their command methods and saves the new events atomically. Optimistic concurrency is the
library's: a second writer of the same aggregate version fails on the primary key.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder

from domain.case import ReliefCase
from domain.errors import NotFound, VersionMismatch
from domain.provenance import Provenance
from infra.codec import register_transcodings


class ReliefLedger(Application[UUID]):
    name = "relief"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        register_transcodings(transcoder)

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

    # Helpers ------------------------------------------------------------------------------

    def _get(self, kind: type[Any], aggregate_id: UUID, *, version: int | None = None) -> Any:
        try:
            aggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}")
        return aggregate

    @staticmethod
    def _check_expected_version(aggregate: Any, expected: int | None) -> None:
        if expected is not None and expected != aggregate.version:
            raise VersionMismatch(
                f"expected version {expected}, but the record is at version {aggregate.version}",
                field="If-Match",
            )
