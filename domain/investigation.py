"""Misconduct investigations (调查) by supervision, opened from red flags.

A red flag (疑点) is a lead, never a sanction: a supervisor opens an investigation of a
contractor (承接主体) or a staff member (经办人员) citing one or more alerts, adds notes and
findings (查明事实) with a verdict on each cited alert (confirmed, or dismissed with a reason),
and closes it once with an outcome: no case to answer (不予追究), or a violation (违约/弄虚作假)
recorded on a contract of the subject, possibly with a penalty, the contract's termination and
a ban. The sanctions themselves are the contract's and the contractor's own events (see
domain/contract.py and domain/contractor.py), saved in the same transaction as the closure.

An investigation is identified by its subject and its number: the n-th investigation of
contractor X has the id uuid5(subject kind, subject id, n). Finding a subject's investigations
needs no read model (try 1, 2, 3 … until one is missing), and two supervisors opening the n-th
at once collide on the same id: one of them is refused by optimistic concurrency.

The alerts are cited as they stood when the investigation was opened (rule and the global
positions of the events behind them): that is the evidence a recorded violation cites.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.contractor import parse_enum
from domain.errors import InvalidState, InvalidValue, NotPermitted
from domain.provenance import Provenance, Role
from domain.values import require_text

#: Namespace of investigation ids: uuid5(INVESTIGATION_NAMESPACE, "<kind>|<subject id>|<n>").
INVESTIGATION_NAMESPACE = uuid.UUID("3f6e2b0a-7c1d-5a9e-8b4f-1d2c3e4f5a60")

#: At most this many alerts cited by one investigation.
MAX_CITED_ALERTS = 100
#: At most this many event positions cited per alert.
MAX_EVIDENCE_PER_ALERT = 10_000
#: At most this many verdicts in one set of findings.
MAX_VERDICTS = MAX_CITED_ALERTS


class SubjectKind(Enum):
    """Who is investigated."""

    CONTRACTOR = "contractor"  # 承接主体
    STAFF = "staff"  # 经办人员 (government or contractor staff)


class Verdict(Enum):
    """The reviewer's word on one alert."""

    CONFIRMED = "confirmed"  # 属实: the flag points at real misconduct
    DISMISSED = "dismissed"  # 不属实: explained, with a reason


class Outcome(Enum):
    NO_CASE_TO_ANSWER = "no_case_to_answer"  # 不予追究
    VIOLATION = "violation"  # 违约 or 弄虚作假, recorded on a contract


def investigation_id_for(
    subject_kind: SubjectKind, subject_id: uuid.UUID, number: int
) -> uuid.UUID:
    return uuid.uuid5(INVESTIGATION_NAMESPACE, f"{subject_kind.value}|{subject_id}|{number}")


def parse_subject_kind(value: str, *, field: str = "subject_kind") -> SubjectKind:
    kind: SubjectKind = parse_enum(SubjectKind, value, field)
    return kind


@dataclass(frozen=True)
class CitedAlert:
    """An alert as the supervisor saw it when citing it: its id, rule and evidence."""

    alert_id: uuid.UUID
    rule: str
    evidence: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"alert_id": str(self.alert_id), "rule": self.rule, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class VerdictInput:
    """One verdict of a set of findings, as a command gives it."""

    alert_id: uuid.UUID
    verdict: str
    reason: str | None = None


# What a closure with a violation orders (the ledger turns these into contract and contractor
# commands, in one save with the closure).


@dataclass(frozen=True)
class PenaltyOrder:
    kind: str  # PenaltyKind of domain/contract.py
    basis: str
    amount: Decimal | None = None


@dataclass(frozen=True)
class TerminationOrder:
    effective_at: dt.datetime
    basis: str  # TerminationBasis of domain/contract.py
    reason: str


@dataclass(frozen=True)
class BanOrder:
    start: dt.date
    end: dt.date
    reason: str
    deciding_unit: str


@dataclass(frozen=True)
class ViolationOrder:
    """A violation to record on a contract of the subject, and the sanctions that follow."""

    contract_id: uuid.UUID
    kind: str  # ViolationKind of domain/contract.py
    severity: str  # Severity of domain/contract.py
    description: str
    penalty: PenaltyOrder | None = None
    termination: TerminationOrder | None = None
    ban: BanOrder | None = None


@dataclass(frozen=True)
class RecordedViolation:
    """What a closure with a violation records about it: where it went and what followed."""

    contract_id: uuid.UUID
    contractor_id: uuid.UUID
    number: int
    sanctions: tuple[dict[str, Any], ...] = ()


def check_supervisor(provenance: Provenance, doing: str) -> None:
    """Investigations are supervision's work (监督): no other role opens or conducts one."""
    if provenance.actor.role is not Role.SUPERVISOR:
        raise NotPermitted(f"only supervision may {doing}", field="actor.role")


def _cited(alerts: Sequence[CitedAlert]) -> list[dict[str, Any]]:
    if not alerts:
        raise InvalidValue("an investigation cites at least one alert", field="alert_ids")
    if len(alerts) > MAX_CITED_ALERTS:
        raise InvalidValue(
            f"an investigation cites at most {MAX_CITED_ALERTS} alerts", field="alert_ids"
        )
    seen: set[uuid.UUID] = set()
    cited = []
    for n, alert in enumerate(alerts):
        where = f"alert_ids[{n}]"
        if alert.alert_id in seen:
            raise InvalidValue("an alert is cited twice", field=where)
        seen.add(alert.alert_id)
        rule = require_text(alert.rule, field=where, max_length=100)
        if not alert.evidence or len(alert.evidence) > MAX_EVIDENCE_PER_ALERT:
            raise InvalidValue(
                f"a cited alert carries 1 to {MAX_EVIDENCE_PER_ALERT} event positions",
                field=where,
            )
        if any(isinstance(p, bool) or not isinstance(p, int) or p <= 0 for p in alert.evidence):
            raise InvalidValue("evidence positions are whole numbers above 0", field=where)
        cited.append(CitedAlert(alert.alert_id, rule, tuple(sorted(set(alert.evidence)))).as_dict())
    return cited


class Investigation(Aggregate):
    """A misconduct investigation (调查) of a contractor or a staff member."""

    @classmethod
    def open(
        cls,
        *,
        subject_kind: str,
        subject_id: uuid.UUID,
        contractor_id: uuid.UUID | None,
        number: int,
        alerts: Sequence[CitedAlert],
        grounds: str,
        provenance: Provenance,
    ) -> Investigation:
        """Open (立案) the ``number``-th investigation of the subject, citing alerts.

        ``contractor_id`` is the contractor behind the subject: the subject itself, or the
        contractor employing a staff member (None for government staff)."""
        check_supervisor(provenance, "open an investigation")
        kind = parse_subject_kind(subject_kind)
        if kind is SubjectKind.CONTRACTOR and contractor_id != subject_id:
            raise InvalidValue(
                "the contractor behind a contractor is the contractor itself", field="subject_id"
            )
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidValue("investigations are numbered from 1", field="number")
        cited = _cited(alerts)
        text = require_text(grounds, field="grounds")
        return cls(
            id=investigation_id_for(kind, subject_id, number),
            subject_kind=kind.value,
            subject_id=subject_id,
            contractor_id=contractor_id,
            number=number,
            alerts=cited,
            grounds=text,
            provenance=provenance,
        )

    class Opened(Aggregate.Created):
        subject_kind: str
        subject_id: uuid.UUID
        contractor_id: uuid.UUID | None
        number: int
        alerts: list[dict[str, Any]]  # CitedAlert.as_dict()
        grounds: str
        provenance: Provenance

    @event(Opened)
    def __init__(
        self,
        *,
        id: uuid.UUID,
        subject_kind: str,
        subject_id: uuid.UUID,
        contractor_id: uuid.UUID | None,
        number: int,
        alerts: list[dict[str, Any]],
        grounds: str,
        provenance: Provenance,
    ) -> None:
        self.subject_kind = SubjectKind(subject_kind)
        self.subject_id = subject_id
        self.contractor_id = contractor_id
        self.number = number
        self.grounds = grounds
        self.opened_by = provenance.actor.id
        self.alerts: dict[str, CitedAlert] = {
            a["alert_id"]: CitedAlert(uuid.UUID(a["alert_id"]), a["rule"], tuple(a["evidence"]))
            for a in alerts
        }
        # alert id → {"verdict", "reason", "version", "by"}: the latest verdict on each alert
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.notes: list[dict[str, Any]] = []
        self.findings: list[dict[str, Any]] = []
        self.outcome: Outcome | None = None
        self.closure: dict[str, Any] | None = None

    # State ---------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.outcome is None

    def check_open(self) -> None:
        """A closed investigation takes no more changes (reopening is a new investigation)."""
        if self.outcome is not None:
            raise InvalidState(
                f"investigation {self.id} was closed ({self.outcome.value}); "
                "it takes no more changes",
            )

    def confirmed_alerts(self) -> list[CitedAlert]:
        return [
            alert
            for key, alert in self.alerts.items()
            if self.verdicts.get(key, {}).get("verdict") == Verdict.CONFIRMED.value
        ]

    # Notes and findings --------------------------------------------------------------------

    def add_note(self, *, text: str, provenance: Provenance) -> None:
        """A working note (调查记录): who was heard, what was asked for, what was seen."""
        check_supervisor(provenance, "add to an investigation")
        self.check_open()
        self.trigger_event(
            self.NoteAdded, text=require_text(text, field="text"), provenance=provenance
        )

    class NoteAdded(Aggregate.Event):
        text: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Investigation)
            aggregate.notes.append(
                {
                    "version": self.originator_version,
                    "text": self.text,
                    "by": self.provenance.actor.id,
                    "at": self.timestamp.isoformat(),
                }
            )

    def record_findings(
        self, *, summary: str, verdicts: Sequence[VerdictInput], provenance: Provenance
    ) -> None:
        """Findings (查明事实) with a verdict on some or all cited alerts.

        A later verdict on the same alert replaces the earlier one while the investigation is
        open; a dismissal says why."""
        check_supervisor(provenance, "record findings")
        self.check_open()
        text = require_text(summary, field="summary")
        if len(verdicts) > MAX_VERDICTS:
            raise InvalidValue(f"at most {MAX_VERDICTS} verdicts at once", field="verdicts")
        seen: set[str] = set()
        recorded = []
        for n, given in enumerate(verdicts):
            key = str(given.alert_id)
            if key not in self.alerts:
                raise InvalidValue(
                    f"alert {key} is not cited by this investigation",
                    field=f"verdicts[{n}].alert_id",
                )
            if key in seen:
                raise InvalidValue("an alert is judged twice", field=f"verdicts[{n}].alert_id")
            seen.add(key)
            verdict = parse_enum(Verdict, given.verdict, f"verdicts[{n}].verdict")
            reason = None
            if given.reason is not None and given.reason.strip():
                reason = require_text(given.reason, field=f"verdicts[{n}].reason")
            if verdict is Verdict.DISMISSED and reason is None:
                raise InvalidValue(
                    "a dismissed alert needs the reason it was dismissed",
                    field=f"verdicts[{n}].reason",
                )
            recorded.append({"alert_id": key, "verdict": verdict.value, "reason": reason})
        self.trigger_event(
            self.FindingsRecorded, summary=text, verdicts=recorded, provenance=provenance
        )

    class FindingsRecorded(Aggregate.Event):
        summary: str
        verdicts: list[dict[str, Any]]  # {"alert_id": str, "verdict": Verdict, "reason": str?}
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Investigation)
            aggregate.findings.append(
                {
                    "version": self.originator_version,
                    "summary": self.summary,
                    "verdicts": self.verdicts,
                    "by": self.provenance.actor.id,
                    "at": self.timestamp.isoformat(),
                }
            )
            for given in self.verdicts:
                aggregate.verdicts[given["alert_id"]] = {
                    "verdict": given["verdict"],
                    "reason": given["reason"],
                    "version": self.originator_version,
                    "by": self.provenance.actor.id,
                }

    # Closure -------------------------------------------------------------------------------

    def check_can_close(self, outcome: str) -> Outcome:
        """Every cited alert judged; a violation needs a confirmed alert, no case to answer
        needs every alert dismissed. Raises before any sanction is attempted."""
        self.check_open()
        result: Outcome = parse_enum(Outcome, outcome, "outcome")
        unjudged = [key for key in self.alerts if key not in self.verdicts]
        if unjudged:
            raise InvalidState(
                f"{len(unjudged)} cited alert(s) have no verdict yet ({', '.join(unjudged)}); "
                "record findings on every cited alert before closing",
                field="outcome",
            )
        confirmed = self.confirmed_alerts()
        if result is Outcome.VIOLATION and not confirmed:
            raise InvalidState(
                "a violation needs at least one confirmed alert as its evidence", field="outcome"
            )
        if result is Outcome.NO_CASE_TO_ANSWER and confirmed:
            raise InvalidState(
                f"{len(confirmed)} alert(s) are confirmed: that is not 'no case to answer'; "
                "dismiss them with a reason or close with a violation",
                field="outcome",
            )
        return result

    def violation_evidence(self) -> list[dict[str, Any]]:
        """What a violation recorded from this investigation cites: the events behind the
        confirmed alerts (global positions) and the findings that confirmed them."""
        positions = sorted({p for alert in self.confirmed_alerts() for p in alert.evidence})
        versions = sorted(
            {self.verdicts[str(alert.alert_id)]["version"] for alert in self.confirmed_alerts()}
        )
        return [{"position": p} for p in positions] + [
            {"aggregate_id": str(self.id), "version": v} for v in versions
        ]

    def close(
        self,
        *,
        outcome: str,
        summary: str,
        provenance: Provenance,
        violation: RecordedViolation | None = None,
    ) -> None:
        """Close once (结案). With a violation, the violation was recorded on a contract of the
        subject's contractor in the same save, and ``violation`` says which and what followed."""
        check_supervisor(provenance, "close an investigation")
        result = self.check_can_close(outcome)
        text = require_text(summary, field="summary")
        if result is Outcome.NO_CASE_TO_ANSWER:
            if violation is not None:
                raise InvalidValue("no case to answer records no violation", field="violation")
            self.trigger_event(
                self.Closed,
                outcome=result.value,
                summary=text,
                contract_id=None,
                violation_number=None,
                sanctions=[],
                provenance=provenance,
            )
            return
        if violation is None:
            raise InvalidValue("a violation outcome names the violation", field="violation")
        if self.contractor_id is None:
            raise InvalidValue(
                "a violation is recorded on a contract; this staff member works under none",
                field="violation.contract_id",
            )
        if violation.contractor_id != self.contractor_id:
            raise InvalidValue(
                f"contract {violation.contract_id} is not a contract of the subject's "
                f"contractor {self.contractor_id}",
                field="violation.contract_id",
            )
        if violation.number < 1:
            raise InvalidValue("violations are numbered from 1", field="violation")
        self.trigger_event(
            self.Closed,
            outcome=result.value,
            summary=text,
            contract_id=violation.contract_id,
            violation_number=violation.number,
            sanctions=list(violation.sanctions),
            provenance=provenance,
        )

    class Closed(Aggregate.Event):
        outcome: str
        summary: str
        contract_id: uuid.UUID | None
        violation_number: int | None
        sanctions: list[dict[str, Any]]
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Investigation)
            aggregate.outcome = Outcome(self.outcome)
            aggregate.closure = {
                "version": self.originator_version,
                "outcome": self.outcome,
                "summary": self.summary,
                "contract_id": str(self.contract_id) if self.contract_id else None,
                "violation_number": self.violation_number,
                "sanctions": self.sanctions,
                "by": self.provenance.actor.id,
                "at": self.timestamp.isoformat(),
            }

    # View ----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {
            "investigation_id": str(self.id),
            "number": self.number,
            "subject": {"kind": self.subject_kind.value, "id": str(self.subject_id)},
            "contractor_id": str(self.contractor_id) if self.contractor_id else None,
            "status": "open" if self.is_open else "closed",
            "grounds": self.grounds,
            "opened_by": self.opened_by,
            "opened_at": self.created_on.isoformat(),
            "alerts": [
                {
                    **alert.as_dict(),
                    "verdict": self.verdicts.get(key, {}).get("verdict"),
                    "verdict_reason": self.verdicts.get(key, {}).get("reason"),
                }
                for key, alert in self.alerts.items()
            ],
            "notes": self.notes,
            "findings": self.findings,
            "outcome": self.outcome.value if self.outcome else None,
            "closure": self.closure,
            "version": self.version,
        }
