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

from eventsourcing.domain import Aggregate, event

from domain import upcasting
from domain.contract import EventAtPosition, EventOfAggregate, EvidenceRef
from domain.errors import (
    ClosureNeedsVerdicts,
    InvalidValue,
    InvestigationCitations,
    InvestigationClosed,
    SupervisionOnly,
    ViolationOnSubjectsContract,
)
from domain.provenance import Provenance, Role
from domain.upcasting import StoredState
from domain.values import parse_enum, require_text

JsonDict = dict[str, object]

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
    return parse_enum(SubjectKind, value, field)


@dataclass(frozen=True)
class CitedAlert:
    """An alert as the supervisor saw it when citing it: its id, rule and evidence."""

    alert_id: uuid.UUID
    rule: str
    evidence: tuple[int, ...]

    def as_dict(self) -> JsonDict:
        return {"alert_id": str(self.alert_id), "rule": self.rule, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class VerdictInput:
    """One verdict of a set of findings, as a command gives it (and as it is recorded, once
    checked)."""

    alert_id: uuid.UUID
    verdict: str  # a Verdict value
    reason: str | None = None

    def as_dict(self) -> JsonDict:
        return {"alert_id": str(self.alert_id), "verdict": self.verdict, "reason": self.reason}


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


# What a closure records of the sanctions that followed a violation.


@dataclass(frozen=True)
class ViolationSanction:
    contract_id: uuid.UUID
    number: int

    def as_dict(self) -> JsonDict:
        return {"kind": "violation", "contract_id": str(self.contract_id), "number": self.number}


@dataclass(frozen=True)
class PenaltySanction:
    contract_id: uuid.UUID
    violation: int
    penalty: str  # a PenaltyKind value
    amount: Decimal | None

    def as_dict(self) -> JsonDict:
        return {
            "kind": "penalty",
            "contract_id": str(self.contract_id),
            "violation": self.violation,
            "penalty": self.penalty,
            "amount": None if self.amount is None else str(self.amount),
        }


@dataclass(frozen=True)
class TerminationSanction:
    contract_id: uuid.UUID
    effective_at: dt.datetime

    def as_dict(self) -> JsonDict:
        return {
            "kind": "termination",
            "contract_id": str(self.contract_id),
            "effective_at": self.effective_at.isoformat(),
        }


@dataclass(frozen=True)
class BanSanction:
    contractor_id: uuid.UUID
    start: dt.date
    end: dt.date

    def as_dict(self) -> JsonDict:
        return {
            "kind": "ban",
            "contractor_id": str(self.contractor_id),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


Sanction = ViolationSanction | PenaltySanction | TerminationSanction | BanSanction


@dataclass(frozen=True)
class RecordedViolation:
    """What a closure with a violation records about it: where it went and what followed."""

    contract_id: uuid.UUID
    contractor_id: uuid.UUID
    number: int
    sanctions: tuple[Sanction, ...] = ()


# What the investigation keeps of its history.


@dataclass(frozen=True)
class VerdictRecord:
    """The latest verdict on a cited alert, and the findings (version) that gave it."""

    verdict: str
    reason: str | None
    version: int
    by: str


@dataclass(frozen=True)
class NoteRecord:
    version: int
    text: str
    by: str
    at: dt.datetime

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "text": self.text,
            "by": self.by,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class FindingsRecord:
    version: int
    summary: str
    verdicts: tuple[VerdictInput, ...]
    by: str
    at: dt.datetime

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "summary": self.summary,
            "verdicts": [v.as_dict() for v in self.verdicts],
            "by": self.by,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class ClosureRecord:
    version: int
    outcome: str
    summary: str
    contract_id: uuid.UUID | None
    violation_number: int | None
    sanctions: tuple[Sanction, ...]
    by: str
    at: dt.datetime

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "outcome": self.outcome,
            "summary": self.summary,
            "contract_id": str(self.contract_id) if self.contract_id else None,
            "violation_number": self.violation_number,
            "sanctions": [s.as_dict() for s in self.sanctions],
            "by": self.by,
            "at": self.at.isoformat(),
        }


def check_supervisor(provenance: Provenance, doing: str) -> None:
    """Investigations are supervision's work (监督): no other role opens or conducts one."""
    if provenance.actor.role is not Role.SUPERVISOR:
        raise SupervisionOnly(f"only supervision may {doing}", field="actor.role")


def _cited(alerts: Sequence[CitedAlert]) -> tuple[CitedAlert, ...]:
    if not alerts:
        raise InvestigationCitations("an investigation cites at least one alert", field="alert_ids")
    if len(alerts) > MAX_CITED_ALERTS:
        raise InvestigationCitations(
            f"an investigation cites at most {MAX_CITED_ALERTS} alerts", field="alert_ids"
        )
    seen: set[uuid.UUID] = set()
    cited = []
    for n, alert in enumerate(alerts):
        where = f"alert_ids[{n}]"
        if alert.alert_id in seen:
            raise InvestigationCitations("an alert is cited twice", field=where)
        seen.add(alert.alert_id)
        rule = require_text(alert.rule, field=where, max_length=100)
        if not alert.evidence or len(alert.evidence) > MAX_EVIDENCE_PER_ALERT:
            raise InvestigationCitations(
                f"a cited alert carries 1 to {MAX_EVIDENCE_PER_ALERT} event positions",
                field=where,
            )
        if any(isinstance(p, bool) or not isinstance(p, int) or p <= 0 for p in alert.evidence):
            raise InvestigationCitations(
                "evidence positions are whole numbers above 0", field=where
            )
        cited.append(CitedAlert(alert.alert_id, rule, tuple(sorted(set(alert.evidence)))))
    return tuple(cited)


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
        alerts: Sequence[CitedAlert]
        grounds: str
        provenance: Provenance

        #: 2: cited alerts are typed values (were dicts).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["alerts"] = tuple(
                CitedAlert(
                    uuid.UUID(upcasting.text(a["alert_id"])),
                    upcasting.text(a["rule"]),
                    upcasting.wholes(a["evidence"]),
                )
                for a in upcasting.records(state["alerts"])
            )

    @event(Opened)
    def __init__(
        self,
        *,
        id: uuid.UUID,
        subject_kind: str,
        subject_id: uuid.UUID,
        contractor_id: uuid.UUID | None,
        number: int,
        alerts: Sequence[CitedAlert],
        grounds: str,
        provenance: Provenance,
    ) -> None:
        self.subject_kind = SubjectKind(subject_kind)
        self.subject_id = subject_id
        self.contractor_id = contractor_id
        self.number = number
        self.grounds = grounds
        self.opened_by = provenance.actor.id
        self.alerts: dict[uuid.UUID, CitedAlert] = {a.alert_id: a for a in alerts}
        # The latest verdict on each cited alert.
        self.verdicts: dict[uuid.UUID, VerdictRecord] = {}
        self.notes: list[NoteRecord] = []
        self.findings: list[FindingsRecord] = []
        self.outcome: Outcome | None = None
        self.closure: ClosureRecord | None = None

    # State ---------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.outcome is None

    def check_open(self) -> None:
        """A closed investigation takes no more changes (reopening is a new investigation)."""
        if self.outcome is not None:
            raise InvestigationClosed(
                f"investigation {self.id} was closed ({self.outcome.value}); "
                "it takes no more changes",
            )

    def confirmed_alerts(self) -> list[CitedAlert]:
        return [
            alert
            for alert_id, alert in self.alerts.items()
            if (verdict := self.verdicts.get(alert_id)) is not None
            and verdict.verdict == Verdict.CONFIRMED.value
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
                NoteRecord(
                    self.originator_version, self.text, self.provenance.actor.id, self.timestamp
                )
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
        seen: set[uuid.UUID] = set()
        recorded = []
        for n, given in enumerate(verdicts):
            if given.alert_id not in self.alerts:
                raise InvestigationCitations(
                    f"alert {given.alert_id} is not cited by this investigation",
                    field=f"verdicts[{n}].alert_id",
                )
            if given.alert_id in seen:
                raise InvestigationCitations(
                    "an alert is judged twice", field=f"verdicts[{n}].alert_id"
                )
            seen.add(given.alert_id)
            verdict = parse_enum(Verdict, given.verdict, f"verdicts[{n}].verdict")
            reason = None
            if given.reason is not None and given.reason.strip():
                reason = require_text(given.reason, field=f"verdicts[{n}].reason")
            if verdict is Verdict.DISMISSED and reason is None:
                raise InvestigationCitations(
                    "a dismissed alert needs the reason it was dismissed",
                    field=f"verdicts[{n}].reason",
                )
            recorded.append(VerdictInput(given.alert_id, verdict.value, reason))
        self.trigger_event(
            self.FindingsRecorded, summary=text, verdicts=tuple(recorded), provenance=provenance
        )

    class FindingsRecorded(Aggregate.Event):
        summary: str
        verdicts: Sequence[VerdictInput]
        provenance: Provenance

        #: 2: verdicts are typed values (were dicts).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["verdicts"] = tuple(
                VerdictInput(
                    uuid.UUID(upcasting.text(v["alert_id"])),
                    upcasting.text(v["verdict"]),
                    upcasting.optional_text(v["reason"]),
                )
                for v in upcasting.records(state["verdicts"])
            )

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Investigation)
            by = self.provenance.actor.id
            aggregate.findings.append(
                FindingsRecord(
                    self.originator_version, self.summary, tuple(self.verdicts), by, self.timestamp
                )
            )
            for given in self.verdicts:
                aggregate.verdicts[given.alert_id] = VerdictRecord(
                    given.verdict, given.reason, self.originator_version, by
                )

    # Closure -------------------------------------------------------------------------------

    def check_can_close(self, outcome: str, *, with_violation: bool) -> Outcome:
        """Every cited alert judged; a violation needs a confirmed alert and names the
        violation, no case to answer needs every alert dismissed and names none. Raises before
        any sanction is attempted."""
        self.check_open()
        result = parse_enum(Outcome, outcome, "outcome")
        if result is Outcome.NO_CASE_TO_ANSWER and with_violation:
            raise InvalidValue("no case to answer records no violation", field="violation")
        if result is Outcome.VIOLATION and not with_violation:
            raise InvalidValue("a violation outcome names the violation", field="violation")
        unjudged = [str(alert_id) for alert_id in self.alerts if alert_id not in self.verdicts]
        if unjudged:
            raise ClosureNeedsVerdicts(
                f"{len(unjudged)} cited alert(s) have no verdict yet ({', '.join(unjudged)}); "
                "record findings on every cited alert before closing",
                field="outcome",
            )
        confirmed = self.confirmed_alerts()
        if result is Outcome.VIOLATION and not confirmed:
            raise ClosureNeedsVerdicts(
                "a violation needs at least one confirmed alert as its evidence", field="outcome"
            )
        if result is Outcome.NO_CASE_TO_ANSWER and confirmed:
            raise ClosureNeedsVerdicts(
                f"{len(confirmed)} alert(s) are confirmed: that is not 'no case to answer'; "
                "dismiss them with a reason or close with a violation",
                field="outcome",
            )
        return result

    def violation_evidence(self) -> list[EvidenceRef]:
        """What a violation recorded from this investigation cites: the events behind the
        confirmed alerts (global positions) and the findings that confirmed them."""
        confirmed = self.confirmed_alerts()
        positions = sorted({p for alert in confirmed for p in alert.evidence})
        versions = sorted({self.verdicts[alert.alert_id].version for alert in confirmed})
        return [EventAtPosition(p) for p in positions] + [
            EventOfAggregate(self.id, v) for v in versions
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
        result = self.check_can_close(outcome, with_violation=violation is not None)
        text = require_text(summary, field="summary")
        if violation is None:
            self.trigger_event(
                self.Closed,
                outcome=result.value,
                summary=text,
                contract_id=None,
                violation_number=None,
                sanctions=(),
                provenance=provenance,
            )
            return
        if self.contractor_id is None:
            raise ViolationOnSubjectsContract(
                "a violation is recorded on a contract; this staff member works under none",
                field="violation.contract_id",
            )
        if violation.contractor_id != self.contractor_id:
            raise ViolationOnSubjectsContract(
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
            sanctions=violation.sanctions,
            provenance=provenance,
        )

    class Closed(Aggregate.Event):
        outcome: str
        summary: str
        contract_id: uuid.UUID | None
        violation_number: int | None
        sanctions: Sequence[Sanction]
        provenance: Provenance

        #: 2: sanctions are typed values (were dicts).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["sanctions"] = tuple(
                sanction_v1(s) for s in upcasting.records(state["sanctions"])
            )

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Investigation)
            aggregate.outcome = Outcome(self.outcome)
            aggregate.closure = ClosureRecord(
                self.originator_version,
                self.outcome,
                self.summary,
                self.contract_id,
                self.violation_number,
                tuple(self.sanctions),
                self.provenance.actor.id,
                self.timestamp,
            )

    # View ----------------------------------------------------------------------------------

    def summary(self) -> JsonDict:
        return {
            "investigation_id": str(self.id),
            "number": self.number,
            "subject": {"kind": self.subject_kind.value, "id": str(self.subject_id)},
            "contractor_id": str(self.contractor_id) if self.contractor_id else None,
            "status": "open" if self.is_open else "closed",
            "grounds": self.grounds,
            "opened_by": self.opened_by,
            "opened_at": self.created_on.isoformat(),
            "alerts": [self._alert_view(alert) for alert in self.alerts.values()],
            "notes": [n.as_dict() for n in self.notes],
            "findings": [f.as_dict() for f in self.findings],
            "outcome": self.outcome.value if self.outcome else None,
            "closure": self.closure.as_dict() if self.closure else None,
            "version": self.version,
        }

    def _alert_view(self, alert: CitedAlert) -> JsonDict:
        verdict = self.verdicts.get(alert.alert_id)
        return {
            **alert.as_dict(),
            "verdict": verdict.verdict if verdict else None,
            "verdict_reason": verdict.reason if verdict else None,
        }


def sanction_v1(stored: dict[str, object]) -> Sanction:
    """A sanction as version 1 stored it: a dict named by its ``kind``."""
    kind = upcasting.text(stored["kind"])
    if kind == "violation":
        return ViolationSanction(
            uuid.UUID(upcasting.text(stored["contract_id"])), upcasting.whole(stored["number"])
        )
    if kind == "penalty":
        amount = stored["amount"]
        return PenaltySanction(
            uuid.UUID(upcasting.text(stored["contract_id"])),
            upcasting.whole(stored["violation"]),
            upcasting.text(stored["penalty"]),
            None if amount is None else upcasting.amount(amount),
        )
    if kind == "termination":
        return TerminationSanction(
            uuid.UUID(upcasting.text(stored["contract_id"])),
            upcasting.moment(stored["effective_at"]),
        )
    if kind == "ban":
        return BanSanction(
            uuid.UUID(upcasting.text(stored["contractor_id"])),
            upcasting.day(stored["start"]),
            upcasting.day(stored["end"]),
        )
    raise upcasting.UnknownStoredShape(f"a sanction of kind {kind!r}")
