"""The application base: the event store, its clock, and loading aggregates by kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder

from domain.errors import NotFound, VersionMismatch
from infra.codec import register_transcodings

A = TypeVar("A")


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event ``isinstance`` check against a runtime
    Protocol, which took a third of the time of loading an aggregate on Python 3.11; every
    event of this log is an aggregate event with ``mutate``."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class LedgerBase(Application[UUID]):
    #: The library names the events table after the application: relief_events.
    name = "relief"
    #: Business dates (terms, bans, periods) are Guangdong's calendar days.
    timezone = ZoneInfo("Asia/Shanghai")

    @property
    def identity_key(self) -> bytes:
        """Key of the blind index (keyed hash) that turns resident ID numbers into person ids."""
        key = self.env.get("IDENTITY_KEY")
        if not key:
            raise RuntimeError("IDENTITY_KEY (hex) is not configured for this application")
        return bytes.fromhex(key)

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.timezone)

    def today(self) -> dt.date:
        return self.now().date()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        register_transcodings(transcoder)

    def _get(self, kind: type[A], aggregate_id: UUID, *, version: int | None = None) -> A:
        """Load an aggregate of ``kind``; NotFound when there is none of that kind."""
        try:
            aggregate: Any = self.repository.get(
                aggregate_id, version=version, projector_func=replay
            )
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}")
        return aggregate

    def _exists(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.repository

    @staticmethod
    def _check_expected_version(aggregate: Any, expected: int | None) -> None:
        if expected is not None and expected != aggregate.version:
            raise VersionMismatch(
                f"expected version {expected}, but the record is at version {aggregate.version}",
                field="If-Match",
            )
