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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from typing import Protocol, TypeVar

from eventsourcing.domain import Aggregate, event

from domain import upcasting
from domain.authority import check_case_work
from domain.catalogue import WorkItem, WorkKind, parse_work_item
from domain.clock import business_date
from domain.contract import Contract
from domain.errors import (
    AdjustmentTerms,
    AmountOnlyWithApproval,
    ApplicationWindowLevel,
    AssignedOutsideCounty,
    BeneficiaryDeceased,
    CaseAlreadyClosed,
    CaseStatusForbids,
    ContractNamedByContractorStaffOnly,
    DecidedByTheCountysApprover,
    HomeVisitInFuture,
    InvalidValue,
    InvestigatedByHandlingStaff,
    NotAService,
    NothingToCorrect,
    PaidByHandlingStaff,
    PaymentAboveAmountInForce,
    PaymentBeforeStart,
    PaymentDuringSuspension,
    PaymentInAdvance,
    PeriodPaidAlready,
    SeparationOfDuties,
    ServiceTimes,
    StaffNotActive,
    VoidedPaymentIsFinal,
)
from domain.household import Household
from domain.identifiers import DivisionCode, DivisionLevel, mask_resident_id, parse_division_code
from domain.provenance import Provenance, Role
from domain.staff import StaffKind, StaffMember
from domain.upcasting import StoredState
from domain.values import parse_amount, parse_enum, period_end, period_start, require_text

JsonDict = dict[str, object]
T = TypeVar("T")


class Programme(Enum):
    """Relief programmes (救助项目)."""

    DIBAO = "dibao"  # 最低生活保障, minimum living allowance (recurring)
    TEKUN = "tekun"  # 特困人员救助供养, support for extremely poor persons (recurring)
    TEMPORARY = "temporary"  # 临时救助, temporary assistance (one-off or short)

    @classmethod
    def parse(cls, value: str, *, field: str = "programme") -> Programme:
        return parse_enum(cls, value, field)


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


# The means test (家计调查) -----------------------------------------------------------------------

#: At most this many income items, and as many assets, in one means test.
MAX_MEANS_ITEMS = 100


@dataclass(frozen=True)
class IncomeItem:
    source: str
    monthly_amount: Decimal

    def as_dict(self) -> JsonDict:
        return {"source": self.source, "monthly_amount": str(self.monthly_amount)}


@dataclass(frozen=True)
class Asset:
    kind: str
    value: Decimal

    def as_dict(self) -> JsonDict:
        return {"kind": self.kind, "value": str(self.value)}


@dataclass(frozen=True)
class HomeVisit:
    visited_at: dt.datetime
    place: str  # 12-digit village code
    visitor_id: str

    def as_dict(self) -> JsonDict:
        return {
            "visited_at": self.visited_at.isoformat(),
            "place": self.place,
            "visitor_id": self.visitor_id,
        }


@dataclass(frozen=True)
class MeansTest:
    """Household economic investigation (家计调查): declared income, assets, household size and
    the home visit that checked them."""

    income_items: tuple[IncomeItem, ...]
    assets: tuple[Asset, ...]
    household_size: int
    home_visit: HomeVisit

    @property
    def monthly_income(self) -> Decimal:
        return sum((item.monthly_amount for item in self.income_items), Decimal(0))

    def checked(self, now: dt.datetime) -> MeansTest:
        """Validated and normalised, as stored in the event."""
        visit = self.home_visit
        if visit.visited_at.tzinfo is None:
            raise InvalidValue("visited_at needs a time zone", field="home_visit.visited_at")
        if visit.visited_at > now:
            raise HomeVisitInFuture(
                "a home visit cannot lie in the future", field="home_visit.visited_at"
            )
        place = parse_division_code(
            visit.place, level=DivisionLevel.VILLAGE, field="home_visit.place"
        )
        return MeansTest(
            income_items=checked_incomes(self.income_items),
            assets=checked_assets(self.assets),
            household_size=checked_household_size(self.household_size),
            home_visit=HomeVisit(
                visited_at=visit.visited_at,
                place=place.code,
                visitor_id=require_text(
                    visit.visitor_id, field="home_visit.visitor_id", max_length=100
                ),
            ),
        )

    def corrected(self, correction: MeansTestCorrection) -> MeansTest:
        return MeansTest(
            income_items=(
                self.income_items if correction.income_items is None else correction.income_items
            ),
            assets=self.assets if correction.assets is None else correction.assets,
            household_size=(
                self.household_size
                if correction.household_size is None
                else correction.household_size
            ),
            home_visit=self.home_visit,
        )

    def as_dict(self) -> JsonDict:
        return {
            "income_items": [item.as_dict() for item in self.income_items],
            "assets": [asset.as_dict() for asset in self.assets],
            "household_size": self.household_size,
            "home_visit": self.home_visit.as_dict(),
        }


def checked_household_size(size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 50:
        raise InvalidValue(
            "household_size must be a whole number from 1 to 50", field="household_size"
        )
    return size


def _check_count(items: Sequence[object], field: str) -> None:
    if len(items) > MAX_MEANS_ITEMS:
        raise InvalidValue(f"{field} takes at most {MAX_MEANS_ITEMS} entries", field=field)


def checked_incomes(items: Sequence[IncomeItem]) -> tuple[IncomeItem, ...]:
    _check_count(items, "income_items")
    return tuple(
        IncomeItem(
            source=require_text(item.source, field=f"income_items[{n}].source", max_length=100),
            monthly_amount=parse_amount(
                item.monthly_amount, field=f"income_items[{n}].monthly_amount", allow_zero=True
            ),
        )
        for n, item in enumerate(items)
    )


def checked_assets(items: Sequence[Asset]) -> tuple[Asset, ...]:
    _check_count(items, "assets")
    return tuple(
        Asset(
            kind=require_text(asset.kind, field=f"assets[{n}].kind", max_length=100),
            value=parse_amount(asset.value, field=f"assets[{n}].value", allow_zero=True),
        )
        for n, asset in enumerate(items)
    )


# Corrections -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentCorrection:
    """A payment's amount as it should have been; 0 voids the payment for good."""

    amount: Decimal

    def as_dict(self) -> JsonDict:
        return {"amount": str(self.amount)}


@dataclass(frozen=True)
class ServiceVoided:
    """A service record that should not have been made (it did not take place)."""

    def as_dict(self) -> JsonDict:
        return {"void": True}


@dataclass(frozen=True)
class MeansTestCorrection:
    """What a means test should have said: only the parts given (not None) change."""

    household_size: int | None = None
    income_items: tuple[IncomeItem, ...] | None = None
    assets: tuple[Asset, ...] | None = None

    def checked(self) -> MeansTestCorrection:
        if self.household_size is None and self.income_items is None and self.assets is None:
            raise NothingToCorrect(
                "an investigation correction changes assets, household_size, income_items",
                field="changes",
            )
        return MeansTestCorrection(
            household_size=(
                None if self.household_size is None else checked_household_size(self.household_size)
            ),
            income_items=None if self.income_items is None else checked_incomes(self.income_items),
            assets=None if self.assets is None else checked_assets(self.assets),
        )

    def as_dict(self) -> JsonDict:
        changes: JsonDict = {}
        if self.household_size is not None:
            changes["household_size"] = self.household_size
        if self.income_items is not None:
            changes["income_items"] = [item.as_dict() for item in self.income_items]
        if self.assets is not None:
            changes["assets"] = [asset.as_dict() for asset in self.assets]
        return changes


Correction = PaymentCorrection | ServiceVoided | MeansTestCorrection

#: The kind of record each correction corrects, as the history names it.
CORRECTS: dict[type[Correction], str] = {
    PaymentCorrection: "payment",
    ServiceVoided: "service",
    MeansTestCorrection: "investigation",
}
MEANS_TEST_PARTS = frozenset({"household_size", "income_items", "assets"})


def parse_correction(changes: Mapping[str, object]) -> Correction:
    """The typed correction a request's ``changes`` object asks for: ``{"amount": X}`` for a
    payment (0 voids it), ``{"void": true}`` for a service, any of household_size,
    income_items and assets for a means test."""
    keys = set(changes)
    if keys == {"amount"}:
        return PaymentCorrection(
            parse_amount(changes["amount"], field="changes.amount", allow_zero=True)
        )
    if keys == {"void"} and changes["void"] is True:
        return ServiceVoided()
    if keys and keys <= MEANS_TEST_PARTS:
        size = changes.get("household_size")
        return MeansTestCorrection(
            household_size=None if size is None else checked_household_size(size),
            income_items=(
                None
                if "income_items" not in changes
                else _parse_items(changes["income_items"], "income_items", _income_item)
            ),
            assets=(
                None
                if "assets" not in changes
                else _parse_items(changes["assets"], "assets", _asset)
            ),
        )
    raise NothingToCorrect(
        'changes are {"amount": X} (a payment), {"void": true} (a service) or any of '
        "assets, household_size, income_items (an investigation)",
        field="changes",
    )


def _income_item(record: Mapping[str, object], where: str) -> IncomeItem:
    return IncomeItem(
        require_text(record.get("source"), field=f"{where}.source", max_length=100),
        parse_amount(
            record.get("monthly_amount"), field=f"{where}.monthly_amount", allow_zero=True
        ),
    )


def _asset(record: Mapping[str, object], where: str) -> Asset:
    return Asset(
        require_text(record.get("kind"), field=f"{where}.kind", max_length=100),
        parse_amount(record.get("value"), field=f"{where}.value", allow_zero=True),
    )


def _parse_items(
    value: object, field: str, parse: Callable[[Mapping[str, object], str], T]
) -> tuple[T, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidValue(f"{field} must be a list of objects", field=field)
    _check_count(value, field)
    return tuple(parse(item, f"{field}[{n}]") for n, item in enumerate(value))


# What the case keeps of its history ------------------------------------------------------------


@dataclass(frozen=True)
class InvestigationRecord:
    version: int
    means_test: MeansTest
    investigator: str
    contract_id: uuid.UUID | None

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            **self.means_test.as_dict(),
            "investigator": self.investigator,
            "contract_id": str(self.contract_id) if self.contract_id else None,
        }


@dataclass(frozen=True)
class RecommendationRecord:
    recommendation: str
    monthly_amount: Decimal | None
    reasons: str
    by: str

    def as_dict(self) -> JsonDict:
        return {
            "recommendation": self.recommendation,
            "monthly_amount": str(self.monthly_amount) if self.monthly_amount else None,
            "reasons": self.reasons,
            "by": self.by,
        }


@dataclass(frozen=True)
class DecisionRecord:
    decision: str  # approved, rejected
    reasons: str
    by: str
    monthly_amount: Decimal | None = None
    start_date: dt.date | None = None

    def as_dict(self) -> JsonDict:
        view: JsonDict = {"decision": self.decision}
        if self.monthly_amount is not None and self.start_date is not None:
            view["monthly_amount"] = str(self.monthly_amount)
            view["start_date"] = self.start_date.isoformat()
        return {**view, "reasons": self.reasons, "by": self.by}


@dataclass(frozen=True)
class PaymentRecord:
    version: int
    period: str
    amount: Decimal
    void: bool = False

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "period": self.period,
            "amount": str(self.amount),
            "void": self.void,
        }


@dataclass(frozen=True)
class ServiceRecord:
    version: int
    work_item: str
    contract_id: uuid.UUID | None
    staff: str
    start: dt.datetime
    end: dt.datetime
    place: str
    void: bool = False

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "work_item": self.work_item,
            "contract_id": str(self.contract_id) if self.contract_id else None,
            "staff": self.staff,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "place": self.place,
            "void": self.void,
        }


@dataclass(frozen=True)
class ReviewRecord:
    outcome: str
    notes: str
    on: dt.datetime

    def as_dict(self) -> JsonDict:
        return {"outcome": self.outcome, "notes": self.notes, "on": self.on.isoformat()}


@dataclass(frozen=True)
class CorrectionRecord:
    version: int
    corrects_version: int
    correction: Correction
    reason: str

    def as_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "corrects_version": self.corrects_version,
            "corrects": CORRECTS[type(self.correction)],
            "changes": self.correction.as_dict(),
            "reason": self.reason,
        }


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
        check_case_work(provenance, "receive applications")
        parsed = Programme.parse(programme)
        window = parse_division_code(window_division, field="window_division")
        if window.level not in (DivisionLevel.TOWNSHIP, DivisionLevel.VILLAGE):
            raise ApplicationWindowLevel(
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
        self.investigations: dict[int, InvestigationRecord] = {}  # by event version
        self.recommendation: RecommendationRecord | None = None
        self.decision: DecisionRecord | None = None
        self.amounts: list[tuple[dt.date, Decimal]] = []  # (effective from, monthly amount)
        self.payments: dict[int, PaymentRecord] = {}  # by event version
        self.services: dict[int, ServiceRecord] = {}  # by event version
        self.reviews: list[ReviewRecord] = []
        self.corrections: list[CorrectionRecord] = []
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
        raise CaseStatusForbids(f"case {self.id} is {self.status.value}; it cannot take {doing}")

    def check_not_closed(self) -> None:
        self.check_status(ACTIVE_STATUSES, "further changes")

    def check_approver(self, provenance: Provenance, doing: str) -> None:
        """Decisions: the approver of the county with jurisdiction, who did not investigate."""
        check_case_work(provenance, doing)
        actor = provenance.actor
        if actor.role is not Role.APPROVER or actor.organisation != self.county.code:
            raise DecidedByTheCountysApprover(
                f"only an approver of the county with jurisdiction ({self.county}) may {doing}",
                field="actor.role",
            )
        if actor.id in self.investigators:
            raise SeparationOfDuties(
                f"{actor.id} investigated this case and may not {doing} it", field="actor.id"
            )

    @staticmethod
    def check_contract_named(provenance: Provenance, contract_id: uuid.UUID | None) -> None:
        """Contractor staff work under the contract they name; government staff under none."""
        if provenance.actor.role is Role.CONTRACTOR_STAFF:
            if contract_id is None:
                raise ContractNamedByContractorStaffOnly(
                    "contractor staff must name their contract", field="contract_id"
                )
        elif contract_id is not None:
            raise ContractNamedByContractorStaffOnly(
                "government staff work under no contract", field="contract_id"
            )

    def check_investigation_work(
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
        if actor.role not in (Role.HANDLING_STAFF, Role.INTAKE_CLERK, Role.CONTRACTOR_STAFF):
            raise InvestigatedByHandlingStaff(
                "investigations are done by handling staff", field="actor.role"
            )
        self.check_contract_named(provenance, contract_id)
        if contract_id is None:
            return None
        return check(
            contract_id=contract_id,
            contractor_credit_code=actor.organisation,
            work_item=WorkItem.HOUSEHOLD_INVESTIGATION,
            division=place,
            at=at,
        )

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
        check_case_work(provenance, "assign cases")
        self.check_status(BEFORE_DECISION - {CaseStatus.RECOMMENDED}, "assignment")
        if staff.kind is not StaffKind.HANDLING_STAFF:
            raise InvalidValue("cases are assigned to handling staff", field="staff_id")
        if staff.removed_on is not None:
            raise StaffNotActive(f"staff member {staff.id} was removed", field="staff_id")
        if not staff.is_active_on(today, contract):
            raise StaffNotActive(
                f"staff member {staff.id} is not active (unassigned, or the contract that "
                "pays them is not running)",
                field="staff_id",
            )
        if staff.assignment is None or not (staff.assignment.startswith(self.county.code)):
            raise AssignedOutsideCounty(
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
        checked = means_test.checked(now)
        # The contract must cover the household's village, whatever place the visit names.
        contractor_id = self.check_investigation_work(
            provenance, contract_id, check, self.registered_division, checked.home_visit.visited_at
        )
        self.trigger_event(
            self.Investigated,
            means_test=checked,
            contract_id=contract_id,
            contractor_id=contractor_id,
            provenance=provenance,
        )

    class Investigated(Aggregate.Event):
        means_test: MeansTest
        contract_id: uuid.UUID | None
        contractor_id: uuid.UUID | None
        provenance: Provenance

        #: 2: the means test is one typed value (was four fields of plain dicts and lists).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["means_test"] = MeansTest(
                income_items=incomes_v1(state.pop("income_items")),
                assets=assets_v1(state.pop("assets")),
                household_size=upcasting.whole(state.pop("household_size")),
                home_visit=home_visit_v1(state.pop("home_visit")),
            )

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            investigator = self.provenance.actor.id
            aggregate.investigators.add(investigator)
            aggregate.investigators.add(self.means_test.home_visit.visitor_id)
            aggregate.investigations[self.originator_version] = InvestigationRecord(
                self.originator_version, self.means_test, investigator, self.contract_id
            )
            aggregate.recommendation = None
            aggregate.status = CaseStatus.INVESTIGATED

    def recommend(
        self,
        *,
        recommendation: str,
        reasons: str,
        monthly_amount: Decimal | None,
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
            raise AmountOnlyWithApproval("a rejection recommends no amount", field="monthly_amount")
        contractor_id = self.check_investigation_work(
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
            aggregate.recommendation = RecommendationRecord(
                self.recommendation, self.monthly_amount, self.reasons, self.provenance.actor.id
            )
            aggregate.status = CaseStatus.RECOMMENDED

    # Decision ------------------------------------------------------------------------------

    def approve(
        self,
        *,
        monthly_amount: Decimal,
        start_date: dt.date,
        reasons: str,
        provenance: Provenance,
    ) -> None:
        """Approve (审批): programme, monthly amount, start date."""
        self.check_status({CaseStatus.RECOMMENDED}, "approval")
        self.check_approver(provenance, "approve")
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
            aggregate.decision = DecisionRecord(
                "approved",
                self.reasons,
                self.provenance.actor.id,
                self.monthly_amount,
                self.start_date,
            )
            aggregate.amounts = [(self.start_date, self.monthly_amount)]
            aggregate.status = CaseStatus.APPROVED

    def reject(self, *, reasons: str, provenance: Provenance) -> None:
        self.check_status({CaseStatus.INVESTIGATED, CaseStatus.RECOMMENDED}, "rejection")
        self.check_approver(provenance, "reject")
        self.trigger_event(
            self.Rejected, reasons=require_text(reasons, field="reasons"), provenance=provenance
        )

    class Rejected(Aggregate.Event):
        reasons: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.decision = DecisionRecord("rejected", self.reasons, self.provenance.actor.id)
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

    def check_within_amount_in_force(self, amount: Decimal, first: dt.date, field: str) -> None:
        """A month is paid at most the monthly amount in force when it began."""
        start = self.start_date
        assert start is not None
        ceiling = self.amount_on(max(first, start))
        if amount > ceiling:
            raise PaymentAboveAmountInForce(
                f"{amount} is above the approved monthly amount in force {ceiling}", field=field
            )

    def record_payment(
        self, *, period: str, amount: Decimal, today: dt.date, provenance: Provenance
    ) -> None:
        """A benefit payment for one calendar month (government only)."""
        check_case_work(provenance, "pay benefits")
        if provenance.actor.role not in (Role.HANDLING_STAFF, Role.APPROVER):
            raise PaidByHandlingStaff("benefits are paid by handling staff", field="actor.role")
        if self.status is CaseStatus.SUSPENDED:
            raise PaymentDuringSuspension(
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
            raise PaymentInAdvance(
                f"period {period} has not begun; nothing is paid in advance", field="period"
            )
        if self.in_suspension(first):
            raise PaymentDuringSuspension(
                f"the case was suspended when {period} began", field="period"
            )
        if last < self.start_date:
            raise PaymentBeforeStart(
                f"period {period} lies before the approved start {self.start_date}",
                field="period",
            )
        live = [p for p in self.payments.values() if not p.void]
        if any(p.period == period for p in live):
            raise PeriodPaidAlready(f"period {period} is paid already", field="period")
        if self.programme is Programme.TEMPORARY and live:
            raise PeriodPaidAlready("temporary assistance is paid once", field="period")
        value = parse_amount(amount, field="amount")
        self.check_within_amount_in_force(value, first, "amount")
        self.trigger_event(self.PaymentRecorded, period=period, amount=value, provenance=provenance)

    class PaymentRecorded(Aggregate.Event):
        period: str
        amount: Decimal
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            aggregate.payments[self.originator_version] = PaymentRecord(
                self.originator_version, self.period, self.amount
            )

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
            raise NotAService(
                f"{item.value} is transactional work, not a service", field="work_item"
            )
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidValue("start and end need a time zone", field="start")
        if not start < end <= start + dt.timedelta(hours=24):
            raise ServiceTimes("a service ends after it starts, within 24 hours", field="end")
        if end > now:
            raise ServiceTimes("a service is recorded once delivered, not in advance", field="end")
        if self.died_on is not None and business_date(start) > self.died_on:
            raise BeneficiaryDeceased(
                f"the beneficiary died on {self.died_on}; no service after that", field="start"
            )
        where = parse_division_code(place, field="place")
        actor = provenance.actor
        if actor.role is not Role.CONTRACTOR_STAFF:
            check_case_work(provenance, "deliver services")
        self.check_contract_named(provenance, contract_id)
        contractor_id = None
        if contract_id is not None:
            contractor_id = check(
                contract_id=contract_id,
                contractor_credit_code=actor.organisation,
                work_item=item,
                division=where,
                at=start,
            )
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
            aggregate.services[self.originator_version] = ServiceRecord(
                self.originator_version,
                self.work_item,
                self.contract_id,
                self.provenance.actor.id,
                self.start,
                self.end,
                self.place,
            )

    def review(
        self,
        *,
        outcome: str,
        notes: str,
        provenance: Provenance,
        new_monthly_amount: Decimal | None = None,
        effective_from: dt.date | None = None,
    ) -> None:
        """Periodic review (定期核查): continue as is, or adjust the monthly amount."""
        check_case_work(provenance, "review cases")
        self.check_status({CaseStatus.APPROVED, CaseStatus.SUSPENDED}, "reviews")
        result = parse_enum(ReviewOutcome, outcome, "outcome")
        amount = None
        if result is ReviewOutcome.ADJUST:
            # Changing the benefit is an eligibility decision: the county's approver, who did
            # not investigate, as for approval.
            self.check_approver(provenance, "adjust the monthly amount of")
            amount = parse_amount(new_monthly_amount, field="new_monthly_amount")
            if effective_from is None:
                raise AdjustmentTerms("an adjustment needs effective_from", field="effective_from")
            assert self.start_date is not None
            if effective_from < self.start_date:
                raise AdjustmentTerms(
                    "an adjustment cannot precede the approved start", field="effective_from"
                )
        elif new_monthly_amount is not None or effective_from is not None:
            raise AmountOnlyWithApproval(
                "only an adjustment changes the amount", field="new_monthly_amount"
            )
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
            aggregate.reviews.append(ReviewRecord(self.outcome, self.notes, self.timestamp))
            if self.new_monthly_amount is not None and self.effective_from is not None:
                aggregate.amounts.append((self.effective_from, self.new_monthly_amount))
                aggregate.amounts.sort(key=lambda entry: entry[0])

    def suspend(self, *, reason: str, provenance: Provenance) -> None:
        self.check_status({CaseStatus.APPROVED}, "suspension")
        self.check_approver(provenance, "suspend")
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
        self.check_approver(provenance, "resume")
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
        self.check_approver(provenance, "close")
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
        correction: Correction,
        reason: str,
        provenance: Provenance,
    ) -> None:
        """Correct a mistaken payment, service or investigation by a new event that names it.

        The original event stays in the history; this one says what it should have said: a
        payment's amount (0 voids it), a service voided, parts of a means test.
        """
        check_case_work(provenance, "correct records")
        reason = require_text(reason, field="reason")
        self.trigger_event(
            self.RecordCorrected,
            corrects_version=corrects_version,
            correction=self._checked_correction(corrects_version, correction),
            reason=reason,
            provenance=provenance,
        )

    def _checked_correction(self, version: int, correction: Correction) -> Correction:
        payment = self.payments.get(version)
        if payment is not None:
            if not isinstance(correction, PaymentCorrection):
                raise NothingToCorrect(
                    "a payment correction changes its amount only", field="changes"
                )
            if payment.void:
                raise VoidedPaymentIsFinal(
                    "a voided payment cannot be corrected; record a new payment",
                    field="corrects_version",
                )
            amount = parse_amount(correction.amount, field="changes.amount", allow_zero=True)
            self.check_within_amount_in_force(
                amount, period_start(payment.period), "changes.amount"
            )
            return PaymentCorrection(amount)
        if version in self.services:
            if not isinstance(correction, ServiceVoided):
                raise NothingToCorrect(
                    'a service record is corrected by voiding it: {"void": true}',
                    field="changes",
                )
            return correction
        if version in self.investigations:
            if not isinstance(correction, MeansTestCorrection):
                raise NothingToCorrect(
                    "an investigation correction changes assets, household_size, income_items",
                    field="changes",
                )
            return correction.checked()
        raise NothingToCorrect(
            f"version {version} of case {self.id} is no payment, service or investigation",
            field="corrects_version",
        )

    class RecordCorrected(Aggregate.Event):
        corrects_version: int
        correction: Correction
        reason: str
        provenance: Provenance

        #: 2: the correction is a typed value (was ``corrects`` and a ``changes`` dict).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            corrects = upcasting.text(state.pop("corrects"))
            state["correction"] = correction_v1(corrects, upcasting.record(state.pop("changes")))

        @property
        def corrects(self) -> str:
            """The kind of record corrected: payment, service or investigation."""
            return CORRECTS[type(self.correction)]

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ReliefCase)
            version, correction = self.corrects_version, self.correction
            if isinstance(correction, PaymentCorrection):
                aggregate.payments[version] = replace(
                    aggregate.payments[version],
                    amount=correction.amount,
                    void=correction.amount == 0,
                )
            elif isinstance(correction, ServiceVoided):
                aggregate.services[version] = replace(aggregate.services[version], void=True)
            else:
                record = aggregate.investigations[version]
                aggregate.investigations[version] = replace(
                    record, means_test=record.means_test.corrected(correction)
                )
                # Whoever changes the means test has investigated: they may not decide.
                aggregate.investigators.add(self.provenance.actor.id)
            aggregate.corrections.append(
                CorrectionRecord(self.originator_version, version, correction, self.reason)
            )

    # View ----------------------------------------------------------------------------------

    def summary(self) -> JsonDict:
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
            "investigations": [i.as_dict() for i in self.investigations.values()],
            "recommendation": self.recommendation.as_dict() if self.recommendation else None,
            "decision": self.decision.as_dict() if self.decision else None,
            "monthly_amounts": [
                {"effective_from": d.isoformat(), "amount": str(a)} for d, a in self.amounts
            ],
            "payments": [p.as_dict() for p in self.payments.values()],
            "services": [s.as_dict() for s in self.services.values()],
            "reviews": [r.as_dict() for r in self.reviews],
            "corrections": [c.as_dict() for c in self.corrections],
            "died_on": self.died_on.isoformat() if self.died_on else None,
            "closure_reason": self.closure_reason.value if self.closure_reason else None,
            "opened_at": self.created_on.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "version": self.version,
        }


# Stored shapes of version 1 (plain dicts), read by the upcasters above -------------------------


def incomes_v1(value: object) -> tuple[IncomeItem, ...]:
    return tuple(
        IncomeItem(upcasting.text(i["source"]), upcasting.amount(i["monthly_amount"]))
        for i in upcasting.records(value)
    )


def assets_v1(value: object) -> tuple[Asset, ...]:
    return tuple(
        Asset(upcasting.text(a["kind"]), upcasting.amount(a["value"]))
        for a in upcasting.records(value)
    )


def home_visit_v1(value: object) -> HomeVisit:
    visit = upcasting.record(value)
    return HomeVisit(
        upcasting.moment(visit["visited_at"]),
        upcasting.text(visit["place"]),
        upcasting.text(visit["visitor_id"]),
    )


def correction_v1(corrects: str, changes: dict[str, object]) -> Correction:
    if corrects == "payment":
        return PaymentCorrection(upcasting.amount(changes["amount"]))
    if corrects == "service":
        return ServiceVoided()
    if corrects != "investigation":
        raise upcasting.UnknownStoredShape(f"a correction of {corrects!r}")
    return MeansTestCorrection(
        household_size=(
            upcasting.whole(changes["household_size"]) if "household_size" in changes else None
        ),
        income_items=incomes_v1(changes["income_items"]) if "income_items" in changes else None,
        assets=assets_v1(changes["assets"]) if "assets" in changes else None,
    )
