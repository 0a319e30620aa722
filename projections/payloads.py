"""Reading event payloads: the one place projections look inside structured event fields.

Some payloads are dicts today (contract terms, means-test items, the home visit, declared
relatives, cited alerts and verdicts) and are becoming typed values. Projections read them only
through these helpers, which accept either shape, so that change lands here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def field(value: Any, name: str) -> Any:
    """``value[name]`` of a dict payload, ``value.name`` of a typed one."""
    return value[name] if isinstance(value, dict) else getattr(value, name)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


@dataclass(frozen=True)
class Terms:
    """A contract's terms as an amendment or renewal states them."""

    work_items: list[str]
    service_area: list[str]
    start: dt.date
    end: dt.date
    value: Decimal


def terms_of(event: Any) -> Terms:
    """The terms of a ``Contract.Amended`` or ``Contract.Renewed``."""
    t = event.terms
    return Terms(
        work_items=list(field(t, "work_items")),
        service_area=list(field(t, "service_area")),
        start=_date(field(t, "start")),
        end=_date(field(t, "end")),
        value=Decimal(str(field(t, "value"))),
    )


@dataclass(frozen=True)
class Visit:
    """The home visit of a means test (入户调查)."""

    at: dt.datetime
    place: str
    visitor: str


def home_visit_of(event: Any) -> Visit:
    """The home visit of a ``ReliefCase.Investigated``."""
    v = event.home_visit
    return Visit(
        at=_datetime(field(v, "visited_at")),
        place=str(field(v, "place")),
        visitor=str(field(v, "visitor_id")),
    )


def monthly_income(items: Any) -> Decimal:
    """Total monthly income of a means test's income items."""
    return sum((Decimal(str(field(item, "monthly_amount"))) for item in items), Decimal(0))


def relatives_of(event: Any) -> dict[str, str]:
    """Declared relatives of a ``StaffMember.InterestsDeclared``: person id -> kinship."""
    return {
        str(field(r, "person_id")): str(getattr(field(r, "kinship"), "value", field(r, "kinship")))
        for r in event.relatives
    }


def cited_alert_ids(event: Any) -> list[str]:
    """Alert ids an ``Investigation.Opened`` cites."""
    return [str(field(alert, "alert_id")) for alert in event.alerts]


def verdicts_of(event: Any) -> list[tuple[str, str, str | None]]:
    """(alert id, verdict, reason) of an ``Investigation.FindingsRecorded``."""
    return [
        (str(field(v, "alert_id")), str(field(v, "verdict")), field(v, "reason"))
        for v in event.verdicts
    ]


def changes_of(event: Any) -> dict[str, Any]:
    """What a ``ReliefCase.RecordCorrected`` changes: the fields it sets, by name."""
    changes = event.changes
    if isinstance(changes, dict):
        return changes
    return {name: value for name, value in vars(changes).items() if value is not None}
