"""Service contracts (政府购买服务合同): award, amendment, renewal, expiry, money, misconduct.

Coverage is answered from the contract's history: every change that alters what the contract
covers carries the date it takes effect, so "may contractor X do item Y in area Z at time T" is
judged by the terms in force on T's day, whenever the question is asked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum

from eventsourcing.domain import Aggregate, event

from domain import upcasting
from domain.authority import check_government_work
from domain.catalogue import WorkItem, parse_work_item
from domain.clock import business_date
from domain.contractor import Contractor
from domain.errors import (
    BillingAboveValue,
    ContractAlreadyEnded,
    ContractChange,
    ContractClosed,
    ContractScope,
    EvidenceCitesEvents,
    InvalidPurchaser,
    InvalidValue,
    InvoiceRecordedAlready,
    LateEntryWindowPassed,
    NoSelfAssessment,
    OutsideContract,
    PenaltyTerms,
    SanctioningAuthorityOnly,
    SupervisionOnly,
)
from domain.identifiers import DivisionCode, DivisionLevel, parse_division_code
from domain.provenance import Provenance, Role
from domain.upcasting import StoredState
from domain.values import check_term, parse_amount, parse_enum, require_text

JsonDict = dict[str, object]

#: Days after a contract's last day during which its contractor's staff may still record work
#: done while it ran (late entries, 补录); a setting (RELIEF_LATE_ENTRY_DAYS) overrides it.
DEFAULT_LATE_ENTRY_DAYS = 30


class FundingSource(Enum):
    RELIEF_WORK_FUNDS = "relief_work_funds"  # 既有的社会救助工作经费
    SPECIAL_RELIEF_FUNDS = "special_relief_funds"  # 社会救助专项资金


class TerminationBasis(Enum):
    LAW = "law"  # 按照法律规定
    CONTRACT = "contract"  # 按照合同约定


class ViolationKind(Enum):
    BREACH = "breach"  # 违背合同
    FALSIFICATION = "falsification"  # 弄虚作假


class Severity(Enum):
    MINOR = "minor"
    SERIOUS = "serious"  # 情节严重
    GRAVE = "grave"  # 情节严重, 造成恶劣社会影响


class PenaltyKind(Enum):
    WARNING = "warning"
    RECTIFICATION_ORDER = "rectification_order"
    FINE = "fine"
    PAYMENT_DEDUCTION = "payment_deduction"


@dataclass(frozen=True)
class Terms:
    """What a contract covers while these terms are in force."""

    work_items: tuple[str, ...]
    service_area: tuple[str, ...]
    start: dt.date
    end: dt.date
    value: Decimal

    def covers_area(self, division: DivisionCode) -> bool:
        return any(division.code.startswith(area) for area in self.service_area)

    def as_dict(self) -> JsonDict:
        return {
            "work_items": list(self.work_items),
            "service_area": list(self.service_area),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "value": str(self.value),
        }


def _parse_items(values: Sequence[str]) -> tuple[str, ...]:
    if not values:
        raise ContractScope("at least one work item is required", field="work_items")
    items = [parse_work_item(v) for v in values]
    if len(set(items)) != len(items):
        raise ContractScope("a work item is listed twice", field="work_items")
    return tuple(sorted(item.value for item in items))


def _parse_area(values: Sequence[str], purchaser: DivisionCode) -> tuple[str, ...]:
    if not values:
        raise ContractScope(
            "the service area needs at least one county or township", field="service_area"
        )
    codes = []
    for value in values:
        code = parse_division_code(value, field="service_area")
        if code.level not in (DivisionLevel.COUNTY, DivisionLevel.TOWNSHIP):
            raise ContractScope(
                f"service area {value} must be a county (6 digits) or township (9 digits)",
                field="service_area",
            )
        if not purchaser.contains(code):
            raise ContractScope(
                f"service area {value} lies outside the purchaser's jurisdiction {purchaser}",
                field="service_area",
            )
        codes.append(code.code)
    if len(set(codes)) != len(codes):
        raise ContractScope("an area is listed twice", field="service_area")
    return tuple(sorted(codes))


# What a violation cites as evidence: events, by log position or by aggregate version.


@dataclass(frozen=True)
class EventAtPosition:
    """The event at a position of the global log."""

    position: int

    def as_dict(self) -> JsonDict:
        return {"position": self.position}


@dataclass(frozen=True)
class EventOfAggregate:
    """The event of an aggregate at a version (e.g. the findings of an investigation)."""

    aggregate_id: uuid.UUID
    version: int

    def as_dict(self) -> JsonDict:
        return {"aggregate_id": str(self.aggregate_id), "version": self.version}


EvidenceRef = EventAtPosition | EventOfAggregate


def evidence_ref(
    *,
    position: int | None = None,
    aggregate_id: uuid.UUID | None = None,
    version: int | None = None,
) -> EvidenceRef:
    """An event cited as evidence: a log position, or an aggregate's version."""
    if position is not None:
        return EventAtPosition(position)
    if aggregate_id is not None and version is not None:
        return EventOfAggregate(aggregate_id, version)
    raise EvidenceCitesEvents(
        "evidence must reference events: {'position': N} or {'aggregate_id': UUID, 'version': N}",
        field="evidence",
    )


def _checked_evidence(refs: Sequence[EvidenceRef]) -> tuple[EvidenceRef, ...]:
    if not refs:
        raise EvidenceCitesEvents("a violation needs evidence", field="evidence")
    for ref in refs:
        number = ref.position if isinstance(ref, EventAtPosition) else ref.version
        if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
            raise EvidenceCitesEvents(
                "evidence positions and versions are whole numbers above 0", field="evidence"
            )
    return tuple(refs)


@dataclass(frozen=True)
class EvaluationRecord:
    period_start: dt.date
    period_end: dt.date
    score: Decimal
    evaluator: str

    def as_dict(self) -> JsonDict:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "score": str(self.score),
            "evaluator": self.evaluator,
        }


@dataclass(frozen=True)
class ViolationRecord:
    number: int
    kind: str
    severity: str
    description: str
    evidence: tuple[EvidenceRef, ...]

    def as_dict(self) -> JsonDict:
        return {
            "number": self.number,
            "kind": self.kind,
            "severity": self.severity,
            "description": self.description,
            "evidence": [ref.as_dict() for ref in self.evidence],
        }


@dataclass(frozen=True)
class PenaltyRecord:
    violation: int
    kind: str
    basis: str
    amount: Decimal | None

    def as_dict(self) -> JsonDict:
        return {
            "violation": self.violation,
            "kind": self.kind,
            "basis": self.basis,
            "amount": str(self.amount) if self.amount is not None else None,
        }


class Contract(Aggregate):
    @classmethod
    def award(
        cls,
        *,
        contractor: Contractor,
        purchaser: str,
        work_items: Sequence[str],
        service_area: Sequence[str],
        start: dt.date,
        end: dt.date,
        value: Decimal,
        funding_source: str,
        awarded_on: dt.date,
        today: dt.date,
        provenance: Provenance,
    ) -> Contract:
        """Award a contract; also records the new work on the contractor (same save)."""
        check_government_work(provenance, "award a contract")
        if awarded_on > today:
            raise ContractChange(
                f"an award cannot be dated in the future ({awarded_on})", field="awarded_on"
            )
        contractor.check_not_banned(today, doing="awarded a contract")
        buyer = parse_division_code(purchaser, field="purchaser")
        if buyer.level.value > DivisionLevel.COUNTY.value:
            raise InvalidPurchaser(
                f"purchaser {purchaser} is a {buyer.level.name.lower()}; only a people's "
                "government at county level or above may purchase relief services",
                field="purchaser",
            )
        items = _parse_items(work_items)
        area = _parse_area(service_area, buyer)
        check_term(start, end, field="end")
        terms = Terms(items, area, start, end, parse_amount(value, field="value"))
        source = parse_enum(FundingSource, funding_source, "funding_source")
        contract = cls(
            contractor_id=contractor.id,
            contractor_credit_code=contractor.credit_code,
            purchaser=buyer.code,
            terms=terms,
            funding_source=source.value,
            awarded_on=awarded_on,
            provenance=provenance,
        )
        contractor.take_on_work(
            contract_id=contract.id,
            on=awarded_on,
            what="awarded a contract",
            provenance=provenance,
        )
        return contract

    class Awarded(Aggregate.Created):
        contractor_id: uuid.UUID
        contractor_credit_code: str
        purchaser: str
        terms: Terms
        funding_source: str
        awarded_on: dt.date
        provenance: Provenance

        #: 2: the terms are one typed value (were five fields, the lists plain lists).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["terms"] = Terms(
                work_items=upcasting.texts(state.pop("work_items")),
                service_area=upcasting.texts(state.pop("service_area")),
                start=upcasting.day(state.pop("start")),
                end=upcasting.day(state.pop("end")),
                value=upcasting.amount(state.pop("value")),
            )

    @event(Awarded)
    def __init__(
        self,
        contractor_id: uuid.UUID,
        contractor_credit_code: str,
        purchaser: str,
        terms: Terms,
        funding_source: str,
        awarded_on: dt.date,
        provenance: Provenance,
    ) -> None:
        self.contractor_id = contractor_id
        self.contractor_credit_code = contractor_credit_code
        self.purchaser = purchaser
        self.funding_source = FundingSource(funding_source)
        self.awarded_on = awarded_on
        # (effective from, terms): the contract's history of what it covers
        self.terms_history: list[tuple[dt.date, Terms]] = [(dt.date.min, terms)]
        self.billed = Decimal("0.00")
        self.invoice_numbers: set[str] = set()
        self.evaluations: list[EvaluationRecord] = []
        self.violations: dict[int, ViolationRecord] = {}
        self.penalties: list[PenaltyRecord] = []
        self.terminated_at: dt.datetime | None = None
        self.expired_on: dt.date | None = None

    @property
    def terms(self) -> Terms:
        return self.terms_history[-1][1]

    def terms_on(self, day: dt.date) -> Terms:
        in_force = self.terms_history[0][1]
        for effective, terms in self.terms_history:
            if effective <= day:
                in_force = terms
        return in_force

    def status(self, today: dt.date) -> str:
        if self.terminated_at is not None:
            return "terminated"
        if self.expired_on is not None or today > self.terms.end:
            return "expired"
        if today < self.terms.start:
            return "awarded"
        return "in_force"

    def last_day(self) -> dt.date:
        """The last business day the contract ran: its term's end as the terms now say, or the
        day of its termination, or the day recorded as its expiry, whichever is earliest."""
        ends = [self.terms.end]
        if self.terminated_at is not None:
            ends.append(business_date(self.terminated_at))
        if self.expired_on is not None:
            ends.append(self.expired_on)
        return min(ends)

    def takes_entries_on(self, today: dt.date, late_entry_days: int) -> bool:
        """Whether work under the contract may be recorded on ``today``: from its start until
        ``late_entry_days`` after its last day (late entries, 补录, of work done while it ran;
        which work it covered is for ``check_covers`` to say)."""
        return self.terms.start <= today <= self.last_day() + dt.timedelta(days=late_entry_days)

    def check_open(self, today: dt.date) -> None:
        if self.terminated_at is not None:
            raise ContractClosed(f"contract {self.id} was terminated at {self.terminated_at}")
        if self.expired_on is not None:
            raise ContractClosed(f"contract {self.id} expired on {self.expired_on}")

    # Amendment and renewal -----------------------------------------------------------------

    def amend(
        self,
        *,
        contractor: Contractor,
        effective_from: dt.date,
        today: dt.date,
        reason: str,
        provenance: Provenance,
        value: Decimal | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        work_items: Sequence[str] | None = None,
        service_area: Sequence[str] | None = None,
    ) -> None:
        """Change value, term, scope or area from ``effective_from``, with a reason."""
        check_government_work(provenance, "amend a contract")
        self.check_open(effective_from)
        self.check_not_backdated(effective_from)
        reason = require_text(reason, field="reason")
        current = self.terms
        new = replace(
            current,
            value=parse_amount(value, field="value") if value is not None else current.value,
            start=start or current.start,
            end=end or current.end,
            work_items=_parse_items(work_items) if work_items is not None else current.work_items,
            service_area=(
                _parse_area(service_area, DivisionCode(self.purchaser))
                if service_area is not None
                else current.service_area
            ),
        )
        if new == current:
            raise ContractChange("the amendment changes nothing", field="value")
        check_term(new.start, new.end, field="end")
        if new.value < self.billed:
            raise BillingAboveValue(
                f"value {new.value} would be below the {self.billed} already invoiced",
                field="value",
            )
        if self._adds_work(current, new):
            contractor.check_not_banned(today, doing="amended into more work")
            contractor.take_on_work(
                contract_id=self.id,
                on=effective_from,
                what="amended into more work",
                provenance=provenance,
            )
        self.trigger_event(
            self.Amended,
            effective_from=effective_from,
            reason=reason,
            terms=new,
            provenance=provenance,
        )

    def renew(
        self,
        *,
        contractor: Contractor,
        new_end: dt.date,
        added_value: Decimal,
        reason: str,
        effective_from: dt.date,
        today: dt.date,
        provenance: Provenance,
    ) -> None:
        """Extend the term (续签) with added value; refused while the contractor is banned."""
        check_government_work(provenance, "renew a contract")
        self.check_open(effective_from)
        self.check_not_backdated(effective_from)
        reason = require_text(reason, field="reason")
        current = self.terms
        if new_end <= current.end:
            raise ContractChange(
                f"a renewal must end after the current end {current.end}", field="new_end"
            )
        added = parse_amount(added_value, field="added_value", allow_zero=True)
        contractor.check_not_banned(today, doing="renewed")
        contractor.take_on_work(
            contract_id=self.id, on=effective_from, what="renewed", provenance=provenance
        )
        self.trigger_event(
            self.Renewed,
            effective_from=effective_from,
            reason=reason,
            terms=replace(current, end=new_end, value=current.value + added),
            provenance=provenance,
        )

    def check_not_backdated(self, effective_from: dt.date) -> None:
        """A change cannot take effect before one already in the history: it would be built
        on terms that were not in force then."""
        latest = self.terms_history[-1][0]
        if effective_from < latest:
            raise ContractChange(
                f"a change cannot take effect before the last one ({latest})",
                field="effective_from",
            )

    @staticmethod
    def _adds_work(old: Terms, new: Terms) -> bool:
        return (
            new.value > old.value
            or new.end > old.end
            or new.start < old.start
            or not set(new.work_items) <= set(old.work_items)
            or not set(new.service_area) <= set(old.service_area)
        )

    class TermsChanged(Aggregate.Event):
        effective_from: dt.date
        reason: str
        terms: Terms
        provenance: Provenance

        #: 2: the terms are a typed value (were a dict of text).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            terms = upcasting.record(state["terms"])
            state["terms"] = Terms(
                work_items=upcasting.texts(terms["work_items"]),
                service_area=upcasting.texts(terms["service_area"]),
                start=upcasting.day(terms["start"]),
                end=upcasting.day(terms["end"]),
                value=upcasting.amount(terms["value"]),
            )

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.terms_history.append((self.effective_from, self.terms))
            aggregate.terms_history.sort(key=lambda entry: entry[0])

    class Amended(TermsChanged):
        pass

    class Renewed(TermsChanged):
        pass

    def record_expiry(self, *, today: dt.date, provenance: Provenance) -> None:
        if self.terminated_at is not None or self.expired_on is not None:
            raise ContractAlreadyEnded("the contract has already ended", field="today")
        if today <= self.terms.end:
            raise ContractAlreadyEnded(
                f"the contract runs until {self.terms.end}; it cannot expire on {today}",
                field="today",
            )
        self.trigger_event(self.Expired, on=self.terms.end, provenance=provenance)

    class Expired(Aggregate.Event):
        on: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.expired_on = self.on

    # Money ---------------------------------------------------------------------------------

    def invoice(
        self,
        *,
        invoice_number: str,
        period_start: dt.date,
        period_end: dt.date,
        amount: Decimal,
        provenance: Provenance,
    ) -> None:
        number = require_text(invoice_number, field="invoice_number", max_length=64)
        if number in self.invoice_numbers:
            raise InvoiceRecordedAlready(
                f"invoice {number} is recorded already", field="invoice_number"
            )
        check_term(period_start, period_end, field="period_end")
        value = parse_amount(amount, field="amount")
        terms = self.terms
        if period_start < terms.start or period_end > terms.end:
            raise OutsideContract(
                f"the invoiced period {period_start}..{period_end} lies outside the term "
                f"{terms.start}..{terms.end}",
                field="period_start",
            )
        if self.terminated_at is not None and period_start > business_date(self.terminated_at):
            raise ContractClosed(
                "no work can be invoiced for after the termination on "
                f"{business_date(self.terminated_at)}",
                field="period_start",
            )
        if self.billed + value > terms.value:
            raise BillingAboveValue(
                f"invoice of {value} would bring billing to {self.billed + value}, above the "
                f"contract value {terms.value} (billed so far {self.billed})",
                field="amount",
            )
        self.trigger_event(
            self.Invoiced,
            invoice_number=number,
            period_start=period_start,
            period_end=period_end,
            amount=value,
            provenance=provenance,
        )

    class Invoiced(Aggregate.Event):
        invoice_number: str
        period_start: dt.date
        period_end: dt.date
        amount: Decimal
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.billed += self.amount
            aggregate.invoice_numbers.add(self.invoice_number)

    # Performance and misconduct ------------------------------------------------------------

    def evaluate(
        self,
        *,
        period_start: dt.date,
        period_end: dt.date,
        score: Decimal,
        provenance: Provenance,
    ) -> None:
        """A performance evaluation (绩效评价) by anyone but the contractor itself."""
        actor = provenance.actor
        if actor.role is Role.CONTRACTOR_STAFF or actor.organisation == self.contractor_credit_code:
            raise NoSelfAssessment(
                "a contractor cannot evaluate its own performance", field="actor.organisation"
            )
        check_term(period_start, period_end, field="period_end")
        try:
            points = Decimal(str(score))
        except ArithmeticError:
            raise InvalidValue("score must be a number from 0 to 100", field="score") from None
        if not points.is_finite() or not Decimal(0) <= points <= Decimal(100):
            raise InvalidValue("score must be a number from 0 to 100", field="score")
        self.trigger_event(
            self.Evaluated,
            period_start=period_start,
            period_end=period_end,
            score=points,
            provenance=provenance,
        )

    class Evaluated(Aggregate.Event):
        period_start: dt.date
        period_end: dt.date
        score: Decimal
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.evaluations.append(
                EvaluationRecord(
                    self.period_start, self.period_end, self.score, self.provenance.actor.id
                )
            )

    def record_violation(
        self,
        *,
        kind: str,
        severity: str,
        description: str,
        evidence: Sequence[EvidenceRef],
        provenance: Provenance,
    ) -> int:
        """A breach or falsification found by supervision; evidence points at events."""
        if provenance.actor.role is not Role.SUPERVISOR:
            raise SupervisionOnly("only supervision records violations", field="actor.role")
        violation_kind = parse_enum(ViolationKind, kind, "kind")
        level = parse_enum(Severity, severity, "severity")
        text = require_text(description, field="description")
        refs = _checked_evidence(evidence)
        number = len(self.violations) + 1
        self.trigger_event(
            self.ViolationRecorded,
            number=number,
            kind=violation_kind.value,
            severity=level.value,
            description=text,
            evidence=refs,
            provenance=provenance,
        )
        return number

    class ViolationRecorded(Aggregate.Event):
        number: int
        kind: str
        severity: str
        description: str
        evidence: Sequence[EvidenceRef]
        provenance: Provenance

        #: 2: evidence items are typed references (were dicts).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["evidence"] = tuple(
                EventAtPosition(upcasting.whole(ref["position"]))
                if "position" in ref
                else EventOfAggregate(
                    uuid.UUID(upcasting.text(ref["aggregate_id"])), upcasting.whole(ref["version"])
                )
                for ref in upcasting.records(state["evidence"])
            )

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.violations[self.number] = ViolationRecord(
                self.number, self.kind, self.severity, self.description, tuple(self.evidence)
            )

    def impose_penalty(
        self,
        *,
        violation: int,
        kind: str,
        basis: str,
        provenance: Provenance,
        amount: Decimal | None = None,
    ) -> None:
        if provenance.actor.role not in (Role.SUPERVISOR, Role.APPROVER):
            raise SanctioningAuthorityOnly("only supervision imposes penalties", field="actor.role")
        if violation not in self.violations:
            raise PenaltyTerms(
                f"there is no violation {violation} on this contract", field="violation"
            )
        penalty = parse_enum(PenaltyKind, kind, "kind")
        money = None
        if penalty in (PenaltyKind.FINE, PenaltyKind.PAYMENT_DEDUCTION):
            money = parse_amount(amount, field="amount")
        elif amount is not None:
            raise PenaltyTerms(f"a {penalty.value} carries no amount", field="amount")
        self.trigger_event(
            self.PenaltyImposed,
            violation=violation,
            kind=penalty.value,
            basis=require_text(basis, field="basis"),
            amount=money,
            provenance=provenance,
        )

    class PenaltyImposed(Aggregate.Event):
        violation: int
        kind: str
        basis: str
        amount: Decimal | None
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.penalties.append(
                PenaltyRecord(self.violation, self.kind, self.basis, self.amount)
            )

    def terminate(
        self, *, effective_at: dt.datetime, basis: str, reason: str, provenance: Provenance
    ) -> None:
        """End the contract (终止合同执行) as the law or the contract provides."""
        check_government_work(provenance, "terminate a contract")
        if self.terminated_at is not None:
            raise ContractAlreadyEnded(f"the contract was terminated at {self.terminated_at}")
        if effective_at.tzinfo is None:
            raise InvalidValue("effective_at needs a time zone", field="effective_at")
        self.trigger_event(
            self.Terminated,
            effective_at=effective_at,
            basis=parse_enum(TerminationBasis, basis, "basis").value,
            reason=require_text(reason, field="reason"),
            provenance=provenance,
        )

    class Terminated(Aggregate.Event):
        effective_at: dt.datetime
        basis: str
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contract)
            aggregate.terminated_at = self.effective_at

    # The contract check --------------------------------------------------------------------

    def check_covers(
        self,
        *,
        contractor: Contractor,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
        recorded_on: dt.date | None = None,
        late_entry_days: int = DEFAULT_LATE_ENTRY_DAYS,
    ) -> None:
        """Raise OutsideContract saying why, unless the contract covers this work at ``at``
        (terms, bans and the term's days judged on the business day of ``at``): the contract
        in force when the work was done judges it, whenever it is recorded. Recorded on
        ``recorded_on`` (when given), it must come within ``late_entry_days`` of the
        contract's last day (LateEntryWindowPassed)."""
        day = business_date(at)
        if contractor.id != self.contractor_id:
            raise OutsideContract(
                f"contract {self.id} belongs to another contractor", field="contract_id"
            )
        if self.terminated_at is not None and at >= self.terminated_at:
            raise OutsideContract(
                f"contract {self.id} was terminated at {self.terminated_at.isoformat()}",
                field="contract_id",
            )
        ban = contractor.ban_on(day)
        if ban is not None:
            raise OutsideContract(
                f"contractor {contractor.name} is banned from {ban.start} to {ban.end}",
                field="contract_id",
            )
        terms = self.terms_on(day)
        if not terms.start <= day <= terms.end:
            raise OutsideContract(
                f"{day} is outside the contract term {terms.start}..{terms.end}",
                field="contract_id",
            )
        if work_item.value not in terms.work_items:
            raise OutsideContract(
                f"work item {work_item.value} is not in the contract's scope "
                f"({', '.join(terms.work_items)})",
                field="work_item",
            )
        if not terms.covers_area(division):
            raise OutsideContract(
                f"{division} is outside the contract's service area "
                f"({', '.join(terms.service_area)})",
                field="division",
            )
        window_ends = self.last_day() + dt.timedelta(days=late_entry_days)
        if recorded_on is not None and recorded_on > window_ends:
            raise LateEntryWindowPassed(
                f"work of {day} under contract {self.id} is recorded on {recorded_on}, more "
                f"than {late_entry_days} days after the contract's last day {self.last_day()}; "
                "a supervisor's correction can add it",
                field="contract_id",
            )

    def summary(self, today: dt.date) -> JsonDict:
        return {
            "contract_id": str(self.id),
            "contractor_id": str(self.contractor_id),
            "purchaser": self.purchaser,
            "funding_source": self.funding_source.value,
            "awarded_on": self.awarded_on.isoformat(),
            "status": self.status(today),
            "terms": self.terms.as_dict(),
            "terms_history": [
                {"effective_from": None if eff == dt.date.min else eff.isoformat(), **t.as_dict()}
                for eff, t in self.terms_history
            ],
            "billed": str(self.billed),
            "evaluations": [e.as_dict() for e in self.evaluations],
            "violations": [v.as_dict() for v in self.violations.values()],
            "penalties": [p.as_dict() for p in self.penalties],
            "terminated_at": self.terminated_at.isoformat() if self.terminated_at else None,
            "expired_on": self.expired_on.isoformat() if self.expired_on else None,
            "version": self.version,
        }
