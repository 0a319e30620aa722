"""The relief case (救助案件): one person's claim under one relief programme, as events."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import CaseAlreadyClosed, InvalidValue
from domain.identifiers import DivisionCode, DivisionLevel, parse_division_code, parse_resident_id
from domain.provenance import Provenance


class Programme(Enum):
    """Relief programmes (救助项目)."""

    DIBAO = "dibao"  # 最低生活保障, minimum living allowance (recurring)
    TEKUN = "tekun"  # 特困人员救助供养, support for extremely poor persons (recurring)
    TEMPORARY = "temporary"  # 临时救助, temporary assistance (one-off or short)

    @classmethod
    def parse(cls, value: str, *, field: str = "programme") -> Programme:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(p.value for p in cls)
            raise InvalidValue(
                f"unknown programme {value!r}; expected one of {allowed}", field=field
            ) from None


class CaseStatus(Enum):
    OPEN = "open"
    CLOSED = "closed"


class ClosureReason(Enum):
    """Why a case ends (结案原因)."""

    INCOME_ABOVE_LINE = "income_above_line"
    DEATH = "death"
    MOVED_AWAY = "moved_away"
    VOLUNTARY = "voluntary"
    FRAUD_FOUND = "fraud_found"

    @classmethod
    def parse(cls, value: str, *, field: str = "reason_code") -> ClosureReason:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(r.value for r in cls)
            raise InvalidValue(
                f"unknown closure reason {value!r}; expected one of {allowed}", field=field
            ) from None


class ReliefCase(Aggregate):
    """A relief case, from opening to closure.

    Command methods check the rules and then record an event; the ``@event`` methods only
    apply an already-accepted event, so replaying history never re-runs a check.
    """

    @classmethod
    def open(
        cls,
        *,
        programme: str,
        applicant_id: str,
        registered_division: str,
        provenance: Provenance,
        today: dt.date | None = None,
    ) -> ReliefCase:
        """Open a case for the applicant; the household's hukou village decides the county."""
        parsed_programme = Programme.parse(programme)
        applicant = parse_resident_id(applicant_id, field="applicant_id", today=today)
        division = parse_division_code(
            registered_division, level=DivisionLevel.VILLAGE, field="registered_division"
        )
        return cls(
            programme=parsed_programme.value,
            applicant_id=applicant.number,
            registered_division=division.code,
            county=division.county.code,
            provenance=provenance,
        )

    class Opened(Aggregate.Created):
        programme: str
        applicant_id: str
        registered_division: str
        county: str
        provenance: Provenance

    @event(Opened)
    def __init__(
        self,
        programme: str,
        applicant_id: str,
        registered_division: str,
        county: str,
        provenance: Provenance,
    ) -> None:
        self.programme = Programme(programme)
        self.applicant_id = applicant_id
        self.registered_division = DivisionCode(registered_division)
        self.county = DivisionCode(county)
        self.status = CaseStatus.OPEN
        self.closure_reason: ClosureReason | None = None
        self.closed_at: dt.datetime | None = None

    def close(self, *, reason_code: str, provenance: Provenance) -> None:
        """Close the case with one of the closure reasons."""
        reason = ClosureReason.parse(reason_code)
        self.check_not_closed()
        self.trigger_event(self.Closed, reason_code=reason.value, provenance=provenance)

    class Closed(Aggregate.Event):
        reason_code: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.status = CaseStatus.CLOSED
            aggregate.closure_reason = ClosureReason(self.reason_code)
            aggregate.closed_at = self.timestamp

    def check_not_closed(self) -> None:
        if self.status is CaseStatus.CLOSED:
            raise CaseAlreadyClosed(f"case {self.id} is closed; it accepts no further changes")

    @property
    def case_id(self) -> UUID:
        return self.id

    def summary(self) -> dict[str, Any]:
        return {
            "case_id": str(self.id),
            "programme": self.programme.value,
            "status": self.status.value,
            "registered_division": self.registered_division.code,
            "county": self.county.code,
            "closure_reason": self.closure_reason.value if self.closure_reason else None,
            "opened_at": self.created_on.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "version": self.version,
        }
