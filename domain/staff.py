"""Handling staff (经办人员), village coordinators (社会救助协理员) and approvers (审批人员).

Every decision-maker on a case is a staff record: the sign-in a caller's token names (issuer and
subject) is linked to one (``StaffMember.SignInLinked``, held one at a time by ``SignIn``), and
``check_decision_maker`` judges whether that record may investigate, recommend or decide a case
of a county, so the rules about people (conflicts of interest, impossible days, home-visit
ceilings) see every decision-maker as the person they are."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from eventsourcing.domain import Aggregate, event

from domain import upcasting
from domain.authority import check_government_work
from domain.clock import business_date
from domain.contract import Contract
from domain.errors import (
    DeclaredInterests,
    EmployedOnce,
    InvalidValue,
    NoSelfAssessment,
    NotAStaffMember,
    SignInTaken,
    StaffAssignment,
    StaffRemoved,
)
from domain.identifiers import DivisionLevel, parse_division_code, parse_resident_id
from domain.person import person_id_for
from domain.provenance import Provenance, Role
from domain.upcasting import StoredState
from domain.values import parse_enum, require_text

JsonDict = dict[str, object]


class StaffKind(Enum):
    HANDLING_STAFF = "handling_staff"  # 经办服务人员, county or township
    VILLAGE_COORDINATOR = "village_coordinator"  # 社会救助协理员, village or community
    APPROVER = "approver"  # 审批人员 of the county civil-affairs bureau


class Rating(Enum):
    EXCELLENT = "excellent"  # 优秀: kept and rewarded
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"  # 后进: candidate for removal


class Kinship(Enum):
    """How a declared relative (亲属) is related to the staff member."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    GRANDPARENT = "grandparent"
    GRANDCHILD = "grandchild"
    IN_LAW = "in_law"
    OTHER = "other"


#: At most this many relatives in one declaration.
MAX_DECLARED_RELATIVES = 50


ASSIGNABLE_LEVELS = {
    StaffKind.HANDLING_STAFF: (DivisionLevel.COUNTY, DivisionLevel.TOWNSHIP),
    StaffKind.VILLAGE_COORDINATOR: (DivisionLevel.VILLAGE,),
    StaffKind.APPROVER: (DivisionLevel.COUNTY,),
}

#: The staff kinds a signed-in role acts as on a case. Intake clerks at a window are handling
#: staff of the bureau; contractors' people are handling staff or village coordinators.
KINDS_OF_ROLE = {
    Role.APPROVER: frozenset({StaffKind.APPROVER}),
    Role.HANDLING_STAFF: frozenset({StaffKind.HANDLING_STAFF, StaffKind.VILLAGE_COORDINATOR}),
    Role.INTAKE_CLERK: frozenset({StaffKind.HANDLING_STAFF}),
    Role.CONTRACTOR_STAFF: frozenset({StaffKind.HANDLING_STAFF, StaffKind.VILLAGE_COORDINATOR}),
}


def check_staff_manager(provenance: Provenance) -> None:
    """Staff are hired, assigned, trained, rated and removed by the government side."""
    check_government_work(provenance, "manage relief staff")


@dataclass(frozen=True)
class DeclaredRelative:
    """A declared relative, by blind-index person id only (never the ID number)."""

    person_id: uuid.UUID
    kinship: str  # a Kinship value


@dataclass(frozen=True)
class TrainingRecord:
    course: str
    completed_on: dt.date
    hours: float

    def as_dict(self) -> JsonDict:
        return {
            "course": self.course,
            "completed_on": self.completed_on.isoformat(),
            "hours": self.hours,
        }


@dataclass(frozen=True)
class RatingRecord:
    period: str
    rating: str

    def as_dict(self) -> JsonDict:
        return {"period": self.period, "rating": self.rating}


class StaffMember(Aggregate):
    """A person doing relief handling work, employed by a government unit or a contractor."""

    @classmethod
    def hire(
        cls,
        *,
        name: str,
        kind: str,
        provenance: Provenance,
        government_unit: str | None = None,
        contract: Contract | None = None,
        resident_id: str | None = None,
        key: bytes | None = None,
    ) -> StaffMember:
        """Hire a person onto a roster. ``resident_id`` (with the blind-index ``key``) makes
        the record the person's: only the person id (domain/person.py) is kept, so the same
        person on several rosters (two contractors, a contractor and a bureau) is one person
        to every rule about workload and conflicts of interest."""
        check_staff_manager(provenance)
        person_id = None
        if resident_id is not None:
            if key is None:
                raise ValueError("a resident ID is kept as its blind index: the key is needed")
            number = parse_resident_id(resident_id, field="resident_id").number
            person_id = person_id_for(number, key)
        staff_kind = parse_enum(StaffKind, kind, "kind")
        if (government_unit is None) == (contract is None):
            raise EmployedOnce(
                "a staff member is employed either by a government unit or under a contract",
                field="government_unit",
            )
        if staff_kind is StaffKind.APPROVER and contract is not None:
            raise EmployedOnce(
                "approvers are employed by the county civil-affairs bureau, never under a "
                "contract (approval is a government function)",
                field="contract_id",
            )
        unit = None
        if government_unit is not None:
            unit = parse_division_code(government_unit, field="government_unit").code
        if contract is not None and contract.terminated_at is not None:
            raise StaffRemoved(
                "no one can be hired under a terminated contract", field="contract_id"
            )
        return cls(
            name=require_text(name, field="name", max_length=100),
            kind=staff_kind.value,
            government_unit=unit,
            contractor_id=contract.contractor_id if contract else None,
            contract_id=contract.id if contract else None,
            person_id=person_id,
            provenance=provenance,
        )

    class Hired(Aggregate.Created):
        name: str
        kind: str
        government_unit: str | None
        contractor_id: uuid.UUID | None
        contract_id: uuid.UUID | None
        person_id: uuid.UUID | None
        provenance: Provenance

        #: 2: the person's blind-index id (None: hired before staff records named the person).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["person_id"] = None

    @event(Hired)
    def __init__(
        self,
        name: str,
        kind: str,
        government_unit: str | None,
        contractor_id: uuid.UUID | None,
        contract_id: uuid.UUID | None,
        person_id: uuid.UUID | None,
        provenance: Provenance,
    ) -> None:
        self.name = name
        self.kind = StaffKind(kind)
        self.government_unit = government_unit
        self.contractor_id = contractor_id
        self.contract_id = contract_id
        self.assignment: str | None = None
        self.trainings: list[TrainingRecord] = []
        self.ratings: list[RatingRecord] = []
        self.removed_on: dt.date | None = None
        # The person's blind-index id: from the hire, or (older records) their declaration.
        self.person_id: uuid.UUID | None = person_id
        self.hired_as: uuid.UUID | None = person_id  # the person named at hire, if any
        self.relatives: dict[uuid.UUID, Kinship] = {}  # declared relatives by person id
        self.sign_ins: set[tuple[str, str]] = set()  # (issuer, subject) linked to this record

    @property
    def is_contractor_staff(self) -> bool:
        return self.contract_id is not None

    def check_not_removed(self) -> None:
        if self.removed_on is not None:
            raise StaffRemoved(f"staff member {self.name} was removed on {self.removed_on}")

    def assign(
        self, *, division: str, provenance: Provenance, contract: Contract | None = None
    ) -> None:
        """Assign to a county or township (handling staff) or a village (coordinator)."""
        check_staff_manager(provenance)
        self.check_not_removed()
        code = parse_division_code(division, field="division")
        levels = ASSIGNABLE_LEVELS[self.kind]
        if code.level not in levels:
            names = " or ".join(level.name.lower() for level in levels)
            raise StaffAssignment(
                f"{self.kind.value} is assigned to a {names}, not a {code.level.name.lower()}",
                field="division",
            )
        if self.contract_id is not None:
            if contract is None or contract.id != self.contract_id:
                raise StaffAssignment(
                    "the paying contract is needed to check the area", field="division"
                )
            if not contract.terms.covers_area(code.at(DivisionLevel.COUNTY)) and not (
                contract.terms.covers_area(code)
            ):
                raise StaffAssignment(
                    f"{code} is outside the service area of the contract that pays this person",
                    field="division",
                )
        if code.code == self.assignment:
            raise StaffAssignment(f"already assigned to {code}", field="division")
        self.trigger_event(self.Assigned, division=code.code, provenance=provenance)

    class Assigned(Aggregate.Event):
        division: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.assignment = self.division

    def record_training(
        self, *, course: str, completed_on: dt.date, hours: Decimal, provenance: Provenance
    ) -> None:
        check_staff_manager(provenance)
        self.check_not_removed()
        try:
            hours_value = float(str(hours))
        except ValueError:
            raise InvalidValue("hours must be a number", field="hours") from None
        if not 0 < hours_value <= 1000:
            raise InvalidValue("hours must be above 0 and at most 1000", field="hours")
        self.trigger_event(
            self.Trained,
            course=require_text(course, field="course", max_length=200),
            completed_on=completed_on,
            hours=hours_value,
            provenance=provenance,
        )

    class Trained(Aggregate.Event):
        course: str
        completed_on: dt.date
        hours: float
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.trainings.append(TrainingRecord(self.course, self.completed_on, self.hours))

    def rate(self, *, period: str, rating: str, provenance: Provenance) -> None:
        check_staff_manager(provenance)
        self.check_not_removed()
        if provenance.actor.id == str(self.id):
            raise NoSelfAssessment("no one rates their own performance", field="actor.id")
        level = parse_enum(Rating, rating, "rating")
        self.trigger_event(
            self.Rated,
            period=require_text(period, field="period", max_length=20),
            rating=level.value,
            provenance=provenance,
        )

    class Rated(Aggregate.Event):
        period: str
        rating: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.ratings.append(RatingRecord(self.period, self.rating))

    def remove(self, *, on: dt.date, reason: str, provenance: Provenance) -> None:
        """Remove from relief work (清退)."""
        check_staff_manager(provenance)
        self.check_not_removed()
        self.trigger_event(
            self.Removed,
            on=on,
            reason=require_text(reason, field="reason"),
            provenance=provenance,
        )

    class Removed(Aggregate.Event):
        on: dt.date
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.removed_on = self.on

    # Sign-in (登录身份) ---------------------------------------------------------------------

    def link_sign_in(self, *, issuer: str, subject: str, provenance: Provenance) -> None:
        """The identity provider's subject (``sub``) at ``issuer`` acts as this staff record:
        the API records this record's id as the actor of what that sign-in does. Which record
        holds a subject is decided by ``SignIn``, saved with this event."""
        check_staff_manager(provenance)
        self.check_not_removed()
        issuer = require_text(issuer, field="issuer", max_length=200)
        subject = require_text(subject, field="subject", max_length=200)
        if (issuer, subject) in self.sign_ins:
            raise SignInTaken(f"{subject} is linked to this staff record already", field="subject")
        self.trigger_event(self.SignInLinked, issuer=issuer, subject=subject, provenance=provenance)

    class SignInLinked(Aggregate.Event):
        issuer: str
        subject: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.sign_ins.add((self.issuer, self.subject))

    def unlink_sign_in(self, *, issuer: str, subject: str, provenance: Provenance) -> None:
        check_staff_manager(provenance)
        if (issuer, subject) not in self.sign_ins:
            raise InvalidValue(f"{subject} is not linked to this staff record", field="subject")
        self.trigger_event(
            self.SignInUnlinked, issuer=issuer, subject=subject, provenance=provenance
        )

    class SignInUnlinked(Aggregate.Event):
        issuer: str
        subject: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.sign_ins.discard((self.issuer, self.subject))

    # Declared interests (利益冲突申报) ----------------------------------------------------

    def declare_interests(
        self,
        *,
        resident_id: str,
        relatives: Sequence[tuple[str, str]],
        key: bytes,
        provenance: Provenance,
    ) -> None:
        """Declare the staff member's own resident ID and their relatives' (resident ID,
        kinship): what a conflict-of-interest check compares with applicants and households.

        Each declaration replaces the previous one. The numbers never enter the event: each is
        turned into its person id, the blind index (keyed hash) of domain/person.py, so the
        event can be matched with cases and households without revealing who anyone is. The
        staff member declares for themself, or the government side records it for them.
        """
        if provenance.actor.id != str(self.id):
            check_staff_manager(provenance)
        self.check_not_removed()
        own = parse_resident_id(resident_id, field="resident_id").number
        if len(relatives) > MAX_DECLARED_RELATIVES:
            raise InvalidValue(
                f"relatives is a list of at most {MAX_DECLARED_RELATIVES} entries",
                field="relatives",
            )
        if self.hired_as is not None and person_id_for(own, key) != self.hired_as:
            raise DeclaredInterests(
                "the declared resident ID is not the person this staff record was hired as",
                field="resident_id",
            )
        seen = {own}
        declared: list[DeclaredRelative] = []
        for n, (number, kinship) in enumerate(relatives):
            relative = parse_resident_id(number, field=f"relatives[{n}].resident_id").number
            if relative in seen:
                raise DeclaredInterests(
                    "a person is declared twice, or as their own relative",
                    field=f"relatives[{n}].resident_id",
                )
            seen.add(relative)
            kin = parse_enum(Kinship, kinship, f"relatives[{n}].kinship")
            declared.append(DeclaredRelative(person_id_for(relative, key), kin.value))
        self.trigger_event(
            self.InterestsDeclared,
            person_id=person_id_for(own, key),
            relatives=tuple(declared),
            provenance=provenance,
        )

    class InterestsDeclared(Aggregate.Event):
        """The staff member's own person id and their relatives' (blind indexes only)."""

        person_id: uuid.UUID
        relatives: Sequence[DeclaredRelative]
        provenance: Provenance

        #: 2: relatives are typed values (were dicts of text).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["relatives"] = tuple(
                DeclaredRelative(
                    uuid.UUID(upcasting.text(r["person_id"])), upcasting.text(r["kinship"])
                )
                for r in upcasting.records(state["relatives"])
            )

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffMember)
            aggregate.person_id = self.person_id
            aggregate.relatives = {r.person_id: Kinship(r.kinship) for r in self.relatives}

    def is_active_on(self, day: dt.date, contract: Contract | None = None) -> bool:
        """Counts toward staffing: not removed, assigned, and its paying contract still running."""
        if self.removed_on is not None and self.removed_on <= day:
            return False
        if self.assignment is None:
            return False
        if self.contract_id is None:
            return True
        if contract is None:
            return False
        if contract.terminated_at is not None and business_date(contract.terminated_at) <= day:
            return False
        terms = contract.terms_on(day)
        return terms.start <= day <= terms.end

    def summary(self, today: dt.date, contract: Contract | None = None) -> JsonDict:
        return {
            "staff_id": str(self.id),
            "name": self.name,
            "kind": self.kind.value,
            "government_unit": self.government_unit,
            "contractor_id": str(self.contractor_id) if self.contractor_id else None,
            "contract_id": str(self.contract_id) if self.contract_id else None,
            "assignment": self.assignment,
            "active": self.is_active_on(today, contract),
            "trainings": [t.as_dict() for t in self.trainings],
            "ratings": [r.as_dict() for r in self.ratings],
            "removed_on": self.removed_on.isoformat() if self.removed_on else None,
            "sign_ins": [
                {"issuer": issuer, "subject": subject} for issuer, subject in sorted(self.sign_ins)
            ],
            "version": self.version,
        }


# Decision-makers --------------------------------------------------------------------------------


def check_decision_maker(
    staff: StaffMember | None,
    provenance: Provenance,
    *,
    county: str,
    contractor_id: uuid.UUID | None,
    today: dt.date,
    contract: Contract | None = None,
) -> None:
    """The person investigating, recommending or deciding a case of ``county`` is an active
    staff record of the kind their role acts as: the county's own staff (employed by a
    government unit, assigned in the county) for government roles, the named contract's
    contractor's staff for contractor staff. ``staff`` is the record the actor id names (the
    service layer looks it up), ``contract`` the one that pays it. Without such a record nobody
    could tell who decided: not the conflict-of-interest rule, not the workload rules."""
    actor = provenance.actor
    kinds = KINDS_OF_ROLE.get(actor.role)
    if kinds is None:
        return  # the case's own rules refuse the role
    who = f"{actor.id}" + (f" (signed in as {actor.subject})" if actor.subject else "")
    if staff is None:
        raise NotAStaffMember(
            f"{who} is no staff record: link the sign-in to the person's staff record first "
            "(POST /staff/{staff_id}/sign-ins)",
            field="actor.id",
        )
    if staff.kind not in kinds:
        raise NotAStaffMember(
            f"{who} is a {staff.kind.value} staff record; a {actor.role.value} acts as "
            + " or ".join(sorted(k.value for k in kinds)),
            field="actor.id",
        )
    if not staff.is_active_on(today, contract):
        raise NotAStaffMember(
            f"{who} is no active staff record (removed, unassigned, or the contract that pays "
            "them is not running)",
            field="actor.id",
        )
    assert staff.assignment is not None
    if actor.role is Role.CONTRACTOR_STAFF:
        if contractor_id is None or staff.contractor_id != contractor_id:
            raise NotAStaffMember(
                f"{who} is not on the staff of the contractor of the contract named",
                field="actor.id",
            )
    elif staff.government_unit is None or not staff.assignment.startswith(county):
        raise NotAStaffMember(
            f"{who} is not on the staff of county {county}'s government", field="actor.id"
        )


# Sign-ins ---------------------------------------------------------------------------------------

#: Namespace of sign-in ids: (issuer, subject) → the id of its SignIn.
SIGN_IN_NAMESPACE = uuid.UUID("6f1d7c8e-2b4a-5e13-9a55-3c0b8f1e4d21")


def sign_in_id(issuer: str, subject: str) -> uuid.UUID:
    return uuid.uuid5(SIGN_IN_NAMESPACE, f"{issuer}\n{subject}")


class SignIn(Aggregate):
    """Which staff record one sign-in (a subject at an identity provider) acts as: one active
    record at a time. Its id is derived from (issuer, subject), so looking a caller up is a
    read of one small aggregate, and two links of the same subject racing cannot both be
    saved (the second finds the version taken)."""

    @classmethod
    def link(
        cls,
        *,
        issuer: str,
        subject: str,
        staff: StaffMember,
        holder: StaffMember | None,
        existing: SignIn | None,
        provenance: Provenance,
    ) -> SignIn:
        """Link the sign-in to ``staff``; ``holder`` is the record ``existing`` names, if any.
        Refused while another record that is not removed holds it."""
        if holder is not None and holder.id != staff.id and holder.removed_on is None:
            raise SignInTaken(
                f"{subject} is linked to staff record {holder.id} already: unlink it there first",
                field="subject",
            )
        if existing is None:
            return cls(
                id=sign_in_id(issuer, subject),
                issuer=issuer,
                subject=subject,
                staff_id=staff.id,
                provenance=provenance,
            )
        existing.trigger_event(cls.Linked, staff_id=staff.id, provenance=provenance)
        return existing

    class Created(Aggregate.Created):
        issuer: str
        subject: str
        staff_id: uuid.UUID
        provenance: Provenance

    @event(Created)
    def __init__(
        self,
        *,
        id: uuid.UUID,
        issuer: str,
        subject: str,
        staff_id: uuid.UUID,
        provenance: Provenance,
    ) -> None:
        self.issuer = issuer
        self.subject = subject
        self.staff_id: uuid.UUID | None = staff_id

    class Linked(Aggregate.Event):
        staff_id: uuid.UUID
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, SignIn)
            aggregate.staff_id = self.staff_id

    def unlink(self, *, staff_id: uuid.UUID, provenance: Provenance) -> None:
        if self.staff_id != staff_id:
            return  # held by another record (or none): nothing of this record's to release
        self.trigger_event(self.Unlinked, provenance=provenance)

    class Unlinked(Aggregate.Event):
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, SignIn)
            aggregate.staff_id = None
