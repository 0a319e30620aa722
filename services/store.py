"""What the services need of the event store, and the version check of changes."""

from __future__ import annotations

from typing import Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.contract import Contract
from domain.errors import VersionMismatch
from domain.staff import StaffMember

A = TypeVar("A", bound=Aggregate)


class Store(Protocol):
    """The event store as the services see it (infra/ledger.py ``ReliefLedger``; the bulk
    path's ``BulkLedger``): load an aggregate of a kind, ask whether an id exists, and save
    the new events of several aggregates atomically (optimistic concurrency: a second writer
    of the same version fails)."""

    def get(self, kind: type[A], aggregate_id: UUID, *, version: int | None = None) -> A: ...

    def exists(self, aggregate_id: UUID) -> bool: ...

    def save(self, *aggregates: Aggregate) -> object: ...


def check_expected_version(aggregate: Aggregate, expected: int | None) -> None:
    """The caller's If-Match: refused when the record has changed since they read it."""
    if expected is not None and expected != aggregate.version:
        raise VersionMismatch(
            f"expected version {expected}, but the record is at version {aggregate.version}",
            field="If-Match",
        )


def paying_contract(store: Store, staff: StaffMember) -> Contract | None:
    """The contract that pays a contractor's staff member (None for government staff)."""
    return store.get(Contract, staff.contract_id) if staff.contract_id else None
