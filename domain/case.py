"""The relief case (救助案件): one person's application and, once approved, their relief.

Life of a case: an application is received at a township or village window and routed to the
county with jurisdiction (the household's hukou county), transferred when received elsewhere;
handling staff are assigned; a household economic investigation (means test) is recorded and a
recommendation made, by government staff or by contractor staff whose contract covers that work
there and then; a county approver decides; benefits are paid per period and services delivered;
reviews, suspension and resumption follow, until closure. Mistakes are corrected by new events
that name the event they correct.

Eligibility decisions and payments are government functions: contractor staff may investigate
and recommend, never decide or pay.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from eventsourcing.domain import Aggregate, event

from domain.catalogue import WorkItem, WorkKind, parse_work_item
from domain.contract import Contract
from domain.contractor import parse_enum
from domain.errors import (
    BeneficiaryDeceased,
    CaseAlreadyClosed,
    Duplicate,
    InvalidState,
    InvalidValue,
    NotPermitted,
    SeparationOfDuties,
)
from domain.household import Household
from domain.identifiers import DivisionCode, DivisionLevel, mask_resident_id, parse_division_code
from domain.provenance import Provenance, Role
from domain.staff import StaffKind, StaffMember
from domain.values import business_date, parse_amount, period_end, period_start, require_text


class Programme(Enum):
    """Relief programmes (救助项目)."""

    DIBAO = "dibao"  # 最低生活保障, minimum living allowance (recurring)
    TEKUN = "tekun"  # 特困人员救助供养, support for extremely poor persons (recurring)
    TEMPORARY = "temporary"  # 临时救助, temporary assistance (one-off or short)

    @classmethod
    def parse(cls, value: str, *, field: str = "programme") -> Programme:
        return parse_enum(cls, value, field)  # type: ignore[no-any-return]


class CaseStatus(Enum):
    RECEIVED = "received"  # 受理
    UNDER_INVESTIGATION = "under_investigation"  # 已分派, 调查中
    INVESTIGATED = "investigated"  # 家计调查完成
    RECOMMENDED = "recommended"  # 已提出审核意见
    APPROVED = "approved"  # 审批通过, 在保
    SUSPENDED = "suspended"  # 暂停
    REJECTED = "rejected"  # 不予批准
    CLOSED = "closed"  # 终止/结案


#: Statuses in which the case occupies the person's slot for its programme.
ACTIVE_STATUSES = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.UNDER_INVESTIGATION,
        CaseStatus.INVESTIGATED,
        CaseStatus.RECOMMENDED,
        CaseStatus.APPROVED,
        CaseStatus.SUSPENDED,
    }
)
BEFORE_DECISION = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.UNDER_INVESTIGATION,
        CaseStatus.INVESTIGATED,
        CaseStatus.RECOMMENDED,
    }
)


class ClosureReason(Enum):
    """Why a case ends (终止原因)."""

    INCOME_ABOVE_LINE = "income_above_line"
    DEATH = "death"
    MOVED_AWAY = "moved_away"
    VOLUNTARY = "voluntary"
    FRAUD_FOUND = "fraud_found"


class Recommendation(Enum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewOutcome(Enum):
    CONTINUE = "continue"
    ADJUST = "adjust"


class ContractCheck(Protocol):
    """The contract check (supplied by the purchasing side): raise OutsideContract unless the
    contract covers this work, and return the contractor's id."""

    def __call__(
        self,
        *,
        contract_id: uuid.UUID,
        contractor_credit_code: str,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
    ) -> uuid.UUID: ...


@dataclass(frozen=True)
class HomeVisit:
    visited_at: dt.datetime
    place: str  # 12-digit village code
    visitor_id: str


@dataclass(frozen=True)
class MeansTest:
    """Household economic investigation (家计调查)."""

    income_items: list[dict[str, Any]]  # {"source": str, "monthly_amount": Decimal}
    assets: list[dict[str, Any]]  # {"kind": str, "value": Decimal}
    household_size: int
    home_visit: HomeVisit

    def checked(self, now: dt.datetime) -> dict[str, Any]:
        """Validated, as stored in the event."""
        visit = self.home_visit
        if visit.visited_at.tzinfo is None:
            raise InvalidValue("visited_at needs a time zone", field="home_visit.visited_at")
        if visit.visited_at > now:
            raise InvalidValue(
                "a home visit cannot lie in the future", field="home_visit.visited_at"
            )
        place = parse_division_code(
            visit.place, level=DivisionLevel.VILLAGE, field="home_visit.place"
        )
        return {
            "income_items": checked_incomes(self.income_items),
            "assets": checked_assets(self.assets),
            "household_size": checked_household_size(self.household_size),
            "home_visit": {
                "visited_at": visit.visited_at.isoformat(),
                "place": place.code,
                "visitor_id": require_text(
                    visit.visitor_id, field="home_visit.visitor_id", max_length=100
                ),
            },
        }


def checked_household_size(size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 50:
        raise InvalidValue(
            "household_size must be a whole number from 1 to 50", field="household_size"
        )
    return size


def _records(items: object, field: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidValue(f"{field} must be a list of objects", field=field)
    if len(items) > 100:
        raise InvalidValue(f"{field} takes at most 100 entries", field=field)
    return items


def checked_incomes(items: object) -> list[dict[str, str]]:
    items = _records(items, "income_items")
    return [
        {
            "source": require_text(
                i.get("source"), field=f"income_items[{n}].source", max_length=100
            ),
            "monthly_amount": str(
                parse_amount(
                    i.get("monthly_amount"),
                    field=f"income_items[{n}].monthly_amount",
                    allow_zero=True,
                )
            ),
        }
        for n, i in enumerate(items)
    ]


def checked_assets(items: object) -> list[dict[str, str]]:
    items = _records(items, "assets")
    return [
        {
            "kind": require_text(a.get("kind"), field=f"assets[{n}].kind", max_length=100),
            "value": str(parse_amount(a.get("value"), field=f"assets[{n}].value", allow_zero=True)),
        }
        for n, a in enumerate(items)
    ]


def _check_government(provenance: Provenance, doing: str) -> None:
    role = provenance.actor.role
    if role is Role.CONTRACTOR_STAFF:
        raise NotPermitted(
            f"contractor staff may investigate and recommend, never {doing}", field="actor.role"
        )
    if role in (Role.AUDITOR, Role.INTEGRATION, Role.SUPERVISOR):
        raise NotPermitted(f"a {role.value} may not {doing}", field="actor.role")


class ReliefCase(Aggregate):
    # Intake --------------------------------------------------------------------------------

    @classmethod
    def receive(
        cls,
        *,
        household: Household,
        applicant_id: str,
        programme: str,
        window_division: str,
        provenance: Provenance,
    ) -> ReliefCase:
        """Receive an application at a one-door window (一门受理) and route it to the county
        with jurisdiction; one received in another county is marked cross-region and
        transferred, both counties staying in the history."""
        _check_government(provenance, "receive applications")
        parsed = Programme.parse(programme)
        window = parse_division_code(window_division, field="window_division")
        if window.level not in (DivisionLevel.TOWNSHIP, DivisionLevel.VILLAGE):
            raise InvalidValue(
                "applications are received at a township or village window (9 or 12 digits)",
                field="window_division",
            )
        applicant = household.present_member(applicant_id, field="applicant_id")
        jurisdiction = household.county
        received_county = window.county
        case = cls(
            programme=parsed.value,
            applicant_id=applicant.resident_id,
            household_id=household.id,
            registered_division=household.registered_division.code,
            window_division=window.code,
            received_county=received_county.code,
            jurisdiction_county=jurisdiction.code,
            cross_region=received_county != jurisdiction,
            provenance=provenance,
        )
        if received_county != jurisdiction:
            case.trigger_event(
                cls.Transferred,
                from_county=received_county.code,
                to_county=jurisdiction.code,
                provenance=provenance,
            )
        return case

    class ApplicationReceived(Aggregate.Created):
        programme: str
        applicant_id: str
        household_id: uuid.UUID
        registered_division: str
        window_division: str
        received_county: str
        jurisdiction_county: str
        cross_region: bool
        provenance: Provenance

    @event(ApplicationReceived)
    def __init__(
        self,
        *,
        programme: str,
        applicant_id: str,
        household_id: uuid.UUID,
        registered_division: str,
        window_division: str,
        received_county: str,
        jurisdiction_county: str,
        cross_region: bool,
        provenance: Provenance,
    ) -> None:
        self.programme = Programme(programme)
        self.applicant_id = applicant_id
        self.household_id = household_id
        self.registered_division = DivisionCode(registered_division)
        self.window_division = window_division
        self.received_county = received_county
        self.county = DivisionCode(jurisdiction_county)
        self.cross_region = cross_region
        self.transferred_to: str | None = None
        self.status = CaseStatus.RECEIVED
        self.assigned_staff: uuid.UUID | None = None
        self.assigned_contractor: uuid.UUID | None = None
        self.investigators: set[str] = set()
        self.investigations: dict[int, dict[str, Any]] = {}  # by event version
        self.recommendation: dict[str, Any] | None = None
        self.decision: dict[str, Any] | None = None
        self.amounts: list[tuple[dt.date, Decimal]] = []  # (effective from, monthly amount)
        self.payments: dict[int, dict[str, Any]] = {}  # by event version
        self.services: dict[int, dict[str, Any]] = {}  # by event version
        self.reviews: list[dict[str, Any]] = []
        self.corrections: list[dict[str, Any]] = []
        self.suspensions: list[tuple[dt.date, dt.date | None]] = []  # [from, to) local days
        self.died_on: dt.date | None = None
        self.closure_reason: ClosureReason | None = None
        self.closed_at: dt.datetime | None = None

    class Transferred(Aggregate.Event):
        from_county: str
        to_county: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.transferred_to = self.to_county

    # Checks --------------------------------------------------------------------------------

    @property
    def case_id(self) -> uuid.UUID:
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def check_status(self, allowed: frozenset[CaseStatus] | set[CaseStatus], doing: str) -> None:
        if self.status in allowed:
            return
        if self.status in (CaseStatus.CLOSED, CaseStatus.REJECTED):
            raise CaseAlreadyClosed(f"case {self.id} is {self.status.value}; it accepts no {doing}")
        raise InvalidState(f"case {self.id} is {self.status.value}; it cannot take {doing}")

    def check_not_closed(self) -> None:
        self.check_status(ACTIVE_STATUSES, "further changes")

    def _check_approver(self, provenance: Provenance, doing: str) -> None:
        _check_government(provenance, doing)
        actor = provenance.actor
        if actor.role is not Role.APPROVER or actor.organisation != self.county.code:
            raise NotPermitted(
                f"only an approver of the county with jurisdiction ({self.county}) may {doing}",
                field="actor.role",
            )
        if actor.id in self.investigators:
            raise SeparationOfDuties(
                f"{actor.id} investigated this case and may not {doing} it", field="actor.id"
            )

    def _check_investigation_work(
        self,
        provenance: Provenance,
        contract_id: uuid.UUID | None,
        check: ContractCheck,
        place: DivisionCode,
        at: dt.datetime,
    ) -> uuid.UUID | None:
        """Government handling staff, or contractor staff under a contract covering the
        household investigation here and then. Returns the contractor's id, if any."""
        actor = provenance.actor
        if actor.role is Role.CONTRACTOR_STAFF:
            if contract_id is None:
                raise InvalidValue("contractor staff must name their contract", field="contract_id")
            return check(
                contract_id=contract_id,
                contractor_credit_code=actor.organisation,
                work_item=WorkItem.HOUSEHOLD_INVESTIGATION,
                division=place,
                at=at,
            )
        if actor.role not in (Role.HANDLING_STAFF, Role.INTAKE_CLERK):
            raise NotPermitted("investigations are done by handling staff", field="actor.role")
        if contract_id is not None:
            raise InvalidValue("government staff work under no contract", field="contract_id")
        return None

    # Handling ------------------------------------------------------------------------------

    def assign(
        self,
        *,
        staff: StaffMember,
        contract: Contract | None,
        today: dt.date,
        provenance: Provenance,
    ) -> None:
        """Assign to active handling staff of the county (contract staff: while it runs)."""
        _check_government(provenance, "assign cases")
        self.check_status(BEFORE_DECISION - {CaseStatus.RECOMMENDED}, "assignment")
        if staff.kind is not StaffKind.HANDLING_STAFF:
            raise InvalidValue("cases are assigned to handling staff", field="staff_id")
        if staff.removed_on is not None:
            raise InvalidState(f"staff member {staff.id} was removed", field="staff_id")
        if not staff.is_active_on(today, contract):
            raise InvalidState(
                f"staff member {staff.id} is not active (unassigned, or the contract that "
                "pays them is not running)",
                field="staff_id",
            )
        if staff.assignment is None or not (staff.assignment.startswith(self.county.code)):
            raise InvalidValue(
                f"staff member {staff.id} is not assigned within county {self.county}",
                field="staff_id",
            )
        self.trigger_event(
            self.Assigned,
            staff_id=staff.id,
            contractor_id=staff.contractor_id,
            contract_id=staff.contract_id,
            provenance=provenance,
        )

    class Assigned(Aggregate.Event):
        staff_id: uuid.UUID
        contractor_id: uuid.UUID | None
        contract_id: uuid.UUID | None
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.assigned_staff = self.staff_id
            aggregate.assigned_contractor = self.contractor_id
            if aggregate.status is CaseStatus.RECEIVED:
                aggregate.status = CaseStatus.UNDER_INVESTIGATION

    def investigate(
        self,
        *,
        means_test: MeansTest,
        contract_id: uuid.UUID | None,
        check: ContractCheck,
        now: dt.datetime,
        provenance: Provenance,
    ) -> None:
        """Record the household economic investigation with its home visit."""
        self.check_status(BEFORE_DECISION, "investigation")
        record = means_test.checked(now)
        # The contract must cover the household's village, whatever place the visit names.
        contractor_id = self._check_investigation_work(
            provenance,
            contract_id,
            check,
            self.registered_division,
            means_test.home_visit.visited_at,
        )
        self.trigger_event(
            self.Investigated,
            contract_id=contract_id,
            contractor_id=contractor_id,
            provenance=provenance,
            **record,
        )

    class Investigated(Aggregate.Event):
        income_items: list[dict[str, Any]]
        assets: list[dict[str, Any]]
        household_size: int
        home_visit: dict[str, Any]
        contract_id: uuid.UUID | None
        contractor_id: uuid.UUID | None
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.investigators.add(self.provenance.actor.id)
            aggregate.investigators.add(self.home_visit["visitor_id"])
            aggregate.investigations[self.originator_version] = {
                "version": self.originator_version,
                "income_items": self.income_items,
                "assets": self.assets,
                "household_size": self.household_size,
                "home_visit": self.home_visit,
                "investigator": self.provenance.actor.id,
                "contract_id": str(self.contract_id) if self.contract_id else None,
            }
            aggregate.recommendation = None
            aggregate.status = CaseStatus.INVESTIGATED

    def recommend(
        self,
        *,
        recommendation: str,
        reasons: str,
        monthly_amount: object | None,
        contract_id: uuid.UUID | None,
        check: ContractCheck,
        now: dt.datetime,
        provenance: Provenance,
    ) -> None:
        """The investigator's recommendation (审核意见) to the approver."""
        self.check_status({CaseStatus.INVESTIGATED, CaseStatus.RECOMMENDED}, "recommendation")
        verdict = parse_enum(Recommendation, recommendation, "recommendation")
        amount = None
        if verdict is Recommendation.APPROVE:
            amount = parse_amount(monthly_amount, field="monthly_amount")
        elif monthly_amount is not None:
            raise InvalidValue("a rejection recommends no amount", field="monthly_amount")
        contractor_id = self._check_investigation_work(
            provenance, contract_id, check, self.registered_division, now
        )
        self.trigger_event(
            self.Recommended,
            recommendation=verdict.value,
            monthly_amount=amount,
            reasons=require_text(reasons, field="reasons"),
            contract_id=contract_id,
            contractor_id=contractor_id,
            provenance=provenance,
        )

    class Recommended(Aggregate.Event):
        recommendation: str
        monthly_amount: Decimal | None
        reasons: str
        contract_id: uuid.UUID | None
        contractor_id: uuid.UUID | None
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.investigators.add(self.provenance.actor.id)
            aggregate.recommendation = {
                "recommendation": self.recommendation,
                "monthly_amount": str(self.monthly_amount) if self.monthly_amount else None,
                "reasons": self.reasons,
                "by": self.provenance.actor.id,
            }
            aggregate.status = CaseStatus.RECOMMENDED

    # Decision ------------------------------------------------------------------------------

    def approve(
        self,
        *,
        monthly_amount: object,
        start_date: dt.date,
        reasons: str,
        provenance: Provenance,
    ) -> None:
        """Approve (审批): programme, monthly amount, start date."""
        self.check_status({CaseStatus.RECOMMENDED}, "approval")
        self._check_approver(provenance, "approve")
        amount = parse_amount(monthly_amount, field="monthly_amount")
        if self.died_on is not None:
            raise BeneficiaryDeceased(f"the applicant died on {self.died_on}")
        self.trigger_event(
            self.Approved,
            programme=self.programme.value,
            monthly_amount=amount,
            start_date=start_date,
            reasons=require_text(reasons, field="reasons"),
            provenance=provenance,
        )

    class Approved(Aggregate.Event):
        programme: str
        monthly_amount: Decimal
        start_date: dt.date
        reasons: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.decision = {
                "decision": "approved",
                "monthly_amount": str(self.monthly_amount),
                "start_date": self.start_date.isoformat(),
                "reasons": self.reasons,
                "by": self.provenance.actor.id,
            }
            aggregate.amounts = [(self.start_date, self.monthly_amount)]
            aggregate.status = CaseStatus.APPROVED

    def reject(self, *, reasons: str, provenance: Provenance) -> None:
        self.check_status({CaseStatus.INVESTIGATED, CaseStatus.RECOMMENDED}, "rejection")
        self._check_approver(provenance, "reject")
        self.trigger_event(
            self.Rejected, reasons=require_text(reasons, field="reasons"), provenance=provenance
        )

    class Rejected(Aggregate.Event):
        reasons: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.decision = {
                "decision": "rejected",
                "reasons": self.reasons,
                "by": self.provenance.actor.id,
            }
            aggregate.status = CaseStatus.REJECTED
            aggregate.closed_at = self.timestamp

    # Life after approval -------------------------------------------------------------------

    @property
    def start_date(self) -> dt.date | None:
        return self.amounts[0][0] if self.amounts else None

    def amount_on(self, day: dt.date) -> Decimal:
        in_force = self.amounts[0][1]
        for effective, amount in self.amounts:
            if effective <= day:
                in_force = amount
        return in_force

    def in_suspension(self, day: dt.date) -> bool:
        return any(start <= day and (end is None or day < end) for start, end in self.suspensions)

    def record_payment(
        self, *, period: str, amount: object, today: dt.date, provenance: Provenance
    ) -> None:
        """A benefit payment for one calendar month (government only)."""
        _check_government(provenance, "pay benefits")
        if provenance.actor.role not in (Role.HANDLING_STAFF, Role.APPROVER):
            raise NotPermitted("benefits are paid by handling staff", field="actor.role")
        if self.status is CaseStatus.SUSPENDED:
            raise InvalidState(
                f"case {self.id} is suspended; no payment during suspension", field="period"
            )
        self.check_status({CaseStatus.APPROVED}, "payments")
        first, last = period_start(period), period_end(period)
        assert self.start_date is not None
        if self.died_on is not None and first > self.died_on:
            raise BeneficiaryDeceased(
                f"the beneficiary died on {self.died_on}; nothing is paid for {period}",
                field="period",
            )
        if first > today:
            raise InvalidValue(
                f"period {period} has not begun; nothing is paid in advance", field="period"
            )
        if self.in_suspension(first):
            raise InvalidState(f"the case was suspended when {period} began", field="period")
        if last < self.start_date:
            raise InvalidValue(
                f"period {period} lies before the approved start {self.start_date}",
                field="period",
            )
        live = [p for p in self.payments.values() if not p["void"]]
        if any(p["period"] == period for p in live):
            raise Duplicate(f"period {period} is paid already", field="period")
        if self.programme is Programme.TEMPORARY and live:
            raise Duplicate("temporary assistance is paid once", field="period")
        value = parse_amount(amount, field="amount")
        ceiling = self.amount_on(max(first, self.start_date))
        if value > ceiling:
            raise InvalidValue(
                f"payment {value} is above the approved monthly amount {ceiling}",
                field="amount",
            )
        self.trigger_event(self.PaymentRecorded, period=period, amount=value, provenance=provenance)

    class PaymentRecorded(Aggregate.Event):
        period: str
        amount: Decimal
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.payments[self.originator_version] = {
                "version": self.originator_version,
                "period": self.period,
                "amount": self.amount,
                "void": False,
            }

    def record_service(
        self,
        *,
        work_item: str,
        contract_id: uuid.UUID | None,
        start: dt.datetime,
        end: dt.datetime,
        place: str,
        check: ContractCheck,
        now: dt.datetime,
        provenance: Provenance,
    ) -> None:
        """A service delivered to the recipient (care, rehabilitation, escort, counselling …)."""
        self.check_status({CaseStatus.APPROVED}, "services")
        item = parse_work_item(work_item, field="work_item")
        if item.kind is not WorkKind.SERVICE:
            raise InvalidValue(
                f"{item.value} is transactional work, not a service", field="work_item"
            )
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidValue("start and end need a time zone", field="start")
        if not start < end <= start + dt.timedelta(hours=24):
            raise InvalidValue("a service ends after it starts, within 24 hours", field="end")
        if end > now:
            raise InvalidValue("a service is recorded once delivered, not in advance", field="end")
        if self.died_on is not None and start.date() > self.died_on:
            raise BeneficiaryDeceased(
                f"the beneficiary died on {self.died_on}; no service after that", field="start"
            )
        where = parse_division_code(place, field="place")
        actor = provenance.actor
        contractor_id = None
        if actor.role is Role.CONTRACTOR_STAFF:
            if contract_id is None:
                raise InvalidValue("contractor staff must name their contract", field="contract_id")
            contractor_id = check(
                contract_id=contract_id,
                contractor_credit_code=actor.organisation,
                work_item=item,
                division=where,
                at=start,
            )
        else:
            _check_government(provenance, "deliver services")
            if contract_id is not None:
                raise InvalidValue("government staff work under no contract", field="contract_id")
        self.trigger_event(
            self.ServiceRecorded,
            work_item=item.value,
            contract_id=contract_id,
            contractor_id=contractor_id,
            start=start,
            end=end,
            place=where.code,
            provenance=provenance,
        )

    class ServiceRecorded(Aggregate.Event):
        work_item: str
        contract_id: uuid.UUID | None
        contractor_id: uuid.UUID | None
        start: dt.datetime
        end: dt.datetime
        place: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.services[self.originator_version] = {
                "version": self.originator_version,
                "work_item": self.work_item,
                "contract_id": str(self.contract_id) if self.contract_id else None,
                "staff": self.provenance.actor.id,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "place": self.place,
                "void": False,
            }

    def review(
        self,
        *,
        outcome: str,
        notes: str,
        provenance: Provenance,
        new_monthly_amount: object | None = None,
        effective_from: dt.date | None = None,
    ) -> None:
        """Periodic review (定期核查): continue as is, or adjust the monthly amount."""
        _check_government(provenance, "review cases")
        self.check_status({CaseStatus.APPROVED, CaseStatus.SUSPENDED}, "reviews")
        result = parse_enum(ReviewOutcome, outcome, "outcome")
        amount = None
        if result is ReviewOutcome.ADJUST:
            # Changing the benefit is an eligibility decision: the county's approver, who did
            # not investigate, as for approval.
            self._check_approver(provenance, "adjust the monthly amount of")
            amount = parse_amount(new_monthly_amount, field="new_monthly_amount")
            if effective_from is None:
                raise InvalidValue("an adjustment needs effective_from", field="effective_from")
            assert self.start_date is not None
            if effective_from < self.start_date:
                raise InvalidValue(
                    "an adjustment cannot precede the approved start", field="effective_from"
                )
        elif new_monthly_amount is not None or effective_from is not None:
            raise InvalidValue("only an adjustment changes the amount", field="new_monthly_amount")
        self.trigger_event(
            self.Reviewed,
            outcome=result.value,
            notes=require_text(notes, field="notes"),
            new_monthly_amount=amount,
            effective_from=effective_from,
            provenance=provenance,
        )

    class Reviewed(Aggregate.Event):
        outcome: str
        notes: str
        new_monthly_amount: Decimal | None
        effective_from: dt.date | None
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.reviews.append(
                {"outcome": self.outcome, "notes": self.notes, "on": self.timestamp.isoformat()}
            )
            if self.new_monthly_amount is not None and self.effective_from is not None:
                aggregate.amounts.append((self.effective_from, self.new_monthly_amount))
                aggregate.amounts.sort(key=lambda entry: entry[0])

    def suspend(self, *, reason: str, provenance: Provenance) -> None:
        self.check_status({CaseStatus.APPROVED}, "suspension")
        self._check_approver(provenance, "suspend")
        self.trigger_event(
            self.Suspended, reason=require_text(reason, field="reason"), provenance=provenance
        )

    class Suspended(Aggregate.Event):
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.status = CaseStatus.SUSPENDED
            aggregate.suspensions.append((business_date(self.timestamp), None))

    def resume(self, *, reason: str, provenance: Provenance) -> None:
        self.check_status({CaseStatus.SUSPENDED}, "resumption")
        self._check_approver(provenance, "resume")
        self.trigger_event(
            self.Resumed, reason=require_text(reason, field="reason"), provenance=provenance
        )

    class Resumed(Aggregate.Event):
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.status = CaseStatus.APPROVED
            start, _ = aggregate.suspensions[-1]
            aggregate.suspensions[-1] = (start, business_date(self.timestamp))

    def close(self, *, reason_code: str, provenance: Provenance) -> None:
        """Close the case (终止) with one of the closure reasons; an eligibility decision."""
        reason = parse_enum(ClosureReason, reason_code, "reason_code")
        self.check_not_closed()
        self._check_approver(provenance, "close")
        self.trigger_event(self.Closed, reason_code=reason.value, provenance=provenance)

    class Closed(Aggregate.Event):
        reason_code: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.status = CaseStatus.CLOSED
            aggregate.closure_reason = ClosureReason(self.reason_code)
            aggregate.closed_at = self.timestamp

    def note_beneficiary_death(self, *, on: dt.date, provenance: Provenance) -> None:
        """The applicant's death, recorded once on the person, reaches each of their cases."""
        if self.died_on is not None:
            return
        self.trigger_event(self.BeneficiaryDied, on=on, provenance=provenance)

    class BeneficiaryDied(Aggregate.Event):
        on: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.died_on = self.on

    # Corrections ---------------------------------------------------------------------------

    def correct(
        self,
        *,
        corrects_version: int,
        changes: dict[str, Any],
        reason: str,
        provenance: Provenance,
    ) -> None:
        """Correct a mistaken payment, service or investigation by a new event that names it.

        The original event stays in the history; this one says what it should have said.
        Payments: {"amount": X} (0 voids it). Services: {"void": true}. Investigations:
        any of household_size, income_items, assets.
        """
        _check_government(provenance, "correct records")
        reason = require_text(reason, field="reason")
        if corrects_version in self.payments:
            kind, checked = (
                "payment",
                self._checked_payment_change(self.payments[corrects_version], changes),
            )
        elif corrects_version in self.services:
            kind, checked = "service", self._checked_service_change(changes)
        elif corrects_version in self.investigations:
            kind, checked = "investigation", self._checked_investigation_change(changes)
        else:
            raise InvalidValue(
                f"version {corrects_version} of case {self.id} is no payment, service or "
                "investigation",
                field="corrects_version",
            )
        self.trigger_event(
            self.RecordCorrected,
            corrects_version=corrects_version,
            corrects=kind,
            changes=checked,
            reason=reason,
            provenance=provenance,
        )

    def _checked_payment_change(
        self, payment: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any]:
        """A payment's amount may be lowered, raised up to the amount in force, or voided (0).
        A voided payment stays void: the month is paid again by a new payment."""
        if set(changes) != {"amount"}:
            raise InvalidValue("a payment correction changes its amount only", field="changes")
        if payment["void"]:
            raise InvalidState(
                "a voided payment cannot be corrected; record a new payment",
                field="corrects_version",
            )
        amount = parse_amount(changes["amount"], field="changes.amount", allow_zero=True)
        ceiling = self.amount_on(max(period_start(payment["period"]), self.amounts[0][0]))
        if amount > ceiling:
            raise InvalidValue(
                f"{amount} is above the monthly amount in force {ceiling}", field="changes.amount"
            )
        return {"amount": str(amount)}

    @staticmethod
    def _checked_service_change(changes: dict[str, Any]) -> dict[str, Any]:
        if changes != {"void": True}:
            raise InvalidValue(
                'a service record is corrected by voiding it: {"void": true}', field="changes"
            )
        return {"void": True}

    @staticmethod
    def _checked_investigation_change(changes: dict[str, Any]) -> dict[str, Any]:
        checkers: dict[str, Any] = {
            "household_size": checked_household_size,
            "income_items": checked_incomes,
            "assets": checked_assets,
        }
        if not changes or not set(changes) <= set(checkers):
            raise InvalidValue(
                f"an investigation correction changes {', '.join(sorted(checkers))}",
                field="changes",
            )
        return {key: checkers[key](value) for key, value in changes.items()}

    class RecordCorrected(Aggregate.Event):
        corrects_version: int
        corrects: str
        changes: dict[str, Any]
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            if self.corrects == "payment":
                payment = aggregate.payments[self.corrects_version]
                payment["amount"] = Decimal(self.changes["amount"])
                payment["void"] = payment["amount"] == 0
            elif self.corrects == "service":
                aggregate.services[self.corrects_version]["void"] = True
            else:
                aggregate.investigations[self.corrects_version].update(self.changes)
                # Whoever changes the means test has investigated: they may not decide.
                aggregate.investigators.add(self.provenance.actor.id)
            aggregate.corrections.append(
                {
                    "version": self.originator_version,
                    "corrects_version": self.corrects_version,
                    "corrects": self.corrects,
                    "changes": self.changes,
                    "reason": self.reason,
                }
            )

    # View ----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {
            "case_id": str(self.id),
            "programme": self.programme.value,
            "status": self.status.value,
            "applicant_id": mask_resident_id(self.applicant_id),
            "household_id": str(self.household_id),
            "registered_division": self.registered_division.code,
            "county": self.county.code,
            "window_division": self.window_division,
            "received_county": self.received_county,
            "cross_region": self.cross_region,
            "assigned_staff": str(self.assigned_staff) if self.assigned_staff else None,
            "investigations": list(self.investigations.values()),
            "recommendation": self.recommendation,
            "decision": self.decision,
            "monthly_amounts": [
                {"effective_from": d.isoformat(), "amount": str(a)} for d, a in self.amounts
            ],
            "payments": [{**p, "amount": str(p["amount"])} for p in self.payments.values()],
            "services": list(self.services.values()),
            "reviews": self.reviews,
            "corrections": self.corrections,
            "died_on": self.died_on.isoformat() if self.died_on else None,
            "closure_reason": self.closure_reason.value if self.closure_reason else None,
            "opened_at": self.created_on.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "version": self.version,
        }
