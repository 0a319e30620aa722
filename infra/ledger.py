"""The event store: one global ordered log for every aggregate (eventsourcing on PostgreSQL).

A thin application: it loads aggregates by kind and saves their new events atomically; the
commands are handled by the application services (services/), which it knows nothing of.
Optimistic concurrency is the library's: a second writer of the same aggregate version fails
on the primary key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder

from domain.case import ReliefCase
from domain.clock import Clock
from domain.contract import DEFAULT_LATE_ENTRY_DAYS, Contract
from domain.contractor import Contractor
from domain.errors import NotFound
from domain.household import Household
from domain.investigation import Investigation
from domain.staff import StaffMember
from infra.codec import register_transcodings

A = TypeVar("A", bound=Aggregate)


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event ``isinstance`` check against a runtime
    Protocol, which took a third of the time of loading an aggregate on Python 3.11; every
    event of this log is an aggregate event with ``mutate``."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class ReliefLedger(Application[UUID]):
    #: The library names the events table after the application: relief_events.
    name = "relief"
    #: Days after a contract's last day its staff may still record (and so reach) work done
    #: while it ran; the runtime sets it from the settings (RELIEF_LATE_ENTRY_DAYS).
    late_entry_days: int = DEFAULT_LATE_ENTRY_DAYS
    #: The business clock the access checks read "today" on: the runtime's (a simulated or
    #: imported history's own clock in tests and bulk loads), the system's by default.
    business_clock: Clock = Clock()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        register_transcodings(transcoder)

    def get(self, kind: type[A], aggregate_id: UUID, *, version: int | None = None) -> A:
        """The aggregate of ``kind`` with that id (as it was at ``version``); NotFound when
        there is none of that kind."""
        try:
            aggregate = self.repository.get(aggregate_id, version=version, projector_func=replay)
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}")
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.repository

    # Reads by kind, for views and scope checks ---------------------------------------------

    def get_case(self, case_id: UUID, *, version: int | None = None) -> ReliefCase:
        return self.get(ReliefCase, case_id, version=version)

    def get_household(self, household_id: UUID) -> Household:
        return self.get(Household, household_id)

    def get_contractor(self, contractor_id: UUID) -> Contractor:
        return self.get(Contractor, contractor_id)

    def get_contract(self, contract_id: UUID) -> Contract:
        return self.get(Contract, contract_id)

    def get_staff(self, staff_id: UUID) -> StaffMember:
        return self.get(StaffMember, staff_id)

    def get_investigation(self, investigation_id: UUID) -> Investigation:
        return self.get(Investigation, investigation_id)
