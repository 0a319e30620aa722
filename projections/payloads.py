"""Reading event payloads: the one place projections look inside structured event fields.

Payloads are typed values (domain/*.py); events stored in older shapes are upcast to them
when read. These helpers turn them into the plain rows the projections write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.case import MeansTestCorrection, PaymentCorrection
from domain.contract import Terms


@dataclass(frozen=True)
class Visit:
    """The home visit of a means test (入户调查)."""

    at: dt.datetime
    place: str
    visitor: str


def terms_of(event: Any) -> Terms:
    """The terms of a ``Contract.Awarded``, ``Contract.Amended`` or ``Contract.Renewed``."""
    terms: Terms = event.terms
    return terms


def home_visit_of(event: Any) -> Visit:
    """The home visit of a ``ReliefCase.Investigated``."""
    v = event.means_test.home_visit
    return Visit(at=v.visited_at, place=v.place, visitor=v.visitor_id)


def monthly_income(items: Any) -> Decimal:
    """Total monthly income of a means test's income items."""
    return sum((item.monthly_amount for item in items), Decimal(0))


def relatives_of(event: Any) -> dict[str, str]:
    """Declared relatives of a ``StaffMember.InterestsDeclared``: person id -> kinship."""
    return {str(r.person_id): str(getattr(r.kinship, "value", r.kinship)) for r in event.relatives}


def cited_alert_ids(event: Any) -> list[str]:
    """Alert ids an ``Investigation.Opened`` cites."""
    return [str(alert.alert_id) for alert in event.alerts]


def verdicts_of(event: Any) -> list[tuple[str, str, str | None]]:
    """(alert id, verdict, reason) of an ``Investigation.FindingsRecorded``."""
    return [
        (str(v.alert_id), str(getattr(v.verdict, "value", v.verdict)), v.reason)
        for v in event.verdicts
    ]


def payment_correction(event: Any) -> Decimal:
    """The amount a ``ReliefCase.RecordCorrected`` of a payment sets (0: void)."""
    correction = event.correction
    assert isinstance(correction, PaymentCorrection)
    return correction.amount


def means_test_correction(event: Any) -> MeansTestCorrection:
    """What a ``ReliefCase.RecordCorrected`` of a means test changes."""
    correction = event.correction
    assert isinstance(correction, MeansTestCorrection)
    return correction
