"""An aggregate's history as its readers see it, and the masking of personal data in views.

Each stored event (loaded by infra/history.py with its place in the log) is shown with its
position, type, time, actor, reason and correlation id, and its payload as JSON with resident
ID numbers masked. Purchasing and supervision events also read as one line on a contractor's
timeline (``describe``), written from the typed events themselves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.contract import Contract
from domain.contractor import Contractor
from domain.identifiers import mask_resident_id
from domain.investigation import Investigation
from projections.base import RecordedEvent

#: Payload fields holding resident ID numbers: shown masked.
PERSONAL_ID_FIELDS = frozenset({"applicant_id", "resident_id"})
_HIDDEN = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "provenance"}
)

#: An 18-character resident ID number typed into free text (notes, findings, reasons): six
#: digits of address, a birth date YYYYMMDD, three of sequence, the check character.
_RESIDENT_ID_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])[0-9]{6}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)


def jsonable(value: Any) -> Any:
    """Plain JSON values: typed values as their fields (or their own ``as_dict``)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_dict = getattr(value, "as_dict", None)
        if as_dict is not None:
            return jsonable(as_dict())
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def mask_personal(payload: dict[str, Any]) -> dict[str, Any]:
    """Resident ID numbers in the fields that hold them, masked (4401**********1234)."""
    masked: dict[str, Any] = {}
    for key, value in payload.items():
        if key in PERSONAL_ID_FIELDS and isinstance(value, str):
            masked[key] = mask_resident_id(value)
        elif isinstance(value, dict):
            masked[key] = mask_personal(value)
        elif isinstance(value, list):
            masked[key] = [mask_personal(v) if isinstance(v, dict) else v for v in value]
        else:
            masked[key] = value
    return masked


def mask_text(value: Any) -> Any:
    """Free text as shown: anything shaped like a resident ID number in it masked
    (4401**********1234), whether or not its check character is right."""
    if isinstance(value, str):
        return _RESIDENT_ID_IN_TEXT.sub(lambda m: mask_resident_id(m.group(0)), value)
    if isinstance(value, dict):
        return {k: mask_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_text(v) for v in value]
    return value


def history_item(recorded: RecordedEvent, *, mask: bool = True) -> dict[str, Any]:
    """One event of a history: where and when it was recorded, by whom and why, and what it
    says (its payload)."""
    event = recorded.event
    provenance = getattr(event, "provenance", None)
    payload = jsonable({k: v for k, v in vars(event).items() if k not in _HIDDEN})
    return {
        "position": recorded.position,
        "version": recorded.originator_version,
        "type": type(event).__qualname__,
        "recorded_at": recorded.timestamp.isoformat(),
        "actor": (
            {
                "id": provenance.actor.id,
                "role": provenance.actor.role.value,
                "organisation": provenance.actor.organisation,
                # a linked sign-in: the staff record acted, this subject signed in
                **({"subject": provenance.actor.subject} if provenance.actor.subject else {}),
            }
            if provenance
            else None
        ),
        "reason": provenance.reason if provenance else None,
        "correlation_id": provenance.correlation_id if provenance else None,
        "payload": mask_personal(payload) if mask else payload,
    }


def describe(event: object) -> tuple[str, str] | None:
    """A purchasing or supervision event as a timeline line: (kind, description); None for
    events a contractor's timeline leaves out (work taken on: its award or change says it)."""
    match event:
        case Contractor.Registered():
            return "registered", (
                f"registered as {event.contractor_type} {event.name} ({event.credit_code})"
            )
        case Contractor.Banned():
            return "ban", (
                f"banned {event.start} to {event.end} by {event.deciding_unit}: {event.reason}"
            )
        case Contract.Awarded():
            t = event.terms
            return "contract_awarded", (
                f"awarded by {event.purchaser}: {', '.join(t.work_items)} in "
                f"{', '.join(t.service_area)}, {t.start} to {t.end}, value {t.value}"
            )
        case Contract.Amended():
            t = event.terms
            return "contract_amended", (
                f"amended from {event.effective_from}: {event.reason} (value {t.value}, "
                f"term {t.start} to {t.end})"
            )
        case Contract.Renewed():
            t = event.terms
            return "contract_renewed", (
                f"renewed from {event.effective_from} to {t.end}, value {t.value}: {event.reason}"
            )
        case Contract.Expired():
            return "contract_expired", f"expired on {event.on}"
        case Contract.Invoiced():
            return "invoice", (
                f"invoice {event.invoice_number} of {event.amount} for "
                f"{event.period_start} to {event.period_end}"
            )
        case Contract.Evaluated():
            return "evaluation", (
                f"evaluated {event.score} for {event.period_start} to {event.period_end}"
            )
        case Contract.ViolationRecorded():
            return "violation", (
                f"violation {event.number} ({event.kind}, {event.severity}): {event.description}"
            )
        case Contract.PenaltyImposed():
            amount = f" of {event.amount}" if event.amount is not None else ""
            return "penalty", (
                f"penalty {event.kind}{amount} for violation {event.violation}: {event.basis}"
            )
        case Contract.Terminated():
            return "termination", (
                f"terminated at {event.effective_at.isoformat()} ({event.basis}): {event.reason}"
            )
        case Investigation.Opened():
            return "investigation_opened", (
                f"investigation {event.number} opened citing {len(event.alerts)} alert(s): "
                f"{event.grounds}"
            )
        case Investigation.NoteAdded():
            return "investigation_note", event.text
        case Investigation.FindingsRecorded():
            judged = "".join(f"; alert {v.alert_id} {v.verdict}" for v in event.verdicts)
            return "investigation_findings", f"findings: {event.summary}{judged}"
        case Investigation.Closed():
            violation = (
                f" (violation {event.violation_number} on contract {event.contract_id})"
                if event.violation_number
                else ""
            )
            return "investigation_closed", f"closed: {event.outcome}{violation}: {event.summary}"
    return None
